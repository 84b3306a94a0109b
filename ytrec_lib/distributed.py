"""The candidate model trained on several processes: ``torch.distributed`` DistributedDataParallel (DDP).

One training step of N processes (ranks) over a global batch of B examples (``config.batch_size``)::

    every rank: the same shuffled order (seeded by config.seed) -> global batch idx (B,)
    rank r:     its shard idx[r::N] (about B/N rows) -> features -> loss of its rows (own negatives)
                loss * (rows of the shard * N / B)      so that DDP's mean over ranks is the global mean
    DDP:        gradients all-reduced (averaged) during the backward; every rank takes the same optimiser step

So with the full softmax N processes compute the gradient of the same global batch as one process does
(:func:`ytrec_lib.train.fit` with the same batch size), up to the order of float additions
(:func:`compare_single` measures how far the weights drift). With the sampled softmax each rank draws its
own K negatives from the same proposal q (the popularity of the training labels, as one process) with its
own random stream and subtracts ``log(K q)`` from their logits: the logQ correction is per rank, exactly
as one process applies it to its batch; the draws differ from one process's, so the weights do too.
A last global batch with fewer rows than ranks is skipped (every rank must take part in each step).

Gradients: the input tables (and, with the sampled softmax, the gathered output rows) have sparse
gradients, which DDP all-reduces as sparse tensors; that needs the ``gloo`` backend. Training runs on
the CPU (as the single-process trainer does), so the backend is gloo; NCCL cannot all-reduce sparse
gradients.

Launching (see README, "Training on several processes"):

* one machine, N processes: ``python -m ytrec_lib train-candidate --preset NAME --nproc N`` (or
  :func:`launch` from Python): N processes started with ``torch.multiprocessing`` (spawn), joined
  through a file store; when one dies the others are stopped and :class:`DistributedJobFailed` names it.
* several machines: ``torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d --rdzv-endpoint
  HOST:PORT -m ytrec_lib train-candidate --preset NAME`` on each machine; the command sees torchrun's
  environment (``RANK``, ``WORLD_SIZE``) and runs as one rank (:func:`init_from_env`).

Every collective has a timeout (``timeout_s``, :data:`DEFAULT_TIMEOUT_S`): a rank that dies or hangs
makes the others fail with :class:`DistributedJobFailed` within that time instead of waiting forever.
Rank 0 alone writes the checkpoint, through the pipeline (:func:`ytrec_lib.pipeline.candidate_model`,
atomically); the cache key holds the number of processes.

Layer: above the pipeline (uses it for the data and the checkpoint), beside ``studies``; starting
the processes is :mod:`ytrec_lib.processes`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from ytrec_lib.features import ExampleFeatures
from ytrec_lib.models.candidate import CandidateModel, evaluate_recall
from ytrec_lib.models.sampling import NegativeSampler
from ytrec_lib.processes import (
    BACKEND,
    DEFAULT_TIMEOUT_S,
    WHAT_TO_DO,
    DistributedJobFailed,
    World,
    failure_message,
    init_from_env,
    launch,
    launched_by_torchrun,
    leave_group,
)
from ytrec_lib.progress import tqdm
from ytrec_lib.studies import next_watch
from ytrec_lib.train import (
    Optimizer,
    TrainConfig,
    TrainHistory,
    batch_loss,
    fit,
    make_sampler,
    run_epochs,
    training_inputs,
)

# ----------------------------------------------------------------------------------------------------
# Batches, shards and random streams
# ----------------------------------------------------------------------------------------------------


def global_batches(n: int, batch_size: int, rng: np.random.Generator, world: World) -> list[np.ndarray]:
    """One epoch's global batches: ``rng.permutation(n)`` cut into runs of ``batch_size`` (int64
    arrays), as :func:`ytrec_lib.train.fit` cuts them; a last batch with fewer rows than ranks is left
    out. Every rank passes an equal ``rng`` and so gets the same batches."""
    order = rng.permutation(n)                                                  # (n,)
    batches = [order[s : s + batch_size] for s in range(0, n, batch_size)]
    return [b for b in batches if len(b) >= world.size]


def shard(idx: np.ndarray, world: World) -> np.ndarray:
    """This rank's rows of a global batch ``idx`` (B,): ``idx[rank::size]`` ((B - rank) / size rounded
    up rows); the shards of all ranks partition the batch."""
    return np.asarray(idx)[world.rank :: world.size]


def negatives_rng(seed: int, world: World, shuffle_rng: np.random.Generator) -> np.random.Generator:
    """The random stream of this rank's negatives: ``shuffle_rng`` itself for one process (so one rank
    draws exactly what :func:`ytrec_lib.train.fit` draws), else a stream of its own per rank."""
    return shuffle_rng if world.size == 1 else np.random.default_rng([int(seed), 7, world.rank])


# ----------------------------------------------------------------------------------------------------
# The model as DDP sees it
# ----------------------------------------------------------------------------------------------------


class _Holder(nn.Module):
    """Declares one parameter of the model to DDP with the gradient layout it will get: an
    ``nn.Embedding(sparse=True)`` for a sparse gradient, a plain module for a dense one."""


def _holder(param: nn.Parameter, sparse: bool) -> nn.Module:
    module: nn.Module = nn.Embedding(1, 1, sparse=True) if sparse else _Holder()
    if sparse:
        del module.weight
    module.register_parameter("weight", param)
    return module


class TrainingLoss(nn.Module):
    """The module DDP wraps: ``forward`` is :func:`ytrec_lib.train.batch_loss` of ``model``.

    DDP learns which parameters get sparse gradients from the module that holds them (an embedding
    with ``sparse=True``), but here the output weight gets a sparse gradient from a gathered lookup
    (sampled softmax) and a tied watch table a dense one. ``sparse`` (one bool per trainable
    parameter, from :func:`gradient_layout`) is declared through holder modules registered before the
    model: DDP keeps the first module of a shared parameter.
    """

    def __init__(self, model: CandidateModel, sparse: Sequence[bool]):
        super().__init__()
        params = [p for p in model.parameters() if p.requires_grad]
        if len(params) != len(sparse):
            raise ValueError(f"TrainingLoss: {len(sparse)} layouts for {len(params)} parameters")
        self.layout = nn.ModuleList(_holder(p, s) for p, s in zip(params, sparse, strict=True))
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor], labels: torch.Tensor, config: TrainConfig,
                sampler: NegativeSampler | None, rng: np.random.Generator | None,
                users: np.ndarray | None) -> torch.Tensor:
        """The mean loss (scalar) of the batch's rows."""
        return batch_loss(self.model, batch, labels, config, sampler, rng, users=users)


