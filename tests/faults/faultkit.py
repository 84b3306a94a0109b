"""The shared pieces of the fault tests: the write paths, their small configurations, the damage
kinds and the child-process runner. Imported by the tests and by ``driver.py`` (the child).

A *write path* is one name of :data:`WRITERS`; :func:`write` runs its library entry point with the
settings below, in whatever process calls it, against the folders the ``YTREC_*`` variables name.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("driver.py")

PRESET, SEED = "tiny", 0
CANDIDATE = {"epochs": 1, "tower": [16], "n_negatives": 50, "dim": 8, "init": "random"}
RANKER = {"epochs": 1, "hidden": [8], "dim": 8, "max_train_impressions": 4000}
ITEM2VEC = {"kind": "videos", "dim": 8, "seed": 0, "epochs": 1}
NOTEBOOK = "nb_faults"          # the notebook stem results and HTML pages are written for
PAGE_TEXT = "a page written for the fault tests"

WRITERS = ("dataset", "candidate", "item2vec", "ranker", "store", "write_store", "results", "html_page",
           "html_index")


# ----------------------------------------------------------------------------------------------------
# folders of one test's workspace
# ----------------------------------------------------------------------------------------------------


def folders(root: Path) -> dict[str, Path]:
    """The data, build and results folders of a workspace rooted at ``root``."""
    return {"data": root / "data", "build": root / "build", "results": root / "build" / "results"}


def child_env(root: Path) -> dict[str, str]:
    """The environment of a child writing into the workspace ``root`` (this worktree's package first)."""
    env = {k: v for k, v in os.environ.items() if k not in ("YTREC_NOTEBOOK", "JPY_SESSION_NAME")}
    f = folders(root)
    env.update(YTREC_DATA_DIR=str(f["data"]), YTREC_BUILD_DIR=str(f["build"]),
               YTREC_RESULTS_DIR=str(f["results"]), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return env


def store_path(root: Path) -> Path:
    """The embedding store file the ``store`` and ``write_store`` paths write."""
    return folders(root)["data"] / "system" / "store.sqlite"


# ----------------------------------------------------------------------------------------------------
# the write paths
# ----------------------------------------------------------------------------------------------------


def vectors(version: int) -> tuple[np.ndarray, np.ndarray]:
    """Users (40, 6) and videos (70, 6) float32 of a made-up model ``version`` (seeded by it)."""
    rng = np.random.default_rng(100 + version)
    return rng.standard_normal((40, 6)).astype(np.float32), rng.standard_normal((70, 6)).astype(np.float32)


def target(writer: str, root: Path) -> Path:
    """The file or folder ``writer`` puts in place (for the model writers: ``models/<prefix>-*``)."""
    from ytrec_lib.data import datasets

    f = folders(root)
    models = f["data"] / "models"
    return {
        "dataset": f["data"] / datasets.cache_path(PRESET, SEED).name,
        "candidate": models / "candidate-*.pt", "item2vec": models / "item2vec-*.npz",
        "ranker": models / "ranker-*.pt",
        "store": store_path(root), "write_store": store_path(root),
        "results": f["results"] / f"{NOTEBOOK}.json",
        "html_page": f["build"] / "html" / f"{NOTEBOOK}.html", "html_index": f["build"] / "index.html",
    }[writer]


def write(writer: str, root: Path) -> Any:
    """Run ``writer``'s library entry point on the workspace ``root``; return what it returns."""
    f = folders(root)
    if writer in ("candidate", "item2vec", "ranker"):
        import torch

        torch.set_num_threads(1)
    if writer == "dataset":
        from ytrec_lib.data import datasets

        return datasets.load(PRESET, SEED, progress=False)
    if writer == "candidate":
        from ytrec_lib import pipeline

        return pipeline.candidate_model(PRESET, SEED, progress=False, **CANDIDATE)
    if writer == "item2vec":
        from ytrec_lib import pipeline
        from ytrec_lib.data import datasets

        return pipeline.pretrained_embeddings(datasets.load(PRESET, SEED, progress=False), **ITEM2VEC)
    if writer == "ranker":
        from ytrec_lib import pipeline
        from ytrec_lib.data import datasets

        ds = datasets.load(PRESET, SEED, progress=False)
        return pipeline.ranker(ds, PRESET, SEED, progress=False, **RANKER)
    if writer == "store":               # a second version into a store that holds version "v1"
        from ytrec_lib.serving.store import EmbeddingStore

        with EmbeddingStore(store_path(root)) as store:
            store.write_version("v2", *vectors(2), meta={"n": 2})
        return None
    if writer == "write_store":         # a new store file over the one written from vectors(1)
        from ytrec_lib.serving import system

        return system.write_store(store_path(root), *vectors(2), {"n": 2})
    if writer == "results":             # a second key into a results file that holds "first"
        from ytrec_lib import report

        return report.record("second", 2, notebook=NOTEBOOK)
    if writer == "html_page":
        from ytrec_lib.course import html_report

        return html_report.write_notebook_page(f["build"], NOTEBOOK)
    if writer == "html_index":
        from ytrec_lib.course import html_report

        return html_report.write_index(f["build"])
    raise ValueError(f"unknown write path {writer!r}; use one of {WRITERS}")


# ----------------------------------------------------------------------------------------------------
# the child
# ----------------------------------------------------------------------------------------------------


def run_killed(writer: str, root: Path, mode: str) -> subprocess.CompletedProcess:
    """Run ``writer`` in a child that SIGKILLs itself at the point ``mode`` names (see driver.py)."""
    spec = {"writer": writer, "root": str(root), "mode": mode}
    return subprocess.run([sys.executable, str(DRIVER), json.dumps(spec)], env=child_env(root), cwd=root,
                          capture_output=True, text=True, timeout=180)


# ----------------------------------------------------------------------------------------------------
# a workspace's files
# ----------------------------------------------------------------------------------------------------


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: relative path -> sha256 of a file's bytes, or "dir"."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def hidden(rel: str) -> bool:
    """True for a path with a component that starts with "." (a temporary name)."""
    return any(part.startswith(".") for part in rel.split("/"))


def top_hidden(rels: set[str]) -> set[str]:
    """The outermost hidden entries among ``rels`` (a temporary folder, not each file inside it)."""
    out = set()
    for rel in rels:
        parts = rel.split("/")
        i = next((i for i, part in enumerate(parts) if part.startswith(".")), None)
        if i is not None:
            out.add("/".join(parts[: i + 1]))
    return out


# ----------------------------------------------------------------------------------------------------
# damage
# ----------------------------------------------------------------------------------------------------


class Payload:
    """Unpickling this runs ``open(marker, "w")``: a file appears at ``marker`` if a loader ran it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def truncate(path: Path) -> None:
    """Keep the first half of the file's bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip(path: Path, n: int = 16) -> None:
    """Invert ``n`` bytes in the middle of the file."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(mid + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def npz_payload(path: Path, marker: Path) -> None:
    """Rewrite the ``.npz`` with its first array replaced by an object array holding a :class:`Payload`."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    first = next(iter(arrays))
    arrays[first] = np.array([Payload(marker)], dtype=object)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def torch_payload(path: Path, marker: Path) -> None:
    """A torch checkpoint (zip) whose dict holds a :class:`Payload` beside plausible keys."""
    import torch

    torch.save({"format": 1, "state_dict": {"weight": Payload(marker)}, "spec": {}, "extra": {}}, path)


def raw_pickle(path: Path, marker: Path) -> None:
    """The file replaced by a bare pickle of a :class:`Payload` (what ``pickle.load`` would run)."""
    path.write_bytes(pickle.dumps(Payload(marker)))


# ----------------------------------------------------------------------------------------------------
# equality with the clean reference
# ----------------------------------------------------------------------------------------------------


def assert_same_dataset(a: Any, b: Any) -> None:
    """Same four tables, meta and hidden world arrays."""
    import pandas as pd

    for table in ("users", "videos", "impressions", "searches"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    assert a.meta == b.meta
    wa, wb = a.truth.world.arrays(), b.truth.world.arrays()
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def assert_same_state(a: dict, b: dict) -> None:
    """Two torch state dicts hold the same tensors, bit for bit."""
    import torch

    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"weights {k!r} differ"
