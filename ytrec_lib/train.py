"""The one trainer of every retrieval model (:class:`ytrec_lib.models.candidate.CandidateModel`).

One configuration (:class:`TrainConfig`), one optimiser (:class:`Optimizer`), one batch loss
(:func:`batch_loss`) and one loop (:func:`fit`) serve the paper's candidate generator (notebooks 03-08:
full or sampled softmax with a uniform or popularity proposal, sparse updates, early stopping on the
validation recall) and the negative-sampling study (notebook 06: any
:class:`ytrec_lib.models.sampling.NegativeSampler` -- shared, per row, in-batch, mixed, exposed, pooled --
with or without the logQ correction, the same budget for every strategy).

The loss of one batch of B examples with user embeddings ``u`` (B, m)::

    full     cross-entropy of  u @ W.T + b  over every video                    (config.loss == "full")
    sampled  sampled softmax of the positive against K negatives from a sampler (config.loss == "sampled")
             -- the sampler passed to fit, else the config's proposal over the training labels;
             logits of the draws minus log(K q) (config.logq_correction; the positive too when it is
             one of the draws: in-batch, mixed), accidental hits masked.

``config.sparse_updates`` picks the optimiser: True, Adam for the dense parameters and SparseAdam
for the sparse embedding tables and, in sampled mode, the output rows (only the gathered rows get a
gradient: what makes a million-video catalogue train fast); False, one dense Adam over everything
(the sparse gradients made dense first: faster at a few thousand videos).

Layer: imports ``ytrec_lib.models``, ``ytrec_lib.features`` and ``ytrec_lib.metrics`` only.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ytrec_lib.features import ExampleFeatures
from ytrec_lib.models.candidate import (
    CandidateModel,
    _labels_tensor,
    evaluate_recall,
)
from ytrec_lib.models.sampling import (
    InBatchSampler,
    NegativeSampler,
    PooledSampler,
    PopularitySampler,
    UniformSampler,
    full_softmax_loss,
    positive_in_draws,
    sampled_softmax_loss,
)
from ytrec_lib.progress import tqdm

LOSSES: tuple[str, ...] = ("full", "sampled")
PROPOSALS: tuple[str, ...] = ("uniform", "popularity")


# ----------------------------------------------------------------------------------------------------
# Configuration and history
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """How to train: objective, negatives, optimiser, budget, early stopping, seed.

    ``loss``: "full" or "sampled"; ``n_negatives``: K negatives per batch (shared) or per row, for the
    samplers that take a count (in-batch and pooled samplers fix their own); ``proposal``: "uniform"
    or "popularity" (training-label counts ** ``proposal_alpha``), used when :func:`fit` gets no
    sampler; ``logq_correction``: subtract ``log(K q)``; ``remove_accidental_hits``: mask negatives
    equal to the row's positive; ``sparse_updates``: SparseAdam for the sparse tables and sampled
    output rows (True) or one dense Adam (False); ``patience``: epochs without a better validation
    recall@``eval_k`` before stopping (the best epoch's weights are restored); ``exclude_watched``:
    the validation ranking skips videos watched before the example.
    """

    loss: str = "full"
    n_negatives: int = 1000
    proposal: str = "popularity"
    proposal_alpha: float = 1.0
    logq_correction: bool = True
    remove_accidental_hits: bool = True
    epochs: int = 10
    batch_size: int = 512
    lr: float = 3e-3
    patience: int = 2
    eval_k: int = 100
    exclude_watched: bool = True
    sparse_updates: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig: loss must be 'full' or 'sampled', got {self.loss!r}")
        if self.proposal not in PROPOSALS:
            raise ValueError(f"TrainConfig: proposal must be uniform or popularity, got {self.proposal!r}")
        for name in ("n_negatives", "epochs", "batch_size", "eval_k"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig: {name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig: lr must be > 0, got {self.lr}")
        if not self.proposal_alpha >= 0:
            raise ValueError(f"TrainConfig: proposal_alpha must be >= 0, got {self.proposal_alpha}")


@dataclass
class TrainHistory:
    """Per-epoch records (epoch, loss, val_recall, seconds, cpu_seconds, examples, examples_per_s) and the
    best epoch (the last one when there is no validation set). ``seconds`` is the wall-clock time of the
    epoch's training pass, ``cpu_seconds`` the CPU time this process spent in it (every thread; robust
    to other processes on a shared machine); neither includes the validation pass."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_recall: float = float("nan")

    @property
    def examples_per_s(self) -> float:
        """Mean training throughput over the epochs (examples / second)."""
        secs = sum(e["seconds"] for e in self.epochs)
        n = sum(e["examples"] for e in self.epochs)
        return n / secs if secs > 0 else float("nan")

    @property
    def losses(self) -> list[float]:
        """The mean training loss of each epoch."""
        return [e["loss"] for e in self.epochs]


