"""The standard offline protocol: every model on one split, all items ranked, training items excluded.

``python -m ytrec_lib evaluate --preset NAME`` drives :func:`evaluate`:

* the split: per-user leave-last-out (:func:`ytrec_lib.data.splits.leave_last_out_split`) on real
  datasets, the simulator's temporal :func:`~ytrec_lib.data.splits.next_watch_split` otherwise;
* every model is fitted on the training watches only, its hyperparameters chosen from a small grid
  (:data:`GRIDS`) by recall@100 on the validation examples (:func:`ytrec_lib.models.baselines.tune`);
* each test example ranks all videos, minus the user's earlier watches (its history), and is scored
  by recall@10/50/100 and NDCG@10 (one label per user, so the standard error is over users; with
  several seeds, the mean of per-seed means and the standard error across seeds).

A query's history is every earlier watch of the user: for leave-last-out, the training watches
(``valid``) plus the validation watch (``test``); for the simulator, every watch before the
example's time (all before the cutoff). Popularity and the item-item models are fitted on all
training watches; in leave-last-out these include other users' watches after a test example's time
(the protocol has no global cutoff, as in the literature).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ytrec_lib import metrics
from ytrec_lib.data import splits
from ytrec_lib.models import baselines as B
from ytrec_lib.progress import tqdm
from ytrec_lib.stats import standard_error

__all__ = ["MODELS", "CLASSICAL", "GRIDS", "Queries", "Task", "evaluate", "evaluation_task", "format_table",
           "parse_models", "parse_params", "rank_model", "run_model", "score_ranking", "standing",
           "summary_sentence", "STRONG_BASELINES", "TUNED", "ease_skip_reason", "tuned_baselines",
           "tuned_model"]

MODELS = ("popularity", "itemknn", "rp3b", "ease", "item2vec_avg", "candidate")
"""Every model :func:`evaluate` knows, in the order it runs them."""

CLASSICAL = ("popularity", "itemknn", "rp3b", "ease", "item2vec_avg")
"""The models :func:`standing` compares the candidate model with by default (all but the deep one)."""

GRIDS: dict[str, tuple[Any, ...]] = {
    "itemknn.n_neighbors": (20, 50, 200, 500), "itemknn.n_recent": (10, 20, None),
    "itemknn.shrink": (0, 10, 50, 200),
    "rp3b.alpha": (0.5, 1.0), "rp3b.beta": (0.0, 0.3, 0.6), "rp3b.n_neighbors": (50, 200),
    "ease.lam": (10.0, 100.0, 300.0, 1000.0, 5000.0),
    "item2vec_avg.dim": (32,),
    "tune.k": (100,),
}
"""The default hyperparameter grids, ``model.knob``: every value is tried on validation (``tune.k``: the
recall cut-off they are chosen by, the cut-off the candidate model early-stops by; ties go to the
earlier point). ``candidate.<CandidateConfig field>`` takes one value. On MovieLens-100K item-kNN's
and EASE's choices lie inside their grids (item-kNN's shrink at 0, the plain cosine), RP3beta's on its
edges but above every neighbour a wider search tried (docs/evaluation.md)."""

CUTOFFS = (10, 50, 100)
"""The recall cut-offs; NDCG is reported at 10."""

COMPARE_METRIC = "recall@100"
"""The metric of the summary: the candidate model against every other model (issue #18's criterion)."""


@dataclass
class Queries:
    """Evaluation examples, one per user: ``users`` (n,) int64, ``labels`` (n,) int64 held-out videos,
    ``histories`` n int64 arrays of the user's earlier watches (oldest first; excluded from ranking)."""

    users: np.ndarray
    labels: np.ndarray
    histories: list[np.ndarray]

    def take(self, idx: np.ndarray) -> Queries:
        """The queries at positions ``idx`` (m,) int64, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        return Queries(self.users[idx], self.labels[idx], [self.histories[i] for i in idx])


@dataclass
class Task:
    """What every model is given: ``watches`` (user, video, time) arrays of the training log,
    ``n_videos``, ``valid`` / ``test`` :class:`Queries`, the ``split``, the dataset ``view`` holding
    only training data (:func:`ytrec_lib.data.splits.training_view`), the split's ``sizes`` and the
    ``depth`` of each test ranking (videos per query, at most the catalogue)."""

    watches: tuple[np.ndarray, np.ndarray, np.ndarray]
    n_videos: int
    valid: Queries
    test: Queries
    split: splits.Split
    view: Any
    sizes: dict[str, int]
    depth: int = max(CUTOFFS)


# ----------------------------------------------------------------------------------------------------
# The task: split, training log, queries
# ----------------------------------------------------------------------------------------------------


def _grouped(users: np.ndarray, videos: np.ndarray, query_users: np.ndarray) -> list[np.ndarray]:
    """Each query user's videos, in log order; ``users`` (m,) sorted ascending, ``videos`` (m,)."""
    lo, hi = np.searchsorted(users, query_users, "left"), np.searchsorted(users, query_users, "right")
    return [videos[a:b] for a, b in zip(lo, hi, strict=True)]


def _leave_last_out_task(sp: splits.LeaveLastOutSplit) -> tuple[tuple, Queries, Queries]:
    tr, va, te = sp.train, sp.valid, sp.test
    watches = (tr["user_id"].to_numpy(), tr["label"].to_numpy(), tr["time"].to_numpy())
    users, labels = va["user_id"].to_numpy(), va["label"].to_numpy()
    if not np.array_equal(users, te["user_id"].to_numpy()):
        raise RuntimeError("internal error: leave-last-out valid and test users differ")
    hist = _grouped(watches[0], watches[1], users)
    valid = Queries(users, labels, hist)
    test_hist = [np.append(h, y) for h, y in zip(hist, labels, strict=True)]  # + the validation watch
    test = Queries(users, te["label"].to_numpy(), test_hist)
    return watches, valid, test


def _next_watch_queries(ds: Any, part: Any) -> Queries:
    users, times = part["user_id"].to_numpy(), part["time"].to_numpy()
    h = splits.history(ds, users, times, max_watches=np.iinfo(np.int32).max, max_tokens=0)
    return Queries(users, part["label"].to_numpy(), np.split(h.watch_ids, h.watch_offsets[1:-1]))


def _next_watch_task(ds: Any, sp: splits.Split) -> tuple[tuple, Queries, Queries]:
    before = splits.training_watches(ds, sp)
    watches = tuple(before[c].to_numpy() for c in ("user_id", "video_id", "time"))
    return watches, _next_watch_queries(ds, sp.valid), _next_watch_queries(ds, sp.test)


def evaluation_task(ds: Any, seed: int = 0) -> Task:
    """The standard split of ``ds`` (:func:`ytrec_lib.data.splits.default_split`: leave-last-out for a
    real dataset, next-watch for the simulator) as a :class:`Task`. ``sizes['empty_history_share']``:
    the share of test users with no training watch before their test example
    (:func:`ytrec_lib.data.splits.empty_history_share`)."""
    sp = splits.default_split(ds, seed=seed)
    if isinstance(sp, splits.LeaveLastOutSplit):
        watches, valid, test = _leave_last_out_task(sp)
    else:
        watches, valid, test = _next_watch_task(ds, sp)
    sizes = {"users": int(np.unique(ds.watches()["user_id"]).size), "items": int(ds.n_videos),
             "train": len(sp.train), "train_watches": int(watches[0].size), "valid": len(sp.valid),
             "test": len(sp.test), "short_users": int(getattr(sp, "short_users", np.zeros(0)).size),
             "empty_history_share": splits.empty_history_share(sp)}
    return Task(watches, int(ds.n_videos), valid, test, sp, splits.training_view(ds, sp), sizes)


# ----------------------------------------------------------------------------------------------------
# Models: each returns (ranked (n_test, K) int64, chosen params)
# ----------------------------------------------------------------------------------------------------


def _depth(task: Task) -> int:
    return min(task.depth, task.n_videos)


def _grid(params: dict[str, tuple], model: str) -> dict[str, tuple]:
    return {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(model + ".")}


TUNED: dict[str, type[B.Baseline]] = {"itemknn": B.ItemKNN, "rp3b": B.RP3beta, "ease": B.EASE}
"""The models whose knobs are chosen on validation: name -> class of :mod:`ytrec_lib.models.baselines`."""

STRONG_BASELINES: dict[str, str] = {"itemknn_tuned": "itemknn", "rp3b": "rp3b", "ease": "ease"}
"""The classical baselines the notebooks compare with, by the names they record: name -> model."""


def tuned_model(name: str, task: Task, params: dict, progress: bool = False) -> B.Tuned:
    """Model ``name`` of :data:`TUNED` fitted on ``task.watches`` with its knobs (``params``' grid
    ``name.knob``) chosen by recall@``tune.k`` on ``task.valid``; the choice is cached by
    :func:`ytrec_lib.pipeline.tuned_baseline`, so a split is tuned once for every notebook."""
    from ytrec_lib import pipeline

    v = task.valid
    return pipeline.tuned_baseline(TUNED[name], _grid(params, name), task.watches, task.n_videos, v.users,
                                   v.histories, v.labels, k=min(int(params["tune.k"][0]), task.n_videos),
                                   progress=progress)


def ease_skip_reason(task: Task) -> str | None:
    """Why EASE cannot run on ``task`` (its dense matrix over the training log's videos is past
    ``EASE.max_items``), or None."""
    n_items, cap = np.unique(task.watches[1]).size, B.EASE().max_items
    if n_items <= cap:
        return None
    gib = n_items**2 * 8 / 2**30
    return (f"EASE needs a dense {n_items:,} x {n_items:,} float64 matrix ({gib:.1f} GiB); "
            f"the cap is {cap:,} videos")


def tuned_baselines(task: Task, users: np.ndarray, k: int, grids: dict[str, Sequence[Any]], *,
                    times: float | np.ndarray | None = None, histories: Sequence[np.ndarray] | None = None
                    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]], dict[str, str]]:
    """The :data:`STRONG_BASELINES` (:func:`tuned_model`), each asked for the top ``k`` of ``users``
    (n,) int64 at ``times`` with ``histories`` (see ``Baseline.recommend``). ``grids``:
    ``"model.knob" -> values`` plus ``"tune.k"`` (e.g. :data:`GRIDS`). Returns ``(lists, params,
    skipped)``: name -> (n, k) int64, name -> the chosen knobs, name -> why it did not run (EASE past
    its cap, :func:`ease_skip_reason`)."""
    lists: dict[str, np.ndarray] = {}
    params: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name, model in STRONG_BASELINES.items():
        why = ease_skip_reason(task) if model == "ease" else None
        if why:
            skipped[name] = why
            continue
        tuned = tuned_model(model, task, dict(grids))
        lists[name] = tuned.model.recommend(users, k, times=times, histories=histories)
        params[name] = tuned.params
    return lists, params, skipped


