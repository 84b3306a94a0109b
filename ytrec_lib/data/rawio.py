"""Strict readers for published data files (MovieLens ``.csv`` / ``.dat``, KuaiRand ``.csv``).

A :class:`FileFormat` says what one file must look like: its columns (in a header line or, for
header-less files, by position), the type of each column, the separator, the encoding and which
columns may be empty. :func:`read_table` reads a file with pandas' C parser (fast path) and, when
anything is wrong, scans the file line by line with the :mod:`csv` module to name the first bad
line: a missing file, an empty file or one with a header and no rows, a missing or unexpected
column, a row with too few fields (a truncated file) or too many, an empty line, a value that is not a
number, bytes that are not valid in the encoding (or, with ``text_only``, control characters and
UTF-8 sequences in a Latin-1 file).
Every problem raises :class:`DataFileError` (a ``ValueError``) whose message names the file and the
line, or :class:`MissingDataError` (a ``FileNotFoundError``) for a missing file.

Nothing here writes a file.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DataFileError", "MissingDataError", "FileFormat", "read_table", "check_header", "line_of",
           "check_text_bytes"]

_KINDS = ("int", "float", "str")
_UNIT_SEP = "\x1f"      # stands in for a multi-character separator such as MovieLens' "::"


class DataFileError(ValueError):
    """A data file that does not have the published format. ``path`` and ``line`` (1-based) say where."""

    def __init__(self, path: str | Path, line: int | None, problem: str, hint: str = "") -> None:
        self.path, self.line, self.problem = Path(path), line, problem
        where = f"{path}" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {problem}" + (f" — {hint}" if hint else ""))


class MissingDataError(FileNotFoundError):
    """A data file or folder that is not there; the message says where to put it."""

    def __str__(self) -> str:     # FileNotFoundError(msg) would print "(errno) msg" otherwise
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class FileFormat:
    """The published layout of one file.

    ``columns``: the column names, in file order; ``kinds``: ``"int"``, ``"float"`` or ``"str"`` per
    column (default ``"int"``); ``header``: whether the first line names the columns (then their order
    may differ, but none may be missing or extra); ``sep``: the field separator (may be several
    characters, e.g. ``"::"``, then quotes are not special); ``nullable``: columns that may be empty
    (read as NaN, or ``<NA>`` for strings); ``usecols``: the columns to return (default all);
    ``hint``: what to do about a bad file, appended to every message; ``text_only``: refuse control
    characters and UTF-8 byte sequences (for a Latin-1 file, where every byte decodes: a file re-saved
    as UTF-8 would otherwise be read as mojibake such as ``MisÃ©rables``).
    """

    columns: tuple[str, ...]
    kinds: dict[str, str] = field(default_factory=dict)
    header: bool = True
    sep: str = ","
    encoding: str = "utf-8"
    nullable: frozenset[str] = frozenset()
    usecols: tuple[str, ...] | None = None
    hint: str = ""
    text_only: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(self.columns)
        bad = {k: v for k, v in self.kinds.items() if v not in _KINDS}
        if unknown or bad:
            raise ValueError(f"FileFormat: kinds name unknown columns {sorted(unknown)} or kinds {bad}")

    def kind(self, column: str) -> str:
        return self.kinds.get(column, "int")

    @property
    def multi_sep(self) -> bool:
        return len(self.sep) > 1

    def first_data_line(self) -> int:
        """1-based line number of the first data row."""
        return 2 if self.header else 1


def line_of(row_index: int | np.integer, fmt: FileFormat) -> int:
    """The 1-based line number of data row ``row_index`` (0-based) of a file read by :func:`read_table`.

    Exact because :func:`read_table` rejects empty lines and the formats have no multi-line fields.
    """
    return int(row_index) + fmt.first_data_line()


def _require_file(path: Path, fmt: FileFormat) -> None:
    if not path.is_file():
        hint = f" — {fmt.hint}" if fmt.hint else ""
        raise MissingDataError(f"{path}: file not found{hint}")


def _decoded_text(path: Path, fmt: FileFormat) -> str:
    """The whole file as text, with CRLF line ends normalised (a short file; the error path)."""
    raw = path.read_bytes()
    try:
        text = raw.decode(fmt.encoding)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataFileError(path, line, f"bytes that are not valid {fmt.encoding} (byte {err.start})",
                            fmt.hint) from None
    return text.replace("\r\n", "\n")


_NOT_TEXT = re.compile(rb"([\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3})"
                       rb"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""A UTF-8 multi-byte sequence (group 1), or a control character other than tab, CR, LF."""


def check_text_bytes(path: Path, fmt: FileFormat) -> None:
    """Raise :class:`DataFileError` at the first byte of ``path`` that is no printable character of
    ``fmt.encoding`` text: a control character, or a UTF-8 sequence (the file was re-saved as UTF-8)."""
    raw = path.read_bytes()
    m = _NOT_TEXT.search(raw)
    if m is None:
        return
    line = raw.count(b"\n", 0, m.start()) + 1
    found = m.group(0)
    if m.group(1):
        problem = (f"bytes {found.hex(' ')} are UTF-8 ({found.decode('utf-8', 'replace')!r}), but the file "
                   f"is published as {fmt.encoding} (it was re-saved in another encoding)")
    else:
        problem = f"byte 0x{found.hex()} is a control character, not {fmt.encoding} text"
    raise DataFileError(path, line, problem, fmt.hint)


