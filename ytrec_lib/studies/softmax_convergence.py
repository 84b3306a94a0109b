"""Full against sampled softmax trained to convergence and compared at equal training time (notebook 03 §3).

The protocol is the same for both losses. For each loss, every learning rate of a small grid trains on
the first seed until early stopping on the validation recall@k (the trainer's patience; the best epoch's
weights are restored); the rate with the best validation recall is kept and the other seeds train at it.
Runs are interleaved (full, sampled, full, ...) so that a change in the machine's load falls on both.

Each run's per-epoch history gives a curve of validation recall against cumulative training seconds,
starting at the untrained model (time 0). The clock is ``"cpu"`` (the process's CPU time of the
training passes: what other processes on a shared machine cannot inflate) or ``"wall"``; the
validation passes are left out of both (the same work for either loss). "Recall by time t" is the
best validation recall among the epochs finished by t: the model early stopping would hand back if
training had to stop at t.

:func:`compare_softmax` trains; :func:`at_convergence` and :func:`at_equal_time` summarise its result
(plain dicts and lists: recordable with :mod:`ytrec_lib.report` as they are).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ytrec_lib import stats
from ytrec_lib.features import ExampleFeatures
from ytrec_lib.models.candidate import CandidateModel, evaluate_recall
from ytrec_lib.progress import tqdm
from ytrec_lib.train import LOSSES, TrainConfig, fit

CLOCKS: dict[str, str] = {"cpu": "cpu_seconds", "wall": "seconds"}
"""Clock name -> the per-epoch history field it reads (:class:`ytrec_lib.train.TrainHistory`)."""

Split = tuple[ExampleFeatures, Any]
"""(features of n examples, labels (n,) int64 video ids)."""


# ----------------------------------------------------------------------------------------------------
# Curves: validation recall against cumulative training time
# ----------------------------------------------------------------------------------------------------


def time_curve(epochs: Sequence[dict[str, float]], initial_recall: float, clock: str = "cpu"
               ) -> list[list[float]]:
    """``[[t, recall], ...]`` (E + 1 points): the untrained model's validation recall at t = 0, then
    each epoch's validation recall at the cumulative training seconds (``clock``) at its end."""
    field = _clock_field(clock)
    t = np.cumsum([float(e[field]) for e in epochs])                                # (E,)
    points = [[float(ti), float(e["val_recall"])] for ti, e in zip(t, epochs, strict=True)]
    return [[0.0, float(initial_recall)], *points]


def recall_by_time(curve: Sequence[Sequence[float]], budget: float) -> float:
    """The best recall of the points of ``curve`` (``[[t, recall], ...]``, t increasing, first point at
    t = 0) reached by time ``budget``: what early stopping would hand back if training stopped then."""
    if not len(curve) or budget < 0:
        raise ValueError(f"recall_by_time: need a non-empty curve and a budget >= 0, got {budget}")
    return max(float(r) for t, r in curve if t <= budget)


