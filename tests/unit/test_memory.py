"""ytrec_lib.memory: freed training-sized blocks are reused instead of mapped afresh (counted in page
faults, in fresh interpreters: the setting is per process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ytrec_lib import memory

FAULTS = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from ytrec_lib.memory import keep_freed_memory
    assert keep_freed_memory()
def step():  # a training step's (512, 3000) float32 blocks, 6 MB each: four alive at once, then freed
    blocks = [np.ones(1_536_000, dtype=np.float32) for _ in range(4)]
    del blocks
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt's thresholds are glibc's")
def test_kept_blocks_are_reused_without_page_faults() -> None:
    default, kept = _faults("default"), _faults("keep")
    assert default > 20 * 1500, default  # blocks handed back and mapped afresh: 1,500 faults of 4 KiB each
    assert kept < default / 20, (kept, default)


def test_importing_the_package_sets_it_and_bad_thresholds_are_refused() -> None:
    import ytrec_lib

    assert ytrec_lib.KEPT_FREED_MEMORY is memory.keep_freed_memory()
    with pytest.raises(ValueError, match="thresholds must be >= 0 bytes"):
        memory.keep_freed_memory(-1, 0)