def _tuned(name: str, task: Task, params: dict, progress: bool) -> tuple[np.ndarray, dict]:
    tuned = tuned_model(name, task, params, progress)
    ranked = tuned.model.recommend(task.test.users, _depth(task), histories=task.test.histories)
    return ranked, tuned.params


def _popularity(task: Task, params: dict, seed: int, progress: bool) -> tuple[np.ndarray, dict]:
    model = B.MostPopular().fit(task.watches, n_videos=task.n_videos)
    return model.recommend(task.test.users, _depth(task), histories=task.test.histories), {}


def _item2vec_avg(task: Task, params: dict, seed: int, progress: bool) -> tuple[np.ndarray, dict]:
    from ytrec_lib import pipeline

    dim = int(params["item2vec_avg.dim"][0])
    vectors = pipeline.pretrained_embeddings(task.view, "videos", dim=dim, seed=seed, cache=False,
                                             progress=progress)  # (V, dim) float32
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    q = task.test
    users = np.stack([unit[h].mean(axis=0) if h.size else np.zeros(dim) for h in q.histories])  # (n, dim)
    scores = users @ unit.T  # (n, V) cosine up to each user's norm
    return metrics.top_k(scores, _depth(task), exclude=q.histories), {"dim": dim}


class CandidateUnsupported(ValueError):
    """The candidate model has no run on this split."""


