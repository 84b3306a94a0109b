"""Tests of ytrec_lib.train: the one trainer reproduces, bit for bit, the two training stacks it replaced.

Until this module, CandidateModel was trained by two loops: ``candidate.train_candidate`` (full or
sampled softmax with the config's proposal, Adam + SparseAdam, sparse gathered output rows, early
stopping) and ``negatives.train_retrieval`` (any NegativeSampler, one dense Adam, full-matrix indexing).
``_ref_candidate`` and ``_ref_study`` below are those loops, condensed but with the same operations in
the same order (same RNG draws); ``fit`` must give the same per-epoch losses and the same weights.
(Checked in the session that wrote this module: the originals and these copies agree exactly.)
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ytrec_lib.models.candidate import evaluate_recall
from ytrec_lib.models.sampling import (
    ExposedSampler,
    HardNegativeSampler,
    InBatchSampler,
    MixedSampler,
    PooledSampler,
    PopularitySampler,
    UniformSampler,
    full_softmax_loss,
    positive_in_draws,
    sampled_softmax_loss,
)
from ytrec_lib.train import LOSSES, Optimizer, TrainConfig, fit, make_sampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from planted_task import N_CLUSTERS, N_VIDEOS, PER_CLUSTER, model, planted  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def task():
    return planted()


# ---------------------------------------------------------------------------- the two old stacks


def _ref_candidate(m, feats, labels, cfg: TrainConfig, val=None) -> list[float]:
    """The old candidate.train_candidate (Adam + SparseAdam, gathered rows); per-epoch mean losses."""
    y = torch.as_tensor(np.array(labels, dtype=np.int64))
    sampler = None
    if cfg.loss == "sampled":
        sampler = make_sampler(N_VIDEOS, cfg.proposal, np.bincount(y.numpy(), minlength=N_VIDEOS),
                               cfg.proposal_alpha)
    rng = np.random.default_rng(cfg.seed)
    sparse = [t.weight for t in (m.watch_emb, m.search_emb, m.region_emb) if t.sparse]
    if cfg.loss == "sampled":
        sparse.append(m.output.weight)
    dense = [p for p in m.parameters() if all(p is not q for q in sparse)]
    opts = [torch.optim.Adam(dense, lr=cfg.lr), torch.optim.SparseAdam(sparse, lr=cfg.lr)]
    losses, best, best_state, stale = [], float("nan"), None, 0
    for _ in range(cfg.epochs):
        m.train()
        order, total, n_b = rng.permutation(len(y)), 0.0, 0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s: s + cfg.batch_size]
            u, lab = m.user_embeddings(feats.batch(idx)), y[idx]
            if cfg.loss == "full":
                loss = F.cross_entropy(m.output(u), lab)
            else:
                neg = torch.from_numpy(sampler.sample(lab.numpy(), cfg.n_negatives, rng))
                lq = torch.from_numpy(sampler.log_q(neg.numpy())).float()
                uniq, inv = torch.unique(torch.cat([lab, neg]), return_inverse=True)
                w = F.embedding(uniq, m.output.weight, sparse=True)
                loss = sampled_softmax_loss(u, w, m.output.bias[uniq], inv[: len(lab)], inv[len(lab):],
                                            log_q_neg=lq, remove_accidental_hits=cfg.remove_accidental_hits,
                                            logq_correction=cfg.logq_correction)
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts:
                o.step()
            total, n_b = total + loss.item(), n_b + 1
        losses.append(total / n_b)
        if val is not None:
            rec = evaluate_recall(m, *val, k=cfg.eval_k, exclude_watched=cfg.exclude_watched)
            if not rec <= best:
                best, best_state, stale = rec, copy.deepcopy(m.state_dict()), 0
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
    if best_state is not None:
        m.load_state_dict(best_state)
    return losses


def _ref_study(m, feats, labels, sampler, cfg: TrainConfig) -> list[float]:
    """The old negatives.train_retrieval (one dense Adam, sparse gradients densified, full-matrix
    indexing; sampler None = full_softmax_loss); per-epoch mean losses."""
    y = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(cfg.seed)
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    losses = []
    m.train()
    for _ in range(cfg.epochs):
        order, total, n_b = rng.permutation(len(y)), 0.0, 0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s: s + cfg.batch_size]
            pos, users = y[idx], feats.users[idx]
            u = m.user_embeddings(feats.batch(idx))
            if sampler is None:
                loss = full_softmax_loss(u, m.output.weight, m.output.bias, torch.tensor(pos))
            else:
                kw = {"user_ids": users} if sampler.needs_user else {}
                k = None if isinstance(sampler, (InBatchSampler, PooledSampler)) else cfg.n_negatives
                neg = sampler.sample(pos, k, rng, **kw)
                lq_neg = lq_pos = None
                if cfg.logq_correction:
                    ctx = {"pos_ids": pos, "user_ids": users} if neg.ndim == 2 else {}
                    lq_neg = torch.from_numpy(sampler.log_q(neg, **ctx)).float()
                    if positive_in_draws(sampler):
                        lq_pos = torch.from_numpy(sampler.log_q(pos, pos_ids=pos, user_ids=users)).float()
                loss = sampled_softmax_loss(u, m.output.weight, m.output.bias, torch.tensor(pos),
                                            torch.tensor(neg), log_q_pos=lq_pos, log_q_neg=lq_neg,
                                            logq_correction=cfg.logq_correction)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for p in params:
                if p.grad is not None and p.grad.is_sparse:
                    p.grad = p.grad.to_dense()
            opt.step()
            total, n_b = total + loss.item(), n_b + 1
        losses.append(total / n_b)
    return losses


def _same(ref_model, ref_losses, new_model, hist) -> None:
    """The same per-epoch losses and weights, bit for bit."""
    np.testing.assert_allclose(hist.losses, ref_losses, rtol=0, atol=0)
    for k, v in ref_model.state_dict().items():
        torch.testing.assert_close(new_model.state_dict()[k], v, rtol=0, atol=0)


# ---------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("case", ["full", "sampled_popularity_logq", "full_early_stopping"])
def test_fit_reproduces_the_old_candidate_stack(task, case):
    """(a) full softmax, Adam + SparseAdam; (b) sampled, popularity proposal, logQ; with early stopping."""
    feats, labels, _ = task
    cfg = {"full": TrainConfig(epochs=3, batch_size=64, lr=1e-2, seed=0),
           "sampled_popularity_logq": TrainConfig(loss="sampled", n_negatives=15, proposal="popularity",
                                                  epochs=3, batch_size=64, lr=1e-2, seed=1),
           "full_early_stopping": TrainConfig(epochs=4, batch_size=64, lr=3e-2, patience=1, eval_k=5,
                                              exclude_watched=False)}[case]
    val = (feats, labels) if case == "full_early_stopping" else None
    ref, new = model(), model()
    ref_losses = _ref_candidate(ref, feats, labels, cfg, val)
    _same(ref, ref_losses, new, fit(new, feats, labels, cfg, val=val, progress=False))


def _study_sampler(kind: str, labels: np.ndarray, cluster: np.ndarray):
    probs = np.bincount(labels, minlength=N_VIDEOS) / len(labels)
    n = len(cluster)
    return {
        "inbatch_logq": InBatchSampler(N_VIDEOS, item_probs=probs),
        "uniform": UniformSampler(N_VIDEOS, shared=True),
        "exposed": ExposedSampler(N_VIDEOS, np.repeat(np.arange(n), N_CLUSTERS),
                                  np.tile(np.arange(N_CLUSTERS) * PER_CLUSTER, n),
                                  np.zeros(n * N_CLUSTERS, bool)),
        "mixed": MixedSampler(InBatchSampler(N_VIDEOS, item_probs=probs)),
        "pooled_hard": PooledSampler([(UniformSampler(N_VIDEOS, shared=True), 8),
                                      (HardNegativeSampler(np.tile(np.arange(N_VIDEOS), (n, 1)), N_VIDEOS,
                                                           lo=10, hi=30), 8)]),
        "full": None,
    }[kind]


@pytest.mark.parametrize(("kind", "logq"), [("inbatch_logq", True), ("uniform", True),
                                            ("inbatch_logq", False), ("exposed", True), ("mixed", True),
                                            ("pooled_hard", True), ("full", False)])
def test_fit_reproduces_the_old_study_stack(task, kind, logq):
    """(c) in-batch with logQ (positive in the draws), (d) uniform global negatives, and the other study
    samplers, all with one dense Adam."""
    feats, labels, cluster = task
    cfg = TrainConfig(loss="full" if kind == "full" else "sampled", n_negatives=16, epochs=2, batch_size=64,
                      logq_correction=logq, sparse_updates=False, seed=2)
    ref, new = model(), model()
    ref_losses = _ref_study(ref, feats, labels, _study_sampler(kind, labels, cluster), cfg)
    hist = fit(new, feats, labels, cfg, sampler=_study_sampler(kind, labels, cluster), progress=False)
    _same(ref, ref_losses, new, hist)


# ---------------------------------------------------------------------------- the API


def test_history_and_modes(task):
    feats, labels, _ = task
    m = model()
    hist = fit(m, feats, labels, TrainConfig(epochs=2, batch_size=64), progress=False)
    assert [e["epoch"] for e in hist.epochs] == [0, 1] and hist.best_epoch == 1
    assert np.isnan(hist.best_val_recall) and hist.examples_per_s > 0 and not m.training
    assert set(hist.epochs[0]) == {"epoch", "loss", "val_recall", "seconds", "cpu_seconds", "examples",
                                 "examples_per_s"}
    assert all(e["cpu_seconds"] > 0 for e in hist.epochs)


def test_optimizer_sparse_and_dense_groups():
    m = model()
    sparse = Optimizer(m, 1e-3, sparse=True, sparse_output=True)
    assert [type(o).__name__ for o in sparse.opts] == ["Adam", "SparseAdam"]  # the row-indexed one
    held = {id(p) for p in sparse.opts[1].param_groups[0]["params"]}
    assert id(m.output.weight) in held and id(m.watch_emb.weight) in held
    dense = Optimizer(m, 1e-3, sparse=False)
    assert [type(o).__name__ for o in dense.opts] == ["Adam"]
    assert len(dense.opts[0].param_groups[0]["params"]) == len(list(m.parameters()))


def test_bad_settings_are_refused(task):
    feats, labels, _ = task
    assert LOSSES == ("full", "sampled")
    for bad in ({"loss": "hinge"}, {"proposal": "zipf"}, {"n_negatives": 0}, {"epochs": 0}, {"lr": 0.0},
                {"proposal_alpha": -1.0}):
        with pytest.raises(ValueError, match="TrainConfig"):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="loss='sampled'"):
        fit(model(), feats, labels, TrainConfig(), sampler=UniformSampler(N_VIDEOS), progress=False)
    with pytest.raises(ValueError, match="draws from"):
        fit(model(), feats, labels, TrainConfig(loss="sampled"), sampler=UniformSampler(N_VIDEOS + 1),
            progress=False)
    with pytest.raises(ValueError, match="no training examples"):
        fit(model(), feats.subset(np.arange(0)), labels[:0], TrainConfig(), progress=False)


def test_popularity_proposal_needs_counts():
    assert isinstance(make_sampler(5, "popularity", np.arange(5)), PopularitySampler)
    with pytest.raises(ValueError, match="counts"):
        make_sampler(5, "popularity")


@pytest.mark.parametrize("rows", ["repeated", "increasing"])
def test_sparse_adam_is_torchs_bit_for_bit(rows):
    """The row-indexed SparseAdam leaves the parameter and both moments exactly as torch's does, with
    repeated rows (summed by coalesce) and with strictly increasing ones (the gathered output rows)."""
    from ytrec_lib.train import SparseAdam

    gen = torch.Generator().manual_seed(0)
    ref = torch.nn.Parameter(torch.randn(50, 6, generator=gen))
    new = torch.nn.Parameter(ref.detach().clone())
    opt_ref, opt_new = torch.optim.SparseAdam([ref], lr=3e-2), SparseAdam([new], lr=3e-2)
    for _ in range(5):
        if rows == "repeated":
            idx = torch.randint(0, 50, (40,), generator=gen)
        else:
            idx = torch.unique(torch.randint(0, 50, (20,), generator=gen))
        grad = torch.sparse_coo_tensor(idx[None], torch.randn(len(idx), 6, generator=gen), (50, 6),
                                       check_invariants=True)
        ref.grad, new.grad = grad.clone(), grad.clone()
        opt_ref.step()
        opt_new.step()
    assert torch.equal(ref, new)
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(opt_ref.state[ref][key], opt_new.state[new][key])
    assert opt_new.state[new]["step"] == 5
