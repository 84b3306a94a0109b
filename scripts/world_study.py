"""Which properties of the simulated world make the paper's three lessons appear (issue #17, item 2).

For a world (a simulator preset plus :class:`~ytrec_lib.data.presets.SimConfig` switches) and seeds, this
script trains, honestly, the models each lesson compares and prints mean +- standard error over seeds:

* ``depth``  (Fig. 6): MAP@100 of the all-features model at tower depth 3 over depth 0 (recall@100
  of both beside it), and how far each model's predicted topics follow each gender's direction round
  the topic ring (``direction_gap_*``, the planted interaction of ``progression_by_gender``; the
  labels' own gap beside them);
* ``fresh``  (Fig. 4): fresh lift (first two days over second week, :func:`candidate.fresh_lift`) with
  the example-age feature over without it, beside the empirical lift of the training labels; and, as
  notebook 03 reports them, the share of videos under 7 days old in each model's top 100 served to the
  test users at example age 0 and in their next watches (:func:`candidate.served_young_share`);
* ``labels`` (§3.4): recall@100 on the next watch after the cutoff, trained on next-watch labels
  minus trained on randomly held-out labels.

Every model: random init, full softmax, batch 512, at most 20 epochs with early stopping on the
validation users' recall@100 (patience 4), learning rate chosen from ``--lrs`` (default {3e-3, 1e-3})
on validation at the first seed (later seeds reuse it; ``--lr-per-seed``: at every seed), evaluated on
the test users' first ``--n-next`` watches after the cutoff (watched videos excluded). Usage::

    YTREC_DATA_DIR=/tmp/me-data PYTHONPATH=. nice -n 19 python scripts/world_study.py --lesson labels \
        --set n_users=2000 --set n_videos=3000 --set n_creators=400 --set interest_progression=1.5
    ... --lesson fresh --set freshness=3.0 --fresh-tower 256 128 64 --lrs 1e-2 3e-3 1e-3
    ... --lesson depth --set interest_progression=4.0 --set progression_by_gender=true \
        --lrs 1e-2 3e-3 1e-3 --n-next 5 --lr-per-seed --patience 8 --epochs 40

(the sizes make each model train in under a minute on one thread). Each seed prints one JSON line (the
world statistics of ``describe``, each model's metric, the chosen learning rates); the last line is the
mean and standard error over seeds and whether the effect is more than 2 SE from none (ratio 1 for
depth and fresh, difference 0 for labels).

The world is built with ``datasets.load(preset, seed, config=...)`` (not cached), the models with the
package's features, model and trainer (the pipeline takes only preset names).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ytrec_lib.data import datasets, describe, splits
from ytrec_lib.data.presets import preset_config
from ytrec_lib.features import FeatureBuilder, feature_set
from ytrec_lib.models import candidate as C
from ytrec_lib.train import TrainConfig, fit

LRS = (3e-3, 1e-3)
TOWERS = {0: (), 3: (256, 128, 64)}
AGE_DAYS = 14


@dataclass
class Trained:
    """A model trained with the learning rate its validation recall chose, and its feature builder."""

    model: C.CandidateModel
    builder: FeatureBuilder
    lr: float
    val_recall: float
    epochs: int
    seconds: float


def world(preset: str, seed: int, switches: dict[str, Any]) -> Any:
    """The dataset of ``preset`` with the SimConfig ``switches`` (generated, not cached)."""
    return datasets.load(preset, seed, config=preset_config(preset, **switches), progress=False)


N_NEXT = 1
"""Labels per validation and test user: their first ``N_NEXT`` watches after the cutoff (``--n-next``)."""


def make_split(ds: Any, kind: str, seed: int) -> splits.Split:
    """The next-watch split, or the held-out-label split with the same validation and test users."""
    make = splits.heldout_watch_split if kind == "heldout" else splits.next_watch_split
    return make(ds, seed=seed, n_next=N_NEXT)


PATIENCE, EPOCHS = 4, 0
"""Early-stopping patience and the epoch cap (0: each lesson's own, 20) of every model (``--patience``,
``--epochs``)."""
LR_CHOICE: dict[str, float] = {}
"""The learning rate each model chose on validation at the first seed (the later seeds reuse it)."""
EPOCHS_RUN: dict[str, int] = {}
"""Epochs each model ran at the last seed (early stopping; at most ``epochs``)."""


def train(ds: Any, split: splits.Split, features: str, tower: tuple[int, ...], seed: int,
          example_age: bool | None = None, epochs: int = 20, name: str = "") -> Trained:
    """Random-init candidate model, full softmax, early stopping (patience 4). The learning rate is
    chosen from :data:`LRS` on validation the first time a model ``name`` trains (:data:`LR_CHOICE`)."""
    spec = feature_set(features)
    if example_age is not None:
        spec = feature_set(features, example_age=example_age)
    builder = FeatureBuilder.from_dataset(ds, spec, window=(0.0, split.train_cutoff))
    tr = C.split_examples(builder, split, "train")
    va = C.split_examples(builder, split, "valid")
    y_tr, y_va = split.train["label"].to_numpy(), split.valid["label"].to_numpy()
    best: Trained | None = None
    for lr in [LR_CHOICE[name]] if name in LR_CHOICE else LRS:
        t0 = time.perf_counter()
        model = C.CandidateModel(ds.n_videos, int(ds.meta["n_tokens"]), int(ds.meta["n_regions"]),
                                 tower=tower, spec=spec, seed=seed)
        cfg = TrainConfig(loss="full", epochs=EPOCHS or epochs, batch_size=512, lr=lr, patience=PATIENCE,
                          seed=seed)
        hist = fit(model, tr, y_tr, cfg, val=(va, y_va), progress=False)
        run = Trained(model, builder, lr, hist.best_val_recall, len(hist.epochs), time.perf_counter() - t0)
        if best is None or run.val_recall > best.val_recall:
            best = run
    assert best is not None
    LR_CHOICE[name], EPOCHS_RUN[name] = best.lr, best.epochs
    return best


def quality_on_test(run: Trained, split: splits.Split) -> dict[str, float]:
    """recall@K and MAP@100 of ``run`` on the split's test users (watched videos excluded)."""
    feats = C.split_examples(run.builder, split, "test")
    ranked = C.rank_videos(run.model, feats, 200)
    return C.ranking_quality(ranked, split.test["label"].to_numpy(), (10, 100))