def gradient_layout(model: CandidateModel, feats: ExampleFeatures, y: torch.Tensor, config: TrainConfig,
                    sampler: NegativeSampler | None, users: np.ndarray | None) -> tuple[list[bool], bool]:
    """``(sparse, unused)``: for each trainable parameter whether its gradient is sparse, and whether
    some parameter gets none, found by one backward of two examples (a throwaway random stream; the
    gradients are cleared, the weights untouched)."""
    idx = np.arange(min(2, len(feats)))
    loss = batch_loss(model, feats.batch(idx), y[idx], config, sampler, np.random.default_rng(0),
                      users=None if users is None else users[idx])
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [g is not None and g.is_sparse for g in grads], any(g is None for g in grads)


def wrap(model: CandidateModel, feats: ExampleFeatures, y: torch.Tensor, config: TrainConfig,
         sampler: NegativeSampler | None, users: np.ndarray | None, world: World) -> DistributedDataParallel:
    """``model``'s :class:`TrainingLoss` in DDP over ``world.group`` (rank 0's weights broadcast to every
    rank)."""
    sparse, unused = gradient_layout(model, feats, y, config, sampler, users)
    return DistributedDataParallel(TrainingLoss(model, sparse), process_group=world.group,
                                   find_unused_parameters=unused)