def _candidate(task: Task, params: dict, seed: int, progress: bool, preset: str = ""
               ) -> tuple[np.ndarray, dict]:
    """The pipeline's candidate model (:func:`ytrec_lib.pipeline.candidate_model`), trained on the very
    split evaluated here: ``next_watch_split(ds, seed=seed)`` on a simulator preset, the leave-last-out
    split on a real dataset (with :data:`ytrec_lib.pipeline.REAL_CANDIDATE_DEFAULTS`). Early stopping uses
    the validation examples only; each test example ranks every video minus the query's history (the
    same exclusions as the baselines)."""
    from ytrec_lib import pipeline
    from ytrec_lib.models import candidate as C

    if task.split.kind not in ("next_watch", "leave_last_out"):
        raise CandidateUnsupported(f"candidate: not supported on the {task.split.kind} split")
    overrides = {k: v[0] for k, v in _grid(params, "candidate").items()}
    run = pipeline.candidate_model(preset, seed, progress=progress, **overrides)
    if run.split.kind != task.split.kind or not np.array_equal(run.labels("test"), task.test.labels):
        raise RuntimeError("internal error: the candidate model's test split differs from the evaluation's")
    if task.split.kind == "next_watch":
        ranked = C.rank_videos(run.model, run.examples("test"), _depth(task), progress=progress)
    else:
        ranked = _rank_excluding(run.model, run.examples("test"), task.test.histories, _depth(task))
    best = max((e["val_recall"] for e in run.history), default=float("nan"))
    return ranked, {**overrides, "train_seconds": round(run.train_seconds, 3), "from_cache": run.from_cache,
                    "epochs_run": len(run.history), "valid_recall@100": round(float(best), 4)}


