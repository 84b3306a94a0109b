"""The paper's three lessons, measured honestly over seeds in a world built for them.

For a world (a simulator preset plus :class:`~ytrec_lib.data.presets.SimConfig` switches, :func:`world`)
and seeds, each lesson trains the models it compares and returns one row of metrics per seed:

* ``depth``  (Fig. 6, :func:`lesson_depth`): MAP@100 of the all-features model by tower depth; the
  effect is depth 3 over depth 0. Beside it how far each model's predicted topics follow each gender's
  direction round the topic ring (``direction_gap_*``, the interaction ``progression_by_gender`` plants);
* ``fresh``  (Fig. 4, :func:`lesson_fresh`): the fresh lift (first two days over second week) with the
  example-age feature over without it, the labels' own lift, and the served share of young videos;
* ``labels`` (§3.4, :func:`lesson_labels`): recall@100 on the next watch after the cutoff, trained on
  next-watch labels minus trained on randomly held-out labels;
* ``baselines`` (:func:`lesson_baselines`): recall@100 of the deep model over the best tuned classical
  model (item-kNN, RP3β, EASE) on the standard next-watch split, with most popular and the oracle beside.

Every model (:func:`train_selected`): random init, full softmax, early stopping on the validation users'
recall@100, learning rate chosen on validation from :attr:`Protocol.lrs`. With ``Protocol.lr_per_seed``
False each model name chooses at the first seed and later seeds reuse that rate (the choice is passed
in, never kept in the module). :func:`run_lesson` runs the seeds and summarises: mean, standard error
over seeds, and whether the effect is more than two standard errors from none (:func:`verdict` words
it). ``python -m ytrec_lib lessons`` is its command line.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ytrec_lib import stats
from ytrec_lib.data import datasets, describe, splits
from ytrec_lib.data.presets import MECHANISM_OFF, PRESET_SIZES, SimConfig, preset_config
from ytrec_lib.features import FeatureBuilder, feature_set
from ytrec_lib.models import baselines as B
from ytrec_lib.models import candidate as C
from ytrec_lib.progress import tqdm
from ytrec_lib.studies import evaluation
from ytrec_lib.train import TrainConfig, fit

TOWERS: dict[int, tuple[int, ...]] = {0: (), 1: (64,), 2: (128, 64), 3: (256, 128, 64),
                                      4: (512, 256, 128, 64)}
"""Tower widths by depth (the paper's Figure 6: depth 0 feeds the concatenated input to the softmax)."""
AGE_DAYS = 14
"""Days of a video's life the fresh-lift curve covers."""
NULL: dict[str, float] = {"depth": 1.0, "fresh": 1.0, "labels": 0.0, "baselines": 1.0}
"""The effect of each lesson when the lesson does not hold: a ratio of 1, a difference of 0."""


@dataclass(frozen=True)
class Protocol:
    """How every model of a lesson is trained and evaluated.

    ``lrs``: the learning rates chosen from on validation; ``lr_per_seed``: choose at every seed (else
    at the first seed, reused later); ``patience``: epochs without a better validation recall@100 before
    stopping; ``epochs``: the cap; ``n_next``: labels per validation and test user (their first
    ``n_next`` watches after the cutoff); ``batch_size``: examples per step.
    """

    lrs: tuple[float, ...] = (1e-2, 3e-3, 1e-3)
    lr_per_seed: bool = False
    patience: int = 8
    epochs: int = 40
    n_next: int = 5
    batch_size: int = 512

    def __post_init__(self) -> None:
        if not self.lrs or any(not lr > 0 for lr in self.lrs):
            raise ValueError(f"Protocol: lrs must be positive learning rates, got {self.lrs!r}")
        for name in ("patience", "epochs", "n_next", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Protocol: {name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Trained:
    """A model trained with the learning rate its validation recall chose (``model``, its feature
    ``builder``), that rate, its best validation recall@100, the epochs run and the seconds of all the
    rates tried."""

    model: C.CandidateModel
    builder: FeatureBuilder
    lr: float
    val_recall: float
    epochs: int
    seconds: float


def check_switches(switches: Mapping[str, Any]) -> None:
    """Raise ValueError naming any key of ``switches`` that is not a :class:`SimConfig` field."""
    known = {f.name for f in dataclasses.fields(SimConfig)}
    unknown = sorted(set(switches) - known)
    if unknown:
        raise ValueError(f"unknown world switch(es) {unknown}; a switch is a SimConfig field, one of: "
                         f"{', '.join(sorted(known))}")


def world(preset: str, seed: int, switches: Mapping[str, Any]) -> datasets.Dataset:
    """The simulated dataset of ``preset`` and ``seed`` with the SimConfig ``switches``: the preset's own
    world (cached, shared with the notebooks) when there are none, else generated each call."""
    check_switches(switches)
    config = preset_config(preset, **switches) if switches else None
    return datasets.load(preset, seed, config=config, progress=False)


LESSON_MAX_PRESET = "ci"
"""The largest simulator preset the lessons run at unless asked: each lesson trains several models to
convergence at three seeds in two worlds, which at ``small`` takes hours on a 2-core machine."""


def lesson_preset(preset: str, requested: str | None = None) -> tuple[str, str | None]:
    """The simulator preset the lessons of a notebook run at ``preset`` take, and a sentence for the reader
    when it is not ``preset`` (else None). ``requested`` (a simulator preset) overrides the choice; else a
    real dataset (whose world cannot be switched) and any preset larger than :data:`LESSON_MAX_PRESET`
    run the lessons in the same world at :data:`LESSON_MAX_PRESET`'s sizes."""
    if requested is not None:
        if requested not in PRESET_SIZES:
            raise ValueError(f"LESSON_PRESET must be a simulator preset ({', '.join(PRESET_SIZES)}), "
                             f"got {requested!r}")
        return requested, None
    cap = LESSON_MAX_PRESET
    if preset not in PRESET_SIZES:
        return cap, (f"{preset} is a real dataset: its world cannot be switched, so the lessons run in the "
                     f"simulated world at the {cap} sizes.")
    size, cap_size = (PRESET_SIZES[p]["n_users"] * PRESET_SIZES[p]["n_videos"] for p in (preset, cap))
    if size <= cap_size:
        return preset, None
    return cap, (f"At {preset} the lessons (models trained to convergence at several seeds, in two worlds "
                 f"each) would take hours on a 2-core machine, so they run in the same world at the {cap} "
                 f"sizes; set LESSON_PRESET = \"{preset}\" to run them at {preset}.")


def mechanism_off(switches: Mapping[str, Any], mechanism: str) -> dict[str, Any]:
    """``switches`` with ``mechanism`` (a key of :data:`MECHANISM_OFF`) switched off."""
    if mechanism not in MECHANISM_OFF:
        raise ValueError(f"unknown mechanism {mechanism!r}; use one of {', '.join(MECHANISM_OFF)}")
    return {**switches, **MECHANISM_OFF[mechanism]}


SPLIT_KINDS: tuple[str, ...] = ("next_watch", "heldout", "heldout_matched")


def make_split(ds: datasets.Dataset, kind: str, seed: int, n_next: int) -> splits.Split:
    """The next-watch split (``kind="next_watch"``), the held-out-label split (``"heldout"``, the whole
    history but the label as context) or its control with the next-watch example's context length
    (``"heldout_matched"``), all with the same validation and test users; ``n_next`` labels per
    validation and test user."""
    if kind not in SPLIT_KINDS:
        raise ValueError(f"unknown split kind {kind!r}; use one of {', '.join(SPLIT_KINDS)}")
    if kind == "next_watch":
        return splits.next_watch_split(ds, seed=seed, n_next=n_next)
    return splits.heldout_watch_split(ds, seed=seed, n_next=n_next, match_context=kind == "heldout_matched")


def _fit_one(ds: datasets.Dataset, split: splits.Split, spec: Any, builder: FeatureBuilder,
             tower: tuple[int, ...], seed: int, lr: float, protocol: Protocol) -> Trained:
    """One model, random init, full softmax, trained at ``lr`` with early stopping on validation."""
    t0 = time.perf_counter()
    tr, va = C.split_examples(builder, split, "train"), C.split_examples(builder, split, "valid")
    model = C.CandidateModel(ds.n_videos, int(ds.meta["n_tokens"]), int(ds.meta["n_regions"]),
                             tower=list(tower), spec=spec, seed=seed)
    cfg = TrainConfig(loss="full", epochs=protocol.epochs, batch_size=protocol.batch_size, lr=lr,
                      patience=protocol.patience, seed=seed)
    hist = fit(model, tr, split.train["label"].to_numpy(), cfg, val=(va, split.valid["label"].to_numpy()),
               progress=False)
    return Trained(model, builder, lr, hist.best_val_recall, len(hist.epochs), time.perf_counter() - t0)


def train_selected(ds: datasets.Dataset, split: splits.Split, features: str, tower: Sequence[int],
                   seed: int, protocol: Protocol, *, example_age: bool | None = None,
                   lr: float | None = None, example_age_days: int = 0) -> Trained:
    """The all-``features`` candidate model with ``tower`` widths, trained once per learning rate of
    ``protocol.lrs`` (or only at ``lr`` when given: a rate chosen before), the best on validation
    recall@100 kept. ``example_age``: None keeps the feature set's own switch; ``example_age_days``:
    :attr:`~ytrec_lib.features.FeatureSpec.example_age_days` (0: example age as one scalar)."""
    overrides: dict[str, Any] = {"example_age_days": int(example_age_days)}
    if example_age is not None:
        overrides["example_age"] = example_age
    spec = feature_set(features, **overrides)
    builder = FeatureBuilder.from_dataset(ds, spec, window=(0.0, split.train_cutoff))
    runs = [_fit_one(ds, split, spec, builder, tuple(tower), seed, rate, protocol)
            for rate in ((lr,) if lr is not None else protocol.lrs)]
    best = max(runs, key=lambda r: r.val_recall)
    best.seconds = sum(r.seconds for r in runs)
    return best


def quality_on_test(run: Trained, split: splits.Split) -> dict[str, float]:
    """recall@10, recall@100 and MAP@100 of ``run`` on the split's test users (watched videos
    excluded)."""
    feats = C.split_examples(run.builder, split, "test")
    ranked = C.rank_videos(run.model, feats, 200)  # (n_test, 200) int64
    return C.ranking_quality(ranked, split.test["label"].to_numpy(), (10, 100))


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (ddof 1; NaN for one value) of ``values`` (n,):
    :func:`ytrec_lib.stats.mean_se` with ``single=nan``."""
    return stats.mean_se(values, single=float("nan"))


def beyond_noise(mean: float, se: float, null: float) -> bool:
    """Is ``mean`` more than two standard errors ``se`` away from ``null``?"""
    return bool(abs(mean - null) > 2 * se)


def verdict(mean: float, se: float, null: float) -> str:
    """The sentence fragment a notebook prints after an effect: ``"above ... beyond 2 standard
    errors"`` / ``"below ..."`` when :func:`beyond_noise`, else ``"within noise ..."``."""
    if beyond_noise(mean, se, null):
        side = "above" if mean > null else "below"
        return (f"{side} {null:g} by {abs(mean - null) / se:.1f} standard errors, beyond 2 standard "
                "errors")
    return f"within noise of {null:g} (less than 2 standard errors, SE {se:.3g})"


def _chosen(name: str, lr: Mapping[str, float] | None) -> float | None:
    return None if lr is None else lr.get(name)


@torch.no_grad()
def topic_mass(run: Trained, split: splits.Split, topic: np.ndarray, n_topics: int) -> np.ndarray:
    """The model's probability of each topic for the split's test examples: softmax summed per topic.
    ``topic``: (n_videos,) int. Returns (n_test, n_topics) float64, rows sum to 1."""
    feats = C.split_examples(run.builder, split, "test")
    onehot = torch.zeros(len(topic), n_topics, dtype=torch.float64)                 # (V, T)
    onehot[torch.arange(len(topic)), torch.from_numpy(topic.astype(np.int64))] = 1.0
    out = [run.model.probabilities(feats.batch(np.arange(s, min(s + 256, len(feats))))) @ onehot
           for s in range(0, len(feats), 256)]                                       # (b, T) each
    return torch.cat(out).numpy()


def ring_direction_gap(ds: datasets.Dataset, split: splits.Split, mass: np.ndarray) -> float:
    """Does a prediction follow each gender's direction round the topic ring (the history x gender
    interaction of ``progression_by_gender``)? Per test example ``sum_t mass[t] * (h[t-1] - h[t+1])``,
    ``h`` the user's topic shares before the cutoff, ``mass`` (n_test, n_topics) the predicted (or the
    label's one-hot) topic distribution; returns its mean over gender-1 users minus gender-0 users."""
    w = ds.watches()
    w = w[w["time"] < split.train_cutoff]
    topic = ds.videos["topic"].to_numpy()
    h = np.zeros((ds.n_users, mass.shape[1]))                                       # (U, T)
    np.add.at(h, (w["user_id"].to_numpy(), topic[w["video_id"].to_numpy()]), 1.0)
    h /= np.maximum(h.sum(axis=1, keepdims=True), 1.0)
    users = split.test["user_id"].to_numpy()
    step = np.roll(h, 1, axis=1) - np.roll(h, -1, axis=1)                           # (U, T)
    score = (mass * step[users]).sum(axis=1)                                        # (n_test,)
    gender = ds.users.set_index("user_id")["gender"].to_numpy()[users]
    return float(score[gender == 1].mean() - score[gender == 0].mean())


def lesson_depth(ds: datasets.Dataset, seed: int, protocol: Protocol, lr: Mapping[str, float] | None = None,
                 depths: Sequence[int] = (0, 3)) -> dict[str, Any]:
    """Fig. 6: the all-features model at each tower depth of ``depths`` (keys of :data:`TOWERS`): test
    ``map_depth{d}``, ``recall100_depth{d}``, ``direction_gap_depth{d}`` (and of the labels); where
    ``depths`` holds 0 and 3, ``effect`` = MAP@100 at depth 3 over depth 0. ``lr``: rates chosen before
    (model ``depth{d}``; a depth missing from it chooses its own)."""
    if not depths or not set(depths) <= set(TOWERS):
        raise ValueError(f"depths must be some of {sorted(TOWERS)}, got {list(depths)}")
    split = make_split(ds, "next_watch", seed, protocol.n_next)
    runs = {d: train_selected(ds, split, "all", TOWERS[d], seed, protocol, lr=_chosen(f"depth{d}", lr))
            for d in depths}
    topic, n_t = ds.videos["topic"].to_numpy(), int(ds.meta["n_topics"])
    row: dict[str, Any] = {}
    for d, run in runs.items():
        q = quality_on_test(run, split)
        row[f"map_depth{d}"], row[f"recall100_depth{d}"] = q["MAP@100"], q["recall@100"]
        row[f"direction_gap_depth{d}"] = ring_direction_gap(ds, split, topic_mass(run, split, topic, n_t))
    row["direction_gap_labels"] = ring_direction_gap(ds, split, np.eye(n_t)[topic[split.test["label"]]])
    if {0, 3} <= set(depths):
        row["effect"] = row["map_depth3"] / row["map_depth0"]
    return {**row, **_run_info({f"depth{d}": r for d, r in runs.items()})}


def _run_info(runs: Mapping[str, Trained]) -> dict[str, dict[str, float]]:
    """The chosen learning rate, epochs and seconds of each named run (kept beside the metrics)."""
    return {"lr": {n: r.lr for n, r in runs.items()}, "epochs": {n: r.epochs for n, r in runs.items()},
            "seconds": {n: round(r.seconds, 2) for n, r in runs.items()}}


def fresh_curves(ds: datasets.Dataset, split: splits.Split, runs: Mapping[str, Trained],
                 seed: int) -> dict[str, np.ndarray]:
    """Probability by age in days (:func:`candidate.probability_by_age`, ages 0 .. :data:`AGE_DAYS` - 1,
    each (AGE_DAYS,) float64) of each run and of the training labels (``"empirical"``: labels of that age
    over (example, video) pairs of that age), on up to 3000 sampled training examples, videos uploaded
    inside the training window."""
    upload = ds.videos["upload_time"].to_numpy()
    cutoff = split.train_cutoff
    in_log = (upload >= 0) & (upload < cutoff)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(split.train), min(3000, len(split.train)), replace=False))
    users, times, labels = (split.train[c].to_numpy()[sample] for c in ("user_id", "time", "label"))
    label_age = times - upload[labels]
    ok = (label_age >= 0) & (label_age < AGE_DAYS) & in_log[labels]
    out, pairs = {}, np.ones(AGE_DAYS)
    for name, run in runs.items():
        out[name], pairs = C.probability_by_age(run, users, times, upload, in_log, cutoff, AGE_DAYS)
    out["empirical"] = np.bincount(label_age[ok].astype(int), minlength=AGE_DAYS) / np.maximum(pairs, 1)
    return out


def fresh_lifts(ds: datasets.Dataset, split: splits.Split, runs: Mapping[str, Trained],
                seed: int) -> dict[str, float]:
    """Fresh lift (first two days over second week, :func:`candidate.fresh_lift`) of each run and of the
    training labels (``"empirical"``) from :func:`fresh_curves`, as notebook 03 measures it."""
    return {name: C.fresh_lift(curve) for name, curve in fresh_curves(ds, split, runs, seed).items()}


def lesson_fresh(ds: datasets.Dataset, seed: int, protocol: Protocol, lr: Mapping[str, float] | None = None,
                 tower: Sequence[int] = (64,), by_day: bool = False) -> dict[str, Any]:
    """Fig. 4: fresh lift with and without example age (both with ``tower``); ``effect`` = with over
    without; the share of videos under 7 days old in each model's top 100 served at example age 0 and in
    the test users' next watches; the fresh lift of each model's curve and of the labels' (``curve_*``:
    lists over the ages 0 .. :data:`AGE_DAYS` - 1). ``by_day``: the example age also one-hot over the
    whole days of the training window (``FeatureSpec.example_age_days``, one column a day), else one
    scalar."""
    split = make_split(ds, "next_watch", seed, protocol.n_next)
    days = int(np.ceil(split.train_cutoff)) if by_day else 0
    runs = {name: train_selected(ds, split, "all", tower, seed, protocol, example_age=on,
                                 lr=_chosen(name, lr), example_age_days=days if on else 0)
            for name, on in (("with", True), ("without", False))}
    curves = fresh_curves(ds, split, runs, seed)
    lifts = {name: C.fresh_lift(curve) for name, curve in curves.items()}
    upload = ds.videos["upload_time"].to_numpy()
    users, times, labels = (split.test[c].to_numpy() for c in ("user_id", "time", "label"))
    shares = {f"fresh_share_top100_{name}_example_age": C.served_young_share(run, users, times, upload)
              for name, run in runs.items()}
    return {"lift_with": lifts["with"], "lift_without": lifts["without"],
            "lift_empirical": lifts["empirical"], "effect": lifts["with"] / lifts["without"], **shares,
            "fresh_share_next_watch": C.young_share(labels, times, upload),
            **{f"curve_{name}": curve.tolist() for name, curve in curves.items()}, **_run_info(runs)}


def lesson_labels(ds: datasets.Dataset, seed: int, protocol: Protocol, lr: Mapping[str, float] | None = None,
                  example_age: bool | None = None, kinds: Sequence[str] = SPLIT_KINDS[:2]) -> dict[str, Any]:
    """§3.4: test recall@100 of the depth-1 model trained on each label kind of ``kinds`` (of
    :data:`SPLIT_KINDS`; next-watch and held-out always), all evaluated on the next watch after the
    cutoff: ``recall_next``, ``recall_heldout``, ``effect`` = next minus held-out, and with the control
    ``"heldout_matched"`` (held-out labels with the next-watch context length) ``recall_heldout_matched``
    and ``effect_matched`` = next minus it. ``example_age``: None keeps the feature set's own (on)."""
    unknown = [k for k in kinds if k not in SPLIT_KINDS]
    if unknown or not {"next_watch", "heldout"} <= set(kinds):
        raise ValueError(f"kinds must hold next_watch and heldout, from {', '.join(SPLIT_KINDS)}; "
                         f"got {kinds}")
    rec, runs = {}, {}
    for kind in kinds:
        split = make_split(ds, kind, seed, protocol.n_next)
        runs[kind] = train_selected(ds, split, "all", (64,), seed, protocol, example_age=example_age,
                                    lr=_chosen(kind, lr))
        rec[kind] = quality_on_test(runs[kind], split)["recall@100"]
    out = {"recall_next": rec["next_watch"], "recall_heldout": rec["heldout"],
           "effect": rec["next_watch"] - rec["heldout"]}
    if "heldout_matched" in rec:
        out.update(recall_heldout_matched=rec["heldout_matched"],
                   effect_matched=rec["next_watch"] - rec["heldout_matched"])
    return {**out, **_run_info(runs)}


CLASSICAL: tuple[str, ...] = ("itemknn", "rp3b", "ease")
"""The tuned classical models of :func:`lesson_baselines` (names of :data:`evaluation.MODELS`)."""
RECENT_DAYS = 7.0
"""The trailing window of the trending baseline of :func:`lesson_baselines` (days of watches counted)."""


def lesson_baselines(ds: datasets.Dataset, seed: int, protocol: Protocol,
                     lr: Mapping[str, float] | None = None, depth: int = 3) -> dict[str, Any]:
    """The deep model against strong classical ones, on the standard next-watch split of ``ds``
    (:func:`evaluation.evaluation_task`, one label per test user, watched videos excluded): test
    ``recall100_{name}`` of the all-features model with the ``depth`` tower (``model``), of most popular,
    of each of :data:`CLASSICAL` tuned on the validation users over :data:`evaluation.GRIDS` (EASE left
    out where :func:`evaluation.ease_skip_reason` says the catalogue does not fit), of most popular over
    the :data:`RECENT_DAYS` before the cutoff (``popularity_recent``, a trending list) and of the two oracles
    of :func:`~ytrec_lib.models.baselines.oracle_rankings` (the simulator's true next-watch probabilities
    at the cutoff, ``oracle``, and at each label's time, ``oracle_label_time``), the share of test labels
    uploaded after the cutoff (``share_labels_uploaded_after_cutoff``); ``effect`` = the model over the best
    classical model of this seed (``best_classical``; NaN where every classical model finds no test label)."""
    if depth not in TOWERS:
        raise ValueError(f"depth must be one of {sorted(TOWERS)}, got {depth!r}")
    task = evaluation.evaluation_task(ds, seed)
    split, labels = task.split, task.test.labels  # labels (n_test,) int64
    classical = [m for m in CLASSICAL if m != "ease" or evaluation.ease_skip_reason(task) is None]
    row: dict[str, Any] = {}
    for name in ("popularity", *classical):
        ranked, _ = evaluation.rank_model(name, task, seed=seed)  # (n_test, K) int64
        row[f"recall100_{name}"] = evaluation.score_ranking(ranked, labels)["recall@100"]
    times, cutoff = split.test["time"].to_numpy(), split.train_cutoff  # (n_test,) float64
    trending = B.MostPopular(window=RECENT_DAYS).fit_dataset(ds, cutoff)
    lists = {"popularity_recent": trending.recommend(task.test.users, 100, histories=task.test.histories,
                                                     times=times),
             **B.oracle_rankings(ds, task.test.users, times, cutoff, 100, task.test.histories)}
    for name, top in lists.items():  # top (n_test, 100) int64
        row[f"recall100_{name}"] = evaluation.score_ranking(top, labels)["recall@100"]
    row["share_labels_uploaded_after_cutoff"] = describe.share_uploaded_after(ds, labels, cutoff)
    run = train_selected(ds, split, "all", TOWERS[depth], seed, protocol, lr=_chosen("model", lr))
    ranked = C.rank_videos(run.model, C.split_examples(run.builder, split, "test"), 100)  # (n_test, 100)
    row["recall100_model"] = evaluation.score_ranking(ranked, labels)["recall@100"]
    best = max(classical, key=lambda m: row[f"recall100_{m}"])
    top = row[f"recall100_{best}"]
    row["effect"] = row["recall100_model"] / top if top > 0 else float("nan")
    return {**row, "best_classical": best, **_run_info({"model": run})}


LESSONS: dict[str, Callable[..., dict[str, Any]]] = {"depth": lesson_depth, "fresh": lesson_fresh,
                                                     "labels": lesson_labels, "baselines": lesson_baselines}


def world_stats(ds: datasets.Dataset) -> dict[str, float]:
    """The :mod:`ytrec_lib.data.describe` statistics that measure each mechanism's strength in ``ds``."""
    return {"fresh_watch_lift": describe.fresh_watch_lift(ds),
            "topic_flow_asymmetry": describe.topic_flow_asymmetry(ds),
            "interaction_gain": describe.demographic_interaction_gain(ds)["gain"],
            "ring_flow_gender_gap": describe.ring_flow_gender_gap(ds)}


def summarize(rows: Sequence[Mapping[str, Any]], null: float) -> dict[str, Any]:
    """Mean and standard error over the rows (seeds) of every numeric key all rows hold (but ``seed``),
    and whether ``effect`` (when there is one) lies beyond two standard errors of ``null``: ``{"mean":
    {...}, "se": {...}, "beyond_2se": bool or None}``."""
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k != "seed" and all(k in r for r in rows)]
    by_key = {k: mean_se([r[k] for r in rows]) for k in keys}
    beyond = beyond_noise(*by_key["effect"], null) if "effect" in by_key else None
    return {"mean": {k: m for k, (m, _) in by_key.items()}, "se": {k: s for k, (_, s) in by_key.items()},
            "beyond_2se": beyond}


