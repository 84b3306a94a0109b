"""Notebook 01, section 10 at the ci preset: the default world carries each mechanism the paper's lessons
need, more strongly than the plain world (presets.PLAIN_WORLD), and switching a mechanism off
(presets.MECHANISM_OFF) removes its statistic.

"Clearly larger" is the project's rule for a claim: the difference of the means over the notebook's seeds
exceeds two standard errors of the difference. Where tests/unit/test_world_switches.py already bounds a
statistic with its mechanism off, the same bound is asserted here: the fresh watch lift under 2 without
freshness, and a ring flow (or its gender gap) within 0.05 of 0 when nothing sets its direction.
"""

import math

import pytest

from ytrec_lib.data.describe import MECHANISM_STATISTICS
from ytrec_lib.data.presets import MECHANISM_OFF, PLAIN_WORLD, SimConfig


@pytest.fixture(scope="module")
def r(notebook_results):
    return notebook_results("01_ugc_data")


def beyond_two_se(r, mechanism: str, high: str, low: str) -> tuple[bool, str]:
    """Whether world ``high``'s mean of the mechanism's main statistic exceeds world ``low``'s by more
    than two standard errors of the difference, and a message with the numbers."""
    mean, se = r["world_mechanisms"][mechanism], r["world_mechanisms_se"][mechanism]
    diff, se_diff = mean[high] - mean[low], math.hypot(se[high], se[low])
    numbers = f"{mechanism}: {high} {mean[high]:.4g} - {low} {mean[low]:.4g} = {diff:.4g} (se {se_diff:.3g})"
    return diff > 2 * se_diff, numbers


def test_records_each_mechanism_with_its_main_statistic_and_the_switches(r):
    assert r["world_switches"] == {"default": {k: getattr(SimConfig(), k) for k in PLAIN_WORLD},
                                   "plain": PLAIN_WORLD}
    assert r["world_mechanism_seeds"] >= 2, "a standard error needs two seeds or more"
    assert set(r["world_mechanisms"]) == set(MECHANISM_STATISTICS)
    for mechanism, rec in r["world_mechanisms"].items():
        assert rec["statistic"] == MECHANISM_STATISTICS[mechanism][0]
        assert set(rec) == {"statistic", "plain", "default", "off"}
        assert (rec["off"] is None) == (mechanism not in MECHANISM_OFF), mechanism  # the tail has no switch


@pytest.mark.parametrize("mechanism", list(MECHANISM_OFF))
def test_each_mechanism_is_clearly_stronger_in_the_default_world_than_switched_off(r, mechanism):
    holds, numbers = beyond_two_se(r, mechanism, "default", "off")
    assert holds, numbers


@pytest.mark.parametrize("mechanism", list(MECHANISM_OFF))
def test_the_default_world_turns_each_mechanism_up_from_the_plain_world(r, mechanism):
    holds, numbers = beyond_two_se(r, mechanism, "default", "plain")
    assert holds, numbers


def test_switched_off_each_statistic_is_at_its_no_effect_bound(r):
    stats = r["world_mechanism_statistics"]
    assert stats["fresh_watch_lift"]["off"] < 2.0, stats["fresh_watch_lift"]
    assert abs(stats["ring_flow_gender_gap"]["off"]) < 0.05, stats["ring_flow_gender_gap"]
    assert abs(stats["ring_flow"]["off"]) < 0.05, stats["ring_flow"]  # no progression: no direction
    # and without freshness the watches' share of young videos drops below the plain world's
    young = stats["young_watch_share"]
    assert young["off"] < young["plain"], young


def test_the_tail_is_sparse_in_both_worlds(r):
    # by definition the least-watched half holds half the watches only when every video is watched alike
    tail = r["world_mechanism_statistics"]["tail_watch_share"]
    assert tail["plain"] < 0.5 and tail["default"] < 0.5, tail