def _source(path: Path, fmt: FileFormat) -> tuple[Path | io.StringIO, str, int]:
    """What pandas should read: the path itself, or (for a multi-character separator) the text with
    the separator replaced by one character. Returns (source, separator, csv quoting mode)."""
    if not fmt.multi_sep:
        return path, fmt.sep, csv.QUOTE_MINIMAL
    text = _decoded_text(path, fmt)
    return io.StringIO(text.replace(fmt.sep, _UNIT_SEP)), _UNIT_SEP, csv.QUOTE_NONE


def _rows(path: Path, fmt: FileFormat) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every line, with :mod:`csv` (slow; only to diagnose a bad file)."""
    if fmt.multi_sep:
        lines = _decoded_text(path, fmt).replace(fmt.sep, _UNIT_SEP).split("\n")
        if lines and lines[-1] == "":
            lines.pop()             # the newline that ends the last line
        for i, line in enumerate(lines, start=1):
            yield i, line.split(_UNIT_SEP) if line else []
        return
    try:
        with open(path, encoding=fmt.encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=fmt.sep)
            for fields in reader:
                yield reader.line_num, fields
    except UnicodeDecodeError:
        _decoded_text(path, fmt)        # raises DataFileError with the line
        raise


def check_header(path: str | Path, fmt: FileFormat) -> list[str]:
    """Check the first line of a file with a header: returns its column names, raises
    :class:`DataFileError` (line 1) for a missing or unexpected column, or an empty file."""
    path = Path(path)
    _require_file(path, fmt)
    try:
        with open(path, encoding=fmt.encoding, newline="") as fh:
            first = fh.readline()
    except UnicodeDecodeError:
        _decoded_text(path, fmt)
        raise
    first = first.lstrip("\ufeff").rstrip("\r\n")
    if not first:
        raise DataFileError(path, 1, "the file is empty (expected a header line with the columns "
                            f"{', '.join(fmt.columns)})", fmt.hint)
    names = next(csv.reader([first], delimiter=fmt.sep))
    missing = [c for c in fmt.columns if c not in names]
    unexpected = [c for c in names if c not in fmt.columns]
    dup = sorted({c for c in names if names.count(c) > 1})
    if missing or unexpected or dup:
        parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected column(s) {', '.join(unexpected)}"] if unexpected else []) + \
                ([f"repeated column(s) {', '.join(dup)}"] if dup else [])
        raise DataFileError(path, 1, "; ".join(parts) + f" (expected: {','.join(fmt.columns)})", fmt.hint)
    return names


_NO_ROWS_HINT = ("the download is probably incomplete or the file was overwritten; check the file "
                 "(its size, its first lines)")


def _no_rows(path: Path, fmt: FileFormat) -> DataFileError:
    """The error for a file with no data rows (empty, or only its header line)."""
    what = "has no data rows, only its header line" if fmt.header else "is empty (no data rows)"
    hint = "; ".join(h for h in (_NO_ROWS_HINT, fmt.hint) if h)
    return DataFileError(path, None, f"the file {what}", hint)


def _check_value(value: str, kind: str) -> str | None:
    """None when ``value`` parses as ``kind``, else what is wrong with it."""
    if kind == "str":
        return None
    try:
        if kind == "int":
            int(value)
        else:
            float(value)
    except ValueError:
        return f"{value!r} is not {'an integer' if kind == 'int' else 'a number'}"
    return None


def _diagnose(path: Path, fmt: FileFormat, names: list[str], fallback: str) -> DataFileError:
    """Scan the file and describe its first bad line (the slow path, run only after a failure)."""
    start = fmt.first_data_line()
    for line, fields in _rows(path, fmt):
        if line < start:
            continue
        if not fields or fields == [""]:
            return DataFileError(path, line, "empty line", fmt.hint)
        if len(fields) != len(names):
            what = "truncated or malformed row" if len(fields) < len(names) else "unexpected extra field(s)"
            return DataFileError(path, line, f"{len(fields)} fields, expected {len(names)} "
                                 f"({', '.join(names)}): {what}", fmt.hint)
        for name, value in zip(names, fields, strict=True):
            if value == "":
                if name not in fmt.nullable:
                    return DataFileError(path, line, f"empty value in column {name!r}", fmt.hint)
                continue
            problem = _check_value(value, fmt.kind(name))
            if problem:
                return DataFileError(path, line, f"column {name!r}: {problem}", fmt.hint)
    return DataFileError(path, None, f"could not be read ({fallback})", fmt.hint)


def _pandas_dtypes(fmt: FileFormat, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        kind = fmt.kind(name)
        if kind == "str":
            out[name] = "str"
        elif kind == "int" and name not in fmt.nullable:
            out[name] = "int64"
        else:
            out[name] = "float64"
    return out


def _separators_per_line(path: Path, sep: str, chunk_bytes: int = 1 << 24) -> np.ndarray:
    """Number of ``sep`` bytes on each line of ``path`` (a final line without a newline included), read in
    chunks of ``chunk_bytes``. Returns (n_lines,) int64. Only for files where ``sep`` cannot appear
    inside a quoted field (every column numeric)."""
    code, counts = ord(sep), []
    carry, open_line = 0, False         # separators on the line the previous chunks left unfinished
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            b = np.frombuffer(chunk, dtype=np.uint8)                        # (n,) bytes
            seps = np.flatnonzero(b == code)                                # (s,) separator positions
            ends = np.flatnonzero(b == 10)                                  # (k,) newline positions
            if len(ends):
                before = np.searchsorted(seps, ends)                        # (k,) separators before each
                per = np.diff(before, prepend=0)                            # (k,) separators per line
                per[0] += carry
                counts.append(per)
                carry, open_line = len(seps) - int(before[-1]), bool(ends[-1] < len(b) - 1)
            else:
                carry, open_line = carry + len(seps), True
    if open_line:
        counts.append(np.array([carry]))
    return np.concatenate(counts).astype(np.int64) if counts else np.zeros(0, np.int64)


def _check_field_counts(path: Path, fmt: FileFormat, names: list[str]) -> None:
    """With ``usecols``, pandas ignores the columns it does not return, so a row with missing or extra
    fields would pass unnoticed: count every line's fields and raise :class:`DataFileError` (naming the
    first bad line) when one differs from ``names``. Numeric-only single-separator files are counted
    fast; others line by line with :mod:`csv`."""
    if fmt.multi_sep or any(fmt.kind(c) == "str" for c in names):
        for line, fields in _rows(path, fmt):
            if line >= fmt.first_data_line() and len(fields) != len(names):
                raise _diagnose(path, fmt, names, "a row with the wrong number of fields")
        return
    per_line = _separators_per_line(path, fmt.sep)                          # (n_lines,)
    if (per_line[fmt.first_data_line() - 1:] != len(names) - 1).any():
        raise _diagnose(path, fmt, names, "a row with the wrong number of fields")


def read_table(path: str | Path, fmt: FileFormat) -> pd.DataFrame:
    """Read one published file strictly; columns in ``fmt.columns`` order (or ``fmt.usecols``).

    Integer columns come back as int64, nullable integer and float columns as float64 (NaN when
    empty), string columns as pandas strings (``<NA>`` when empty). Raises :class:`MissingDataError`
    or :class:`DataFileError` (naming the file and line) for anything that is not the published format,
    including a file without data rows (every published file has some).
    """
    path = Path(path)
    _require_file(path, fmt)
    names = check_header(path, fmt) if fmt.header else list(fmt.columns)
    if not fmt.header and path.stat().st_size == 0:
        raise _no_rows(path, fmt)
    if fmt.text_only:
        check_text_bytes(path, fmt)
    if fmt.usecols:
        _check_field_counts(path, fmt, names)
    source, sep, quoting = _source(path, fmt)
    usecols = list(fmt.usecols) if fmt.usecols else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(
                source, sep=sep, header=0 if fmt.header else None, names=None if fmt.header else names,
                index_col=False, dtype=_pandas_dtypes(fmt, names), keep_default_na=False, na_values=[""],
                skip_blank_lines=False, quoting=quoting, encoding=fmt.encoding if not fmt.multi_sep else None,
                usecols=usecols, engine="c", encoding_errors="strict",
            )
    except (ValueError, OverflowError, pd.errors.ParserWarning) as err:  # incl. ParserError
        raise _diagnose(path, fmt, names, f"{type(err).__name__}: {err}") from None
    if len(df) == 0:
        raise _no_rows(path, fmt)
    required = [c for c in df.columns if c not in fmt.nullable]
    if required:
        bad = df[required].isna().to_numpy().any(axis=1)
        if bad.any():
            raise _diagnose(path, fmt, names, f"an empty value on data row {int(np.argmax(bad))}")
    return df[list(fmt.usecols or fmt.columns)]


def fail_at(mask: np.ndarray, path: Path, fmt: FileFormat, problem: str, values: np.ndarray) -> None:
    """Raise :class:`DataFileError` at the first row where ``mask`` (n,) bool is True.

    ``problem`` may name the offending value as ``{value}`` (taken from ``values`` (n,)).
    """
    if mask.any():
        i = int(np.argmax(mask))
        raise DataFileError(path, line_of(i, fmt), problem.format(value=values[i]), fmt.hint)


def check_unique(ids: np.ndarray, path: Path, fmt: FileFormat, what: str) -> None:
    """Raise :class:`DataFileError` at the first repeated id of ``ids`` (n,) int64."""
    order = np.argsort(ids, kind="stable")
    dup = np.zeros(ids.size, bool)
    dup[order[1:]] = ids[order[1:]] == ids[order[:-1]]
    fail_at(dup, path, fmt, f"{what} {{value}} appears twice", ids)
