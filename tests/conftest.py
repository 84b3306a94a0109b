"""Settings shared by every test.

Hypothesis runs derandomised: the same examples on every run and machine, so CI's result does not
depend on luck (a rare failing example found once, like the sampler's in test_sampling.py, becomes a
plain test). Set ``HYPOTHESIS_PROFILE=explore`` to search with fresh random examples locally.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
