"""Notebook 03c (lessons II), Figure 4 and §3.4 at the ci preset over three seeds: example age lets
the model follow fresh videos and serve them, next-watch labels beat randomly held-out ones, and each effect
goes when the world's mechanism behind it (freshness, order in time) is switched off."""

import math

import pytest

from ytrec_lib.studies.lessons import verdict

STEM = "03c_fresh_and_labels"
FIG4_KEYS = ("fresh_lift_empirical", "fresh_lift_with_example_age", "fresh_lift_without_example_age",
             "fresh_share_top100_with_example_age", "fresh_share_top100_without_example_age",
             "fresh_share_next_watch")
LABEL_KEYS = ("recall@100_next_watch_label", "recall@100_heldout_label")


@pytest.fixture(scope="module")
def r(notebook_results):
    return notebook_results(STEM)


@pytest.fixture(scope="module")
def printed(notebook_printed):
    """Every line the executed notebook printed."""
    return notebook_printed(STEM)


def test_records_the_keys_with_their_standard_errors(r):
    for k in FIG4_KEYS + LABEL_KEYS:
        assert k in r and f"{k}_se" in r, k
        assert r[f"{k}_se"] > 0, (k, r[f"{k}_se"])  # three seeds: a real spread
    assert all(0.0 <= r[k] <= 1.0 for k in FIG4_KEYS[3:] + LABEL_KEYS)
    assert r["fresh_lift_empirical"] > 1.0 and r["fig4_example_age_by_day"] is True
    assert set(r["fig4_lr"]) == {"with", "without"}
    assert set(r["labels_lr"]) == {"next_watch", "heldout", "heldout_matched"}
    assert len(r["fig4_epochs"]) == len(r["labels_epochs"]) == 6  # 3 seeds, world on and off
    assert set(r["ablation"]) == set(r["ablation_se"]) == {"freshness", "sequences"}  # 03b: interactions
    for mechanism in ("freshness", "sequences"):
        assert set(r["ablation"][mechanism]) == set(r["ablation_se"][mechanism]) == {"world on", "world off"}
    assert r["ablation"]["freshness"]["world on"] == r["fresh_lift_ratio"]
    assert r["ablation"]["sequences"]["world on"] == r["recall@100_next_minus_heldout"]


def test_example_age_lifts_fresh_videos_half_way_to_the_data(r):
    """Figure 4: with example age the model's first-two-days over second-week lift is at least 1.5 times the
    lift without it, and at least half of the lift in the training labels."""
    emp, with_age, without = (r[k] for k in FIG4_KEYS[:3])
    assert with_age >= 1.5 * without, (with_age, without)
    assert with_age >= 0.5 * emp, (with_age, emp)


def test_the_lift_ratio_is_beyond_two_standard_errors(r):
    ratio, se = r["fresh_lift_ratio"], r["fresh_lift_ratio_se"]
    assert ratio - 1.0 > 2 * se, (ratio, se)


def test_serving_at_example_age_zero_is_closer_to_what_users_watch_next(r):
    with_age, without, observed = (r[k] for k in FIG4_KEYS[3:])
    assert abs(with_age - observed) < abs(without - observed), (with_age, without, observed)
    assert r["fresh_share_closer_with_example_age"] is True


def test_next_watch_labels_beat_heldout_labels_beyond_two_standard_errors(r):
    """§3.4: recall@100 trained on next-watch labels minus trained on held-out labels (paired by seed) is
    above 0 by more than two standard errors."""
    diff, se = r["recall@100_next_minus_heldout"], r["recall@100_next_minus_heldout_se"]
    assert diff == pytest.approx(r["recall@100_next_watch_label"] - r["recall@100_heldout_label"])
    assert diff > 2 * se, (diff, se)


def test_ablation_without_freshness_removes_the_lift(r):
    off, se = r["ablation"]["freshness"]["world off"], r["ablation_se"]["freshness"]["world off"]
    assert abs(off - 1.0) <= 2 * se, (off, se)


