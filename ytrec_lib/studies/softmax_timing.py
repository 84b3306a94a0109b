"""Full against sampled softmax: the median time of one training step of the candidate model at a given
catalogue size, on synthetic data (no dataset needed; notebook 03's step-time table).

Each step is one forward, backward and optimiser step of :func:`ytrec_lib.train.batch_loss` with the
trainer's :class:`ytrec_lib.train.Optimizer`, so the timing is that of the real training loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ytrec_lib.features import FeatureSpec
from ytrec_lib.models.candidate import DEFAULT_TOWER, CandidateModel, synthetic_batch
from ytrec_lib.progress import tqdm
from ytrec_lib.train import Optimizer, TrainConfig, batch_loss, make_sampler


def softmax_step_time(
    n_classes: int,
    loss: str,
    batch_size: int = 256,
    dim: int = 32,
    tower: Sequence[int] = DEFAULT_TOWER,
    n_negatives: int = 2000,
    n_steps: int = 5,
    seed: int = 0,
) -> float:
    """Median seconds of one training step (forward, backward, optimiser) at ``n_classes`` videos.

    One warm-up step is not timed; the median resists other processes stealing the CPU.
    ``loss``: "full" or "sampled" (uniform proposal, ``n_negatives``).
    """
    spec = FeatureSpec()
    model = CandidateModel(n_classes, 1000, 16, dim=dim, tower=tower, spec=spec, seed=seed)
    config = TrainConfig(loss=loss, n_negatives=n_negatives, proposal="uniform", seed=seed)
    opt = Optimizer(model, config.lr, sparse=True, sparse_output=loss == "sampled")
    sampler = make_sampler(n_classes, "uniform") if loss == "sampled" else None
    rng = np.random.default_rng(seed)
    batch, labels = synthetic_batch(n_classes, 1000, 16, spec, batch_size, seed)
    times = []
    for step in range(n_steps + 1):
        t0 = time.perf_counter()
        opt.step(batch_loss(model, batch, labels, config, sampler, rng))
        if step > 0:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def step_time_table(
    sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000),
    progress: bool = True,
    **kwargs: Any,
) -> list[dict[str, float]]:
    """Full and sampled step times (ms) and their ratio for each catalogue size.

    Returns rows ``{"n_classes", "full_ms", "sampled_ms", "speedup"}``; ``kwargs`` go to
    :func:`softmax_step_time`.
    """
    rows = []
    for n in tqdm(list(sizes), desc="step time", disable=not progress):
        full = softmax_step_time(int(n), "full", **kwargs)
        sampled = softmax_step_time(int(n), "sampled", **kwargs)
        rows.append({"n_classes": int(n), "full_ms": 1e3 * full, "sampled_ms": 1e3 * sampled,
                     "speedup": full / sampled})
    return rows


__all__ = ["softmax_step_time", "step_time_table"]
