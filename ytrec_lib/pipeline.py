"""The pipeline: every expensive artifact of the collection, each built once and cached.

::

    dataset ─┬─> item2vec tables (log before the cutoff) ─> candidate model ─> embedding store ─┐
             ├─> ranker (impressions before the cutoff) ────────────────────────────────────────┴─> system
             │                                    (the system builds its ANN index from the store)
             └─> candidate scorer (watches before a cutoff) ─> ranking data (notebook 07's ranker features)

Each stage has a frozen, typed config (a dataclass; change it with :func:`dataclasses.replace` or keyword
overrides), its upstream stages, and one cache file whose key is the hash of the stage name, ``asdict``
of its config, its upstream keys and the data fingerprint (:func:`ytrec_lib.data.cache.data_fingerprint`:
the world's full ``SimConfig``, or the real files' checksum). So editing a simulator setting retrains
everything downstream of the dataset, and nothing else ever does.

Files are written atomically and read back weights-only (``torch.load(weights_only=True)`` behind
:func:`ytrec_lib.data.cache.load_torch`) or arrays-only (:func:`ytrec_lib.data.cache.load_npz`); a
damaged file is rebuilt with one warning line. Within one Python process a stage is built or read
once and then shared (a memo checked against the file on disk); across the notebooks of one
``make run`` the cache files are the shared copy.

Example::

    >>> from ytrec_lib import pipeline                                          # doctest: +SKIP
    >>> run = pipeline.candidate_model("ci", seed=0, epochs=5)                  # trains once, then cached
    >>> bundle = pipeline.system("ci", seed=0, index_kind="hnsw")               # reuses that model
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from ytrec_lib.data import datasets, real, splits
from ytrec_lib.data.cache import (
    DamagedArtifact,
    atomic_path,
    atomic_write_text,
    cache_key,
    data_fingerprint,
    load_json,
    load_npz,
    load_or_build,
    load_torch,
)
from ytrec_lib.features import EventLog, ExampleFeatures, FeatureBuilder, FeatureSpec, feature_set
from ytrec_lib.models import baselines as B
from ytrec_lib.models import candidate as C
from ytrec_lib.models import item2vec as I2V
from ytrec_lib.models import ranking as R
from ytrec_lib.models.scoring import CandidateScorer
from ytrec_lib.serving import system as S
from ytrec_lib.serving.store import EmbeddingStore
from ytrec_lib.threads import limit_threads
from ytrec_lib.train import TrainConfig, TrainHistory, fit

T = TypeVar("T")

# ----------------------------------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------------------------------


def _override(config: T, overrides: dict[str, Any], where: str) -> T:
    """``dataclasses.replace(config, **overrides)`` with a one-line error naming unknown settings."""
    known = {f.name for f in fields(config)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise KeyError(f"{where}: unknown setting(s) {unknown}; use {sorted(known)}")
    return replace(config, **overrides)  # type: ignore[type-var]


CANDIDATE_SPLITS = ("auto", "next_watch", "heldout", "leave_last_out")
"""The values of :attr:`CandidateConfig.split`."""

_KEY_OPTIONAL = {"occupation": False, "occupation_dim": 4, "eval_example_age": "zero"}
"""Settings added after the cache keys were in use: left out of the key at these defaults, so the models
trained before them keep their keys."""


def is_real_source(source: Any) -> bool:
    """Whether ``source`` (a preset name or a Dataset) is real data: a real preset name, or a Dataset
    with ``meta["source"] == "real"`` (every real adapter and ``datasets.from_interactions``)."""
    if isinstance(source, datasets.Dataset):
        return splits.is_real_dataset(source)
    return real.is_real(str(source))


def resolve_split(split: str, preset: Any) -> str:
    """``"auto"`` -> ``"leave_last_out"`` for a real dataset (a preset name or a Dataset,
    :func:`is_real_source`), ``"next_watch"`` otherwise; other names unchanged."""
    if split != "auto":
        return split
    return "leave_last_out" if is_real_source(preset) else "next_watch"


def candidate_key_config(cfg: CandidateConfig) -> dict[str, Any]:
    """``asdict(cfg)`` as the cache key sees it: the settings of :data:`_KEY_OPTIONAL` left out at
    their defaults."""
    d = asdict(cfg)
    for name, default in _KEY_OPTIONAL.items():
        if d[name] == default:
            del d[name]
    return d


@dataclass(frozen=True)
class CandidateConfig:
    """The candidate model of notebooks 03-05 and 08 and how it is trained.

    ``split``: "next_watch" (predict the next watch), "heldout" (a random held-out watch, §3.4),
    "leave_last_out" (per user: test = the last watch, valid = the one before, train = every earlier
    watch predicted from the watches before it; the real-data protocol) or "auto" (leave_last_out for a
    real dataset, next_watch otherwise; the resolved name is what the cache key holds);
    ``features``: a name of :data:`ytrec_lib.features.FEATURE_SETS`; ``example_age``: True / False
    overrides the feature set's switch; ``init``: "item2vec" (tables pretrained on the log before the
    cutoff) or "random"; ``tie_output``: the output weight is the input video table; ``loss``: "full"
    or "sampled" softmax; ``max_train_examples``: a seeded random subset (None: all);
    ``train_seed``: reseeds initialisation, shuffling and negatives only (None: the dataset seed);
    ``occupation``: an ``occupation_dim``-wide embedding of the user's occupation (datasets with an
    ``occupation`` column, e.g. MovieLens-100K); ``eval_example_age`` (leave-last-out only): the
    example age of validation and test examples, "zero" (served at the end of the training window, as
    the paper serves) or "query_time" (``train_cutoff - time``: the request's own time; with no global
    cutoff this lets the model use other users' watches from the same days, after the query included).
    """

    split: str = "auto"
    features: str = "all"
    example_age: bool | None = None
    age_transforms: tuple[str, ...] = ("age", "age2", "sqrt")
    max_bag: int = 50
    dim: int = 32
    region_dim: int = 8
    tower: tuple[int, ...] = C.DEFAULT_TOWER
    init: str = "item2vec"
    freeze_embeddings: bool = False
    tie_output: bool = False
    loss: str = "sampled"
    n_negatives: int = 1000
    proposal: str = "popularity"
    logq_correction: bool = True
    epochs: int = 15
    batch_size: int = 256
    lr: float = 3e-3
    patience: int = 3
    max_train_examples: int | None = None
    train_seed: int | None = None
    occupation: bool = False
    occupation_dim: int = 4
    eval_example_age: str = "zero"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tower", tuple(int(w) for w in self.tower))
        object.__setattr__(self, "age_transforms", tuple(self.age_transforms))
        if self.split not in CANDIDATE_SPLITS:
            raise ValueError(f"split must be one of {', '.join(CANDIDATE_SPLITS)}, got {self.split!r}")
        if self.eval_example_age not in ("zero", "query_time"):
            raise ValueError(f"eval_example_age must be 'zero' or 'query_time', "
                             f"got {self.eval_example_age!r}")
        if self.init not in ("random", "item2vec"):
            raise ValueError(f"init must be 'random' or 'item2vec', got {self.init!r}")

    def train_config(self, seed: int) -> TrainConfig:
        """The :class:`ytrec_lib.train.TrainConfig` of this model, seeded by ``seed``."""
        return TrainConfig(loss=self.loss, n_negatives=self.n_negatives, proposal=self.proposal,
                           logq_correction=self.logq_correction, epochs=self.epochs,
                           batch_size=self.batch_size, lr=self.lr, patience=self.patience, seed=seed)


@dataclass(frozen=True)
class RankerConfig:
    """The ranker of notebook 08: weighted logistic regression on watch time, no candidate-score feature,
    trained on every impression before ``0.8 * t_end`` (``max_train_impressions``: a seeded subset)."""

    objective: str = "weighted"
    hidden: tuple[int, ...] = (64, 32)
    dim: int = 16
    epochs: int = 3
    batch_size: int = 1024
    lr: float = 3e-3
    max_train_impressions: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))


@dataclass(frozen=True)
class ScorerConfig:
    """The small candidate model behind the ranker's ``candidate_score`` feature (notebook 07): default
    features, one ReLU ``tower``, ``dim``-wide embeddings, random init, ``epochs`` over every next-watch
    example before its cutoff with a ``loss`` softmax ("full", or "sampled": the paper's
    importance-weighted sampled softmax, far cheaper on a large catalogue), seeded by ``seed``."""

    epochs: int = 3
    tower: tuple[int, ...] = (64,)
    dim: int = 32
    loss: str = "full"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tower", tuple(int(w) for w in self.tower))

    def train_config(self) -> TrainConfig:
        """The :class:`ytrec_lib.train.TrainConfig` of this model (checks ``loss`` and ``epochs``)."""
        return TrainConfig(loss=self.loss, epochs=self.epochs, seed=self.seed)


REAL_CANDIDATE_DEFAULTS: dict[str, Any] = {
    "loss": "full", "tower": (128, 64), "dim": 64, "lr": 3e-3, "epochs": 25, "patience": 3,
    "occupation": True, "example_age": False,
}
"""The candidate model's settings on a real dataset (``candidate_model(config=None)``): chosen on
MovieLens-100K's validation recall@100 (``docs/real_datasets.md``); a full softmax, the catalogues are
small."""


PRETRAINED_SETTINGS: dict[str, dict[str, Any]] = {
    "videos": {"window": 5, "epochs": 40, "lr": 0.05},  # watch sequences (one per user), as notebook 02
    "tokens": {"window": None, "epochs": 40, "lr": 0.05},  # search sessions: the whole query is the context
}
"""The item2vec settings :func:`pretrained_embeddings` trains with (notebook 02 measures why), per kind."""


# ----------------------------------------------------------------------------------------------------
# One cache for every stage
# ----------------------------------------------------------------------------------------------------

_MEMO: dict[str, tuple[Any, tuple[int, int] | None, Any]] = {}
MEMO_SIZE = 16
"""How many artifacts one process keeps in memory (the most recently used; the rest stay on disk)."""


def stage_key(stage: str, config: Any, upstream: dict[str, str], data: str) -> str:
    """The cache key of a stage: a hash of its name, ``asdict(config)`` (or a JSON-able config), its
    upstream stages' keys and the data fingerprint (12 hex digits)."""
    cfg = asdict(config) if hasattr(config, "__dataclass_fields__") else config
    return cache_key({"stage": stage, "config": cfg, "upstream": upstream, "data": data})


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _cached(key: str, path: Path, load: Callable[[Path], T], build: Callable[[], T],
            save: Callable[[T, Path], Any], *, cache: bool, what: str) -> tuple[T, bool]:
    """``(value, from_cache)`` of one stage: the memo when the file is unchanged since it was read or
    written in this process, else :func:`ytrec_lib.data.cache.load_or_build` (one warning line when
    the file is damaged). ``cache=False`` always builds and writes nothing."""
    if cache and key in _MEMO:
        value, stat, at = _MEMO[key]
        if stat is not None and stat == _stat(path) and at == path:
            _MEMO[key] = _MEMO.pop(key)  # most recently used last
            return value, True
    value, from_cache = load_or_build(path, load, build, save, cache=cache, what=what)
    if cache:
        _MEMO.pop(key, None)
        _MEMO[key] = (value, _stat(path), path)
        while len(_MEMO) > MEMO_SIZE:
            del _MEMO[next(iter(_MEMO))]
    return value, from_cache


def clear_memo() -> None:
    """Forget every artifact held in this process (the files on disk stay)."""
    _MEMO.clear()


def _models_dir() -> Path:
    return datasets.data_dir() / "models"


def _torch_save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` of tensors, dicts, lists, numbers and strings, atomically."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _data_key(ds: Any) -> dict[str, Any]:
    meta = ds.meta
    return {"name": meta.get("name"), "seed": meta.get("seed"), "style": meta.get("style"),
            "fingerprint": data_fingerprint(ds)}


# ----------------------------------------------------------------------------------------------------
# Stage 0: the dataset
# ----------------------------------------------------------------------------------------------------


def dataset(preset: str, seed: int = 0, *, progress: bool = True, **kwargs: Any) -> Any:
    """The dataset of ``preset`` and ``seed`` (:func:`ytrec_lib.data.datasets.load`, cached by the
    data layer under ``<data dir>/``; its fingerprint keys every later stage)."""
    return datasets.load(preset, seed=seed, progress=progress, **kwargs)


# ----------------------------------------------------------------------------------------------------
# Stage 1: item2vec tables
# ----------------------------------------------------------------------------------------------------


def save_item2vec(model: I2V.Item2Vec, path: str | Path) -> Path:
    """Write a fitted item2vec model to ``path`` (.npz of arrays, no pickled objects), atomically."""
    path = Path(path)
    arrays = model.to_arrays()
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load_item2vec(path: str | Path) -> I2V.Item2Vec:
    """Read a model :func:`save_item2vec` wrote (arrays only, never unpickled). ``FileNotFoundError``
    when there is none; ``DamagedArtifact`` (a ``ValueError`` naming the file) when it is truncated,
    foreign or not a saved model."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no item2vec model at {path}: train one and save it first")
    arrays = load_npz(path, "Item2Vec model")
    try:
        return I2V.Item2Vec.from_arrays(arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise DamagedArtifact(f"{path} is not a saved Item2Vec model ({type(err).__name__}: {err}); "
                              "delete it and retrain") from err


def _item2vec_key(ds: Any, kind: str, config: I2V.SGNSConfig) -> str:
    """The item2vec stage's key: its config, the kind and id count, and the data it trains on."""
    n_ids = int(ds.meta["n_videos"] if kind == "videos" else ds.meta["n_tokens"])
    return stage_key("item2vec", config, {"kind": kind, "n_ids": str(n_ids)}, cache_key(_data_key(ds)))


def _pretrain_config(kind: str, dim: int, seed: int, **settings: Any) -> I2V.SGNSConfig:
    if kind not in PRETRAINED_SETTINGS:
        raise ValueError(f"kind must be 'videos' or 'tokens', got {kind!r}")
    return I2V.SGNSConfig(**{**PRETRAINED_SETTINGS[kind], "dim": dim, "seed": seed, **settings})


def item2vec_model(ds: Any, kind: str = "videos", config: I2V.SGNSConfig | None = None, *, cache: bool = True,
                   progress: bool = False) -> I2V.Item2Vec:
    """An :class:`ytrec_lib.models.item2vec.Item2Vec` fitted on ``ds``'s sequences of ``kind``
    ("videos": watch sequences, "tokens": search sessions), cached under ``<data dir>/models/``."""
    sequences, _ = I2V.dataset_sequences(ds, kind)
    config = config or I2V.SGNSConfig()
    key = _item2vec_key(ds, kind, config)
    path = _models_dir() / f"item2vec-{ds.meta.get('name')}-seed{ds.meta.get('seed')}-{kind}-{key}.npz"

    def build() -> I2V.Item2Vec:
        return I2V.Item2Vec(config).fit(sequences, progress=progress)

    model, _ = _cached(key, path, load_item2vec, build, save_item2vec, cache=cache, what="item2vec model")
    return model


def pretrained_embeddings(ds: Any, kind: str = "videos", dim: int = 32, seed: int = 0, *, cache: bool = True,
                          progress: bool = False, **settings: Any) -> np.ndarray:
    """Item2vec vectors of every video (or search token) of ``ds``, for initialising the candidate model.

    Returns an (n_videos, dim) or (n_tokens, dim) float32 table indexed by id; ids never seen in a
    sequence of two or more get a zero row. Trains with :data:`PRETRAINED_SETTINGS` [kind] updated by
    ``settings`` (any :class:`ytrec_lib.models.item2vec.SGNSConfig` field).
    """
    config = _pretrain_config(kind, dim, seed, **settings)
    model = item2vec_model(ds, kind, config, cache=cache, progress=progress)
    return I2V.id_table(model, I2V.dataset_sequences(ds, kind)[1])


def pretrained_video_vectors(ds: Any, cutoff: float, dim: int = 32, seed: int = 0,
                             kind: str = "videos") -> np.ndarray:
    """:func:`pretrained_embeddings` trained only on the log before ``cutoff`` (days):
    ((n_videos or n_tokens), dim) float32. The candidate model's inputs never see the test period."""
    return pretrained_embeddings(datasets.dataset_before(ds, cutoff), kind=kind, dim=dim, seed=seed)


# ----------------------------------------------------------------------------------------------------
# Stage 2: the candidate model
# ----------------------------------------------------------------------------------------------------


class CandidateTrainer(Protocol):
    """What :func:`candidate_model` needs of a trainer other than :func:`ytrec_lib.train.fit` (one
    process): ``key``, entries added to the stage's cache key (how it trains: a model trained so is
    not the one-process model); ``writes``, whether this process writes the checkpoint; ``fit``, with
    ``fit``'s arguments (model, features, labels, TrainConfig, val=, progress=) -> TrainHistory."""

    key: dict[str, str]
    writes: bool

    def fit(self, model: C.CandidateModel, feats: ExampleFeatures, labels: Any, config: TrainConfig, *,
            val: tuple[ExampleFeatures, Any] | None = None, progress: bool = True) -> TrainHistory: ...


@dataclass
class CandidateRun:
    """A trained candidate model with everything needed to use it on its dataset.

    ``model``; ``dataset`` and ``split`` (``ytrec_lib.data``); ``builder`` (features with the model's
    spec); ``config`` (:class:`CandidateConfig`); ``history`` (per-epoch records); ``train_seconds``;
    ``path`` of the checkpoint; ``from_cache`` (True when it was loaded, not trained); ``key`` (the
    stage key, upstream of the embedding store).
    """

    model: C.CandidateModel
    dataset: Any
    split: Any
    builder: Any
    config: CandidateConfig
    history: list[dict[str, float]]
    train_seconds: float
    path: Path | None
    from_cache: bool
    key: str = ""
    _examples: dict[str, ExampleFeatures] = field(default_factory=dict, repr=False)

    def examples(self, part: str = "test") -> ExampleFeatures:
        """Features of the split's ``"train"``, ``"valid"`` or ``"test"`` examples (cached); for a
        leave-last-out split see :func:`leave_last_out_examples`."""
        if part not in self._examples:
            if isinstance(self.split, splits.LeaveLastOutSplit):
                self._examples[part] = leave_last_out_examples(self.builder, self.split, part,
                                                               self.config.eval_example_age)
            else:
                self._examples[part] = C.split_examples(self.builder, self.split, part)
        return self._examples[part]

    def labels(self, part: str = "test") -> np.ndarray:
        """The labels (n,) int64 of the split's ``part``."""
        return getattr(self.split, part)["label"].to_numpy(np.int64)

    def scorer(self) -> CandidateScorer:
        """Raw scores and top-k of this model for users named by the dataset's own ids
        (:class:`ytrec_lib.models.scoring.CandidateScorer`): every user is scored at the split's training
        cutoff with example age 0, from the watches the model's feature builder holds before it (the
        training view: under leave-last-out every training watch, the valid and test watches not
        included); ``recommend(..., exclude_seen=True)`` removes exactly those."""
        return CandidateScorer.from_dataset(self.model, self.builder, self.dataset, self.split.train_cutoff)


def save_candidate_checkpoint(path: str | Path, model: C.CandidateModel,
                              extra: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights, constructor arguments and ``extra`` (JSON-able) to ``path``,
    atomically (:func:`ytrec_lib.models.candidate.checkpoint_payload`: weights-only)."""
    _torch_save(C.checkpoint_payload(model, extra), Path(path))
    return Path(path)


def load_candidate_checkpoint(path: str | Path) -> tuple[C.CandidateModel, dict[str, Any]]:
    """Inverse of :func:`save_candidate_checkpoint`: ``(model, extra)``. ``FileNotFoundError`` when
    there is no file; ``DamagedArtifact`` (a ``ValueError`` naming the file) when it is truncated,
    foreign, not weights-only or not a candidate-model checkpoint. Nothing in it is ever executed."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no candidate-model checkpoint at {path}")
    try:
        return C.model_from_payload(load_torch(path, "checkpoint"), str(path))
    except DamagedArtifact:
        raise
    except ValueError as err:
        raise DamagedArtifact(str(err)) from err


def leave_last_out_examples(builder: FeatureBuilder, split: splits.LeaveLastOutSplit, part: str,
                            eval_example_age: str = "zero") -> ExampleFeatures:
    """Features of one part of a leave-last-out split; ``builder`` holds the training watches only
    (built on :func:`ytrec_lib.data.splits.training_view`).

    * ``train``: every training watch, predicted from the user's watches strictly before it (watches
      sharing its timestamp are not history), example age ``train_cutoff - time``;
    * ``valid``: the user's every training watch is the history (the last ``max_bag`` in the bag; all of
      them excluded from the ranking), as the baselines of ``evaluate`` see it, ties included;
    * ``test``: the training watches and the validation watch.

    The example-age feature (when on) of the evaluation examples is 0 (``eval_example_age="zero"``:
    served at the end of the training window, as in the paper) or ``train_cutoff - time``
    (``"query_time"``: the request's own time; see :class:`CandidateConfig`).
    """
    if part not in ("train", "valid", "test"):
        raise ValueError(f"part must be 'train', 'valid' or 'test', got {part!r}")
    df = getattr(split, part)
    users, times = df["user_id"].to_numpy(np.int64), df["time"].to_numpy(np.float64)
    if part == "train":
        return builder.examples(users, times, window_end=split.train_cutoff)
    part_builder = builder
    if part == "test":  # the training watches plus the validation watch of every evaluated user
        log, va = builder.watch_log, split.valid
        watches = EventLog.from_arrays(np.r_[log.user, va["user_id"].to_numpy(np.int64)],
                                       np.r_[log.time, va["time"].to_numpy(np.float64)],
                                       np.r_[log.item, va["label"].to_numpy(np.int64)], log.pad)
        part_builder = FeatureBuilder(builder.encoder, watches, builder.search_log, builder.users)
    after = np.nextafter(times, np.inf)  # every earlier watch, and those sharing the label's timestamp
    feats = part_builder.examples(users, after)  # example age 0
    if eval_example_age == "query_time" and part_builder.encoder.spec.example_age:
        feats.dense[:, -1] = part_builder.examples(users, times, window_end=split.train_cutoff).dense[:, -1]
    return feats


def _pretrained_kinds(ds: Any, cfg: CandidateConfig) -> tuple[str, ...]:
    """The item2vec tables the candidate model starts from: none, videos, or videos and tokens."""
    if cfg.init == "random":
        return ()
    has_searches = ds.meta.get("has_searches", True) and len(ds.searches) > 0
    return ("videos", "tokens") if has_searches else ("videos",)


def _pretrained(ds: Any, cfg: CandidateConfig, seed: int, split: splits.Split) -> tuple[Any, Any]:
    kinds = _pretrained_kinds(ds, cfg)
    view = splits.training_view(ds, split) if kinds else None
    tables = {kind: pretrained_embeddings(view, kind, cfg.dim, seed) for kind in kinds}
    return tables.get("videos"), tables.get("tokens")


def _candidate_upstream(ds: Any, cfg: CandidateConfig, preset: str, seed: int,
                        split: splits.Split) -> dict[str, str]:
    """The candidate stage's upstream keys: the dataset and the item2vec tables it starts from (trained
    on :func:`ytrec_lib.data.splits.training_view`: the log before the cutoff, or without the held-out
    watches)."""
    train_seed = seed if cfg.train_seed is None else int(cfg.train_seed)
    upstream = {"preset": preset, "seed": str(seed)}
    kinds = _pretrained_kinds(ds, cfg)
    before = splits.training_view(ds, split) if kinds else None
    for kind in kinds:
        config = _pretrain_config(kind, cfg.dim, train_seed)
        upstream[f"item2vec_{kind}"] = _item2vec_key(before, kind, config)
    return upstream


def _source(preset: Any, seed: int | None, progress: bool) -> tuple[Any, str, int, dict[str, str]]:
    """``(dataset, name, seed, extra upstream keys)`` of :func:`candidate_model`'s ``preset``: a preset
    name (loaded; ``seed`` None -> 0) or a Dataset (``seed`` None -> its own ``meta["seed"]``). A
    simulated Dataset trained with another seed than its own adds its seed to the key (its fingerprint,
    the world's settings, does not hold the seed; a real one's fingerprint is its content, and a real
    preset's seed only seeds the training). ``name`` names the checkpoint file."""
    if isinstance(preset, datasets.Dataset):
        ds_seed = int(preset.meta.get("seed") or 0)
        seed = ds_seed if seed is None else int(seed)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", str(preset.meta.get("name") or "dataset"))
        same = seed == ds_seed or splits.is_real_dataset(preset)
        return preset, name, seed, ({} if same else {"dataset_seed": str(ds_seed)})
    if not isinstance(preset, str):
        raise TypeError(f"candidate_model: preset must be a preset name or a ytrec_lib.data Dataset "
                        f"(e.g. datasets.from_interactions(frame)), got {type(preset).__name__}")
    seed = 0 if seed is None else int(seed)
    return dataset(preset, seed, progress=progress), preset, seed, {}


def candidate_model(preset: str | datasets.Dataset = "ci", seed: int | None = None,
                    config: CandidateConfig | None = None, *, cache: bool = True, progress: bool = True,
                    trainer: CandidateTrainer | None = None, **overrides: Any) -> CandidateRun:
    """The candidate model trained on dataset ``preset`` / ``seed``, from the cache when it is there.

    ``preset``: a preset name (:func:`ytrec_lib.data.datasets.known_presets`, loaded with ``seed``,
    default 0) or a Dataset object, e.g. ``datasets.from_interactions(frame)`` for one's own
    interactions (``seed``, default the dataset's own, seeds the training; a real-source Dataset gets
    the real-data defaults and leave-last-out, as a real preset does). The cache key depends on the
    data's fingerprint, not on how it was passed: a preset's Dataset gives the model its name gives.
    ``config`` (default: :class:`CandidateConfig`, or :data:`REAL_CANDIDATE_DEFAULTS` on a real dataset)
    with ``overrides`` applied (features, tower, loss, epochs, ...); ``split="auto"`` resolves by
    :func:`resolve_split`. Training uses the split's training examples, early-stops on the validation
    examples' recall@100 (:func:`ytrec_lib.train.fit`), and is seeded by ``seed``. The item2vec tables
    and a leave-last-out model's features see only :func:`ytrec_lib.data.splits.training_view`. The
    checkpoint lives under ``<data dir>/models/``; a damaged or foreign one is retrained with one
    warning, never executed. ``trainer``: train elsewhere than in this process alone (a
    :class:`CandidateTrainer`, e.g. ``ytrec_lib.distributed.DDPTrainer``): its ``key`` joins the cache
    key, its ``fit`` replaces :func:`ytrec_lib.train.fit`, and the checkpoint is written only where
    its ``writes`` is True.
    """
    real_defaults = config is None and is_real_source(preset)
    if config is None:
        config = CandidateConfig(**REAL_CANDIDATE_DEFAULTS) if real_defaults else CandidateConfig()
    cfg = _override(config, overrides, "candidate_model")
    cfg = replace(cfg, split=resolve_split(cfg.split, preset))
    ds, preset, seed, extra_upstream = _source(preset, seed, progress)
    if real_defaults and "occupation" not in overrides and not _has_occupations(ds):
        cfg = replace(cfg, occupation=False)  # the defaults ask for it where the dataset has it
    if cfg.split == "leave_last_out":
        split = splits.leave_last_out_split(ds)
        features_from = splits.training_view(ds, split)  # never a held-out watch
    else:
        make_split = splits.heldout_watch_split if cfg.split == "heldout" else splits.next_watch_split
        split, features_from = make_split(ds, seed=seed), ds
    spec = feature_set(cfg.features, age_transforms=cfg.age_transforms, max_bag=cfg.max_bag)
    if cfg.example_age is not None:
        spec = replace(spec, example_age=bool(cfg.example_age))
    if cfg.occupation:
        spec = replace(spec, occupation=True)
    builder = FeatureBuilder.from_dataset(features_from, spec, window=(0.0, split.train_cutoff))
    upstream = {**_candidate_upstream(ds, cfg, preset, seed, split), **extra_upstream,
                **(trainer.key if trainer is not None else {})}
    key = stage_key("candidate", candidate_key_config(cfg), upstream, data_fingerprint(ds))
    path = _models_dir() / f"candidate-{preset}-seed{seed}-{key}.pt"

    def load(p: Path) -> CandidateRun:
        model, extra = load_candidate_checkpoint(p)
        return CandidateRun(model, ds, split, builder, cfg, extra["history"], extra["train_seconds"], p, True,
                            key)

    def save(run: CandidateRun, p: Path) -> None:
        if trainer is not None and not trainer.writes:
            return
        extra = {"config": asdict(cfg), "preset": preset, "seed": seed, "history": run.history,
                 "train_seconds": run.train_seconds}
        save_candidate_checkpoint(p, run.model, extra)

    def build() -> CandidateRun:
        run = CandidateRun(_new_candidate(ds, spec, cfg, seed, split), ds, split, builder, cfg,
                           [], 0.0, path if cache else None, False, key)
        _train_candidate(run, seed, progress, trainer)
        return run

    run, from_cache = _cached(key, path, load, build, save, cache=cache, what="candidate model")
    return run if run.from_cache == from_cache else replace(run, from_cache=from_cache)  # memo: a copy


def untrained_candidate(run: CandidateRun, seed: int) -> C.CandidateModel:
    """A fresh, untrained model of ``run``'s configuration, on its dataset and split, initialised with
    ``seed`` (as :func:`candidate_model` with ``train_seed=seed`` would start it: item2vec tables of
    that seed, when the configuration starts from item2vec). For studies that train it themselves
    (``ytrec_lib.studies.softmax_convergence``)."""
    cfg = replace(run.config, train_seed=int(seed))
    return _new_candidate(run.dataset, run.model.spec, cfg, int(seed), run.split)


def _has_occupations(ds: Any) -> bool:
    return bool(ds.meta.get("occupation_names")) and "occupation" in ds.users


def _new_candidate(ds: Any, spec: Any, cfg: CandidateConfig, seed: int,
                   split: splits.Split) -> C.CandidateModel:
    train_seed = seed if cfg.train_seed is None else int(cfg.train_seed)
    extra: dict[str, Any] = {}
    if spec.occupation:
        n_occ = len(ds.meta.get("occupation_names") or ())
        if not _has_occupations(ds):
            raise ValueError(f"candidate_model: occupation=True, but {ds.meta.get('name')} has no "
                             "occupations")
        extra = {"n_occupations": n_occ, "occupation_dim": cfg.occupation_dim}
    video_init, token_init = _pretrained(ds, cfg, train_seed, split)
    return C.CandidateModel(
        ds.n_videos, max(int(ds.meta.get("n_tokens") or 1), 1), int(ds.meta["n_regions"]), dim=cfg.dim,
        tower=list(cfg.tower), spec=spec, region_dim=cfg.region_dim, video_init=video_init,
        token_init=token_init, freeze_embeddings=cfg.freeze_embeddings, tie_output=cfg.tie_output,
        seed=train_seed, **extra,
    )


def _train_candidate(run: CandidateRun, seed: int, progress: bool,
                     trainer: CandidateTrainer | None = None) -> None:
    """Train ``run.model`` in place on the split's training examples (early stopping on "valid"), with
    :func:`ytrec_lib.train.fit` or ``trainer.fit``."""
    cfg = run.config
    train_seed = seed if cfg.train_seed is None else int(cfg.train_seed)
    train, labels = run.examples("train"), run.labels("train")
    n_max = cfg.max_train_examples
    if n_max is not None and n_max < len(train):
        keep = np.sort(np.random.default_rng(train_seed).choice(len(train), int(n_max), replace=False))
        train, labels = train.subset(keep), labels[keep]
    t0 = time.perf_counter()
    hist = (fit if trainer is None else trainer.fit)(run.model, train, labels, cfg.train_config(train_seed),
                                                     val=(run.examples("valid"), run.labels("valid")),
                                                     progress=progress)
    run.history, run.train_seconds = hist.epochs, time.perf_counter() - t0
    run._examples.pop("train", None)  # the largest table; rebuilt on demand, not kept in the memo


# ----------------------------------------------------------------------------------------------------
# Stage 2b: classical baselines with their knobs chosen on validation
# ----------------------------------------------------------------------------------------------------


def _arrays_key(*arrays: Any) -> str:
    """A hash of int/float arrays and lists of arrays (the watch log and the validation queries)."""
    h = hashlib.sha256()
    for a in arrays:
        for part in (a if isinstance(a, list) else [a]):
            part = np.ascontiguousarray(part)
            h.update(f"{part.dtype}{part.shape}".encode())
            h.update(part.tobytes())
    return h.hexdigest()[:16]


def tuned_baseline(make: type[B.Baseline], grid: dict[str, tuple], watches: tuple[np.ndarray, ...],
                   n_videos: int, valid_users: np.ndarray, valid_histories: list[np.ndarray],
                   valid_labels: np.ndarray, k: int, *, cache: bool = True,
                   progress: bool = False) -> B.Tuned:
    """:func:`ytrec_lib.models.baselines.tune` of ``make`` over ``grid`` (knob -> values) on the training
    ``watches`` (user, video, time arrays), chosen by recall@``k`` of the validation queries
    (``valid_users`` (n,) int64, ``valid_histories`` n int64 arrays, ``valid_labels`` (n,) int64).

    The choice (every grid point's validation recall) is cached as JSON under ``<data dir>/models/``,
    keyed by the model, the grid, ``k`` and a hash of the watches and the queries: notebooks 01, 03 and
    08 and ``evaluate`` tune a baseline on the same split once; a cached choice refits the model once
    with the chosen knobs (the same model :func:`~ytrec_lib.models.baselines.tune` keeps)."""
    grid = {name: tuple(values) for name, values in grid.items()}
    data = _arrays_key(*watches, np.int64(n_videos), valid_users, valid_labels, list(valid_histories))
    key = stage_key(f"tuned-{make.__name__}", {"grid": {n: list(v) for n, v in grid.items()}, "k": int(k)},
                    {}, data)
    path = _models_dir() / f"tuned-{make.__name__.lower()}-{key}.json"

    def build() -> B.Tuned:
        return B.tune(make, grid, watches, n_videos, valid_users, valid_histories, valid_labels, k=k,
                      progress=progress)

    def load(p: Path) -> B.Tuned:
        saved = load_json(p, "tuned baseline")
        scores = [(dict(params), float(score)) for params, score in saved["scores"]]
        params = dict(saved["params"])
        return B.Tuned(make(**params).fit(watches, n_videos=n_videos), params, scores)

    def save(tuned: B.Tuned, p: Path) -> None:
        atomic_write_text(p, json.dumps({"params": tuned.params, "scores": tuned.scores}))

    tuned, _ = _cached(key, path, load, build, save, cache=cache, what="tuned baseline")
    return tuned


# ----------------------------------------------------------------------------------------------------
# Stage 3: the embedding store (the ANN index is built from it in memory by the system)
# ----------------------------------------------------------------------------------------------------


def embedding_store(run: CandidateRun, *, cache: bool = True) -> Path:
    """The SQLite embedding store of ``run``: ``[u, 1]`` of every user at the split's training cutoff
    and ``[v, b]`` of every video, as version ``"candidate"``; a store is tied to the candidate model's
    key, so a retrained model gets a new one. Serving reads the file, so it is written even with
    ``cache=False``."""
    ds, serve_time = run.dataset, float(run.split.train_cutoff)
    key = stage_key("store", {"serve_time": serve_time}, {"candidate": run.key}, data_fingerprint(ds))
    preset, seed = ds.meta.get("name"), ds.meta.get("seed")
    path = datasets.data_dir() / "system" / f"store-{preset}-seed{seed}-{key}.sqlite"

    def build() -> Path:
        users = C.user_embeddings(run.model, run.builder, np.arange(int(ds.meta["n_users"])), serve_time)
        videos = run.model.augmented_video_embeddings().numpy()  # (V, m+1)
        meta = {"preset": preset, "seed": seed, "serve_time": serve_time,
                "config": json.loads(json.dumps(asdict(run.config)))}
        return S.write_store(path, users, videos, meta)

    stored, _ = _cached(key, path, S.check_store, build, lambda _path, _at: None,
                        cache=cache and run.from_cache, what="embedding store")
    return stored


# ----------------------------------------------------------------------------------------------------
# Stage 5a (notebook 07): the ranker's candidate scorer and its data
# ----------------------------------------------------------------------------------------------------

SCORER_THREADS = 1
"""torch threads the candidate scorer trains on (one thread: bit-reproducible, and fastest this small)."""


def candidate_scorer(ds: Any, cutoff: float, config: ScorerConfig | None = None, *, cache: bool = True,
                     progress: bool = True, **overrides: Any) -> tuple[C.CandidateModel, FeatureBuilder]:
    """The candidate model (:class:`ScorerConfig` with ``overrides``) trained on ``ds``'s next-watch
    examples before ``cutoff`` days, for the ranker's ``candidate_score`` feature, cached under
    ``<data dir>/models/`` as a weights-only checkpoint (a damaged one is retrained with one warning).

    Returns ``(model, builder)`` for :func:`ytrec_lib.models.ranking.candidate_scores`; the feature
    builder (events before ``cutoff``) is rebuilt from ``ds`` on every call, which is cheap. Train it on
    watches before the ranker's training impressions, so its score is out-of-sample for all of them.
    """
    cfg = _override(config or ScorerConfig(), overrides, "candidate_scorer")
    train_cfg = cfg.train_config()  # checks the settings before any work
    cutoff = float(cutoff)
    spec = FeatureSpec()
    builder = FeatureBuilder.from_dataset(ds, spec, window=(0.0, cutoff))
    key = stage_key("scorer", cfg, {"cutoff": repr(cutoff)}, cache_key(_data_key(ds)))
    path = _models_dir() / f"scorer-{ds.meta.get('name')}-seed{ds.meta.get('seed')}-{key}.pt"

    def build() -> C.CandidateModel:
        split = splits.next_watch_split(ds, train_cutoff=cutoff, seed=cfg.seed)
        train = builder.examples(split.train["user_id"], split.train["time"], window_end=cutoff)
        model = C.CandidateModel(ds.n_videos, int(ds.meta.get("n_tokens") or 1), int(ds.meta["n_regions"]),
                                 dim=cfg.dim, tower=cfg.tower, spec=spec, seed=cfg.seed)
        with limit_threads(SCORER_THREADS, blas=False):
            fit(model, train, split.train["label"].to_numpy(), train_cfg, progress=progress)
        return model

    def save(model: C.CandidateModel, p: Path) -> None:
        extra = {"config": asdict(cfg), "cutoff": cutoff, "dataset": ds.meta.get("name"),
                 "dataset_seed": ds.meta.get("seed")}
        save_candidate_checkpoint(p, model, extra)

    model, _ = _cached(key, path, lambda p: load_candidate_checkpoint(p)[0], build, save, cache=cache,
                       what="candidate scorer")
    return model, builder


def ranking_data(ds: Any, *, candidate_score: bool = True, cutoff_frac: float = 0.8,
                 candidate_frac: float = 0.5, candidate_epochs: int = 5, candidate_loss: str = "full",
                 n_bins: int = 1000, max_bag: int = 50, max_train: int | None = None, seed: int = 0,
                 progress: bool = True, cache: bool = True) -> R.RankingData:
    """Split the impression log in time, get the candidate scorer (optionally), build the features:
    :func:`ytrec_lib.models.ranking.prepare_ranking_data` of :func:`ytrec_lib.data.splits.ranking_split`.

    With ``candidate_score`` the scorer (:func:`candidate_scorer`: ``candidate_epochs``, softmax
    ``candidate_loss``, seeded by ``seed``) trains on watches before ``candidate_frac`` of the training
    period and the ranker on the impressions after that (so the score is out-of-sample); without it the
    ranker trains on every impression before the cutoff. ``max_train``: keep a seeded random subset of
    that many training impressions (None: all).
    """
    split = splits.ranking_split(ds, cutoff_frac=cutoff_frac,
                                 candidate_frac=candidate_frac if candidate_score else 0.0)
    if max_train is not None and int(max_train) < len(split.train):
        keep = np.random.default_rng([seed, 9]).choice(len(split.train), int(max_train), replace=False)
        split = replace(split, train=split.train[np.sort(keep)])
    candidate = None
    if candidate_score:
        candidate = candidate_scorer(ds, split.candidate_cutoff, epochs=candidate_epochs, loss=candidate_loss,
                                     seed=seed, cache=cache, progress=progress)
    return R.prepare_ranking_data(ds, split, candidate, n_bins=n_bins, max_bag=max_bag, progress=progress)


def leaky_ranking_data(ds: Any, data: R.RankingData, *, epochs: int = 5, loss: str = "full",
                       n_bins: int = 1000, seed: int = 0, cache: bool = True,
                       progress: bool = True) -> R.RankingData:
    """``data`` with a *leaky* ``candidate_score``
    (:func:`ytrec_lib.models.ranking.with_leaky_candidate_score`): from a :func:`candidate_scorer`
    (``epochs``, softmax ``loss``, ``seed``) trained on every watch before the test cutoff, the
    ranker's training period included (stacking leakage, for contrast)."""
    leaky = candidate_scorer(ds, data.split.train_cutoff, epochs=epochs, loss=loss, seed=seed, cache=cache,
                             progress=progress)
    return R.with_leaky_candidate_score(ds, data, leaky, n_bins, progress=progress)


# ----------------------------------------------------------------------------------------------------
# Stage 5: the ranker
# ----------------------------------------------------------------------------------------------------

RANKER_FORMAT = "ytrec-ranker-v1"


def _ranker_payload(ranker: R.Ranker, cfg: RankerConfig) -> dict[str, Any]:
    """What a cached ranker file holds: tensors, dicts, lists, numbers and strings only (weights-only)."""
    return {"format": RANKER_FORMAT, "state_dict": ranker.model.state_dict(), "spec": ranker.spec.to_dict(),
            "normalizer": json.loads(json.dumps(ranker.normalizer.to_dict())),
            "config": json.loads(json.dumps(asdict(cfg)))}


def _load_ranker(path: Path, builder: Any, cfg: RankerConfig, seed: int) -> R.Ranker:
    """The ranker in ``path`` (weights only, never executed); ``DamagedArtifact`` if it is not usable."""
    payload = load_torch(path, "ranker")
    try:
        if payload.get("format", RANKER_FORMAT) != RANKER_FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {RANKER_FORMAT!r}")
        spec = R.RankingSpec(**payload["spec"])
        model = R.RankingModel(builder.n_videos, builder.n_languages, spec, hidden=list(cfg.hidden),
                               dim=cfg.dim, seed=seed)
        model.load_state_dict(payload["state_dict"])
        norm = R.QuantileNormalizer.from_dict(payload["normalizer"])
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as err:
        first = (str(err).splitlines() or [""])[0][:200]
        raise DamagedArtifact(f"{path} is not a usable ranker ({type(err).__name__}: {first})") from err
    return R.Ranker(model, norm, builder, cfg.objective)


def ranker(ds: Any, preset: str, seed: int = 0, config: RankerConfig | None = None, *, cache: bool = True,
           progress: bool = True, **overrides: Any) -> R.Ranker:
    """The ranker (:class:`RankerConfig`) trained on every impression of ``ds`` before ``0.8 * t_end``,
    cached under ``<data dir>/models/``. The file holds weights only; a damaged or foreign one is
    retrained with one warning, never executed."""
    cfg = _override(config or RankerConfig(), overrides, "ranker")
    key = stage_key("ranker", cfg, {"preset": preset, "seed": str(seed)}, data_fingerprint(ds))
    path = _models_dir() / f"ranker-{preset}-seed{seed}-{key}.pt"
    builder = R.RankingFeatureBuilder.from_dataset(ds)

    def build() -> R.Ranker:
        data = ranking_data(ds, candidate_score=False, seed=seed, progress=progress, cache=cache)
        if cfg.max_train_impressions is not None and cfg.max_train_impressions < len(data.train):
            keep = np.sort(np.random.default_rng(seed).choice(len(data.train), cfg.max_train_impressions,
                                                              replace=False))
            data.train = data.train.subset(keep)
        train_cfg = R.RankTrainConfig(objective=cfg.objective, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                      lr=cfg.lr, seed=seed)
        fitted = R.fit_ranker(data, cfg.objective, hidden=list(cfg.hidden), dim=cfg.dim, config=train_cfg,
                              progress=progress)
        fitted.builder = builder
        return fitted

    fitted, _ = _cached(key, path, lambda p: _load_ranker(p, builder, cfg, seed), build,
                        lambda r, p: _torch_save(_ranker_payload(r, cfg), p), cache=cache, what="ranker")
    return fitted


# ----------------------------------------------------------------------------------------------------
# The whole system
# ----------------------------------------------------------------------------------------------------


@dataclass
class SystemBundle:
    """What :func:`system` returns: the ``system``, its ``dataset``, the candidate ``run``, the
    ``ranker``, the ``store`` path, ``serve_time``, the eligible ``test_users`` (n,) int64 and the
    seconds each stage took (``build_seconds``: loaded or built)."""

    system: S.TwoStageRecommender
    dataset: Any
    run: CandidateRun
    ranker: Any
    store_path: Path
    serve_time: float
    test_users: np.ndarray
    build_seconds: dict[str, float]


def system(preset: str = "ci", seed: int = 0, *, index_kind: str = "hnsw", cache: bool = True,
           progress: bool = True, candidate_config: dict[str, Any] | CandidateConfig | None = None,
           ranker_config: dict[str, Any] | RankerConfig | None = None, **index_params: Any) -> SystemBundle:
    """The two-stage system of ``preset``: candidate model -> embedding store -> ANN index, and the
    ranker, each from its stage (built or loaded).

    ``serve_time`` is the candidate split's training cutoff; ``test_users`` are the split's test users
    (a watch after the cutoff). ``index_params`` go to :func:`ytrec_lib.serving.retrieval.build_index`.
    """
    if index_kind not in S.SEARCH_PARAM:
        raise ValueError(f"index_kind must be one of {sorted(S.SEARCH_PARAM)}, got {index_kind!r}")
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    cand = candidate_config if isinstance(candidate_config, CandidateConfig) else None
    run = candidate_model(preset, seed, cand, cache=cache, progress=progress,
                          **({} if cand is not None else dict(candidate_config or {})))
    ds, serve_time = run.dataset, float(run.split.train_cutoff)
    secs["candidate_model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    store_path = embedding_store(run, cache=cache)
    secs["store"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rcfg = ranker_config if isinstance(ranker_config, RankerConfig) else None
    fitted = ranker(ds, preset, seed, rcfg, cache=cache, progress=progress,
                    **({} if rcfg is not None else dict(ranker_config or {})))
    secs["ranker"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    uploaded = ds.videos["video_id"].to_numpy(np.int64)[ds.videos["upload_time"].to_numpy() < serve_time]
    recommender = S.TwoStageRecommender(EmbeddingStore(store_path), fitted, serve_time, index_kind=index_kind,
                                        video_ids=uploaded, **index_params)
    secs["index"] = time.perf_counter() - t0
    test_users = np.unique(run.split.test["user_id"].to_numpy(np.int64))
    return SystemBundle(recommender, ds, run, fitted, store_path, serve_time, test_users, secs)


__all__ = ["CandidateConfig", "CANDIDATE_SPLITS", "REAL_CANDIDATE_DEFAULTS", "is_real_source",
           "resolve_split", "candidate_key_config", "leave_last_out_examples", "ScorerConfig", "RankerConfig",
           "PRETRAINED_SETTINGS", "stage_key",
           "clear_memo", "dataset", "save_item2vec", "load_item2vec", "item2vec_model",
           "pretrained_embeddings", "pretrained_video_vectors", "CandidateTrainer", "CandidateRun",
           "candidate_model", "untrained_candidate",
           "save_candidate_checkpoint", "load_candidate_checkpoint", "embedding_store", "SCORER_THREADS",
           "candidate_scorer", "ranking_data", "leaky_ranking_data", "RANKER_FORMAT", "ranker",
           "SystemBundle", "system"]
