"""The candidate model against the tuned classical baselines in a chosen simulated world, over seeds.

For each seed: the world (a simulator preset at :func:`~ytrec_lib.data.presets.lesson_sizes`, optionally
with :data:`~ytrec_lib.data.presets.LESSON_WORLD` and more SimConfig switches), its standard next-watch
split (:func:`~ytrec_lib.studies.evaluation.evaluation_task`), and on its test users' recall@100:

* ``popularity``, ``itemknn``, ``rp3b``, ``ease``: the baselines of ``python -m ytrec_lib evaluate``, each
  tuned on the validation users over :data:`~ytrec_lib.studies.evaluation.GRIDS`;
* ``model_d1``, ``model_d3``: the all-features candidate model with a depth-1 / depth-3 tower, and
  ``model_d1_byday``: depth 1 with the example age also one-hot by day (``FeatureSpec.example_age_days``);
  each trained as the lessons train (:func:`~ytrec_lib.studies.lessons.train_selected`: random init, full
  softmax, early stopping and learning rate chosen on validation).

Each seed prints one JSON line; the last line is the mean and standard error over the seeds of every
recall, and each model's ratio to the best baseline. Usage (about 1.5 min a seed at ci on one core)::

    PYTHONPATH=. python scripts/model_vs_baselines.py --preset ci                  # the default world
    PYTHONPATH=. python scripts/model_vs_baselines.py --preset ci --lessons-world
    PYTHONPATH=. python scripts/model_vs_baselines.py --preset ci --lessons-world --set freshness=0
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

from ytrec_lib.data.presets import LESSON_WORLD, lesson_sizes
from ytrec_lib.models import candidate as C
from ytrec_lib.stats import mean_se
from ytrec_lib.studies import evaluation, lessons

BASELINES = ("popularity", "itemknn", "rp3b", "ease")
MODELS = {"model_d1": (1, False), "model_d3": (3, False), "model_d1_byday": (1, True)}
"""name -> (tower depth, example age one-hot by day)."""


def one_seed(preset: str, seed: int, switches: dict[str, Any], protocol: lessons.Protocol) -> dict[str, Any]:
    """Recall@100 on the test users of every baseline and model in the world ``preset`` + ``switches``."""
    t0 = time.perf_counter()
    ds = lessons.world(preset, seed, switches)
    task = evaluation.evaluation_task(ds, seed)
    split, labels = task.split, task.test.labels  # labels (n_test,) int64
    if not np.array_equal(split.test["label"].to_numpy(), labels):
        raise RuntimeError("internal error: the split's test labels differ from the evaluation task's")
    row: dict[str, Any] = {"seed": seed}
    for name in BASELINES:
        ranked, _ = evaluation.rank_model(name, task, seed=seed)  # (n_test, K) int64
        row[name] = evaluation.score_ranking(ranked, labels)["recall@100"]
    for name, (depth, by_day) in MODELS.items():
        days = int(np.ceil(split.train_cutoff)) if by_day else 0
        run = lessons.train_selected(ds, split, "all", lessons.TOWERS[depth], seed, protocol,
                                     example_age_days=days)
        ranked = C.rank_videos(run.model, C.split_examples(run.builder, split, "test"), 100)  # (n_test, 100)
        row[name] = evaluation.score_ranking(ranked, labels)["recall@100"]
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and SE over seeds of each recall; each model's mean over the best baseline's mean."""
    out: dict[str, Any] = {k: mean_se([r[k] for r in rows], single=float("nan"))
                           for k in (*BASELINES, *MODELS)}
    best = max(BASELINES[1:], key=lambda k: out[k][0])  # the strongest of the tuned baselines
    out["best_baseline"] = best
    out["over_best"] = {m: out[m][0] / out[best][0] for m in MODELS}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="ci", help="simulator preset (default ci), at lesson_sizes")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--lessons-world", action="store_true", help="turn LESSON_WORLD's switches on")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a SimConfig switch")
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-2, 3e-3])
    a = ap.parse_args()
    try:
        switches = {**lesson_sizes(a.preset), **(LESSON_WORLD if a.lessons_world else {}),
                    **dict(lessons.parse_switch(s) for s in a.set)}
        lessons.check_switches(switches)
    except ValueError as err:  # an unknown preset or switch: say so, no traceback
        ap.error(str(err))
    torch.set_num_threads(1)
    protocol = lessons.Protocol(lrs=tuple(a.lrs))
    rows = []
    for seed in a.seeds:
        rows.append(one_seed(a.preset, seed, switches, protocol))
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"switches": switches, **summary(rows)}))


if __name__ == "__main__":
    main()
