"""Settings shared by every test.

Hypothesis runs derandomised: the same examples on every run and machine, so CI's result does not
depend on luck (a rare failing example found once, like the sampler's in test_sampling.py, becomes a
plain test). Set ``HYPOTHESIS_PROFILE=explore`` to search with fresh random examples locally.

``one_thread``: a test module that trains tiny models asks for it with
``pytestmark = pytest.mark.usefixtures("one_thread")``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from ytrec_lib.threads import limit_threads

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """torch (and Faiss, when loaded) on one thread for the module: tiny models train faster without
    thread hand-offs, one thread makes training bit-reproducible, and the machine is shared."""
    with limit_threads(1, blas=False):
        yield