def _rank_excluding(model: Any, feats: Any, histories: list[np.ndarray], k: int,
                    batch_size: int = 1024) -> np.ndarray:
    """Top-``k`` videos (n, k) int64 of ``model`` for ``feats``, each row skipping ``histories[i]``."""
    import torch

    out = np.empty((len(feats), min(k, model.n_videos)), dtype=np.int64)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(feats), batch_size):
            idx = np.arange(start, min(start + batch_size, len(feats)))
            scores = model(feats.batch(idx)).numpy()  # (B, V)
            out[idx] = metrics.top_k(scores, out.shape[1], exclude=[histories[i] for i in idx])
    return out


RUNNERS: dict[str, Callable[..., tuple[np.ndarray, dict]]] = {
    "popularity": _popularity,
    **{name: (lambda t, p, s, g, name=name: _tuned(name, t, p, g)) for name in TUNED},
    "item2vec_avg": _item2vec_avg,
}


def _scores(ranked: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-user metrics: name -> (n,) float64. Cut-offs beyond the catalogue rank every item."""
    width = ranked.shape[1]
    out = {f"recall@{k}": metrics.recall_at_k(ranked, labels, min(k, width), average=False) for k in CUTOFFS}
    out["ndcg@10"] = metrics.ndcg_at_k(ranked, labels, min(10, width), average=False)
    return out


def rank_model(name: str, task: Task, params: dict[str, tuple] | None = None, seed: int = 0,
               preset: str = "", progress: bool = False) -> tuple[np.ndarray, dict]:
    """One model of :data:`MODELS` fitted (and tuned on ``task.valid``) as :func:`evaluate` does:
    ``(ranked, chosen)``, the test queries' top videos (n_test, min(task.depth, n_videos)) int64 with
    their histories excluded, and the chosen hyperparameters. ``params``: the grids (default
    :data:`GRIDS`). ``CandidateUnsupported`` for the candidate model on a split it has no run on."""
    params = params if params is not None else dict(GRIDS)
    if name == "candidate":
        return _candidate(task, params, seed, progress, preset)
    if name not in RUNNERS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    return RUNNERS[name](task, params, seed, progress)


def _run(name: str, task: Task, params: dict[str, tuple], seed: int, preset: str, progress: bool
         ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """:func:`run_model` and the per-user metrics it averaged (name -> (n_test,) float64; empty when
    skipped)."""
    t0 = time.perf_counter()
    try:
        ranked, chosen = rank_model(name, task, params, seed, preset, progress)
    except CandidateUnsupported as err:
        return {"skipped": str(err)}, {}
    seconds = time.perf_counter() - t0
    per_user = _scores(ranked, task.test.labels)
    return {**_summarise(per_user), "seconds": round(seconds, 3), "params": chosen}, per_user


def run_model(name: str, task: Task, params: dict[str, tuple], seed: int = 0, preset: str = "",
              progress: bool = False) -> dict[str, Any]:
    """One model on one task: ``{metric: mean, metric_se: SE over users, "seconds": s, "params": {...}}``
    (``seconds``: fitting, tuning and scoring), or ``{"skipped": reason}`` for an unsupported model."""
    return _run(name, task, params, seed, preset, progress)[0]


def _summarise(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """``{metric: mean over rows, metric + "_se": standard error over rows}`` (0 for one row)."""
    out: dict[str, float] = {}
    for metric, values in per_user.items():
        out[metric] = float(values.mean())
        out[f"{metric}_se"] = standard_error(values)
    return out


def score_ranking(ranked: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """recall@10/50/100 and NDCG@10 of ``ranked`` (n, K) int64 against one label per row ``labels``
    (n,) int64: ``{metric: mean over rows, metric + "_se": standard error over rows}`` (0 for one row)."""
    return _summarise(_scores(ranked, labels))


# ----------------------------------------------------------------------------------------------------
# Parameters, the whole evaluation, the table
# ----------------------------------------------------------------------------------------------------


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("none", "null", "all"):
        return None
    for kind in (int, float):
        try:
            return kind(low)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(low, text.strip())


def _candidate_fields() -> list[str]:
    from ytrec_lib.pipeline import CandidateConfig

    return [f"candidate.{f.name}" for f in fields(CandidateConfig)]


def parse_params(items: Sequence[str] | None) -> dict[str, tuple]:
    """``["ease.lam=10,100", "rp3b.beta=0.5"]`` -> the grids with those replaced (values: int, float,
    None via "none", true/false, else text). ``ValueError`` naming the valid names for an unknown one."""
    out = dict(GRIDS)
    for item in items or ():
        name, sep, text = item.partition("=")
        name = name.strip()
        valid = [*GRIDS, "candidate.<CandidateConfig field>"]
        if not sep or not text.strip():
            raise ValueError(f"--param {item!r} is not NAME=VALUE[,VALUE...]; valid names: "
                             f"{', '.join(valid)}")
        if name not in GRIDS and name not in _candidate_fields():
            raise ValueError(f"unknown --param {name!r}; valid names: {', '.join(valid)}")
        out[name] = tuple(_value(v) for v in text.split(","))
    return out


def parse_models(text: str | None) -> list[str]:
    """``"popularity,ease"`` -> ``["popularity", "ease"]`` (None: all of :data:`MODELS`); ``ValueError``
    listing the valid names for an unknown one."""
    names = list(MODELS) if text is None else [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in MODELS]
    if bad or not names:
        raise ValueError(f"unknown model(s) {', '.join(bad) or '(none given)'}; valid: {', '.join(MODELS)}")
    return names


def _combine(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of per-seed means and the SE across seeds (one seed: its SE over users)."""
    if len(per_seed) == 1 or "skipped" in per_seed[0]:
        return per_seed[0]
    out: dict[str, Any] = {}
    for key in per_seed[0]:
        if key.endswith("_se") or key == "params":
            continue
        vals = np.array([r[key] for r in per_seed], dtype=np.float64)
        same = bool((vals == vals[0]).all())  # a model fitted once: exactly its value, SE exactly 0
        out[key] = float(vals[0] if same else vals.mean())
        if key != "seconds":
            out[f"{key}_se"] = 0.0 if same else standard_error(vals)
    out["params"] = [r["params"] for r in per_seed]
    return out


def _difference(a: list[np.ndarray], b: list[np.ndarray]) -> dict[str, float | None]:
    """Model a minus model b on the same test examples; ``a``, ``b``: per seed, (n,) float64 per-user values.

    ``difference``: the mean over seeds of the per-seed difference of means; ``se_seeds``: its SE across
    seeds (0 for one seed); ``se_users``: the SE over users of the paired per-user difference, averaged
    over seeds (at least the SE of the seed mean whether or not the seeds share their test users);
    ``se``: both combined, ``sqrt(se_seeds² + se_users²)``; ``z``: ``difference / se`` (None when se is 0).
    """
    per_seed = np.array([x.mean() - y.mean() for x, y in zip(a, b, strict=True)])  # (S,)
    se_seeds = standard_error(per_seed)
    se_users = float(np.mean([standard_error(x - y) for x, y in zip(a, b, strict=True)]))
    diff, se = float(per_seed.mean()), float(np.hypot(se_seeds, se_users))
    return {"difference": diff, "se": se, "se_seeds": se_seeds, "se_users": se_users,
            "z": diff / se if se > 0 else None}


NAMES = {"popularity": "popularity", "itemknn": "tuned item-kNN", "rp3b": "tuned RP3beta",
         "ease": "tuned EASE", "item2vec_avg": "the item2vec average", "candidate": "the candidate model"}
"""How the generated sentences name each model."""


def _verdict(z: float | None) -> str:
    if z is None:
        return "no spread to judge by"
    return "above" if z >= 2 else "below" if z <= -2 else "within 2 SEs, no difference claimed"


def summary_sentence(result: dict[str, Any], metric: str = COMPARE_METRIC) -> str:
    """One sentence, generated from ``result["summary"]``: where the candidate model stands against each
    other model at ``metric`` (above / below beyond 2 SEs of the difference, else within)."""
    c, seeds = result["candidate"], result["split"]["seeds"]
    parts = []
    for name, d in result["summary"]["candidate_vs"].items():
        r, z = result[name], d["z"]
        sigmas = f"{z:+.1f} SEs" if z is not None else "SE 0"
        parts.append(f"{d['difference']:+.4f} against {NAMES[name]}'s {r[metric]:.4f} ± "
                     f"{r[metric + '_se']:.4f} ({sigmas}: {_verdict(z)})")
    over = f"over {seeds} seeds" if seeds > 1 else "over test users, one seed"
    head = f"The candidate model's {metric} is {c[metric]:.4f} ± {c[metric + '_se']:.4f} (mean ± SE {over})"
    return (head + ": " + "; ".join(parts) + ". Each SE is that of the difference, across seeds and over "
            "the paired test users combined.")


def _summary(per_user: dict[str, list[dict[str, np.ndarray]]], metric: str = COMPARE_METRIC
             ) -> dict[str, Any] | None:
    """The candidate model against every other model that ran (None without a candidate run or another
    model): ``{"metric": metric, "candidate_vs": {name: _difference(...)}}``."""
    if not per_user.get("candidate") or not per_user["candidate"][0]:
        return None
    cand = [p[metric] for p in per_user["candidate"]]
    others = {name: [p[metric] for p in runs] for name, runs in per_user.items()
              if name != "candidate" and runs and runs[0]}
    if not others:
        return None
    return {"metric": metric, "candidate_vs": {n: _difference(cand, o) for n, o in others.items()}}


SEEDLESS = ("popularity", "itemknn", "rp3b", "ease")
"""The models that take no seed: on the very task of the previous seed they give the same result, so
:func:`evaluate` fits them once (real data: the leave-last-out split does not depend on the seed)."""


def _same_task(a: Task | None, b: Task) -> bool:
    """Whether ``b`` holds the very training log, queries and histories of ``a``."""
    if a is None or a.n_videos != b.n_videos:
        return False
    pairs = [*zip(a.watches, b.watches, strict=True)]
    for qa, qb in ((a.valid, b.valid), (a.test, b.test)):
        if len(qa.histories) != len(qb.histories):
            return False
        pairs += [(qa.users, qb.users), (qa.labels, qb.labels), *zip(qa.histories, qb.histories, strict=True)]
    return all(np.array_equal(x, y) for x, y in pairs)


def _seed_runs(preset: str, models: list[str], seeds: list[int], params: dict[str, tuple], progress: bool
               ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, np.ndarray]]], dict]:
    """Every model on every seed's task: per model, the per-seed summaries and per-user metrics, and the
    first seed's split sizes with ``same_split_every_seed``."""
    from ytrec_lib import pipeline

    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
    per_user: dict[str, list[dict[str, np.ndarray]]] = {m: [] for m in models}
    sizes: dict[str, Any] = {}
    prev: Task | None = None
    for seed in seeds:
        task = evaluation_task(pipeline.dataset(preset, seed, progress=progress), seed)
        same = _same_task(prev, task)
        sizes = sizes or {"kind": task.split.kind, **task.sizes, "same_split_every_seed": True}
        sizes["same_split_every_seed"] &= same or prev is None
        for name in tqdm(models, desc=f"evaluate seed {seed}", disable=not progress):
            done = same and name in SEEDLESS
            summary, values = ((runs[name][-1], per_user[name][-1]) if done else
                               _run(name, task, params, seed, preset, progress))
            runs[name].append(summary)
            per_user[name].append(values)
        prev = task
    return runs, per_user, sizes


