"""Keeping freed memory for reuse: :func:`keep_freed_memory`, called when ``ytrec_lib`` is imported.

A training step allocates and frees several (batch, n_videos) float32 tensors (the logits, the softmax
and their gradients: 6 MB each at a batch of 512 and 3,000 videos). glibc's malloc serves blocks that
large with ``mmap`` and hands them back to the kernel when they are freed, so every step maps fresh
pages, and the kernel zeroes each one on its first touch. With the thresholds raised the blocks stay in
the process's heap and the next step reuses them: the same arithmetic, bit for bit, with fewer page
faults. glibc raises its thresholds by itself after large blocks are freed, so the gain in a long
process is small: on the 2-core machine one seed of 03c's §3.4 lesson (two models, 35 epochs) took 30.1
and 28.1 s against 30.2 and 31.7 s without (alternating fresh processes; 34,000-36,000 page faults
against 630,000-950,000), and the whole of notebook 03c 432 s against 456 s, with equal results.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
"""mallopt's parameter number: free memory at the top of the heap above this is returned to the kernel."""
M_MMAP_THRESHOLD = -3
"""mallopt's parameter number: requests of at least this many bytes are served by ``mmap``."""
MMAP_THRESHOLD = 256 << 20
"""Bytes: blocks below this come from the heap (every tensor of a training step at ``small`` included)."""
TRIM_THRESHOLD = 1 << 30
"""Bytes of free heap top kept for reuse before malloc returns memory to the kernel."""


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Raise glibc malloc's mmap and trim thresholds (bytes) for this process. Returns whether they were
    set: False where the C library is not glibc (macOS, musl), which then behaves as before."""
    if mmap_threshold < 0 or trim_threshold < 0:
        raise ValueError(f"thresholds must be >= 0 bytes, got {mmap_threshold} and {trim_threshold}")
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded, the C library's among them
        mallopt, _ = libc.mallopt, libc.gnu_get_libc_version  # glibc only: its parameter numbers
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(M_TRIM_THRESHOLD, int(trim_threshold)))