class CommTimer:
    """Records when each gradient bucket's all-reduce starts and ends (:meth:`hook`, a DDP communication
    hook that all-reduces as DDP's default does); :meth:`seconds` is the time covered by at least one."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []

    def hook(self) -> Callable[..., torch.futures.Future[torch.Tensor]]:
        """The hook for ``DistributedDataParallel.register_comm_hook(group, hook)``: ``(group, bucket)``
        -> the future of the bucket's averaged gradients. Its arguments carry no annotations: DDP accepts
        only its own classes there, and this module's annotations are strings."""

        def timed_allreduce(state, bucket):  # no annotations: see above
            t0 = time.perf_counter()
            fut = default_hooks.allreduce_hook(state, bucket)

            def done(f):
                self.spans.append((t0, time.perf_counter()))
                return f.value()

            return fut.then(done)

        return timed_allreduce

    def seconds(self, since: float = -math.inf, until: float = math.inf) -> float:
        """Seconds within [since, until] during which some all-reduce was running (overlaps once)."""
        total, end = 0.0, -math.inf
        for a, b in sorted(self.spans):
            a, b = max(a, since, end), min(b, until)
            if b > a:
                total += b - a
            end = max(end, b)
        return total


# ----------------------------------------------------------------------------------------------------
# The training loop
# ----------------------------------------------------------------------------------------------------


def fit_ddp(model: CandidateModel, feats: ExampleFeatures, labels: Any, config: TrainConfig | None = None,
            *, world: World, sampler: NegativeSampler | None = None,
            val: tuple[ExampleFeatures, Any] | None = None, progress: bool = True,
            desc: str | None = None) -> TrainHistory:
    """:func:`ytrec_lib.train.fit` on ``world.size`` processes: call it on every rank with the same
    arguments (every rank holds ``feats``, n examples, and ``labels`` (n,) int64; each reads only its
    shard of each global batch). Needs an initialised process group (:func:`launch` or
    :func:`init_from_env`).

    Same settings as ``fit``: ``config.batch_size`` is the global batch; the sampler (or the config's
    proposal over all the training labels) draws each rank's negatives; ``val`` is evaluated in
    shards and its recall summed over the ranks, so every rank makes the same early-stopping choice and
    ends with the same weights. The history's ``examples_per_s`` counts global examples; losses are
    the global batches' means. A lost rank raises :class:`DistributedJobFailed`.
    """
    config = config or TrainConfig()
    y, sampler, users = training_inputs(model, feats, labels, config, sampler)  # (n,), -, (n,) or None
    ddp = _collective(lambda: wrap(model, feats, y, config, sampler, users, world), world,
                      "the start of training (rank 0's weights sent to every rank)")
    shuffle = np.random.default_rng(config.seed)
    draws = negatives_rng(config.seed, world, shuffle)
    opt = Optimizer(model, config.lr, sparse=config.sparse_updates, sparse_output=config.loss == "sampled")
    bar = tqdm(range(config.epochs), desc=desc or f"train ({config.loss} softmax, {world.size} processes)",
               disable=not (progress and world.writes))

    def evaluate() -> float:
        return sharded_recall(model, *val, config, world)

    return run_epochs(model, config, bar,
                      lambda: _ddp_epoch(ddp, feats, y, users, config, opt, shuffle, draws, sampler, world),
                      None if val is None else evaluate)


def _ddp_epoch(ddp: DistributedDataParallel, feats: ExampleFeatures, y: torch.Tensor,
               users: np.ndarray | None, config: TrainConfig, opt: Optimizer, shuffle: np.random.Generator,
               draws: np.random.Generator, sampler: NegativeSampler | None,
               world: World) -> tuple[float, int]:
    """One pass over the global batches; ``(mean global-batch loss, examples)`` (the same on every rank)."""
    ddp.train()
    batches = global_batches(len(feats), config.batch_size, shuffle, world)
    total = 0.0
    for idx in batches:
        mine = shard(idx, world)                                                # (b,) this rank's rows
        loss = ddp(feats.batch(mine), y[mine], config, sampler, draws, None if users is None else users[mine])
        scaled = loss if world.size == 1 else loss * (len(mine) * world.size / len(idx))
        _collective(lambda scaled=scaled: opt.step(scaled), world, "the gradient all-reduce")
        total += float(scaled.detach())
    summed = _all_sum(torch.tensor([total], dtype=torch.float64), world, "the epoch's loss")  # (1,)
    return float(summed[0]) / world.size / max(len(batches), 1), int(sum(len(b) for b in batches))


