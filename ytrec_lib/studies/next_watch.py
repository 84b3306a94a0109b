"""A preset's next-watch training examples and an untrained candidate model, for the timing studies.

Light on imports (the data layer, the features, the model; not the pipeline, whose serving layer
costs a new process seconds): :mod:`ytrec_lib.distributed` builds the data in each process it starts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ytrec_lib.data import datasets, splits
from ytrec_lib.features import FeatureBuilder, feature_set
from ytrec_lib.models import candidate as C


def training_data(preset: str, seed: int, cfg: Any) -> dict[str, Any]:
    """``preset``'s next-watch training and validation examples with the feature spec of ``cfg`` (a
    :class:`ytrec_lib.pipeline.CandidateConfig`, or any object with its fields) and that model, untrained,
    with random input tables: ``{"train", "train_labels", "valid", "valid_labels", "model"}`` (labels
    (n,) int64); ``cfg.max_train_examples`` keeps a seeded subset, as the pipeline does."""
    ds = datasets.load(preset, seed=seed, progress=False)
    split = splits.next_watch_split(ds, seed=seed)
    spec = feature_set(cfg.features, age_transforms=cfg.age_transforms, max_bag=cfg.max_bag)
    spec = spec if cfg.example_age is None else replace(spec, example_age=bool(cfg.example_age))
    builder = FeatureBuilder.from_dataset(ds, spec, window=(0.0, split.train_cutoff))
    train, labels = C.split_examples(builder, split, "train"), split.train["label"].to_numpy(np.int64)
    if cfg.max_train_examples is not None and cfg.max_train_examples < len(train):
        keep = np.sort(np.random.default_rng(seed).choice(len(train), cfg.max_train_examples, replace=False))
        train, labels = train.subset(keep), labels[keep]
    model = C.CandidateModel(ds.n_videos, max(int(ds.meta.get("n_tokens") or 1), 1),
                             int(ds.meta["n_regions"]), dim=cfg.dim, tower=list(cfg.tower), spec=spec,
                             region_dim=cfg.region_dim, tie_output=cfg.tie_output, seed=seed)
    return {"train": train, "train_labels": labels, "valid": C.split_examples(builder, split, "valid"),
            "valid_labels": split.valid["label"].to_numpy(np.int64), "model": model}


__all__ = ["training_data"]
