"""Tests of ytrec_lib.models.sampling: sampler distributions (chi-square), the sampled softmax with logQ
correction against the full softmax and a naive implementation, and the streaming frequency estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from ytrec_lib.models.sampling import (
    ExposedSampler,
    HardNegativeSampler,
    InBatchSampler,
    MixedSampler,
    PopularitySampler,
    StreamingFrequencyEstimator,
    UniformSampler,
    full_softmax_loss,
    mixture_log_q,
    sampled_softmax_loss,
)

P_MIN = 1e-3  # chi-square: a correct sampler fails this with probability 0.001 (fixed seeds: never)


def _chisq_p(draws: np.ndarray, probs: np.ndarray) -> float:
    """p-value of draws (any shape) against the distribution probs (V,); cells of zero mass must be empty."""
    counts = np.bincount(np.ravel(draws), minlength=len(probs))
    zero = probs <= 0
    assert counts[zero].sum() == 0, f"drew ids of zero probability: {np.nonzero(counts * zero)[0][:5]}"
    expected = probs[~zero] / probs[~zero].sum() * counts.sum()
    return float(chisquare(counts[~zero], expected).pvalue)


def _zipf(v: int, s: float = 1.0) -> np.ndarray:
    return 1000.0 / np.arange(1, v + 1) ** s


# ====================================================================== samplers: distributions


@pytest.mark.parametrize("shared", [True, False])
def test_uniform_matches_uniform(shared):
    v = 30
    s = UniformSampler(v, shared=shared)
    draws = s.sample(np.zeros(40, np.int64), 500, np.random.default_rng(0))
    assert draws.shape == ((500,) if shared else (40, 500)) and draws.dtype == np.int64
    if shared:
        draws = np.concatenate([s.sample(np.zeros(4, np.int64), 500, 1 + i) for i in range(40)])
    assert _chisq_p(draws, np.full(v, 1 / v)) > P_MIN
    assert _chisq_p(draws, _zipf(v, 0.3)) < 1e-6            # the test has power against a wrong target
    np.testing.assert_allclose(s.log_q(draws[:5]), -math.log(v))


def test_uniform_excluding_positive_and_watched():
    v = 20
    watched = [np.array([1, 2, 3, 3]), np.array([], np.int64), np.arange(10)]
    s = UniformSampler(v, exclude_positive=True, watched=watched)
    rng = np.random.default_rng(1)
    for user, pos in [(0, 5), (0, 2), (1, 7), (2, 15)]:
        draws = s.sample(np.full(200, pos), 100, rng, user_ids=np.full(200, user))   # (200, 100)
        excluded = set(watched[user].tolist()) | {pos}
        target = np.array([0.0 if j in excluded else 1.0 for j in range(v)])
        target /= target.sum()
        assert _chisq_p(draws, target) > P_MIN
        np.testing.assert_allclose(s.proposal(pos_id=pos, user_id=user), target)
        lq = s.log_q(draws[:3], pos_ids=np.full(3, pos), user_ids=np.full(3, user))
        np.testing.assert_allclose(lq, -math.log(v - len(excluded)))


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.75, 1.0])
def test_popularity_alpha_matches_counts_power(alpha):
    counts = np.r_[_zipf(25), 0.0]          # one never-watched video
    s = PopularitySampler(counts, alpha)
    draws = s.sample(np.zeros(100, np.int64), 400, np.random.default_rng(2))   # (100, 400)
    target = np.power(counts, alpha)        # 0**0 = 1: alpha = 0 is uniform over all 26
    assert _chisq_p(draws, target / target.sum()) > P_MIN
    np.testing.assert_allclose(s.proposal(), target / target.sum())
    if alpha > 0:
        assert _chisq_p(draws, np.r_[np.ones(25), 0.0] / 25) < 1e-6
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(s.log_q(np.arange(26)), np.log(target / target.sum()))


def test_popularity_excluding_positive_is_renormalised():
    counts = _zipf(15)
    s = PopularitySampler(counts, 1.0, exclude_positive=True)
    draws = s.sample(np.zeros(300, np.int64), 200, np.random.default_rng(3))  # positive = the top video
    target = counts.copy()
    target[0] = 0
    assert _chisq_p(draws, target / target.sum()) > P_MIN
    lq = s.log_q(draws[:4], pos_ids=np.zeros(4, np.int64))
    np.testing.assert_allclose(lq, np.log(counts[draws[:4]] / target.sum()))
    assert s.log_q(np.array([0]), pos_ids=np.array([0]))[0] == -np.inf


def test_in_batch_masked_negatives_follow_the_positive_distribution():
    v, b = 12, 16
    p = _zipf(v, 0.8)
    p /= p.sum()
    rng = np.random.default_rng(4)
    s = InBatchSampler(v, item_probs=p)
    kept = []
    for _ in range(1500):
        pos = np.r_[0, rng.choice(v, b - 1, p=p)]                   # row 0's positive is video 0
        neg = s.sample(pos)                                          # (B,) shared
        assert neg.shape == (b,)
        np.testing.assert_array_equal(neg, pos)
        hit = neg[None, :] == pos[:, None]                           # (B, B): accidental hits, masked
        kept.append(neg[~hit[0]])                                    # row 0's negatives after masking
    # the other rows' positives are iid from p, and the mask removes those equal to video 0
    target = p.copy()
    target[0] = 0
    assert _chisq_p(np.concatenate(kept), target / target.sum()) > P_MIN
    assert _chisq_p(np.concatenate(kept), np.r_[0, np.ones(v - 1)] / (v - 1)) < 1e-6
    np.testing.assert_allclose(s.log_q(np.arange(v)), np.log(p))


def test_in_batch_batch_frequency():
    s = InBatchSampler(5)
    with pytest.raises(ValueError, match="call sample"):
        s.log_q(np.array([0]))
    s.sample(np.array([0, 0, 3, 4]))
    np.testing.assert_allclose(np.exp(s.log_q(np.array([0, 3, 1]))), [0.5, 0.25, 0.0])


def _impressions():
    # user 0: shown 1..6, clicked 2 (also shown unclicked once) and 6 -> exposed-not-clicked {1, 3, 4, 5}
    # user 1: shown 7 and clicked it -> none (fallback); user 2: shown 8, 9 unclicked twice -> {8, 9}
    users = np.array([0, 0, 0, 0, 0, 0, 0, 1, 2, 2, 2])
    videos = np.array([1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 9])
    clicked = np.array([0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0], bool)
    return users, videos, clicked


def test_exposed_not_clicked_distribution_and_fallback():
    v = 12
    s = ExposedSampler(v, *_impressions(), n_users=4)
    np.testing.assert_array_equal(s.n_exposed(np.array([0, 1, 2, 3])), [4, 0, 2, 0])
    rng = np.random.default_rng(5)
    d0 = s.sample(np.full(100, 2), 200, rng, user_ids=np.zeros(100, np.int64))
    target0 = np.isin(np.arange(v), [1, 3, 4, 5]).astype(float)
    assert _chisq_p(d0, target0 / target0.sum()) > P_MIN
    d2 = s.sample(np.full(50, 8), 200, rng, user_ids=np.full(50, 2))
    assert set(np.unique(d2)) == {8, 9}                              # positive 8 drawn: an accidental hit
    # user 1 has none: fallback = uniform excluding the positive
    d1 = s.sample(np.full(100, 7), 200, rng, user_ids=np.ones(100, np.int64))
    target1 = (np.arange(v) != 7).astype(float)
    assert _chisq_p(d1, target1 / target1.sum()) > P_MIN
    lq = s.log_q(np.array([[1, 6], [0, 7]]), pos_ids=np.array([2, 7]), user_ids=np.array([0, 1]))
    np.testing.assert_allclose(lq, [[-math.log(4), -np.inf], [-math.log(11), -np.inf]])
    np.testing.assert_allclose(s.proposal(pos_id=2, user_id=0), target0 / 4)


def test_mixed_is_in_batch_plus_uniform():
    v, b, k = 10, 8, 6
    p = _zipf(v)
    p /= p.sum()
    rng = np.random.default_rng(6)
    s = MixedSampler(InBatchSampler(v, item_probs=p))
    pooled = []
    for _ in range(2000):
        pos = rng.choice(v, b, p=p)
        neg = s.sample(pos, k, rng)                                   # (B + K,)
        assert neg.shape == (b + k,)
        np.testing.assert_array_equal(neg[:b], pos)
        pooled.append(neg)
    target = (b * p + k / v) / (b + k)
    assert _chisq_p(np.concatenate(pooled), target) > P_MIN
    assert _chisq_p(np.concatenate(pooled), p) < 1e-6
    np.testing.assert_allclose(np.exp(s.log_q(np.arange(v))), target)


def test_mixed_with_hard_negatives_per_row():
    v = 40
    ranked = np.stack([np.random.default_rng(u).permutation(v) for u in range(3)])   # (3, 40)
    hard = HardNegativeSampler(ranked, v, lo=10, hi=20)
    s = MixedSampler(InBatchSampler(v), hard)
    pos, users = np.array([0, 1, 2, 3]), np.array([0, 1, 2, 0])
    neg = s.sample(pos, 5, 0, user_ids=users)                         # (B, B + 5)
    assert neg.shape == (4, 9)
    lq = s.log_q(neg, user_ids=users)
    # expected count of each id: B * batch frequency + 5 * (1/10 if in the user's band)
    in_band = np.array([[x in ranked[u, 10:20] for x in row] for u, row in zip(users, neg, strict=True)])
    batch_freq = np.array([[np.mean(pos == x) for x in row] for row in neg])
    np.testing.assert_allclose(np.exp(lq), (4 * batch_freq + 5 * in_band / 10) / 9)


def test_hard_negatives_uniform_over_rank_band():
    v = 60
    ranked = np.stack([np.random.default_rng(10 + u).permutation(v) for u in range(2)])  # (2, 60)
    s = HardNegativeSampler(ranked, v, lo=20, hi=50)
    draws = s.sample(np.zeros(300, np.int64), 100, 7, user_ids=np.ones(300, np.int64))
    target = np.isin(np.arange(v), ranked[1, 20:50]).astype(float)
    assert _chisq_p(draws, target / target.sum()) > P_MIN
    np.testing.assert_allclose(s.proposal(user_id=1), target / 30)
    with pytest.raises(ValueError, match="band needs 500"):
        HardNegativeSampler(ranked, v)


@settings(max_examples=30, deadline=None)
@given(
    v=st.integers(2, 30),
    alpha=st.floats(0, 2),
    seed=st.integers(0, 2**32 - 1),
    exclude=st.booleans(),
)
def test_proposals_sum_to_one_and_cover_every_draw(v, alpha, seed, exclude):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 50, v).astype(float)
    watched = [rng.choice(v, rng.integers(0, v - 1), replace=False) for _ in range(3)]
    samplers = [
        UniformSampler(v, exclude_positive=exclude),
        UniformSampler(v, exclude_positive=exclude, watched=watched),
        PopularitySampler(counts, alpha, exclude_positive=exclude),
    ]
    pos, users = rng.integers(0, v, 6), rng.integers(0, 3, 6)
    for s in samplers:
        q = np.stack([s.proposal(pos_id=int(p), user_id=int(u)) for p, u in zip(pos, users, strict=True)])
        np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-9)
        neg = s.sample(pos, 7, rng, user_ids=users)                                  # (6, 7)
        lq = s.log_q(neg, pos_ids=pos, user_ids=users)
        assert np.isfinite(lq).all()
        np.testing.assert_allclose(np.exp(lq), np.take_along_axis(q, neg, axis=1))


def test_samplers_are_deterministic_for_a_seed():
    s = PopularitySampler(_zipf(50), 0.75, exclude_positive=True)
    a = s.sample(np.arange(8), 20, np.random.default_rng(3))
    b = s.sample(np.arange(8), 20, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s.sample(np.arange(8), 20, 3), a)


# ====================================================================== the loss


def _setup(seed=0, v=50, m=8, b=32):
    g = torch.Generator().manual_seed(seed)
    u, w = torch.randn(b, m, generator=g), torch.randn(v, m, generator=g)      # (B, m), (V, m)
    bias = 0.5 * torch.randn(v, generator=g)                                    # (V,)
    pos = torch.as_tensor(np.random.default_rng(seed).integers(0, v, b))
    return u, w, bias, pos


def _naive_loss(u, w, bias, pos, neg, lq_pos, lq_neg, remove_hits, correct):
    """One row at a time, in float64 NumPy."""
    u, w, bias = (x.detach().double().numpy() for x in (u, w, bias))
    pos = np.asarray(pos)
    neg = np.broadcast_to(neg, (len(pos), np.shape(neg)[-1]))
    lq_neg = np.broadcast_to(lq_neg, neg.shape) if lq_neg is not None else None
    k = neg.shape[1]
    out = []
    for r in range(len(pos)):
        s_pos = u[r] @ w[pos[r]] + bias[pos[r]]
        if correct and lq_pos is not None:
            s_pos -= math.log(k) + lq_pos[r]
        terms = [s_pos]
        for j in range(k):
            if remove_hits and neg[r, j] == pos[r]:
                continue
            s = u[r] @ w[neg[r, j]] + bias[neg[r, j]]
            terms.append(s - (math.log(k) + lq_neg[r, j]) if correct else s)
        out.append(np.logaddexp.reduce(terms) - s_pos)
    return float(np.mean(out))


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("remove_hits", [True, False])
@pytest.mark.parametrize("correct", [True, False])
@pytest.mark.parametrize("with_pos_q", [True, False])
def test_loss_matches_naive_reference(shared, remove_hits, correct, with_pos_q):
    u, w, bias, pos = _setup(1, v=15, b=6)
    s = PopularitySampler(_zipf(15), 0.75, shared=shared)
    neg = s.sample(pos.numpy(), 9, 0)
    neg[..., 0] = pos.numpy()[0]                      # at least one accidental hit
    lq_neg, lq_pos = s.log_q(neg), (s.log_q(pos.numpy()) if with_pos_q else None)
    got = sampled_softmax_loss(u, w, bias, pos, neg, lq_pos, lq_neg, remove_hits, correct)
    want = _naive_loss(u, w, bias, pos.numpy(), neg, lq_pos, lq_neg, remove_hits, correct)
    assert got.shape == () and got.item() == pytest.approx(want, rel=1e-5)


def test_sampled_softmax_with_logq_approaches_full_softmax():
    u, w, bias, pos = _setup(0, b=16)
    full = full_softmax_loss(u, w, bias, pos).item()
    ref = torch.nn.functional.cross_entropy(u @ w.T + bias, pos).item()
    assert full == pytest.approx(ref, rel=1e-6)
    rng = np.random.default_rng(0)
    samplers = {  # name: (sampler, numbers of negatives)
        "popularity, shared (K,)": (PopularitySampler(_zipf(50), 0.75, shared=True), (8, 64, 512, 4096)),
        "uniform, no positive, (B, K)": (UniformSampler(50, exclude_positive=True), (8, 64, 256, 1024)),
    }
    for name, (s, ks) in samplers.items():
        err_corrected, err_plain = [], []
        for k in ks:
            runs = []
            for _ in range(10):                                   # averaged over draws
                neg = s.sample(pos.numpy(), k, rng)              # (K,) or (B, K), with replacement
                lq = s.log_q(neg, pos_ids=pos.numpy())
                corrected = sampled_softmax_loss(u, w, bias, pos, neg, None, lq)
                plain = sampled_softmax_loss(u, w, bias, pos, neg, None, lq, logq_correction=False)
                runs.append((corrected.item(), plain.item()))
            mean = np.mean(runs, axis=0)
            err_corrected.append(abs(mean[0] - full))
            err_plain.append(abs(mean[1] - full))
        # measured (seed 0): popularity 0.99, 0.23, 0.056, 0.0007; uniform 0.73, 0.16, 0.009, 0.005
        assert err_corrected[0] > err_corrected[1] > err_corrected[-1], (name, err_corrected)
        assert err_corrected[-1] < 0.05 and err_corrected[0] > 5 * err_corrected[-1], (name, err_corrected)
        assert err_plain[-1] > 10 * err_corrected[-1], (name, err_plain)   # without logQ: no convergence


def test_sign_of_the_logq_correction():
    u, w, bias, pos = _setup(2, v=20, b=8)
    s = PopularitySampler(_zipf(20), 1.0)
    neg = s.sample(pos.numpy(), 16, 0)
    lq_neg = torch.tensor(s.log_q(neg), dtype=torch.float32, requires_grad=True)
    lq_pos = torch.tensor(s.log_q(pos.numpy()), dtype=torch.float32, requires_grad=True)
    loss = sampled_softmax_loss(u, w, bias, pos, neg, lq_pos, lq_neg, remove_accidental_hits=False)
    loss.backward()
    # a negative the proposal draws often is down-weighted: raising its q lowers the loss
    assert (lq_neg.grad < 0).all()
    # a positive that is itself a frequent draw (in-batch) is penalised less: its logit is lowered
    assert (lq_pos.grad > 0).all()
    # corrected logit = s - log(K q): with equal raw logits, a popular negative (video 0) costs less
    # than a rare one (video 19)
    assert pos[0].item() not in (0, 19)
    w2, bias2 = w.clone(), bias.clone()
    w2[0], bias2[0] = w[19], bias[19]                        # videos 0 and 19 now score the same
    popular = sampled_softmax_loss(u[:1], w2, bias2, pos[:1], np.array([0, 0]), None, np.log(s.q[[0, 0]]))
    rare = sampled_softmax_loss(u[:1], w2, bias2, pos[:1], np.array([19, 19]), None, np.log(s.q[[19, 19]]))
    assert popular.item() < rare.item()


def test_accidental_hits_are_masked():
    u, w, bias, pos = _setup(3, v=10, b=4)
    w = w.clone().requires_grad_(True)
    neg = np.array([[pos[0].item(), 1, 2], [3, pos[1].item(), pos[1].item()], [4, 5, 6], [7, 8, 9]])
    neg[2:] = np.where(neg[2:] == pos[2:, None].numpy(), (neg[2:] + 1) % 10, neg[2:])
    lq = np.full(neg.shape, math.log(0.1))
    per_row = sampled_softmax_loss(u, w, bias, pos, neg, None, lq, reduction="none")
    for r in range(4):
        keep = neg[r] != pos[r].item()
        # masking a hit leaves the row's estimate of the other K-1 terms (weights still use K = 3)
        terms = [(u[r] @ w[pos[r]] + bias[pos[r]]).item()]
        terms += [(u[r] @ w[j] + bias[j]).item() - math.log(3 * 0.1) for j in neg[r][keep]]
        assert per_row[r].item() == pytest.approx(np.logaddexp.reduce(terms) - terms[0], rel=1e-5)
    unmasked = sampled_softmax_loss(u, w, bias, pos, neg, None, lq, remove_accidental_hits=False,
                                    reduction="none")
    assert (unmasked[:2] > per_row[:2]).all() and torch.allclose(unmasked[2:], per_row[2:])
    # a row whose negatives are all hits keeps only the positive: loss 0, and no gradient through the hits
    only_hits = np.tile(pos.numpy()[:, None], (1, 3))
    loss = sampled_softmax_loss(u, w, bias, pos, only_hits, None, lq, reduction="none")
    assert torch.allclose(loss, torch.zeros(4))
    loss.sum().backward()
    assert torch.count_nonzero(w.grad) == 0


def test_in_batch_loss_is_yi_et_al_formula():
    u, w, bias, pos = _setup(4, v=30, b=10)
    p = _zipf(30)
    p /= p.sum()
    s = InBatchSampler(30, item_probs=p)
    neg = s.sample(pos.numpy())                                       # (B,) shared
    loss = sampled_softmax_loss(u, w, bias, pos, neg, s.log_q(pos.numpy()), s.log_q(neg))
    # Yi et al. 2019 eq. 3: softmax over the batch with logits s(x_i, y_j) - log p_j, duplicates of y_i masked
    logits = u @ w[pos].T + bias[pos] - torch.log(torch.as_tensor(p[pos.numpy()], dtype=torch.float32))
    same = pos[None, :] == pos[:, None]
    logits = logits.masked_fill(same & ~torch.eye(10, dtype=torch.bool), float("-inf"))
    ref = torch.nn.functional.cross_entropy(logits, torch.arange(10))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_loss_refuses_bad_input():
    u, w, bias, pos = _setup(5, v=10, b=4)
    neg = np.zeros((4, 3), np.int64) + 1
    lq = np.full((4, 3), -2.0)
    with pytest.raises(ValueError, match="needs log_q_neg"):
        sampled_softmax_loss(u, w, bias, pos, neg)
    with pytest.raises(ValueError, match=r"neg must be \(B, K\)"):
        sampled_softmax_loss(u, w, bias, pos, np.zeros((3, 3), np.int64), None, lq)
    with pytest.raises(ValueError, match="outside"):
        sampled_softmax_loss(u, w, bias, pos, neg + 20, None, lq)
    with pytest.raises(ValueError, match="log_q_neg must have shape"):
        sampled_softmax_loss(u, w, bias, pos, neg, None, lq[:, :2])
    with pytest.raises(ValueError, match="probability 0"):
        sampled_softmax_loss(u, w, bias, pos, neg, None, np.full((4, 3), -np.inf))
    with pytest.raises(ValueError, match="m=8 but item_weight has m=3"):
        sampled_softmax_loss(u, w[:, :3], bias, pos, neg, None, lq)
    with pytest.raises(ValueError, match="item_bias"):
        sampled_softmax_loss(u, w, bias[:3], pos, neg, None, lq)
    with pytest.raises(ValueError, match="integer ids"):
        sampled_softmax_loss(u, w, bias, pos.float(), neg, None, lq)


def test_samplers_refuse_bad_input():
    with pytest.raises(ValueError, match="n_neg must be a positive int"):
        UniformSampler(5).sample(np.array([0]), 0, 0)
    with pytest.raises(ValueError, match="outside the catalogue"):
        UniformSampler(5).sample(np.array([7]), 2, 0)
    with pytest.raises(ValueError, match="shared negatives cannot exclude"):
        UniformSampler(5, exclude_positive=True, shared=True)
    with pytest.raises(ValueError, match="pass user_ids"):
        UniformSampler(5, watched=[np.array([1])]).sample(np.array([0]), 2, 0)
    with pytest.raises(ValueError, match="pass pos_ids"):
        UniformSampler(5, exclude_positive=True).log_q(np.array([1]))
    with pytest.raises(ValueError, match="Generator or an int seed"):
        UniformSampler(5).sample(np.array([0]), 2, "seed")
    with pytest.raises(ValueError, match="all counts are zero"):
        PopularitySampler(np.zeros(4), 1.0)
    with pytest.raises(ValueError, match="n_neg=None or 3"):
        InBatchSampler(5).sample(np.array([0, 1, 2]), 5)
    with pytest.raises(ValueError, match="row 1 .*user 0.* excludes every video"):
        UniformSampler(3, exclude_positive=True, watched=[np.array([0, 1])]).sample(
            np.array([0, 2]), 1, 0, user_ids=np.array([0, 0]))
    with pytest.raises(ValueError, match="ExposedSampler.log_q needs user_ids"):
        ExposedSampler(12, *_impressions()).log_q(np.array([1]))
    assert mixture_log_q(np.array([0, 4]), [(UniformSampler(5), 3)]) == pytest.approx(np.log([0.2, 0.2]))


# ====================================================================== streaming frequency estimate


def _stream(p: np.ndarray, steps: int, batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(len(p), size=(steps, batch), p=p)   # (steps, batch)


def _rel_err(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.abs(estimate / truth - 1)


def test_streaming_estimator_converges_on_a_stationary_stream():
    # A gap average over ~1/alpha sightings has relative noise ~ sqrt(alpha / 2) ~ 7%.
    v, b = 100, 8
    p = _zipf(v, 0.7)
    p /= p.sum()                                  # a batch holds an id with chance 3% ... 55%
    est = StreamingFrequencyEstimator(4096, n_hashes=2, alpha=0.01, seed=0)
    for batch in _stream(p, 6000, b, 0):
        est.update(batch)
    per_step = 1 - (1 - p) ** b                   # true chance that a batch contains the id
    rel = _rel_err(est.probability(np.arange(v)), per_step)
    assert np.median(rel) < 0.1 and rel.max() < 0.45, (np.median(rel), rel.max())
    rel_draw = _rel_err(est.draw_probability(np.arange(v)), p)
    assert np.median(rel_draw) < 0.1 and rel_draw.max() < 0.45
    # a wrong truth is far off (the check has power)
    assert np.median(_rel_err(est.draw_probability(np.arange(v)), np.full(v, 1 / v))) > 0.3
    # InBatchSampler with the estimator: its log q is the estimate, updated by sample()
    s = InBatchSampler(v, estimator=est)
    s.sample(np.arange(5))
    assert est.step == 6000
    np.testing.assert_allclose(s.log_q(np.arange(5)), np.log(est.draw_probability(np.arange(5))))


def test_streaming_estimator_tracks_a_shift():
    v, b = 50, 8
    p1 = _zipf(v, 0.7)
    p1 /= p1.sum()
    p2 = p1[::-1].copy()                                        # the head becomes the tail
    est = StreamingFrequencyEstimator(2048, n_hashes=2, alpha=0.02, seed=1)
    for batch in _stream(p1, 2000, b, 1):
        est.update(batch)
    before = est.draw_probability(np.arange(v))
    for batch in _stream(p2, 2000, b, 2):
        est.update(batch)
    after = est.draw_probability(np.arange(v))
    assert np.median(_rel_err(before, p1)) < 0.12
    assert np.median(_rel_err(after, p2)) < 0.12               # followed the shift ...
    assert np.median(_rel_err(after, p1)) > 0.4                # ... and forgot the old distribution
    assert np.corrcoef(np.log(after), np.log(p2))[0, 1] > 0.95


def test_more_hash_arrays_reduce_collision_error():
    v, b = 400, 16
    p = _zipf(v, 0.8)
    p /= p.sum()
    stream = _stream(p, 3000, b, 3)
    errors = {}
    for n_hashes in (1, 4):
        est = StreamingFrequencyEstimator(128, n_hashes=n_hashes, alpha=0.02, seed=0)  # H < V: collisions
        for batch in stream:
            est.update(batch)
        errors[n_hashes] = np.median(np.abs(np.log(est.draw_probability(np.arange(v)) / p)))
    assert errors[4] < 0.7 * errors[1], errors


def test_streaming_estimator_refuses_bad_input():
    est = StreamingFrequencyEstimator(16)
    with pytest.raises(ValueError, match="update"):
        est.draw_probability(np.array([1]))
    est.update(np.array([1, 2]), step=5)
    with pytest.raises(ValueError, match="must not go back"):
        est.update(np.array([1]), step=3)
    with pytest.raises(ValueError, match="1-D integer"):
        est.update(np.array([0.5]))


def test_exclusion_when_the_positive_holds_almost_all_the_mass():
    """Found by hypothesis: with v = 2, alpha = 2 and counts (1, 49) the only allowed negative of the
    popular positive has probability 1 / 2402, beyond the rejection rounds; the exact fallback then
    draws it from the renormalised proposal."""
    s = PopularitySampler(np.array([1.0, 49.0]), 2.0, exclude_positive=True)
    neg = s.sample(np.array([1, 1, 0]), 50, np.random.default_rng(900))                 # (3, 50)
    assert (neg[:2] == 0).all() and (neg[2] == 1).all()
    s3 = PopularitySampler(np.array([1.0, 3.0, 1e6]), 1.0, exclude_positive=True)
    neg3 = s3.sample(np.full(400, 2), 10, np.random.default_rng(0))                      # (400, 10)
    assert set(np.unique(neg3)) == {0, 1}
    assert _chisq_p(neg3, np.array([0.25, 0.75, 0.0])) > P_MIN