def sharded_recall(model: CandidateModel, feats: ExampleFeatures, labels: Any, config: TrainConfig,
                   world: World) -> float:
    """Recall@``config.eval_k`` of ``feats`` (n examples, ``labels`` (n,)): each rank ranks its shard
    ``[rank::size]``, the hits and counts are summed over the ranks."""
    y = np.asarray(labels, dtype=np.int64)
    mine = shard(np.arange(len(y)), world)
    rec = evaluate_recall(model, feats.subset(mine), y[mine], k=config.eval_k,
                          exclude_watched=config.exclude_watched) if len(mine) else 0.0
    hits = torch.tensor([round(rec * len(mine)) if len(mine) else 0, len(mine)], dtype=torch.float64)
    hits = _all_sum(hits, world, "the validation recall")                      # (2,)
    return float(hits[0] / hits[1]) if hits[1] > 0 else float("nan")


def _all_sum(t: torch.Tensor, world: World, what: str) -> torch.Tensor:
    """``t`` summed over the ranks (unchanged for one process)."""
    if world.size > 1:
        _collective(lambda: dist.all_reduce(t, group=world.group), world, what)
    return t


def _collective(fn: Callable[[], Any], world: World, what: str) -> Any:
    """Run ``fn`` (which talks to the other ranks); a lost or silent rank becomes DistributedJobFailed."""
    try:
        return fn()
    except (RuntimeError, dist.DistError) as err:
        if not _is_comm_error(err):
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise DistributedJobFailed(
            f"rank {world.rank} of {world.size}: another rank stopped answering during {what} ({first}); "
            f"it died or hung, see its own error above; {WHAT_TO_DO}") from err


def _is_comm_error(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, dist.DistError) or any(w in text for w in (
        "connection", "timed out", "timeout", "peer", "gloo", "broken pipe", "socket"))


# ----------------------------------------------------------------------------------------------------
# Through the pipeline: the candidate stage trained on N processes
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DDPTrainer:
    """The :class:`ytrec_lib.pipeline.CandidateTrainer` of ``world``: trains with :func:`fit_ddp`, adds
    the number of processes to the cache key, and only rank 0 writes the checkpoint."""

    world: World

    @property
    def key(self) -> dict[str, str]:
        return {"ddp_processes": str(self.world.size)}

    @property
    def writes(self) -> bool:
        return self.world.writes

    def fit(self, model: CandidateModel, feats: ExampleFeatures, labels: Any, config: TrainConfig, *,
            val: tuple[ExampleFeatures, Any] | None = None, progress: bool = True) -> TrainHistory:
        return fit_ddp(model, feats, labels, config, world=self.world, val=val, progress=progress)


