"""The cost of an all-reduce, measured: real ``torch.distributed`` (gloo) between processes on this machine.

:func:`time_allreduce` starts ``nprocs`` processes and times the all-reduce (sum) of float32 tensors
of a few sizes; :func:`measure_allreduce` then fits :func:`fit_latency_bandwidth`,
``seconds = latency + bytes * seconds_per_byte``: what one synchronous data-parallel step pays to
average its gradients. The processes are started by :func:`ytrec_lib.processes.launch`; they import
only torch, that module and this one (a few seconds each on a busy machine), not the rest of the package.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ytrec_lib import processes

DEFAULT_SIZES: tuple[int, ...] = (4 * 2**10, 64 * 2**10, 2**20, 4 * 2**20, 16 * 2**20)
"""Bytes of the float32 tensors :func:`measure_allreduce` all-reduces: 4 KiB to 16 MiB."""


# ----------------------------------------------------------------------------- all-reduce
def _allreduce_worker(world: processes.World, sizes: list[int], repeats: int,
                      warmup: int) -> tuple[dict[int, list[float]], bool]:
    """One process of :func:`time_allreduce` (run by :func:`ytrec_lib.processes.launch`): time
    ``repeats`` all-reduces of each size (after ``warmup`` untimed ones, a barrier before each), check
    every result is the sum over the ranks; returns ``({bytes: [seconds]}, all_sums_correct)``."""
    import torch
    import torch.distributed as dist

    times: dict[int, list[float]] = {}
    correct = True
    for size in sizes:
        t = torch.empty(size // 4, dtype=torch.float32)  # (size / 4,) float32
        for i in range(warmup + repeats):
            t.fill_(float(world.rank + 1))
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            dt = time.perf_counter() - t0
            correct &= bool((t == world.size * (world.size + 1) / 2).all())  # 1 + 2 + ... + size
            if i >= warmup:
                times.setdefault(size, []).append(dt)
    return times, correct


def fit_latency_bandwidth(n_bytes: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """``(latency_s, seconds_per_byte)`` of the line ``seconds = latency + n_bytes * seconds_per_byte``,
    fitted by least squares on the relative error (each point divided by its time, so the small sizes
    set the latency and the large ones the slope). ``n_bytes``, ``seconds``: (n,) with n >= 2 distinct
    sizes. A negative fitted latency (noise) is clipped to 0; the slope must come out positive."""
    x, y = np.asarray(n_bytes, dtype=np.float64), np.asarray(seconds, dtype=np.float64)  # (n,), (n,)
    if x.shape != y.shape or len(np.unique(x)) < 2:
        raise ValueError(f"fit_latency_bandwidth: need (n,) sizes and times with at least 2 distinct sizes, "
                         f"got shapes {x.shape} and {y.shape}")
    if (y <= 0).any():
        raise ValueError("fit_latency_bandwidth: every time must be positive")
    a = np.stack([np.ones_like(x), x], axis=1) / y[:, None]  # (n, 2) rows scaled by 1 / t
    (latency, per_byte), *_ = np.linalg.lstsq(a, np.ones_like(y), rcond=None)
    if per_byte <= 0:
        raise ValueError(f"fit_latency_bandwidth: the time does not grow with the size (slope {per_byte:.3g} "
                         "s/byte); measure larger sizes or more repeats")
    return max(float(latency), 0.0), float(per_byte)


def time_allreduce(sizes: tuple[int, ...] = DEFAULT_SIZES, nprocs: int = 2, repeats: int = 5,
                   warmup: int = 2) -> dict[str, Any]:
    """Time ``torch.distributed.all_reduce`` (sum, gloo) of float32 tensors of each
    of ``sizes`` bytes between ``nprocs`` processes started here, ``repeats`` times each.

    Returns ``{"nprocs", "sizes_bytes": [...] (sorted), "times_s": [[...] per size], "median_s": [...],
    "sums_correct": bool}`` (every all-reduced tensor equalled the sum over the ranks). Raises
    ``ValueError`` for bad arguments, ``RuntimeError`` when torch.distributed has no gloo backend,
    :class:`~ytrec_lib.processes.DistributedJobFailed` when a worker fails.
    """
    import torch.distributed as dist

    sizes = sorted({int(s) for s in sizes})
    if len(sizes) < 2 or sizes[0] < 4 or any(s % 4 for s in sizes):
        raise ValueError(f"measure_allreduce: give at least 2 distinct sizes, multiples of 4 bytes; got "
                         f"{sizes}")
    if nprocs < 2 or repeats < 1 or warmup < 0:
        raise ValueError(f"measure_allreduce: need nprocs >= 2, repeats >= 1, warmup >= 0; got {nprocs}, "
                         f"{repeats}, {warmup}")
    if not (dist.is_available() and dist.is_gloo_available()):
        raise RuntimeError("measure_allreduce: this torch build has no torch.distributed gloo backend; "
                           "install the CPU build pinned in requirements.lock")
    times, correct = processes.launch(_allreduce_worker, nprocs, sizes, repeats, warmup)
    return {"nprocs": nprocs, "sizes_bytes": sizes, "times_s": [times[s] for s in sizes],
            "median_s": [float(np.median(times[s])) for s in sizes], "sums_correct": correct}


def measure_allreduce(sizes: tuple[int, ...] = DEFAULT_SIZES, nprocs: int = 2, repeats: int = 5,
                      warmup: int = 2) -> dict[str, Any]:
    """:func:`time_allreduce`, then :func:`fit_latency_bandwidth` through the medians.

    Returns its dict plus ``"latency_s", "s_per_byte", "bandwidth_GBps"`` (bandwidth = 1 / s_per_byte).
    Use sizes that span several orders of magnitude (the default, 4 KiB to 16 MiB): with sizes close
    together, a noisy machine can make the larger one time faster and the fit refuses (``ValueError``).
    """
    r = time_allreduce(sizes, nprocs, repeats, warmup)
    latency, per_byte = fit_latency_bandwidth(np.array(r["sizes_bytes"]), np.array(r["median_s"]))
    return {**r, "latency_s": latency, "s_per_byte": per_byte, "bandwidth_GBps": 1e-9 / per_byte}


__all__ = ["DEFAULT_SIZES", "fit_latency_bandwidth", "measure_allreduce", "time_allreduce"]
