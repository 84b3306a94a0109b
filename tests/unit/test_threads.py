"""Tests of ytrec_lib.threads: one thread limiter for torch, Faiss and BLAS, restored afterwards."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from threadpoolctl import threadpool_info

from ytrec_lib.serving import retrieval
from ytrec_lib.threads import limit_threads

faiss = retrieval.faiss  # imported through retrieval, which sets passive OpenMP waiting first


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info()]


def test_limit_threads_sets_and_restores_torch_faiss_and_blas():
    before = (torch.get_num_threads(), faiss.omp_get_max_threads(), _blas_threads())
    with limit_threads(1):
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
        assert set(_blas_threads()) == {1}
    assert (torch.get_num_threads(), faiss.omp_get_max_threads(), _blas_threads()) == before


def test_without_blas_only_torch_and_faiss_change():
    torch_before, faiss_before = torch.get_num_threads(), faiss.omp_get_max_threads()
    with limit_threads(1, blas=False):
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
    assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == (torch_before, faiss_before)


def test_restores_after_an_exception_and_none_changes_nothing():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"):
        with limit_threads(1):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with limit_threads(None):
        assert torch.get_num_threads() == before


def test_bad_counts_are_refused():
    for bad in (0, -2):
        with pytest.raises(ValueError, match="positive"):
            with limit_threads(bad):
                pass


def test_it_imports_neither_torch_nor_faiss():
    code = ("import sys\nfrom ytrec_lib.threads import limit_threads\nwith limit_threads(1):\n    pass\n"
            "print('torch' in sys.modules, 'faiss' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