def fresh_lifts(ds: Any, split: splits.Split, runs: dict[str, Trained], seed: int) -> dict[str, float]:
    """Fresh lift (first two days / second week) of each model and of the training labels (empirical),
    on 3000 sampled training examples, as notebook 03 measures it."""
    upload = ds.videos["upload_time"].to_numpy()
    cutoff = split.train_cutoff
    in_log = (upload >= 0) & (upload < cutoff)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(split.train), min(3000, len(split.train)), replace=False))
    users, times, labels = (split.train[c].to_numpy()[sample] for c in ("user_id", "time", "label"))
    label_age = times - upload[labels]
    ok = (label_age >= 0) & (label_age < AGE_DAYS) & in_log[labels]
    out, pairs = {}, None
    for name, run in runs.items():
        curve, pairs = C.probability_by_age(run, users, times, upload, in_log, cutoff, AGE_DAYS)
        out[name] = C.fresh_lift(curve)
    emp = np.bincount(label_age[ok].astype(int), minlength=AGE_DAYS) / np.maximum(pairs, 1)
    out["empirical"] = C.fresh_lift(emp)
    return out


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


def ring_direction_gap(ds: Any, split: splits.Split, mass: np.ndarray) -> float:
    """Does a prediction follow each gender's direction round the topic ring (a planted history x gender
    interaction, ``progression_by_gender``)? Per test example, ``sum_t mass[t] * (h[t-1] - h[t+1])``
    with ``h`` the user's topic shares before the cutoff and ``mass`` (n_test, n_topics) the predicted
    (or the label's one-hot) topic distribution; returns its mean over gender-1 users minus gender-0."""
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


def lesson_depth(ds: Any, seed: int) -> dict[str, float]:
    """Fig. 6: test MAP@100 of all features at depth 0 and 3; effect = depth 3 over depth 0."""
    split = make_split(ds, "next_watch", seed)
    runs = {d: train(ds, split, "all", t, seed, name=f"depth{d}") for d, t in TOWERS.items()}
    q = {d: quality_on_test(run, split) for d, run in runs.items()}
    topic, n_t = ds.videos["topic"].to_numpy(), int(ds.meta["n_topics"])
    gaps = {f"direction_gap_depth{d}": ring_direction_gap(ds, split, topic_mass(run, split, topic, n_t))
            for d, run in runs.items()}
    gaps["direction_gap_labels"] = ring_direction_gap(ds, split, np.eye(n_t)[topic[split.test["label"]]])
    return {**gaps, "recall100_depth0": q[0]["recall@100"], "recall100_depth3": q[3]["recall@100"],
            "map_depth0": q[0]["MAP@100"], "map_depth3": q[3]["MAP@100"],
            "effect": q[3]["MAP@100"] / q[0]["MAP@100"]}


FRESH_TOWER: tuple[int, ...] = (64,)
"""The tower of the Fig. 4 models (``--fresh-tower``; default depth 1)."""