def test_without_order_in_time_next_watch_labels_no_longer_win(r):
    """The §3.4 ablation: with no order in time (MECHANISM_OFF["sequences"]) next-watch labels do not beat
    held-out ones beyond two standard errors, and the gap falls from the world with order by more than two
    standard errors of the difference."""
    on, on_se = r["ablation"]["sequences"]["world on"], r["ablation_se"]["sequences"]["world on"]
    off, off_se = r["ablation"]["sequences"]["world off"], r["ablation_se"]["sequences"]["world off"]
    assert off <= 2 * off_se, (off, off_se)
    assert on - off > 2 * math.hypot(on_se, off_se), (on, on_se, off, off_se)


@pytest.mark.xfail(strict=True, reason=(
    "measured at ci over 3 seeds (learning rates of the world with order): with no order in time next-watch "
    "minus held-out recall@100 is -0.0122 +- 0.0049, held-out ahead beyond 2 SE (world on +0.0404 +- "
    "0.0063). The control with the context cut to the next-watch length (03c's last cell of section 3) "
    "gives -0.0027 +- 0.0023 at the rate validation picks for it there (3e-3), within 2 SE, but -0.0048 +- "
    "0.0007 at the world with order's rate (1e-2; with order +0.0368 +- 0.0035): the longer context is most "
    "of the reversal, and whether the rest is noise depends on the rate. The plain held-out gap asserted "
    "here is not within 2 SE of zero as the two-sided criterion asks. With the rates chosen on the world "
    "without order's own validation (3e-3 for all three models; `lessons --lesson labels --mechanism-off "
    "sequences --lrs 1e-2 3e-3 --control`) the plain gap is -0.0151 +- 0.0046, the matched one -0.0056 +- "
    "0.0083"))
def test_ablation_without_sequences_leaves_no_gap(r):
    off, se = r["ablation"]["sequences"]["world off"], r["ablation_se"]["sequences"]["world off"]
    assert abs(off) <= 2 * se, (off, se)


def test_the_matched_context_control(r, printed):
    """The control in the world without order (held-out labels with the next-watch context length): its
    gap to next-watch labels is smaller in size than the plain held-out one's (the longer context is part
    of the reversal), it is recorded from the seeds, and the sentence states its verdict."""
    control, se = r["control_sequences_off"], r["control_sequences_off_se"]
    assert set(control) == set(se) == {"recall_heldout_matched", "effect_matched"}
    assert 0.0 < control["recall_heldout_matched"] <= 1.0 and se["effect_matched"] > 0
    plain = r["ablation"]["sequences"]["world off"]
    assert abs(control["effect_matched"]) < abs(plain), (control, plain)
    lines = [line for line in printed if line.startswith("The control (sequences off)")]
    assert len(lines) == 1, lines
    assert verdict(control["effect_matched"], se["effect_matched"], 0.0) in lines[0], lines[0]
    assert f"{control['effect_matched']:+.4f}" in lines[0]


def test_the_sentences_state_the_measured_verdicts(r, printed):
    """Each verdict the notebook prints is the one its recorded numbers give."""
    expected = {
        "With over without: ": verdict(r["fresh_lift_ratio"], r["fresh_lift_ratio_se"], 1.0),
        "With freshness switched off": verdict(r["ablation"]["freshness"]["world off"],
                                               r["ablation_se"]["freshness"]["world off"], 1.0),
        "Trained on next-watch labels": verdict(r["recall@100_next_minus_heldout"],
                                                r["recall@100_next_minus_heldout_se"], 0.0),
        "With the sequences switched off": verdict(r["ablation"]["sequences"]["world off"],
                                                   r["ablation_se"]["sequences"]["world off"], 0.0),
    }
    for start, words in expected.items():
        lines = [line for line in printed if line.startswith(start)]
        assert len(lines) == 1 and words in lines[0], (start, lines, words)
    served = [line for line in printed if line.startswith("Served at example age 0, ")]
    closer = r["fresh_share_closer_with_example_age"]
    assert len(served) == 1 and f"The feature {'brings' if closer else 'does not bring'}" in served[0]
    assert f"{r['fresh_share_next_watch']:.1%}" in served[0]
