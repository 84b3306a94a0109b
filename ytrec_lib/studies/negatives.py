"""Negative-sampling experiments (notebook 06): one retrieval model trained with any sampler, the
ranking model trained with exposed-not-clicked or global negatives, and the measurements.

The retrieval side reuses :class:`ytrec_lib.models.candidate.CandidateModel` and the one trainer
:func:`ytrec_lib.train.fit`, which accepts *any* :class:`ytrec_lib.models.sampling.NegativeSampler`
(shared or per row, with or without the positive among the draws: in-batch and mixed; pooled hard +
easy: :class:`ytrec_lib.models.sampling.PooledSampler`), so every strategy trains with the same loop,
the same model and the same budget (:func:`study_config`, a :class:`ytrec_lib.train.TrainConfig`).
The ranking side reuses :mod:`ytrec_lib.models.ranking`; it only builds the
"global negatives" version of the impression log (:func:`global_negative_impressions`) and trains the two
rankers of one world to convergence (:func:`ranking_negatives`).

Strategy names (:data:`STRATEGIES`): ``uniform``, ``popularity``, ``inbatch``, ``inbatch_logq``,
``exposed``, ``mixed``, ``hard``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from ytrec_lib.data import splits
from ytrec_lib.features import ExampleFeatures, FeatureBuilder, FeatureSpec
from ytrec_lib.metrics import recall_at_k
from ytrec_lib.models import ranking
from ytrec_lib.models.candidate import CandidateModel, rank_videos, split_examples
from ytrec_lib.models.sampling import (
    ExposedSampler,
    NegativeSampler,
    StreamingFrequencyEstimator,
    UniformSampler,
)
from ytrec_lib.train import TrainConfig, fit

STRATEGIES: tuple[str, ...] = ("uniform", "popularity", "inbatch", "inbatch_logq", "exposed", "mixed", "hard")
"""The retrieval negative-sampling strategies of notebook 06, in presentation order."""


# ----------------------------------------------------------------------------------------------------
# Training the retrieval model with any sampler (the loop: ytrec_lib.train.fit)
# ----------------------------------------------------------------------------------------------------


def subsample_examples(feats: ExampleFeatures, labels: Any, n_max: int | None, seed: int = 0
                       ) -> tuple[ExampleFeatures, np.ndarray]:
    """A seeded random subset of ``n_max`` of the examples ``feats`` (n examples) and their ``labels``
    (n,), kept in their original order; both unchanged when ``n_max`` is None or at least n."""
    y = np.asarray(labels)
    if n_max is None or n_max >= len(y):
        return feats, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), n_max, replace=False))   # (n_max,)
    return feats.subset(keep), y[keep]


def study_config(epochs: int = 3, batch_size: int = 256, n_negatives: int = 256, lr: float = 3e-3,
                 seed: int = 0) -> TrainConfig:
    """The training budget every strategy gets, as a :class:`ytrec_lib.train.TrainConfig`: the same
    examples, epochs, batch size, learning rate and (about) the same number of negatives per example
    (``n_negatives``; in-batch negatives are the batch's ``batch_size`` positives), one dense Adam
    (``sparse_updates=False``). Train a strategy with :func:`strategy_config` and
    :func:`ytrec_lib.train.fit`."""
    return TrainConfig(loss="sampled", epochs=epochs, batch_size=batch_size, n_negatives=n_negatives, lr=lr,
                       seed=seed, sparse_updates=False)


def strategy_config(budget: TrainConfig, sampler: NegativeSampler | None, logq_correction: bool = True
                    ) -> TrainConfig:
    """``budget`` for one strategy: the sampled softmax with ``logq_correction`` when there is a
    ``sampler``, the full softmax (the reference the samplers approximate) when it is None."""
    return replace(budget, loss="sampled" if sampler is not None else "full", logq_correction=logq_correction)


# ----------------------------------------------------------------------------------------------------
# Evaluation of a retrieval model
# ----------------------------------------------------------------------------------------------------


def popularity_percentile(counts: Any) -> np.ndarray:
    """(V,) float64 percentile of each video's count among all videos, in (0, 100]; ties share
    their mean rank (100 = the most watched video)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or not np.isfinite(counts).all():
        raise ValueError("popularity_percentile: counts must be a non-empty 1-D array of finite numbers")
    return 100.0 * scipy.stats.rankdata(counts, method="average") / len(counts)


def recall_and_popularity(ranked: np.ndarray, labels: Any, pct: np.ndarray) -> tuple[float, float]:
    """recall@k (each example has one label) and the mean popularity percentile of the recommended
    videos, from ``ranked`` (n, k) int64 top-k lists (-1 = none), labels (n,) and ``pct`` (V,)."""
    ranked = np.asarray(ranked)
    y = np.asarray(labels, dtype=np.int64)
    if ranked.ndim != 2 or len(ranked) != len(y) or len(y) == 0:
        raise ValueError(f"recall_and_popularity: ranked must be (n, k) with n = {len(y)} labels")
    hit = (ranked == y[:, None]).any(axis=1)
    valid = ranked >= 0
    return float(hit.mean()), float(pct[ranked[valid]].mean())


def recall_by_popularity_band(ranked: np.ndarray, labels: Any, pct: np.ndarray,
                              bands: Sequence[str] = ("tail", "torso", "head")) -> dict[str, float]:
    """recall@k by the popularity of the label: the labels (n,) are split into ``len(bands)`` equal
    groups (quantiles of their popularity percentile ``pct[labels]``, least popular first), and each
    band's share of examples whose label is in ``ranked`` (n, k) is returned as ``{band: recall}``: NaN
    for a band no label falls in (ties: more labels than a band's share at the lowest percentile, such as
    videos nobody watched before the cutoff, all go to the band above)."""
    y = np.asarray(labels, dtype=np.int64)
    ranked = np.asarray(ranked)
    if ranked.ndim != 2 or len(ranked) != len(y) or len(y) == 0 or len(bands) < 1:
        raise ValueError(f"recall_by_popularity_band: ranked must be (n, k) with n = {len(y)} labels")
    edges = np.quantile(pct[y], [b / len(bands) for b in range(1, len(bands))])  # (n_bands - 1,)
    band = np.digitize(pct[y], edges)                                              # (n,) band index
    hit = (ranked == y[:, None]).any(axis=1)                                       # (n,)
    return {name: float(hit[band == b].mean()) if (band == b).any() else float("nan")
            for b, name in enumerate(bands)}


def evaluate_retrieval(model: CandidateModel, feats: ExampleFeatures, labels: Any, pct: np.ndarray,
                       k: int = 100) -> dict[str, float]:
    """``{"recall": recall@k, "popularity_pct": mean popularity percentile of the top-k}`` over the
    whole catalogue, already-watched videos excluded."""
    ranked = rank_videos(model, feats, k, exclude_watched=True)                   # (n, k)
    recall, pop = recall_and_popularity(ranked, labels, pct)
    return {"recall": recall, "popularity_pct": pop}


def previous_model_ranking(model: CandidateModel, feats: ExampleFeatures, n_users: int, hi: int = 500
                           ) -> np.ndarray:
    """Each user's top-``hi`` videos by a previous model, the input of a hard-negative sampler.

    ``feats``: one example per user (``feats.users`` = 0..n_users-1 in order, e.g. every user at the
    training cutoff); already-watched videos are left out (they are positives, not negatives).
    Returns (n_users, hi) int64, best first.
    """
    if not np.array_equal(feats.users, np.arange(n_users)):
        raise ValueError("previous_model_ranking: feats must hold one example per user, "
                         "users 0..n_users-1 in order")
    if not 0 < hi <= model.n_videos:
        raise ValueError(f"previous_model_ranking: hi must be in [1, {model.n_videos}], got {hi}")
    ranked = rank_videos(model, feats, hi, exclude_watched=True)                 # (U, hi)
    if (ranked < 0).any():
        raise ValueError("previous_model_ranking: some user has watched almost every video; lower hi")
    return ranked


# ----------------------------------------------------------------------------------------------------
# Ranking with global negatives
# ----------------------------------------------------------------------------------------------------


def global_negative_impressions(
    impressions: pd.DataFrame, upload_time: Any, seed: int = 0, *, watches: pd.DataFrame | None = None,
    max_rounds: int = 100,
) -> pd.DataFrame:
    """The impression log with every unclicked row's video replaced by a random *global* negative.

    Each unclicked impression keeps its user, time, session, position and source, but its video
    becomes one drawn uniformly from the videos uploaded before that time and never clicked by that
    user in ``impressions``: the training set of a ranker that learns "watched versus random
    unwatched" instead of "clicked versus shown but not clicked". Clicked rows are unchanged, so
    both training sets have the same positives and the same size.

    Args:
        impressions: the log (``user_id``, ``video_id``, ``time``, ``clicked`` and any other columns).
        upload_time: (V,) float64 upload days by video id, non-decreasing (ids in upload order, as the
            data contract guarantees), so the videos out at time t are ``[0, n(t))``.
        seed: seeds the draws.
        watches: (``user_id``, ``video_id``) pairs never to draw for that user (default: the clicked
            rows of ``impressions``); pass the whole watch history to exclude earlier watches too.

    Returns:
        a copy of ``impressions`` with new ``video_id`` on the unclicked rows (``watch_time`` 0 there).
    """
    for col in ("user_id", "video_id", "time", "clicked"):
        if col not in impressions:
            raise KeyError(f"global_negative_impressions: the impressions table lacks {col!r}")
    up = np.asarray(upload_time, dtype=np.float64)
    if up.ndim != 1 or len(up) < 2 or np.isnan(up).any() or (np.diff(up) < 0).any():
        raise ValueError("global_negative_impressions: upload_time must be (V,) non-decreasing days "
                         "(video ids in upload order)")
    n_videos = len(up)
    u = impressions["user_id"].to_numpy(np.int64)
    t = impressions["time"].to_numpy(np.float64)
    clicked = impressions["clicked"].to_numpy(bool)
    if watches is None:
        watches = impressions[clicked]
    watched = np.sort(watches["user_id"].to_numpy(np.int64) * n_videos
                      + watches["video_id"].to_numpy(np.int64))                   # (W,) sorted keys
    rows = np.flatnonzero(~clicked)                                                # (N0,)
    n_out = np.searchsorted(up, t[rows], side="left")                             # (N0,) videos out by then
    if len(rows) and n_out.min() < 1:
        raise ValueError("global_negative_impressions: an impression comes before any video was uploaded")
    rng = np.random.default_rng(seed)
    new = np.floor(rng.random(len(rows)) * n_out).astype(np.int64)                 # (N0,)
    todo = np.arange(len(rows))
    for _ in range(max_rounds):
        key = u[rows[todo]] * n_videos + new[todo]
        at = np.minimum(np.searchsorted(watched, key), max(len(watched) - 1, 0))
        bad = todo[watched[at] == key] if len(watched) else todo[:0]
        if len(bad) == 0:
            break
        new[bad] = np.floor(rng.random(len(bad)) * n_out[bad]).astype(np.int64)
        todo = bad
    else:
        raise RuntimeError("global_negative_impressions: some users watched nearly every video out at "
                           "the time; no unwatched video is left to draw")
    out = impressions.copy()
    vid = out["video_id"].to_numpy(np.int64).copy()
    vid[rows] = new
    out["video_id"] = vid
    if "watch_time" in out:
        wt = out["watch_time"].to_numpy().copy()
        wt[rows] = 0
        out["watch_time"] = wt
    return out


def fit_click_ranker(train: ranking.ImpressionFeatures, test: ranking.ImpressionFeatures, n_videos: int,
                     n_languages: int, spec: ranking.RankingSpec, *, hidden: Sequence[int] = (64, 32),
                     epochs: int = 2, seed: int = 0) -> tuple[ranking.RankingModel, dict[str, float]]:
    """Train a ranker on ``train`` with the plain click objective (its own quantile normaliser) and
    score ``test``: returns the model and :func:`ytrec_lib.models.ranking.evaluate_scores` of its logits
    (``gauc``: AUC within each user's impressions, ``auc``: overall, ...)."""
    norm = ranking.fit_normalizer(train)
    model = ranking.RankingModel(n_videos, n_languages, spec, hidden=hidden, seed=seed)
    ranking.train_ranker(model, ranking.RankingInputs.make(train, norm, spec),
                         ranking.RankTrainConfig(objective="plain", epochs=epochs, seed=seed), progress=False)
    scores = ranking.predict_logits(model, ranking.RankingInputs.make(test, norm, spec))   # (n_test,)
    return model, ranking.evaluate_scores(test, scores)


def fit_click_ranker_converged(train: ranking.ImpressionFeatures, valid: ranking.ImpressionFeatures,
                               test: ranking.ImpressionFeatures, n_videos: int, n_languages: int,
                               spec: ranking.RankingSpec, *, lrs: Sequence[float],
                               hidden: Sequence[int] = (64, 32), max_epochs: int = 30, patience: int = 3,
                               seed: int = 0) -> tuple[ranking.RankingModel, dict[str, float], float]:
    """:func:`fit_click_ranker` trained to convergence: for each rate of ``lrs``, early stopping on the
    click loss of the ``valid`` impressions (``patience`` epochs, at most ``max_epochs``); the rate with the
    lowest validation loss wins. Returns ``(model, evaluate_scores on test, chosen rate)``."""
    norm = ranking.fit_normalizer(train)
    fit_in = ranking.RankingInputs.make(train, norm, spec)
    valid_in = ranking.RankingInputs.make(valid, norm, spec)
    model, _, lr, _ = ranking.train_to_convergence(
        lambda: ranking.RankingModel(n_videos, n_languages, spec, hidden=hidden, seed=seed), fit_in, valid_in,
        "plain", lrs, max_epochs=max_epochs, patience=patience, seed=seed)
    scores = ranking.predict_logits(model, ranking.RankingInputs.make(test, norm, spec))   # (n_test,)
    return model, ranking.evaluate_scores(test, scores), lr


@dataclass
class RankingNegatives:
    """The ranking half of notebook 06's crossover in one world: ``train_sets`` ("exposed": the logged
    impressions of the fitting period; "global": the same rows with every unclicked video replaced by a
    never-watched one), ``valid`` (the logged impressions of the validation period, the latest of the
    training period), ``test`` (those after the cutoff, features) and ``test_impressions`` (their rows of
    the log), the fitted ``rankers``, their ``results`` (:func:`ytrec_lib.models.ranking.evaluate_scores` on
    the test impressions: ``gauc``, ``auc``, ...) and the learning rate ``lr`` each chose."""

    train_sets: dict[str, ranking.ImpressionFeatures]
    valid: ranking.ImpressionFeatures
    test: ranking.ImpressionFeatures
    test_impressions: pd.DataFrame
    rankers: dict[str, ranking.RankingModel]
    results: dict[str, dict[str, float]]
    lr: dict[str, float]


def ranking_negatives(ds: Any, split: Any, train_watches: pd.DataFrame, *, lrs: Mapping[str, Sequence[float]],
                      spec: ranking.RankingSpec, hidden: Sequence[int] = (64, 32), max_epochs: int = 30,
                      patience: int = 3, valid_frac: float = 0.1, max_impressions: int | None = None,
                      seed: int = 0) -> RankingNegatives:
    """Train the exposed and the global-negatives rankers of dataset ``ds`` to convergence.

    The impressions are split in time as the retrieval ``split`` is (:func:`ytrec_lib.data.splits.
    ranking_split`; at its cutoff for a next-watch split), capped at a seeded random ``max_impressions`` of
    the training ones; the latest ``valid_frac`` of those (:func:`ytrec_lib.models.ranking.split_by_time`)
    are the validation period, *as logged* for both rankers (the traffic a ranker meets), and the rest the
    fitting period. ``lrs``: for "exposed" and "global", the rates each chooses from on validation.
    ``train_watches``: the watches the global negatives must avoid (the retrieval split's training
    watches)."""
    missing = [name for name in ("exposed", "global") if name not in lrs]
    if missing:
        raise ValueError(f"ranking_negatives: lrs needs rates for {missing} (a mapping name -> rates)")
    rsplit = splits.ranking_split(ds, train_cutoff=split.train_cutoff if split.kind == "next_watch" else None)
    train_rows = rsplit.train
    if max_impressions is not None and len(train_rows) > max_impressions:  # a seeded random subset
        train_rows = np.sort(np.random.default_rng(seed).choice(train_rows, max_impressions, replace=False))
    imp_tr, imp_te = ds.impressions.iloc[train_rows], ds.impressions.iloc[rsplit.test]
    imp_global = global_negative_impressions(imp_tr, ds.videos["upload_time"].to_numpy(), seed=seed,
                                             watches=train_watches)
    builder = ranking.RankingFeatureBuilder.from_dataset(ds)
    logged, test = builder.build(imp_tr), builder.build(imp_te)
    fit_rows, valid_rows = ranking.split_by_time(logged, valid_frac)
    sets = {"exposed": logged.subset(fit_rows), "global": builder.build(imp_global).subset(fit_rows)}
    valid = logged.subset(valid_rows)
    out = RankingNegatives(sets, valid, test, imp_te, {}, {}, {})
    for name, feats in sets.items():
        out.rankers[name], out.results[name], out.lr[name] = fit_click_ranker_converged(
            feats, valid, test, builder.n_videos, builder.n_languages, spec, lrs=lrs[name], hidden=hidden,
            max_epochs=max_epochs, patience=patience, seed=seed)
    return out


RETRIEVAL_CROSSOVER: tuple[str, ...] = ("uniform", "exposed")
"""The two retrieval strategies of the crossover that :func:`retrieval_negatives` trains to convergence."""


def retrieval_negatives(ds: Any, split: Any, *, lrs: Mapping[str, Sequence[float]], max_epochs: int = 30,
                        patience: int = 3, batch_size: int = 256, n_negatives: int = 256, dim: int = 32,
                        tower: Sequence[int] = (64,), k: int = 100, max_train: int | None = None,
                        seed: int = 0) -> dict[str, dict[str, float]]:
    """The retrieval half of notebook 06's crossover in one world, trained to convergence: the candidate
    model of notebook 06 (``dim``, ``tower``, every input) with uniform (global) negatives and with
    exposed-not-clicked ones (the impressions before the cutoff), each with the logQ correction. For each
    rate of ``lrs[name]``: early stopping on validation recall@``k`` of ``split.valid`` (``patience``
    epochs, at most ``max_epochs``); the rate with the best validation recall wins. Returns, per name of
    :data:`RETRIEVAL_CROSSOVER`: ``{"recall": test recall@k over the whole catalogue (watched videos
    excluded), "val_recall", "lr", "epochs": the best epoch + 1}``. ``max_train``: a seeded random subset
    of the training examples (:func:`subsample_examples`; None: all)."""
    missing = [name for name in RETRIEVAL_CROSSOVER if name not in lrs]
    if missing:
        raise ValueError(f"retrieval_negatives: lrs needs rates for {missing} (a mapping name -> rates)")
    if split.kind != "next_watch":
        raise ValueError(f"retrieval_negatives needs a next-watch split (one cutoff), got {split.kind!r}")
    n_videos, n_users = int(ds.n_videos), int(ds.meta["n_users"])
    spec = FeatureSpec()
    builder = FeatureBuilder.from_dataset(ds, spec, window=(0.0, split.train_cutoff))
    parts = {p: (split_examples(builder, split, p), getattr(split, p)["label"].to_numpy(np.int64))
             for p in ("train", "valid", "test")}
    parts["train"] = subsample_examples(*parts["train"], max_train, seed=seed)
    imp = splits.training_view(ds, split).impressions  # what was shown before the cutoff
    samplers = {"uniform": UniformSampler(n_videos, shared=True),
                "exposed": ExposedSampler(n_videos, imp["user_id"].to_numpy(), imp["video_id"].to_numpy(),
                                          imp["clicked"].to_numpy(), n_users=n_users)}
    n_tokens = max(int(ds.meta.get("n_tokens") or 1), 1)
    out: dict[str, dict[str, float]] = {}
    for name in RETRIEVAL_CROSSOVER:
        best: tuple[float, float, CandidateModel, int] | None = None
        for lr in lrs[name]:
            model = CandidateModel(n_videos, n_tokens, int(ds.meta["n_regions"]), dim=dim, tower=list(tower),
                                   spec=spec, seed=seed)
            config = replace(study_config(max_epochs, batch_size, n_negatives, lr, seed), patience=patience,
                             eval_k=k)
            hist = fit(model, *parts["train"], config, sampler=samplers[name], val=parts["valid"],
                       progress=False)
            if best is None or hist.best_val_recall > best[0]:
                best = (hist.best_val_recall, lr, model, hist.best_epoch + 1)
        val_recall, lr, model, epochs = best
        ranked = rank_videos(model, parts["test"][0], k, exclude_watched=True)  # (n_test, k)
        out[name] = {"recall": float(recall_at_k(ranked, parts["test"][1], k)), "val_recall": val_recall,
                     "lr": lr, "epochs": epochs}
    return out


# ----------------------------------------------------------------------------------------------------
# The streaming frequency estimate on a stream whose distribution shifts
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftingStream:
    """A stream of batches of ids whose distribution changes at step ``shift_at``.

    ``batches`` (n_steps, batch_size) int64; ``probs`` (2, n_items) float64, the per-draw
    distribution before (row 0) and from (row 1) the shift.
    """

    batches: np.ndarray
    probs: np.ndarray
    shift_at: int

    def true_probability(self, ids: Any) -> np.ndarray:
        """(n_steps, len(ids)) the true per-draw probability of each id at each step."""
        ids = np.asarray(ids, dtype=np.int64)
        phase = (np.arange(len(self.batches)) >= self.shift_at).astype(np.int64)  # (n_steps,)
        return self.probs[phase][:, ids]


def shifting_stream(n_items: int = 1000, n_steps: int = 2000, batch_size: int = 128,
                    shift_at: int | None = None, zipf_s: float = 1.1, seed: int = 0) -> ShiftingStream:
    """Zipf(``zipf_s``) draws over ``n_items`` ids in a random order, and from ``shift_at`` (default
    half-way) in another random order: yesterday's head becomes today's tail (a popularity shift)."""
    if n_items < 2 or n_steps < 2 or batch_size < 1:
        raise ValueError("shifting_stream: need n_items >= 2, n_steps >= 2 and batch_size >= 1")
    shift_at = n_steps // 2 if shift_at is None else int(shift_at)
    if not 0 < shift_at < n_steps:
        raise ValueError(f"shifting_stream: shift_at must be in (0, {n_steps}), got {shift_at}")
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, n_items + 1) ** zipf_s
    zipf /= zipf.sum()                                                            # (V,) by rank
    probs = np.stack([zipf[np.argsort(rng.permutation(n_items))] for _ in range(2)])  # (2, V)
    cdf = np.cumsum(probs, axis=1)                                                # (2, V)
    u = rng.random((n_steps, batch_size))                                         # (n_steps, b)
    before = np.searchsorted(cdf[0], u[:shift_at] * cdf[0, -1], side="right")     # (shift_at, b)
    after = np.searchsorted(cdf[1], u[shift_at:] * cdf[1, -1], side="right")      # (n_steps - shift_at, b)
    batches = np.minimum(np.concatenate([before, after]), n_items - 1).astype(np.int64)
    return ShiftingStream(batches, probs, shift_at)