def run_lesson(lesson: str, preset: str, seeds: Sequence[int], switches: Mapping[str, Any],
               protocol: Protocol = Protocol(), *, lr: Mapping[str, float] | None = None,
               progress: bool = True, **options: Any) -> dict[str, Any]:
    """Run ``lesson`` (a key of :data:`LESSONS`) in the world ``preset`` + ``switches`` for each of
    ``seeds`` (each its own world, split and models). ``options`` go to the lesson function (e.g.
    ``depths=(0, 1, 2, 3, 4)``). Learning rates: ``lr`` (model name -> rate chosen before, e.g. in
    another world) at every seed where given; else chosen per seed with ``protocol.lr_per_seed``, else
    at the first seed and reused (a model ``lr`` does not name too). Returns ``{"rows": [per-seed dicts:
    seed, world statistics, metrics, lr, epochs, seconds], "summary": summarize(rows), "lr": the rates of
    the first seed}``."""
    if lesson not in LESSONS:
        raise ValueError(f"unknown lesson {lesson!r}; use one of {', '.join(LESSONS)}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    check_switches(switches)
    preset_config(preset, **switches)  # an unknown preset or a bad value fails here, before any work
    rows: list[dict[str, Any]] = []
    chosen: dict[str, float] | None = dict(lr) if lr is not None else None
    for seed in tqdm(list(seeds), desc=f"lesson {lesson}", disable=not progress):
        ds = world(preset, seed, switches)
        reuse = chosen if lr is not None or not protocol.lr_per_seed else None
        measured = LESSONS[lesson](ds, int(seed), protocol, reuse, **options)
        row = {"seed": int(seed), **world_stats(ds), **measured}
        chosen = {**row["lr"], **(chosen or {})}  # a rate given is kept; one chosen here is reused
        rows.append(row)
    return {"rows": rows, "summary": summarize(rows, NULL[lesson]), "lr": chosen}


def parse_switch(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, value): the value as JSON (numbers, true/false), else the string."""
    if "=" not in text:
        raise ValueError(f"a world switch is NAME=VALUE (e.g. interest_progression=4), got {text!r}")
    name, raw = text.split("=", 1)
    try:
        return name.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return name.strip(), raw


__all__ = ["TOWERS", "NULL", "Protocol", "Trained", "world", "LESSON_MAX_PRESET", "lesson_preset",
           "mechanism_off", "make_split", "train_selected",
           "quality_on_test", "mean_se", "beyond_noise", "verdict", "topic_mass", "ring_direction_gap",
           "lesson_depth", "fresh_curves", "fresh_lifts", "lesson_fresh", "lesson_labels", "LESSONS",
           "CLASSICAL", "RECENT_DAYS", "lesson_baselines",
           "world_stats", "summarize", "run_lesson", "parse_switch", "check_switches", "SPLIT_KINDS"]
