"""ytrec_lib: the tested package under the ytrec notebooks (YouTube DNN recommender, RecSys 2016).

Importing it raises glibc malloc's thresholds (:func:`ytrec_lib.memory.keep_freed_memory`), so the large
tensors of each training step reuse freed memory instead of fresh pages.
"""

from ytrec_lib.memory import keep_freed_memory

__version__ = "0.1.0"
KEPT_FREED_MEMORY = keep_freed_memory()
"""Whether the thresholds were raised (False off glibc)."""
