"""Serving the candidate model without the network: stored embeddings + exact inner-product search.

The lecture's serving idea (Covington et al. 2016, §3.2): the softmax layer's weights are an m x n
matrix whose columns are the video embeddings and the last ReLU layer is the user embedding, so at
serving time no network runs. A request is three steps, each timed here:

1. **lookup** -- the user's embedding from the embedding store
   (:class:`ytrec_lib.serving.store.EmbeddingStore`);
2. **score** -- its inner product with every stored video embedding (exact, NumPy);
3. **select** -- the top-k videos by score (:func:`ytrec_lib.metrics.top_k`: best first, ties to the
   lower video id, the same rule the model uses).

With the bias folded in (user ``[u, 1]``, video ``[v, b]``) the scores are the model's logits, so the
served top-k equals the model's top-k by softmax probability. To make that hold *bit for bit*, the
scores are float64 sums accumulated coordinate by coordinate in index order, the same sequence of
IEEE operations as ``CandidateModel.logits64`` (a float32 x float32 product is exact in float64;
only the order of the additions could differ, and it is fixed here). Equal vectors therefore get
equal scores and ties are broken by id, never by rounding noise. Steps 2 and 3 are
:class:`ytrec_lib.serving.retrieval.ExactIndex` (its ``scores`` and ``select``), the exact index of
the retrieval module.

This module imports no torch (a serving box needs NumPy, SciPy, the standard library's sqlite3 and
the retrieval module's Faiss and scikit-learn); ``tests/unit/test_serving.py`` checks that in a
fresh interpreter. Approximate search (Faiss, HNSW, ...) replaces steps 2-3 in notebook 05; this is
the exact reference.

Example::

    with EmbeddingStore("build/store.sqlite") as store:
        server = StoreServer(store)                 # reads every video vector of the active version once
        served = server.recommend(42, k=100)        # Served(video_ids (100,), lookup_ms, score_ms, ...)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ytrec_lib.progress import tqdm
from ytrec_lib.serving.retrieval import ExactIndex, InvalidIdError, ordered_inner_products
from ytrec_lib.serving.store import EmbeddingStore

STEPS = ("lookup_ms", "score_ms", "select_ms", "total_ms")
"""The timed steps of one request, in milliseconds (``total_ms`` = their sum)."""


# ----------------------------------------------------------------------------------------------------
# Id checks shared by every serving entry point
# ----------------------------------------------------------------------------------------------------


def _valid_range(kind: str, n: int | None) -> str:
    if n is None:
        return f"give an integer {kind} id"
    return f"valid {kind} ids are 0..{n - 1}" if n > 0 else f"there are no {kind}s"


def _id_problem(value: Any, kind: str, n: int | None, where: str) -> str | None:
    """What is wrong with one id (None when it is an integer in ``0..n-1``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return (f"{kind} id {value!r} is not an integer (it is a {type(value).__name__}); "
                f"{_valid_range(kind, n)}")
    if n is not None and not 0 <= int(value) < n:
        has = f"{kind}s 0..{n - 1}" if n > 0 else f"no {kind}s"
        return f"{kind} id {int(value)} is out of range: {where} has {has}"
    return None


def check_id(value: Any, kind: str = "user", n: int | None = None, where: str = "the store") -> int:
    """``value`` as an int, when it is an integer (a Python ``int`` or NumPy integer, never a bool, a
    float such as 3.0 or a string) in ``0..n-1`` (``n=None``: any integer).

    ``kind`` (``"user"``, ``"video"``) and ``where`` (``"this system"``) word the error. Raises
    :class:`InvalidIdError` naming the id and the valid range.
    """
    problem = _id_problem(value, kind, n, where)
    if problem:
        raise InvalidIdError(problem)
    return int(value)


def check_ids(values: Any, kind: str = "user", n: int | None = None, where: str = "the store") -> np.ndarray:
    """Many ids checked as :func:`check_id`, as a whole: (k,) int64 (``values`` flattened).

    An integer NumPy array is checked in one vectorised step; anything else id by id (so a ``True``
    or ``3.7`` in a list is caught). Raises :class:`InvalidIdError` naming the first bad id and its
    position.
    """
    if hasattr(values, "dtype") and not isinstance(values, np.ndarray):  # a pandas Series / Index
        values = np.asarray(values)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        ids = values.ravel()
        bad = np.flatnonzero((ids < 0) | (ids >= n)) if n is not None else np.zeros(0, np.int64)
        if len(bad):
            i = int(bad[0])
            raise InvalidIdError(f"{kind} ids: the first bad one, at position {i} (of {len(bad)} bad): "
                                 f"{_id_problem(ids[i], kind, n, where)}")
        return ids.astype(np.int64)
    if isinstance(values, (str, bytes)):
        raise InvalidIdError(f"{kind} ids must be a sequence of integer ids, got the string {values!r}")
    items = np.asarray(values, dtype=object).ravel()
    for i, value in enumerate(items):
        problem = _id_problem(value, kind, n, where)
        if problem:
            raise InvalidIdError(f"{kind} ids: the first bad one, at position {i}: {problem}")
    return np.array([int(v) for v in items], dtype=np.int64)


# ----------------------------------------------------------------------------------------------------
# Serving from the embedding store
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """One request's answer: ``video_ids`` (k,) int64 best first, and the milliseconds of each step."""

    user_id: int
    video_ids: np.ndarray
    lookup_ms: float
    score_ms: float
    select_ms: float

    @property
    def total_ms(self) -> float:
        """Store lookup + exact search (scoring and top-k selection), in milliseconds."""
        return self.lookup_ms + self.score_ms + self.select_ms


class StoreServer:
    """Recommends from an :class:`EmbeddingStore` version: user vector -> exact search -> top-k.

    On construction the video matrix of ``version`` (default: the active one) is read once, in one
    snapshot, and kept in memory as an :class:`ExactIndex` (``load_ms`` says how long that took).
    Each request then reads the user's vector *of the same version*, so a concurrent writer that
    activates a new version never mixes a new user vector with old video vectors.

    Args:
        store: an open embedding store (one object per thread or process).
        version: the model version to serve; ``None`` for the active one at construction time.
    """

    def __init__(self, store: EmbeddingStore, version: str | None = None) -> None:
        t0 = time.perf_counter()
        with store.snapshot():
            self.version = version if version is not None else store.active_version()
            if self.version is None:
                raise KeyError(f"the store {store.path!r} has no versions yet; write the embeddings first")
            video_ids, videos = store.get_videos(version=self.version)  # (n,), (n, d) float32
        self.index = ExactIndex(videos, video_ids)
        self.index.vectors_t  # noqa: B018 (the float64 copy scoring reads, made now: load_ms counts it)
        self.store = store
        self.load_ms = 1e3 * (time.perf_counter() - t0)

    @property
    def dim(self) -> int:
        return self.index.dim

    def user_vector(self, user_id: int) -> np.ndarray:
        """The stored embedding of ``user_id`` in the served version: (d,) float32.

        Raises :class:`InvalidIdError` (a ValueError and a KeyError) for an id that is not an integer
        or not in the served version.
        """
        uid = check_id(user_id, "user")
        try:
            return self.store.get_user(uid, self.version, expect_dim=self.dim)
        except KeyError as err:
            raise InvalidIdError(err.args[0] if err.args else str(err)) from None

    def check_users(self, user_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """``user_ids`` as (n,) int64 when every one is an integer in the served version; else
        :class:`InvalidIdError` naming the first bad one (one batched store read)."""
        users = check_ids(user_ids, "user")
        if len(users):
            try:
                self.store.get_users(users, self.version, expect_dim=self.dim)
            except KeyError as err:
                raise InvalidIdError(err.args[0] if err.args else str(err)) from None
        return users

    def recommend(self, user_id: int, k: int, exclude: Sequence[int] | np.ndarray | None = None) -> Served:
        """Top-``k`` videos for one user, each step timed. ``exclude``: integer video ids never to
        return (ids the index does not hold are ignored). Raises :class:`InvalidIdError` for a bad
        user id (see :meth:`user_vector`)."""
        t0 = time.perf_counter()
        u = self.user_vector(user_id)  # (d,) float32
        t1 = time.perf_counter()
        scores = self.index.scores(u[None, :])  # (1, n) float64
        t2 = time.perf_counter()
        ids = self.index.select(scores, k, None if exclude is None else [exclude])[0]  # (k,)
        t3 = time.perf_counter()
        return Served(int(user_id), ids, 1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2))

    def recommend_many(
        self,
        user_ids: Sequence[int] | np.ndarray,
        k: int,
        exclude: Sequence[Any] | None = None,
        progress: bool = True,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Serve each user as its own request (one at a time, as a server would).

        Returns ``(video_ids (n, k) int64, timings)`` with ``timings[step]`` (n,) float64 ms for each
        step of :data:`STEPS`. ``exclude``: one id array per user, or None. Every user id is checked
        before the first request (:meth:`check_users`).
        """
        users = self.check_users(user_ids)
        if exclude is not None and len(exclude) != len(users):
            raise ValueError(f"exclude must hold one id array per user ({len(users)}), got {len(exclude)}")
        out = np.full((len(users), min(int(k), len(self.index))), -1, dtype=np.int64)  # (n, k)
        timings = {step: np.empty(len(users)) for step in STEPS}
        for i in tqdm(range(len(users)), desc="serve", disable=not progress or len(users) < 1000):
            served = self.recommend(int(users[i]), k, None if exclude is None else exclude[i])
            out[i] = served.video_ids
            for step in STEPS:
                timings[step][i] = getattr(served, step)
        return out, timings


def timing_summary(timings: dict[str, np.ndarray], percentiles: Sequence[float] = (50, 90, 99)) -> dict:
    """Percentiles of each step's milliseconds: ``{step: {"p50": ms, "p90": ms, ...}}``."""
    if not timings:
        raise ValueError("timing_summary: no timings given")
    return {step: {f"p{p:g}": float(np.percentile(np.asarray(ms, dtype=np.float64), p)) for p in percentiles}
            for step, ms in timings.items()}


def same_sets(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether each row of two (n, k) id arrays holds the same set of ids: (n,) bool (order ignored)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"same_sets: need two (n, k) arrays of the same shape, got {a.shape} and {b.shape}")
    return (np.sort(a, axis=1) == np.sort(b, axis=1)).all(axis=1)


# ----------------------------------------------------------------------------------------------------
# Serving in a fresh process (notebook 04: no torch imported)
# ----------------------------------------------------------------------------------------------------

_FRESH_SCRIPT = """
import json, sys
import numpy as np
from ytrec_lib.serving.server import StoreServer
from ytrec_lib.serving.store import EmbeddingStore
users = np.load({users!r})
with EmbeddingStore({store!r}) as s:
    server = StoreServer(s, version={version!r})
    ids, ms = server.recommend_many(users, {k}, progress=False)
np.save({out!r}, ids)
print(json.dumps({{"torch_imported": "torch" in sys.modules, "p50_ms": float(np.median(ms["total_ms"]))}}))
"""


def serve_in_fresh_process(
    store_path: str | os.PathLike,
    version: str,
    user_ids: Sequence[int] | np.ndarray,
    k: int,
    timeout: float = 600.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Serve ``user_ids`` from ``version`` of the store at ``store_path`` in a new Python interpreter.

    The child imports only this module and the store, builds a :class:`StoreServer` and answers one
    request per user (:meth:`StoreServer.recommend_many`). Returns ``(video_ids (n, k) int64, info)``
    with ``info = {"torch_imported": bool, "p50_ms": float}``: whether torch ended up in the child's
    ``sys.modules``, and its median request time. Raises RuntimeError with the child's stderr if it fails.
    """
    with tempfile.TemporaryDirectory(prefix="ytrec-serve-") as tmp:
        users_file, out_file = Path(tmp) / "users.npy", Path(tmp) / "served.npy"
        np.save(users_file, np.asarray(user_ids))
        script = _FRESH_SCRIPT.format(users=str(users_file), store=str(store_path), version=version,
                                      k=int(k), out=str(out_file))
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"the serving process failed:\n{proc.stderr[-2000:]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        return np.load(out_file), info


__all__ = ["STEPS", "InvalidIdError", "check_id", "check_ids", "ordered_inner_products", "ExactIndex",
           "Served", "StoreServer", "timing_summary", "same_sets", "serve_in_fresh_process"]