# ----------------------------------------------------------------------------------------------------
# Negatives and the optimiser
# ----------------------------------------------------------------------------------------------------


def make_sampler(n_videos: int, kind: str = "popularity", counts: np.ndarray | None = None,
                 alpha: float = 1.0) -> NegativeSampler:
    """A shared-negatives proposal over the catalogue: ``"uniform"``, or ``"popularity"``
    (``(counts + 1) ** alpha``; the +1 lets every video be drawn, so log q is finite)."""
    if kind == "uniform":
        return UniformSampler(n_videos, shared=True)
    if kind == "popularity":
        if counts is None or len(counts) != n_videos:
            raise ValueError(f"make_sampler: the popularity proposal needs counts of length {n_videos}")
        return PopularitySampler(counts, alpha, smoothing=1.0, shared=True)
    raise ValueError(f"make_sampler: kind must be 'uniform' or 'popularity', got {kind!r}")


class SparseAdam(torch.optim.SparseAdam):
    """``torch.optim.SparseAdam`` with the same arithmetic, in the same order, on the gradient's rows.

    torch's step goes through ``sparse_mask`` and dense-plus-sparse additions, which cost several times
    the arithmetic on a (n, d) table; here the coalesced gradient's rows ``idx`` (R,) are read with
    ``index_select`` and written back with ``index_add_`` (the rows are distinct, so each element gets
    exactly the one addition torch's sparse ``add_`` makes): the parameters and the state stay
    bit-identical to torch's (tests/unit/test_train.py checks it). Gradients that are not a sparse
    table of rows (sparse_dim != 1) or ``maximize=True`` go through torch's own step.
    """

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if any(g.get("maximize") for g in self.param_groups) or any(
                p.grad is not None and p.grad.is_sparse and p.grad.sparse_dim() != 1
                for g in self.param_groups for p in g["params"]):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise RuntimeError("SparseAdam does not support dense gradients, use Adam instead")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                _sparse_adam_rows(p, p.grad, state, group)
        return loss


def _sparse_adam_rows(p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any],
                      group: dict[str, Any]) -> None:
    """One SparseAdam update of the rows of ``p`` (n, d) that the sparse ``grad`` touches (torch's
    ``optim._functional.sparse_adam``, operation for operation; each dense-plus-sparse addition
    ``t + u`` becomes ``t.index_copy_(idx, t[idx] + u)``)."""
    idx, values = _coalesced_rows(grad)                                     # (R,), (R, d)
    if values.numel() == 0:
        return
    (beta1, beta2), eps, lr, step = group["betas"], group["eps"], float(group["lr"]), state["step"]
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    old_m = exp_avg.index_select(0, idx)                                    # (R, d)
    upd_m = values.sub(old_m).mul_(1 - beta1)                               # (R, d)
    numer = upd_m.add_(old_m)                                               # (R, d) the new first moment
    exp_avg.index_copy_(0, idx, numer)
    old_v = exp_avg_sq.index_select(0, idx)                                 # (R, d)
    new_v = values.pow(2).sub_(old_v).mul_(1 - beta2).add_(old_v)           # (R, d) the new second moment
    exp_avg_sq.index_copy_(0, idx, new_v)
    denom = new_v.sqrt_().add_(eps)                                         # (R, d)
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    p.index_copy_(0, idx, p.index_select(0, idx).add_(-step_size * numer.div_(denom)))