def lesson_fresh(ds: Any, seed: int) -> dict[str, float]:
    """Fig. 4: fresh lift with and without example age (tower :data:`FRESH_TOWER`); effect = with over
    without."""
    split = make_split(ds, "next_watch", seed)
    runs = {name: train(ds, split, "all", FRESH_TOWER, seed, example_age=on, name=name)
            for name, on in (("with", True), ("without", False))}
    lifts = fresh_lifts(ds, split, runs, seed)
    upload = ds.videos["upload_time"].to_numpy()
    users, times, labels = (split.test[c].to_numpy() for c in ("user_id", "time", "label"))
    shares = {f"fresh_share_top100_{name}_example_age": C.served_young_share(run, users, times, upload)
              for name, run in runs.items()}  # notebook 03's serving shares, example age 0
    return {"lift_with": lifts["with"], "lift_without": lifts["without"],
            "lift_empirical": lifts["empirical"], "effect": lifts["with"] / lifts["without"], **shares,
            "fresh_share_next_watch": C.young_share(labels, times, upload)}


LABELS_EXAMPLE_AGE: bool | None = None
"""The example-age switch of the §3.4 models (None: the feature set's own, on; ``--labels-no-example-age``
turns it off to test whether the gap comes through it)."""


def lesson_labels(ds: Any, seed: int) -> dict[str, float]:
    """§3.4: test recall@100 trained on next-watch minus held-out labels (depth 1)."""
    rec = {}
    for kind in ("next_watch", "heldout"):
        split = make_split(ds, kind, seed)
        run = train(ds, split, "all", (64,), seed, LABELS_EXAMPLE_AGE, name=kind)
        rec[kind] = quality_on_test(run, split)["recall@100"]
    return {"recall_next": rec["next_watch"], "recall_heldout": rec["heldout"],
            "effect": rec["next_watch"] - rec["heldout"]}


LESSONS = {"depth": lesson_depth, "fresh": lesson_fresh, "labels": lesson_labels}


def world_stats(ds: Any) -> dict[str, float]:
    """The world statistics of :mod:`ytrec_lib.data.describe` that measure each property's strength."""
    return {"fresh_watch_lift": describe.fresh_watch_lift(ds),
            "topic_flow_asymmetry": describe.topic_flow_asymmetry(ds),
            "interaction_gain": describe.demographic_interaction_gain(ds)["gain"],
            "ring_flow_gender_gap": describe.ring_flow_gender_gap(ds)}


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (ddof 1) of ``values``."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan")


def parse_value(text: str) -> Any:
    """A switch value from the command line: JSON (numbers, true/false), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    global LABELS_EXAMPLE_AGE, LRS, N_NEXT, FRESH_TOWER, PATIENCE, EPOCHS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lesson", choices=sorted(LESSONS), required=True)
    p.add_argument("--preset", default="ci")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a SimConfig switch of the world (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fresh-tower", type=int, nargs="+", default=list(FRESH_TOWER),
                   help="fresh lesson: the tower widths of both models")
    p.add_argument("--lr-per-seed", action="store_true",
                   help="choose each model's learning rate on validation at every seed (default: first seed)")
    p.add_argument("--patience", type=int, default=PATIENCE, help="early-stopping patience (epochs)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="epoch cap (0: 20)")
    p.add_argument("--n-next", type=int, default=1,
                   help="labels per validation/test user: the first N watches after the cutoff")
    p.add_argument("--lrs", type=float, nargs="+", default=list(LRS),
                   help="learning rates each model chooses from on validation at the first seed")
    p.add_argument("--labels-no-example-age", action="store_true",
                   help="labels lesson: train both models without the example-age feature")
    args = p.parse_args()
    LABELS_EXAMPLE_AGE = False if args.labels_no_example_age else None
    LRS, N_NEXT, FRESH_TOWER = tuple(args.lrs), args.n_next, tuple(args.fresh_tower)
    PATIENCE, EPOCHS = args.patience, args.epochs
    torch.set_num_threads(args.threads)
    switches = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    rows = []
    for seed in args.seeds:
        if args.lr_per_seed:
            LR_CHOICE.clear()
        t0 = time.perf_counter()
        ds = world(args.preset, seed, switches)
        row = {**world_stats(ds), **LESSONS[args.lesson](ds, seed)}
        rows.append(row)
        print(json.dumps({"seed": seed, "seconds": round(time.perf_counter() - t0, 1), "lr": LR_CHOICE,
                          "epochs": EPOCHS_RUN,
                          **row}), flush=True)
    summary = {k: mean_se([r[k] for r in rows]) for k in rows[0]}
    m, se = summary["effect"]
    null = 1.0 if args.lesson in ("depth", "fresh") else 0.0
    print(json.dumps({"lesson": args.lesson, "preset": args.preset, "switches": switches, "lrs": LRS,
                      "n_next": N_NEXT, "fresh_tower": FRESH_TOWER, "lr_per_seed": args.lr_per_seed,
                      "patience": PATIENCE, "epochs": EPOCHS or 20,
                      "summary": {k: [round(a, 5), round(b, 5)] for k, (a, b) in summary.items()},
                      "beyond_2se": bool(abs(m - null) > 2 * se)}))


if __name__ == "__main__":
    main()