def evaluate(preset: str, models: Sequence[str] | None = None, seeds: int = 1,
             params: dict[str, tuple] | None = None, progress: bool = True, first_seed: int = 0
             ) -> dict[str, Any]:
    """Every model of ``models`` on ``preset`` for seeds ``first_seed .. first_seed + seeds - 1``: the
    JSON object ``{model: {metric: value, metric_se: value, ..., "seconds": s, "params": ...},
    "split": sizes}`` (``split``: the first seed's sizes, ``seeds`` and ``same_split_every_seed``: then
    the models of :data:`SEEDLESS` are fitted once, and their SE across seeds is 0), and, when the
    candidate model ran beside others, ``"summary"``: its recall@100 against each (:func:`_difference`)
    and the ``sentence`` of :func:`summary_sentence`."""
    models = parse_models(",".join(models)) if models is not None else list(MODELS)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    params = params if params is not None else dict(GRIDS)
    seed_list = list(range(int(first_seed), int(first_seed) + seeds))
    runs, per_user, sizes = _seed_runs(preset, models, seed_list, params, progress)
    result = {**{m: _combine(r) for m, r in runs.items()}, "split": {**sizes, "seeds": seeds}}
    summary = _summary(per_user)
    if summary is not None:
        result["summary"] = summary
        result["summary"]["sentence"] = summary_sentence(result)
    return result