def _coalesced_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row ids (R,) and values (R, d) of a row-sparse gradient with duplicate rows summed (torch's
    ``coalesce``); a gradient whose row ids already increase strictly (the gathered output rows of
    :func:`batch_loss`) is taken as it is, which is what ``coalesce`` would return, without its sort."""
    idx = grad._indices()[0]
    if grad.is_coalesced() or (len(idx) > 1 and bool((idx[1:] > idx[:-1]).all())) or len(idx) == 1:
        return idx, grad._values()
    grad = grad.coalesce()
    return grad._indices()[0], grad._values()


class Optimizer:
    """Adam over a model's trainable parameters, sparse or dense.

    ``sparse=True``: Adam for the dense gradients, SparseAdam for the sparse ones (the embedding
    tables with sparse gradients and, with ``sparse_output``, the untied output weight, whose
    sampled rows :func:`batch_loss` gathers sparsely). ``sparse=False``: one Adam over everything,
    the sparse gradients made dense before each step.
    """

    def __init__(self, model: CandidateModel, lr: float, *, sparse: bool = True, sparse_output: bool = False):
        self.sparse = bool(sparse)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.sparse:
            self.opts = [torch.optim.Adam(self.params, lr=lr)]
            return
        tables = [t.weight for t in (model.watch_emb, model.search_emb, model.region_emb) if t.sparse]
        if sparse_output and not model.hparams.get("tie_output"):
            tables.append(model.output.weight)
        tables = [p for p in tables if p.requires_grad]
        ids = {id(p) for p in tables}
        dense = [p for p in self.params if id(p) not in ids]
        self.opts = [torch.optim.Adam(dense, lr=lr)] if dense else []
        if tables:
            self.opts.append(SparseAdam(tables, lr=lr))

    def zero_grad(self) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=True)

    def step(self, loss: torch.Tensor | None = None) -> None:
        """With ``loss``: zero the gradients, back-propagate it, then update; without: only update."""
        if loss is not None:
            self.zero_grad()
            loss.backward()
        if not self.sparse:
            for p in self.params:
                if p.grad is not None and p.grad.is_sparse:
                    p.grad = p.grad.to_dense()
        for o in self.opts:
            o.step()


# ----------------------------------------------------------------------------------------------------
# The loss of one batch
# ----------------------------------------------------------------------------------------------------


def batch_loss(
    model: CandidateModel,
    batch: dict[str, torch.Tensor],
    labels: Any,
    config: TrainConfig,
    sampler: NegativeSampler | None = None,
    rng: np.random.Generator | None = None,
    *,
    users: np.ndarray | None = None,
) -> torch.Tensor:
    """The training loss (scalar) of one batch: ``labels`` (B,) int64 video ids, ``users`` (B,) the
    examples' user ids (needed by per-user samplers: exposed, hard).

    ``config.loss == "full"``: the cross-entropy over every video (with ``config.sparse_updates``
    from the output layer's logits, else :func:`~ytrec_lib.models.sampling.full_softmax_loss`: equal
    up to float rounding; each keeps the numbers of the stack that used it). ``"sampled"``: negatives from
    ``sampler`` ((K,) shared or (B, K) per row; K = ``config.n_negatives`` unless the sampler fixes
    it) drawn with ``rng``, accidental hits masked (``config.remove_accidental_hits``), ``log(K q)``
    subtracted (``config.logq_correction``; from the positive too when it is one of the draws).
    With ``config.sparse_updates`` the output rows used (positives and negatives) are gathered once
    with a sparse gradient (a dense one for a tied model), else indexed directly (dense gradient).
    """
    return embedding_loss(model, model.user_embeddings(batch), labels, config, sampler, rng, users=users)


def embedding_loss(model: CandidateModel, u: torch.Tensor, labels: Any, config: TrainConfig,
                   sampler: NegativeSampler | None = None, rng: np.random.Generator | None = None, *,
                   users: np.ndarray | None = None) -> torch.Tensor:
    """The softmax part of :func:`batch_loss`: the loss (scalar) of user embeddings ``u`` (B, m)
    (the tower's output) against ``labels`` (B,); the arguments as there."""
    y = labels if isinstance(labels, torch.Tensor) else torch.tensor(np.asarray(labels, dtype=np.int64))
    if config.loss == "full":
        if sampler is not None:
            raise ValueError("batch_loss: a sampler was given but config.loss is 'full'")
        if config.sparse_updates:  # the output layer's logits (addmm), as the candidate stack always did
            return F.cross_entropy(model.output(u), y)
        return full_softmax_loss(u, model.output.weight, model.output.bias, y)  # as the study did
    if sampler is None or rng is None:
        raise ValueError("batch_loss: the sampled softmax needs a sampler and a numpy Generator")
    pos = y.numpy()
    if sampler.needs_user and users is None:
        raise ValueError("batch_loss: this sampler draws per user; pass users")
    kw = {"user_ids": users} if sampler.needs_user else {}
    k = None if isinstance(sampler, (InBatchSampler, PooledSampler)) else config.n_negatives
    neg = np.asarray(sampler.sample(pos, k, rng, **kw))                          # (K,) or (B, K)
    lq_neg = lq_pos = None
    if config.logq_correction:
        ctx = {"pos_ids": pos, "user_ids": users} if neg.ndim == 2 else {}
        lq_neg = torch.from_numpy(sampler.log_q(neg, **ctx)).float()             # shape of neg
        if positive_in_draws(sampler):
            lq_pos = torch.from_numpy(sampler.log_q(pos, pos_ids=pos, user_ids=users)).float()  # (B,)
    neg_t = torch.from_numpy(neg)
    if config.sparse_updates:  # gather the U distinct rows once: only they get (sparse) gradients
        uniq, inverse = torch.unique(torch.cat([y, neg_t.reshape(-1)]), return_inverse=True)  # (U,), (B+K',)
        w = F.embedding(uniq, model.output.weight, sparse=not model.hparams.get("tie_output"))  # (U, m)
        b = model.output.bias[uniq]                                              # (U,)
        pos_i, neg_i = inverse[: len(y)], inverse[len(y):].reshape(neg_t.shape)
    else:
        w, b, pos_i, neg_i = model.output.weight, model.output.bias, y, neg_t
    return sampled_softmax_loss(u, w, b, pos_i, neg_i, log_q_pos=lq_pos, log_q_neg=lq_neg,
                                remove_accidental_hits=config.remove_accidental_hits,
                                logq_correction=config.logq_correction)


# ----------------------------------------------------------------------------------------------------
# The training loop
# ----------------------------------------------------------------------------------------------------


def fit(
    model: CandidateModel,
    feats: ExampleFeatures,
    labels: Any,
    config: TrainConfig = TrainConfig(),
    *,
    sampler: NegativeSampler | None = None,
    val: tuple[ExampleFeatures, Any] | None = None,
    progress: bool = True,
    desc: str | None = None,
    leave: bool = True,
) -> TrainHistory:
    """Train ``model`` in place on ``feats`` (n examples) with ``labels`` (n,) video ids.

    Sampled softmax (``config.loss == "sampled"``) draws its negatives from ``sampler`` when given
    (any :class:`~ytrec_lib.models.sampling.NegativeSampler` over the model's videos), else from the
    config's proposal over the training labels. ``val`` = (features, labels): after each epoch
    recall@``eval_k`` is measured on it, training stops after ``patience`` epochs without improvement
    and the best epoch's weights are restored; without ``val`` every epoch runs. Deterministic for
    ``config.seed`` (one numpy Generator shuffles and draws, in that order). The model is left in
    eval mode. ``desc``: the progress bar's label (default ``"train (<loss> softmax)"``).
    """
    y, sampler, users = training_inputs(model, feats, labels, config, sampler)
    rng = np.random.default_rng(config.seed)  # shuffling and negatives
    opt = Optimizer(model, config.lr, sparse=config.sparse_updates, sparse_output=config.loss == "sampled")
    bar = tqdm(range(config.epochs), desc=desc or f"train ({config.loss} softmax)", disable=not progress,
               leave=leave)

    def evaluate() -> float:
        return evaluate_recall(model, *val, k=config.eval_k, exclude_watched=config.exclude_watched)

    def train_epoch() -> tuple[float, int]:
        return _train_epoch(model, feats, y, users, config, opt, rng, sampler), len(feats)

    return run_epochs(model, config, bar, train_epoch, None if val is None else evaluate)


def training_inputs(model: CandidateModel, feats: ExampleFeatures, labels: Any, config: TrainConfig,
                    sampler: NegativeSampler | None) -> tuple[torch.Tensor, NegativeSampler | None,
                                                              np.ndarray | None]:
    """:func:`fit`'s checks of its arguments and its defaults: ``(y, sampler, users)`` with ``y`` (n,)
    int64 the labels, ``sampler`` the given one or, for the sampled softmax, the config's proposal over
    the training labels, ``users`` (n,) the examples' users when a sampler draws (else None)."""
    if len(feats) == 0:
        raise ValueError("fit: no training examples")
    if feats.spec != model.spec:
        raise ValueError("fit: the features were built with another FeatureSpec than the model's")
    y = _labels_tensor(labels, model.n_videos, len(feats))
    if sampler is not None and config.loss != "sampled":
        raise ValueError("fit: a sampler needs config.loss='sampled'")
    if sampler is not None and sampler.n_items != model.n_videos:
        raise ValueError(f"fit: the sampler draws from {sampler.n_items} videos, "
                         f"the model has {model.n_videos}")
    if config.loss == "sampled" and sampler is None:
        counts = np.bincount(y.numpy(), minlength=model.n_videos)
        sampler = make_sampler(model.n_videos, config.proposal, counts, config.proposal_alpha)
    users = None if sampler is None else getattr(feats, "users", None)  # (n,) for per-user samplers
    return y, sampler, users


def run_epochs(model: CandidateModel, config: TrainConfig, epochs: Iterable[int],
               train_epoch: Callable[[], tuple[float, int]],
               evaluate: Callable[[], float] | None) -> TrainHistory:
    """The epoch loop of :func:`fit` (and of ``ytrec_lib.distributed.fit_ddp``): for each epoch of
    ``epochs`` (a progress bar, or a range) ``train_epoch()`` -> (mean loss, examples), then
    ``evaluate()`` -> the validation recall; stop after ``config.patience`` epochs without a better
    one and restore the best epoch's weights (without ``evaluate`` every epoch runs). Leaves the model
    in eval mode."""
    hist, best_state, stale = TrainHistory(), None, 0
    for epoch in epochs:
        t0, c0 = time.perf_counter(), time.process_time()
        loss, examples = train_epoch()
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        rec = float("nan") if evaluate is None else evaluate()
        hist.epochs.append({"epoch": epoch, "loss": loss, "val_recall": rec, "seconds": secs,
                            "cpu_seconds": cpu, "examples": examples, "examples_per_s": examples / secs})
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{loss:.3f}", val_recall=f"{rec:.3f}")
        if evaluate is None or not rec <= hist.best_val_recall:  # first epoch, or an improvement
            hist.best_epoch, hist.best_val_recall, stale = epoch, rec, 0
            best_state = copy.deepcopy(model.state_dict()) if evaluate is not None else None
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return hist


def _train_epoch(model, feats, y, users, config, opt, rng, sampler) -> float:
    """One pass over the shuffled examples; returns the mean batch loss."""
    model.train()
    order = rng.permutation(len(feats))
    total, n_batches = 0.0, 0
    for start in range(0, len(order), config.batch_size):
        idx = order[start : start + config.batch_size]
        loss = batch_loss(model, feats.batch(idx), y[idx], config, sampler, rng,
                          users=None if users is None else users[idx])
        opt.step(loss)
        total, n_batches = total + loss.item(), n_batches + 1
    return total / max(n_batches, 1)


__all__ = ["TrainConfig", "TrainHistory", "Optimizer", "SparseAdam", "make_sampler", "batch_loss",
           "embedding_loss", "fit", "training_inputs", "run_epochs", "LOSSES", "PROPOSALS"]
