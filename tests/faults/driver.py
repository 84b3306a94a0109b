"""Child process of the fault tests: run one write path and SIGKILL itself at a chosen point.

    python driver.py '{"writer": "candidate", "root": "/tmp/x", "mode": "rename"}'

Modes (the kill points; nothing here depends on timing):

``rename``
    Just before the rename that puts the target in place (or moves the old target aside): the
    temporary file or folder is complete, the target untouched. Seen through the ``os.rename``
    audit event, which ``os.rename``, ``os.replace``, ``Path.replace`` and ``shutil.move`` all raise.
``partial``
    The same point, but the temporary file is first cut to half its bytes (for a temporary folder:
    its largest file is cut and its manifest removed): what a writer killed half-way leaves.
``commit`` / ``insert`` (the SQLite store)
    Just before the COMMIT of ``write_version``, or before its second INSERT (some rows written).

A writer that opens the target itself for writing (writes in place) is stopped there with exit
status 3 and a message; a writer that finishes without reaching the kill point exits with 4. The
tests expect death by SIGKILL (return code -9) and show this process's stderr otherwise.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import faultkit


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def cut_half(tmp: Path) -> None:
    """Leave ``tmp`` (a file, or a folder's largest file) half written."""
    if tmp.is_dir():
        (tmp / "manifest.json").unlink(missing_ok=True)
        files = [p for p in tmp.rglob("*") if p.is_file()]
        if not files:
            return
        tmp = max(files, key=lambda p: p.stat().st_size)
    data = tmp.read_bytes()
    tmp.write_bytes(data[: len(data) // 2])


def _writes(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC))


def install_rename_hook(pattern: str, partial: bool) -> None:
    """Kill at the first rename onto (or away from) a name matching ``pattern``; stop in-place writes."""
    def is_target(p: object) -> bool:
        return isinstance(p, (str, os.PathLike)) and fnmatch.fnmatch(Path(os.fsdecode(p)).name, pattern)

    def hook(event: str, args: tuple) -> None:
        if event == "os.rename":
            src, dst = args[0], args[1]
            if is_target(dst):
                if partial:
                    cut_half(Path(os.fsdecode(src)))
                die()
            if is_target(src):          # moving the old target aside
                die()
        elif event == "open" and args and isinstance(args[0], (str, os.PathLike)):
            path = Path(os.fsdecode(args[0]))
            mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
            if _writes(mode, flags) and (is_target(path) or is_target(path.parent)):
                sys.stderr.write(f"driver: the writer opened {path} for writing in place (no temporary "
                                 "file renamed into place); a kill now would leave it half written\n")
                sys.stderr.flush()
                os._exit(3)

    sys.addaudithook(hook)


def install_sqlite_hook(mode: str) -> None:
    """Kill inside ``EmbeddingStore.write_version``'s transaction: at COMMIT, or before the 2nd INSERT."""
    from ytrec_lib.serving.store import EmbeddingStore

    state = {"armed": False, "writes": 0}

    class KillingConnection(sqlite3.Connection):
        def _watch(self, sql: str) -> None:
            if not state["armed"]:
                return
            head = sql.lstrip().upper()
            if head.startswith(("INSERT", "REPLACE", "UPDATE", "DELETE")):
                state["writes"] += 1
                if mode == "insert" and state["writes"] == 2:
                    die()
            elif head.startswith(("COMMIT", "END")) and mode == "commit" and state["writes"]:
                die()

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            self._watch(sql)
            return super().execute(sql, *args)

        def executemany(self, sql: str, *args: object) -> sqlite3.Cursor:
            self._watch(sql)
            return super().executemany(sql, *args)

        def commit(self) -> None:
            if state["armed"] and mode == "commit" and state["writes"]:
                die()
            super().commit()

    connect = sqlite3.connect

    def killing_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        kwargs.setdefault("factory", KillingConnection)
        return connect(*args, **kwargs)

    sqlite3.connect = killing_connect
    write_version = EmbeddingStore.write_version

    def armed_write_version(self: EmbeddingStore, *args: object, **kwargs: object) -> None:
        state["armed"] = True
        return write_version(self, *args, **kwargs)

    EmbeddingStore.write_version = armed_write_version


def main() -> None:
    spec = json.loads(sys.argv[1])
    writer, root, mode = spec["writer"], Path(spec["root"]), spec["mode"]
    if mode in ("commit", "insert"):
        install_sqlite_hook(mode)
    else:
        install_rename_hook(faultkit.target(writer, root).name, partial=(mode == "partial"))
    faultkit.write(writer, root)
    sys.stderr.write(f"driver: {writer} finished without reaching the kill point {mode!r}\n")
    sys.exit(4)


if __name__ == "__main__":
    main()
