"""Summary statistics over repeated measurements (seeds, users, rows): the mean and its standard error.

The studies' "mean ± SE" comes from here, so they share one convention: the sample standard deviation
(``ddof=1``) over ``sqrt(n)`` (the same as pandas' ``sem``, which ``data.describe.mechanism_strengths``
uses on its grouped frame). Only the value for a single measurement
differs between callers (no spread to estimate from), so it is a parameter, ``single``. NaN values are
not filtered: they propagate into the mean and the SE, as in NumPy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _as_1d(values: ArrayLike, caller: str) -> np.ndarray:
    """``values`` as a (n,) float64 array, n >= 1; ``ValueError`` for empty or non-1-D input."""
    v = np.asarray(values, dtype=np.float64)
    need = f"{caller}: need a non-empty 1-D sequence of numbers (one per seed/row)"
    if v.ndim != 1:
        raise ValueError(f"{need}, got shape {v.shape}; flatten it or select one column first")
    if v.size == 0:
        raise ValueError(f"{need}, got an empty one; did a filter leave no seeds/rows?")
    return v


def standard_error(values: ArrayLike, single: float = 0.0) -> float:
    """Standard error of the mean of ``values`` (n,) (any real dtype, read as float64): the sample
    standard deviation (``ddof=1``) divided by ``sqrt(n)``; ``single`` when n == 1.

    ``ValueError`` for an empty or non-1-D ``values``.
    """
    v = _as_1d(values, "standard_error")
    return float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float(single)


def mean_se(values: ArrayLike, single: float = 0.0) -> tuple[float, float]:
    """``(mean, standard error)`` of ``values`` (n,) (any real dtype, read as float64), both Python
    floats; the SE is as in :func:`standard_error` (``single`` when n == 1).

    ``ValueError`` for an empty or non-1-D ``values``.
    """
    v = _as_1d(values, "mean_se")
    return float(v.mean()), standard_error(v, single)


__all__ = ["mean_se", "standard_error"]