def train_candidate(world: World, preset: str, seed: int = 0,
                    overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The pipeline's candidate model of ``preset`` (``overrides``: settings of
    :class:`ytrec_lib.pipeline.CandidateConfig`) trained by every rank of ``world`` together, or loaded
    when its checkpoint is cached; call it on every rank. Returns a summary: ``path``, ``from_cache``,
    ``processes``, ``epochs``, ``best_val_recall``, ``train_seconds``, ``key``. Upstream artifacts not
    cached yet (the dataset, the item2vec tables) are built by every rank alike, each written atomically."""
    from ytrec_lib import pipeline

    run = pipeline.candidate_model(preset, seed, trainer=DDPTrainer(world), progress=world.writes,
                                   **(overrides or {}))
    return run_summary(run, world.size)


def run_summary(run: Any, processes: int) -> dict[str, Any]:
    """What :func:`train_candidate` returns, of a :class:`ytrec_lib.pipeline.CandidateRun`."""
    recalls = [e["val_recall"] for e in run.history]
    best = float(np.nanmax(recalls)) if recalls and not np.isnan(recalls).all() else math.nan
    return {"path": str(run.path), "from_cache": bool(run.from_cache), "processes": int(processes),
            "epochs": len(run.history), "best_val_recall": best, "train_seconds": float(run.train_seconds),
            "key": run.key}


# ----------------------------------------------------------------------------------------------------
# What the notebook measures: equality with one process, and scaling
# ----------------------------------------------------------------------------------------------------


COMPARE_ATOL = 1e-4
"""The largest absolute difference between any weight of N-process and one-process training that
:func:`compare_single` calls equal: float32 sums in another order, through a few dozen Adam steps."""


def _job(loss: str, max_train: int | None, seed: int) -> tuple[SimpleNamespace, TrainConfig]:
    """The default candidate model (next-watch split, random input tables) with the sampled or full
    softmax: its settings as a plain namespace (what a new process unpickles without importing the
    pipeline) and its :class:`TrainConfig`."""
    from ytrec_lib import pipeline

    cfg = pipeline.CandidateConfig(split="next_watch", init="random", loss=loss, max_train_examples=max_train)
    return SimpleNamespace(**asdict(cfg)), cfg.train_config(seed)


def _compare_worker(world: World, preset: str, seed: int, cfg: SimpleNamespace,
                    tcfg: TrainConfig) -> dict[str, Any]:
    data = next_watch.training_data(preset, seed, cfg)
    hist = fit_ddp(data["model"], data["train"], data["train_labels"], tcfg, world=world, progress=False)
    return {"state": data["model"].state_dict(), "losses": hist.losses}


def compare_single(preset: str = "tiny", nproc: int = 2, seed: int = 0, *, epochs: int = 2,
                   atol: float = COMPARE_ATOL) -> dict[str, float | bool]:
    """Train the candidate model (full softmax, random input tables, ``epochs`` epochs of ``preset``'s
    next-watch examples) once in this process with :func:`ytrec_lib.train.fit` and once on ``nproc``
    processes with :func:`fit_ddp`, on the same global batches; compare every weight.

    Returns ``equal`` (max_abs_diff <= atol), ``max_abs_diff`` (over all weights), ``atol``,
    ``max_abs_update`` (the largest change of a weight by the one-process training: the scale the
    difference is small against), ``n_weights``, ``nproc``, ``epochs`` and the last epoch's mean loss of
    each (``loss_single``, ``loss_ddp``). The full softmax: with the sampled one each rank draws its own
    negatives, so the weights cannot be equal.
    """
    from ytrec_lib.threads import limit_threads

    cfg, tcfg = _job("full", None, seed)
    tcfg = replace(tcfg, epochs=int(epochs))
    data = next_watch.training_data(preset, seed, cfg)
    start = copy.deepcopy(data["model"].state_dict())
    with limit_threads(1, blas=False):
        hist = fit(data["model"], data["train"], data["train_labels"], tcfg, progress=False)
    out = launch(_compare_worker, nproc, preset, seed, cfg, tcfg)
    single = data["model"].state_dict()
    diff = max(float((single[k] - out["state"][k]).abs().max()) for k in single)
    moved = max(float((single[k] - start[k]).abs().max()) for k in single)
    return {"equal": diff <= atol, "max_abs_diff": diff, "atol": float(atol), "max_abs_update": moved,
            "n_weights": float(sum(v.numel() for v in single.values())), "nproc": float(nproc),
            "epochs": float(epochs), "loss_single": hist.losses[-1], "loss_ddp": float(out["losses"][-1])}


def _scaling_worker(world: World, preset: str, nprocs: list[int], seed: int, job: tuple[Any, TrainConfig],
                    steps: int | None, warmup: int) -> dict[int, dict[str, float]]:
    """Every count of ``nprocs`` in turn, on the first ``p`` ranks of the job (the others wait)."""
    data = next_watch.training_data(preset, seed, job[0])
    out = {}
    for p in nprocs:
        group = dist.new_group(list(range(p)))  # every rank takes part in creating it
        if world.rank < p:
            out[p] = _timed_steps(data, job[1], World(world.rank, p, group), seed, steps, warmup)
        _collective(dist.barrier, world, "the wait between two process counts")
    return out


def _timed_steps(data: dict[str, Any], tcfg: TrainConfig, world: World, seed: int, steps: int | None,
                 warmup: int) -> dict[str, float]:
    """Train a fresh copy of ``data["model"]`` for ``warmup`` + ``steps`` DDP steps and time the last ones,
    then time the same steps again under ``no_sync`` (no all-reduce): the difference is the time the
    communication adds to a step (what the backward does not hide)."""
    model = copy.deepcopy(data["model"])
    feats, y = data["train"], torch.from_numpy(np.array(data["train_labels"], dtype=np.int64))
    sampler = make_sampler(model.n_videos, tcfg.proposal, np.bincount(y.numpy(), minlength=model.n_videos),
                           tcfg.proposal_alpha)
    ddp, timer = wrap(model, feats, y, tcfg, sampler, None, world), CommTimer()
    ddp.register_comm_hook(world.group, timer.hook())  # state: the group it all-reduces over
    opt = Optimizer(model, tcfg.lr, sparse=tcfg.sparse_updates, sparse_output=True)
    shuffle = np.random.default_rng(seed)
    draws = negatives_rng(seed, world, shuffle)
    batches = global_batches(len(feats), tcfg.batch_size, shuffle, world)
    n_steps = len(batches) - warmup if steps is None else int(steps)
    if n_steps < 1 or warmup + n_steps > len(batches):
        raise ValueError(f"scaling: {len(batches)} batches of {tcfg.batch_size}, asked for {warmup} warm-up "
                         f"and {n_steps} timed steps; raise max_train or lower steps")

    def run(chunk: list[np.ndarray], sync: bool) -> float:
        _all_sum(torch.zeros(1), world, "the start of the timing")              # start together
        t0 = time.perf_counter()
        for idx in chunk:
            mine = shard(idx, world)                                            # (b,)
            with contextlib.nullcontext() if sync else ddp.no_sync():
                loss = ddp(feats.batch(mine), y[mine], tcfg, sampler, draws, None)
                opt.step(loss * (len(mine) * world.size / len(idx)))
        _all_sum(torch.zeros(1), world, "the end of the timing")
        return time.perf_counter() - t0

    run(batches[:warmup], sync=True)
    timed = batches[warmup : warmup + n_steps]
    t_start = time.perf_counter()
    secs = run(timed, sync=True)
    busy = timer.seconds(t_start)
    secs_alone = run(timed, sync=False)
    examples = sum(len(b) for b in timed)
    return {"examples_per_s": examples / secs, "comm_share": max(0.0, 1.0 - secs_alone / secs),
            "allreduce_busy_share": busy / secs, "seconds": secs, "seconds_without_sync": secs_alone,
            "steps": float(n_steps), "batch_size": float(tcfg.batch_size)}


def scaling(preset: str, nprocs: Sequence[int], seed: int = 0, max_train: int | None = 20000,
            steps: int | None = None, *, warmup: int = 3) -> dict[int, dict[str, float]]:
    """Throughput of the candidate trainer (the default model: sampled softmax, random input tables) on
    each number of processes in ``nprocs``: ``{nproc: {"examples_per_s", "comm_share",
    "allreduce_busy_share", "seconds", "seconds_without_sync", "steps", "batch_size"}}``.

    One job of ``max(nprocs)`` processes loads ``preset``'s next-watch examples once (``max_train``: a
    seeded subset; None: all); then each count ``p`` trains a fresh model on the first ``p`` ranks (the
    others wait) with the same global batch (strong scaling), one torch thread per process: ``warmup``
    untimed steps, then ``steps`` timed ones (None: the rest of one epoch). ``examples_per_s``: global
    examples per wall second of the timed steps (rank 0's clock, between two all-reduces that start
    and end them together). ``comm_share``: the share of a step the gradient all-reduce adds, ``1 -
    t(no_sync) / t`` with ``t(no_sync)`` the same steps timed again without communication (0 when
    the backward hides it, as on one process). ``allreduce_busy_share``: the share of the time during
    which some all-reduce was in flight (:class:`CommTimer`, overlap with the backward included).
    """
    counts = sorted({int(p) for p in nprocs})
    if not counts or counts[0] < 1:
        raise ValueError(f"scaling: nprocs must be positive process counts, got {list(nprocs)}")
    out = launch(_scaling_worker, counts[-1], preset, counts, seed, _job("sampled", max_train, seed), steps,
                 int(warmup))
    return {int(p): out[int(p)] for p in nprocs}


__all__ = ["BACKEND", "DEFAULT_TIMEOUT_S", "COMPARE_ATOL", "DistributedJobFailed", "World", "global_batches",
           "shard", "negatives_rng", "TrainingLoss", "gradient_layout", "wrap", "CommTimer", "fit_ddp",
           "sharded_recall", "init_from_env", "launched_by_torchrun", "leave_group", "launch",
           "failure_message", "DDPTrainer", "train_candidate", "run_summary", "compare_single", "scaling"]