HISTORY_FALLBACK = {"itemknn": "popularity order", "rp3b": "popularity order", "ease": "item id order",
                    "item2vec_avg": "item id order", "candidate": "its side features only"}
"""What each model ranks by for a query with an empty history (the candidate model keeps its
demographic and example-age inputs; a model that sums over the history scores every item 0)."""


def _split_notes(result: dict[str, Any]) -> list[str]:
    """Users not scored, test users with an empty history, models fitted once for all seeds."""
    s, lines = result["split"], []
    if s["kind"] == "leave_last_out":
        lines.append(f"Short histories: {s['short_users']:,} of {s['users']:,} users have fewer than 3 "
                     "different videos; their watches train every model, they have no validation or test "
                     "example and are not in the table.")
    if s["empty_history_share"] > 0:
        fallbacks = ", ".join(f"{NAMES[m]} by {how}" for m, how in HISTORY_FALLBACK.items() if m in result)
        lines.append(f"Empty histories: {s['empty_history_share']:.1%} of test users have no training watch "
                     f"before their test example; for them the models rank without a history ({fallbacks}).")
    seedless = [NAMES[m] for m in SEEDLESS if m in result]
    if s["seeds"] > 1 and s.get("same_split_every_seed") and seedless:
        lines.append(f"Seeds: the split is the same for all {s['seeds']} seeds, and {', '.join(seedless)} "
                     "take no seed: each was fitted once, so its SE across seeds is 0 (the summary's SEs "
                     "include the paired SE over test users).")
    return lines


