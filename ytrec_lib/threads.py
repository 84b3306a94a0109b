"""One way to run a block of code on a fixed number of threads: :func:`limit_threads`.

Three thread pools matter here: torch's intra-op pool (training and scoring the models), Faiss's
OpenMP pool (the approximate indexes) and the BLAS / OpenMP pools of NumPy and SciPy (the exact
scan). Tiny models and single-query searches run faster on one thread, timings are comparable only
at a fixed thread count, and the development machine is shared, so the library and the tests limit
them explicitly::

    with limit_threads(1):                 # torch, Faiss and BLAS on one thread, restored after
        ...
    with limit_threads(4, blas=False):     # torch and Faiss only: cheap enough for every request

torch and Faiss are limited only when something has already imported them: this module imports
neither, so the serving code (which must not load torch) can use it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def limit_threads(n: int | None, *, blas: bool = True) -> Iterator[None]:
    """Run the block with at most ``n`` threads, then restore every setting it changed.

    Limits torch's intra-op threads (when torch is imported), Faiss's OpenMP threads (when faiss is
    imported) and, with ``blas=True``, every BLAS and OpenMP library loaded in the process
    (threadpoolctl; that inspection costs a few milliseconds, so per-request code passes
    ``blas=False``). ``n=None``: no limit, the block runs as it is. Raises ValueError for ``n < 1``.
    """
    if n is None:
        yield
        return
    n = int(n)
    if n < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n}")
    torch, faiss = sys.modules.get("torch"), sys.modules.get("faiss")
    torch_before = torch.get_num_threads() if torch is not None else None
    faiss_before = faiss.omp_get_max_threads() if faiss is not None else None
    try:
        if torch is not None:
            torch.set_num_threads(n)
        if faiss is not None:
            faiss.omp_set_num_threads(n)
        if blas:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=n):
                yield
        else:
            yield
    finally:
        if faiss is not None:
            faiss.omp_set_num_threads(faiss_before)
        if torch is not None:
            torch.set_num_threads(torch_before)


__all__ = ["limit_threads"]
