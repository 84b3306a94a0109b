"""The data layer: the simulated UGC world, named datasets with a cache, and the splits.

>>> from ytrec_lib.data import datasets
>>> ds = datasets.load("tiny", seed=0, progress=False)   # doctest: +SKIP
"""

from . import datasets, presets, simulator
from .datasets import Dataset, known_presets, load

__all__ = ["datasets", "presets", "simulator", "Dataset", "known_presets", "load"]