def _zero_notes(result: dict[str, Any]) -> list[str]:
    """One line for each model with a metric of exactly 0: why (the data, or no hit at all)."""
    s, lines = result["split"], []
    for name, r in result.items():
        zeros = [m for m in (*(f"recall@{k}" for k in CUTOFFS), "ndcg@10") if r.get(m) == 0.0]
        if name in NAMES and zeros:
            why = ("every test user's history is empty and it ranks from the history"
                   if s["empty_history_share"] == 1.0 and name in HISTORY_FALLBACK else
                   f"none of its top lists holds a test item, for any of the {s['test']:,} test examples")
            lines.append(f"{name}: {', '.join(zeros)} = 0 because {why}.")
    return lines


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`evaluate` as a text table (mean ± SE per metric, seconds, chosen params),
    then the notes of :func:`_split_notes` and :func:`_zero_notes` and the summary sentence."""
    s = result["split"]
    lines = [f"split {s['kind']}: {s['users']:,} users, {s['items']:,} items, train {s['train']:,} rows "
             f"({s['train_watches']:,} watches fitted), valid {s['valid']:,}, test {s['test']:,}, "
             f"short users {s['short_users']:,}, test users with no training history "
             f"{s['empty_history_share']:.1%}, seeds {s['seeds']}"]
    cols = [f"recall@{k}" for k in CUTOFFS] + ["ndcg@10"]
    lines.append(f"{'model':14s}" + "".join(f"{c:>18s}" for c in cols) + f"{'seconds':>10s}  params")
    for name, r in result.items():
        if name not in NAMES:
            continue
        if "skipped" in r:
            lines.append(f"{name:14s}  {r['skipped']}")
            continue
        cells = "".join(f"{r[c]:>10.4f} ± {r[c + '_se']:.4f}"[-18:].rjust(18) for c in cols)
        lines.append(f"{name:14s}{cells}{r['seconds']:>10.2f}  {r['params']}")
    lines += _split_notes(result) + _zero_notes(result)
    if "summary" in result:
        lines.append(result["summary"]["sentence"])
    return "\n".join(lines)


def standing(rows: dict[str, dict[str, float]], model: str = "candidate",
             others: Sequence[str] = CLASSICAL, metric: str = "recall@100", z: float = 2.0) -> dict[str, Any]:
    """Where ``model`` stands against the best of ``others`` on ``metric``.

    ``rows``: ``{name: {metric: mean, metric + "_se": standard error, ...}}`` (an :func:`evaluate`
    result, or any table of that shape; names missing from it or holding ``"skipped"`` are left out).
    Returns ``{"best": name, "model": value, "model_se", "best_value", "best_se", "diff": model - best,
    "diff_se": sqrt(model_se² + best_se²), "verdict"}``; ``verdict`` is ``"beats"`` / ``"below"`` when
    the difference is more than ``z`` standard errors above / below 0, else ``"level with"``.
    """
    have = [n for n in others if n in rows and n != model and metric in rows[n]]
    if model not in rows or metric not in rows[model] or not have:
        raise ValueError(f"standing needs {model!r} and at least one of {list(others)} with {metric!r} "
                         f"in the table; it holds {sorted(rows)}")
    best = max(have, key=lambda n: rows[n][metric])
    m, b = rows[model], rows[best]
    diff = float(m[metric] - b[metric])
    se = float(np.hypot(m.get(f"{metric}_se", 0.0), b.get(f"{metric}_se", 0.0)))
    verdict = "beats" if diff > z * se else "below" if diff < -z * se else "level with"
    return {"best": best, "model": float(m[metric]), "model_se": float(m.get(f"{metric}_se", 0.0)),
            "best_value": float(b[metric]), "best_se": float(b.get(f"{metric}_se", 0.0)), "diff": diff,
            "diff_se": se, "verdict": verdict}