def mean_curve(curves: Sequence[Sequence[Sequence[float]]], grid: Sequence[float]) -> np.ndarray:
    """(G,) float64: the mean over ``curves`` (one :func:`time_curve` per seed) of :func:`recall_by_time`
    at each time of ``grid`` (G,): the step curve an equal-time comparison reads its values off."""
    if not len(curves):
        raise ValueError("mean_curve: need at least one curve")
    return np.array([[recall_by_time(c, float(t)) for t in grid] for c in curves]).mean(axis=0)  # (G,)


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation / sqrt(n); 0 for one value) of ``values`` (n,):
    :func:`ytrec_lib.stats.mean_se`. ``ValueError`` for an empty or non-1-D ``values``."""
    return stats.mean_se(values, single=0.0)


def beyond_two_se(a: float, se_a: float, b: float, se_b: float) -> dict[str, float | bool]:
    """``{"diff": a - b, "diff_se", "beyond_2se"}``: the two standard errors combined as if independent
    (conservative for the paired seeds here)."""
    se = math.sqrt(se_a**2 + se_b**2)
    return {"diff": a - b, "diff_se": se, "beyond_2se": bool(abs(a - b) > 2 * se)}


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------


def train_run(make_model: Callable[[int], CandidateModel], train: Split, valid: Split, test: Split,
              config: TrainConfig, initial_recall: float, clock: str = "cpu") -> dict[str, Any]:
    """Train ``make_model(config.seed)`` with ``config`` until early stopping on ``valid``'s recall@
    ``config.eval_k``; returns the run's record: ``seed``, ``lr``, ``test_recall`` (the restored best
    model on ``test``), ``val_recall`` (its best validation recall), ``epochs`` (to the best epoch),
    ``seconds`` (``clock`` seconds to the end of the best epoch), ``epochs_run``, ``seconds_run``,
    ``wall_seconds_run``, ``cpu_seconds_run`` and ``curve`` (:func:`time_curve`)."""
    model = make_model(config.seed)
    hist = fit(model, *train, config, val=valid, progress=False)
    curve = time_curve(hist.epochs, initial_recall, clock)
    best = hist.best_epoch                                                      # the restored epoch
    test_recall = evaluate_recall(model, *test, k=config.eval_k, exclude_watched=config.exclude_watched)
    return {"seed": config.seed, "lr": config.lr, "test_recall": test_recall,
            "val_recall": float(hist.best_val_recall), "epochs": best + 1, "seconds": curve[best + 1][0],
            "epochs_run": len(hist.epochs), "seconds_run": curve[-1][0],
            "wall_seconds_run": float(sum(e["seconds"] for e in hist.epochs)),
            "cpu_seconds_run": float(sum(e["cpu_seconds"] for e in hist.epochs)), "curve": curve}


def compare_softmax(make_model: Callable[[int], CandidateModel], train: Split, valid: Split, test: Split,
                    base: TrainConfig, *, lrs: Sequence[float] = (1e-2, 3e-3, 1e-3),
                    seeds: Sequence[int] = (0, 1, 2), losses: Sequence[str] = LOSSES, clock: str = "cpu",
                    progress: bool = True) -> dict[str, Any]:
    """Train each loss of ``losses`` to convergence with its learning rate chosen on validation.

    ``make_model(seed)`` -> a fresh untrained model (the same weights for the same seed);
    ``train``/``valid``/``test``: (features, labels) of the training, validation and test examples;
    ``base``: everything else of the training (epochs = the cap, patience, negatives, batch size, ...).
    The rate of ``lrs`` with the best validation recall on ``seeds[0]`` is kept for each loss, then
    ``seeds[1:]`` train at it. Returns ``{"clock", "seeds", "lrs", loss: {"lr", "val_recall_by_lr",
    "runs": [train_run record per seed]}}``.
    """
    seeds, lrs, losses = [int(s) for s in seeds], [float(x) for x in lrs], list(losses)
    _check(seeds, lrs, losses, clock)
    bar = tqdm(total=len(losses) * (len(lrs) + len(seeds) - 1), desc="full vs sampled softmax",
               disable=not progress)
    initial = {s: evaluate_recall(make_model(s), *valid, k=base.eval_k, exclude_watched=base.exclude_watched)
               for s in seeds}                                                   # seed -> untrained recall

    def run(loss: str, lr: float, seed: int) -> dict[str, Any]:
        bar.set_postfix(loss=loss, lr=f"{lr:g}", seed=seed)
        rec = train_run(make_model, train, valid, test, replace(base, loss=loss, lr=lr, seed=seed),
                        initial[seed], clock)
        bar.update()
        return rec

    search = {(lr, loss): run(loss, lr, seeds[0]) for lr in lrs for loss in losses}  # interleaved
    out: dict[str, Any] = {"clock": clock, "seeds": seeds, "lrs": lrs}
    for loss in losses:
        by_lr = {lr: search[lr, loss]["val_recall"] for lr in lrs}
        best_lr = max(lrs, key=lambda lr: by_lr[lr])                              # first of ties
        out[loss] = {"lr": best_lr, "val_recall_by_lr": {f"{lr:g}": v for lr, v in by_lr.items()},
                     "runs": [search[best_lr, loss]]}
    for seed in seeds[1:]:
        for loss in losses:
            out[loss]["runs"].append(run(loss, out[loss]["lr"], seed))
    bar.close()
    return out


def _clock_field(clock: str) -> str:
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, got {clock!r}")
    return CLOCKS[clock]


def _check(seeds: list[int], lrs: list[float], losses: list[str], clock: str) -> None:
    _clock_field(clock)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"compare_softmax: seeds must be distinct and at least one, got {seeds}")
    if not lrs or not all(lr > 0 for lr in lrs):
        raise ValueError(f"compare_softmax: lrs must be positive learning rates, at least one, got {lrs}")
    if len(losses) != len(set(losses)) or not set(losses) <= set(LOSSES) or not losses:
        raise ValueError(f"compare_softmax: losses must be distinct names of {LOSSES}, got {losses}")


# ----------------------------------------------------------------------------------------------------
# Summaries
# ----------------------------------------------------------------------------------------------------


def _losses(result: dict[str, Any]) -> list[str]:
    return [loss for loss in LOSSES if loss in result]


def at_convergence(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per loss of :func:`compare_softmax`'s ``result``: ``{"recall", "se"}`` (test recall over the
    seeds), ``{"epochs", "epochs_se"}`` and ``{"seconds", "seconds_se"}`` to the best epoch (the
    result's clock), ``"epochs_run"`` (mean, patience included), ``"lr"`` and ``"seeds"``."""
    out = {}
    for loss in _losses(result):
        runs = result[loss]["runs"]
        recall, se = mean_se([r["test_recall"] for r in runs])
        epochs, epochs_se = mean_se([r["epochs"] for r in runs])
        secs, secs_se = mean_se([r["seconds"] for r in runs])
        out[loss] = {"recall": recall, "se": se, "epochs": epochs, "epochs_se": epochs_se, "seconds": secs,
                     "seconds_se": secs_se, "epochs_run": float(np.mean([r["epochs_run"] for r in runs])),
                     "lr": result[loss]["lr"], "seeds": len(runs)}
    return out


def at_equal_time(result: dict[str, Any], budget_s: float | None = None) -> dict[str, Any]:
    """Validation recall by the same training time for every loss of ``result``: ``{"budget_s",
    "clock", loss: mean recall over the seeds, loss + "_se": its standard error}``. ``budget_s``
    (default: the mean time to the best epoch of the loss that got there first) is in the result's clock."""
    conv = at_convergence(result)
    if budget_s is None:
        budget_s = min(c["seconds"] for c in conv.values())
    out: dict[str, Any] = {"budget_s": float(budget_s), "clock": result["clock"]}
    for loss in conv:
        out[loss], out[f"{loss}_se"] = mean_se([recall_by_time(r["curve"], budget_s)
                                                for r in result[loss]["runs"]])
    return out


__all__ = ["CLOCKS", "time_curve", "recall_by_time", "mean_curve", "mean_se", "beyond_two_se", "train_run",
           "compare_softmax", "at_convergence", "at_equal_time"]