def track_estimates(estimator: StreamingFrequencyEstimator, stream: ShiftingStream, ids: Any) -> np.ndarray:
    """Feed the stream to ``estimator`` batch by batch; after each, its per-draw probability estimate of
    ``ids``: (n_steps, len(ids)) float64."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.empty((len(stream.batches), len(ids)))
    for step, batch in enumerate(stream.batches):                                 # one update per batch
        estimator.update(batch)
        out[step] = estimator.draw_probability(ids)
    return out


def stream_recovery_table(errors: dict[float, np.ndarray], shift_at: int, within: float = 1.5
                          ) -> pd.DataFrame:
    """One row per learning rate of the estimator's error curve ``errors[alpha]`` (n_steps,) float64
    (the median ``|log(estimate / truth)|``) on a stream shifting at ``shift_at``: the error just before
    the shift, its peak after, at the end, and the steps after the shift until it is back under
    ``log(within)`` (NaN when it never is). Indexed by ``alpha``."""
    threshold = np.log(within)
    rows = []
    for alpha, e in errors.items():
        after = np.flatnonzero(e[shift_at:] < threshold)
        rows.append({"alpha": alpha, "error before the shift": e[shift_at - 1],
                     "peak error after": e[shift_at:].max(), "error at the end": e[-1],
                     f"steps to get back within x{within:g}": int(after[0]) if len(after) else None})
    return pd.DataFrame(rows).set_index("alpha")
