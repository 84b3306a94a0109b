"""Notebook 03b (the paper's lessons), Figure 6 at the ci preset: depth 3 beats depth 0 in the default
world beyond two standard errors over three seeds, and the gain goes with the interactions."""

import nbformat
import pytest

STEM = "03b_paper_lessons"


@pytest.fixture(scope="module")
def r(notebook_results):
    return notebook_results(STEM)


def test_records_figure6_keys_over_three_seeds(r):
    means, ses = r["map_by_depth"]["all"], r["map_by_depth_se"]["all"]
    assert list(r["map_by_depth"]) == ["all"] and len(means) == len(ses) == 5  # depth 0..4
    assert all(0.0 < m < 1.0 for m in means), means
    assert r["fig6_seeds"]["claim"] == 3 and r["fig6_seeds"]["ablation"] == 3
    assert ses[0] > 0 and ses[3] > 0  # depths 0 and 3 trained at every seed
    assert set(r["fig6_lr"]) == {f"depth{d}" for d in range(5)}
    on, on_se = r["ablation"]["interactions"], r["ablation_se"]["interactions"]
    assert set(on) == set(on_se) == {"world on", "world off"}
    assert on["world on"] == r["map_depth3_over_depth0_all"]
    assert on_se["world on"] == r["map_depth3_over_depth0_all_se"]


def test_depth3_beats_depth0_beyond_two_standard_errors(r):
    """The paper's Figure 6 in the world that has interactions: MAP@100 at depth 3 at least 1.2 times
    depth 0's, and the ratio above 1 by more than two standard errors over the seeds."""
    ratio, se = r["map_depth3_over_depth0_all"], r["map_depth3_over_depth0_all_se"]
    assert ratio >= 1.2, (ratio, se)
    assert ratio - 1.0 > 2 * se, (ratio, se)


def test_ablation_without_interactions_removes_the_gain(r):
    """With both products a tower can learn switched off (the drift's direction independent of gender, a
    video's age no part of clicks: MECHANISM_OFF["interactions"]), depth 3 over depth 0 is within two
    standard errors of 1 (no gain beyond noise)."""
    off, se = r["ablation"]["interactions"]["world off"], r["ablation_se"]["interactions"]["world off"]
    assert abs(off - 1.0) <= 2 * se, (off, se)


def test_the_printed_verdict_is_the_one_the_numbers_give(r, notebook_build):
    from ytrec_lib.studies import lessons

    nb = nbformat.read(notebook_build / "notebooks" / f"{STEM}.ipynb", as_version=4)
    lines = [line for cell in nb.cells for out in cell.get("outputs", [])
             for line in out.get("text", "").splitlines()]
    ratio, se = r["map_depth3_over_depth0_all"], r["map_depth3_over_depth0_all_se"]
    claim = [ln for ln in lines if ln.startswith("In the default world depth 3 reaches")]
    assert len(claim) == 1, claim
    assert f"{ratio:.2f} ± {se:.2f}" in claim[0] and lessons.verdict(ratio, se, 1.0) in claim[0]
    assert ("beyond 2 standard errors" in claim[0]) == (abs(ratio - 1.0) > 2 * se)
