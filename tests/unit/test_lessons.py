"""The lessons' protocol (ytrec_lib.studies.lessons) and its command line, at the tiny preset."""

import json
from pathlib import Path

import numpy as np
import pytest

from ytrec_lib.course import cli
from ytrec_lib.data import datasets, describe
from ytrec_lib.data.presets import MECHANISM_OFF
from ytrec_lib.studies import lessons as L

FAST = L.Protocol(lrs=(3e-3, 1e-3), patience=1, epochs=2, n_next=2)


@pytest.fixture(scope="module")
def tiny_world():
    ds = L.world("tiny", 0, {})
    return ds, L.make_split(ds, "next_watch", 0, FAST.n_next)


def test_mean_se_beyond_noise_and_verdict():
    mean, se = L.mean_se([1.0, 2.0, 3.0])
    assert mean == 2.0 and se == pytest.approx(1 / np.sqrt(3))
    assert np.isnan(L.mean_se([5.0])[1])
    assert L.beyond_noise(1.5, 0.2, 1.0) and not L.beyond_noise(1.3, 0.2, 1.0)
    assert L.verdict(1.5, 0.2, 1.0).startswith("above 1 by 2.5 standard errors, beyond 2 standard errors")
    assert L.verdict(-0.5, 0.2, 0.0).startswith("below 0 by 2.5")
    assert L.verdict(1.3, 0.2, 1.0).startswith("within noise of 1")


def test_bad_world_switch_mechanism_and_split_kind_are_named():
    with pytest.raises(ValueError, match="unknown world switch.*'interest_drifts'"):
        L.world("tiny", 0, {"interest_drifts": 1.0})
    with pytest.raises(ValueError, match="unknown mechanism 'depth'; use one of freshness"):
        L.mechanism_off({}, "depth")
    with pytest.raises(ValueError, match="unknown split kind"):
        L.make_split(None, "random", 0, 1)
    with pytest.raises(ValueError, match="unknown lesson 'width'"):
        L.run_lesson("width", "tiny", [0], {})
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        L.run_lesson("depth", "huge", [0], {}, progress=False)
    with pytest.raises(ValueError, match="freshness must be >= 0"):
        L.run_lesson("depth", "tiny", [0], {"freshness": -1.0}, progress=False)
    with pytest.raises(ValueError, match="lrs must be positive"):
        L.Protocol(lrs=(0.0,))
    with pytest.raises(ValueError, match="NAME=VALUE"):
        L.parse_switch("freshness")


def test_mechanism_off_switches_only_that_mechanism():
    switches = {"interest_progression": 2.0, "p_search": 0.1}
    off = L.mechanism_off(switches, "interactions")
    assert off == {**switches, **MECHANISM_OFF["interactions"]}
    assert off["progression_by_gender"] is False and off["interest_progression"] == 2.0
    assert L.mechanism_off({}, "freshness") == MECHANISM_OFF["freshness"]
    assert L.parse_switch("interest_progression=4") == ("interest_progression", 4)
    assert L.parse_switch("progression_by_gender=true") == ("progression_by_gender", True)


def test_world_without_switches_is_the_presets_own_world_and_switches_change_it(tiny_world):
    ds, _ = tiny_world
    plain = describe.tables_fingerprint(datasets.load("tiny", 0, progress=False))
    assert describe.tables_fingerprint(ds) == plain  # the cached preset, the world the notebooks load
    assert describe.tables_fingerprint(L.world("tiny", 0, MECHANISM_OFF["freshness"])) != plain


def test_train_selected_keeps_the_best_rate_on_validation(tiny_world):
    """Trained over two rates it returns the one with the higher validation recall, the very model that
    rate alone trains (same seed, deterministic)."""
    ds, split = tiny_world
    alone = {lr: L.train_selected(ds, split, "all", (16,), 0, FAST, lr=lr) for lr in FAST.lrs}
    best = L.train_selected(ds, split, "all", (16,), 0, FAST)
    expect = max(alone.values(), key=lambda r: r.val_recall)
    assert best.lr == expect.lr and best.val_recall == expect.val_recall
    assert 1 <= best.epochs <= FAST.epochs
    q = L.quality_on_test(best, split)
    assert q == L.quality_on_test(expect, split)
    assert 0.0 <= q["MAP@100"] <= q["recall@100"] <= 1.0


def test_run_lesson_reuses_the_first_seeds_rates_and_summarises_rows():
    out = L.run_lesson("depth", "tiny", [0, 1], {}, FAST, progress=False)
    rows = out["rows"]
    assert [r["seed"] for r in rows] == [0, 1]
    assert rows[0]["lr"] == rows[1]["lr"] == out["lr"] and set(out["lr"]) == {"depth0", "depth3"}
    for r in rows:
        assert r["effect"] == r["map_depth3"] / r["map_depth0"]
    mean, se = L.mean_se([r["effect"] for r in rows])
    s = out["summary"]
    assert s["mean"]["effect"] == mean and s["se"]["effect"] == se
    assert s["beyond_2se"] == L.beyond_noise(mean, se, 1.0)
    assert "lr" not in s["mean"] and "seed" not in s["mean"] and "interaction_gain" in s["mean"]


def test_labels_lesson_trains_each_label_kind_asked():
    """Next-watch and held-out by default; with the matched-context control when asked, each kind at its
    own chosen rate; next-watch and held-out are never left out."""
    ds = L.world("tiny", 1, {})
    row = L.lesson_labels(ds, 1, FAST)
    assert set(row["lr"]) == {"next_watch", "heldout"} and "effect_matched" not in row
    assert row["effect"] == row["recall_next"] - row["recall_heldout"]
    full = L.lesson_labels(ds, 1, FAST, kinds=L.SPLIT_KINDS)
    assert set(full["lr"]) == set(L.SPLIT_KINDS) == {"next_watch", "heldout", "heldout_matched"}
    assert full["effect_matched"] == full["recall_next"] - full["recall_heldout_matched"]
    assert full["recall_next"] == row["recall_next"]  # the same model: the control changes nothing else
    assert L.make_split(ds, "heldout_matched", 1, 2).match_context
    with pytest.raises(ValueError, match="kinds must hold next_watch and heldout"):
        L.lesson_labels(ds, 1, FAST, kinds=("next_watch", "heldout_matched"))


def test_a_rate_not_given_is_chosen_at_the_first_seed_and_reused():
    given = {"next_watch": 3e-3, "heldout": 3e-3}
    out = L.run_lesson("labels", "tiny", [0, 1], {}, FAST, lr=given, kinds=L.SPLIT_KINDS, progress=False)
    first, second = (r["lr"] for r in out["rows"])
    assert {k: first[k] for k in given} == given and first["heldout_matched"] in FAST.lrs
    assert second == first and out["lr"] == first


def test_cli_prints_json_and_refuses_bad_input(capsys):
    args = ["lessons", "--lesson", "fresh", "--preset", "tiny", "--seeds", "0", "--epochs", "2", "--patience",
            "1", "--lrs", "3e-3", "--n-next", "2", "--json"]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"]["lrs"] == [3e-3] and out["rows"][0]["lr"] == {"with": 3e-3, "without": 3e-3}
    assert out["summary"]["mean"]["effect"] == out["rows"][0]["lift_with"] / out["rows"][0]["lift_without"]
    control = ["lessons", "--lesson", "labels", "--preset", "tiny", "--seeds", "0", "--epochs", "1",
               "--patience", "1", "--lrs", "3e-3", "--n-next", "2", "--control", "--json"]
    assert cli.main(control) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert set(row["lr"]) == set(L.SPLIT_KINDS)
    assert row["effect_matched"] == row["recall_next"] - row["recall_heldout_matched"]
    for bad, message in ((["--lesson", "width"], "unknown lesson 'width'"),
                         (["--lesson", "depth", "--control"], "--control is the labels lesson's"),
                         (["--lesson", "depth", "--set", "nope=1"], "unknown world switch"),
                         (["--lesson", "depth", "--mechanism-off", "gravity"], "unknown mechanism")):
        assert cli.main(["lessons", "--preset", "tiny", *bad]) == 1
        assert message in capsys.readouterr().err


def test_rates_chosen_before_are_used_at_every_seed_and_summaries_keep_common_keys():
    """run_lesson(lr=...) trains only at the given rates (no choice); summarize averages the keys every row
    has (depths trained at one seed only are left out) and has no verdict without an effect."""
    given = {"depth0": 1e-3, "depth3": 1e-2}
    out = L.run_lesson("depth", "tiny", [2], {}, FAST, lr=given, progress=False)
    assert out["lr"] == given and out["rows"][0]["lr"] == given
    rows = [{"map_depth1": 0.1, "effect": 1.5}, {"effect": 1.1}]
    s = L.summarize(rows, 1.0)
    assert set(s["mean"]) == {"effect"} and s["mean"]["effect"] == pytest.approx(1.3)
    assert L.summarize([{"map_depth1": 0.1}], 1.0)["beyond_2se"] is None


def test_baselines_lesson_scores_every_classical_model_the_oracle_and_the_model(monkeypatch):
    """One row: recall@100 of most popular, each tuned classical model, the oracle and the model on the
    standard split's test users; the effect is the model over this seed's best classical model. Where
    EASE does not fit, it is left out and the best is taken over the rest."""
    ds = L.world("tiny", 0, {})
    row = L.lesson_baselines(ds, 0, FAST, depth=1)
    names = ("popularity", "popularity_recent", *L.CLASSICAL, "oracle", "oracle_label_time", "model")
    assert all(0.0 <= row[f"recall100_{m}"] <= 1.0 for m in names)
    assert 0.0 < row["share_labels_uploaded_after_cutoff"] < 1.0  # the tiny world keeps uploading
    classical = {m: row[f"recall100_{m}"] for m in L.CLASSICAL}
    assert row["best_classical"] == max(classical, key=classical.get)
    assert row["effect"] == row["recall100_model"] / max(classical.values())
    assert set(row["lr"]) == {"model"} and row["lr"]["model"] in FAST.lrs
    monkeypatch.setattr(L.evaluation, "ease_skip_reason", lambda task: "too big for this test")
    without = L.lesson_baselines(ds, 0, FAST, lr={"model": 3e-3}, depth=0)
    assert "recall100_ease" not in without and without["best_classical"] in ("itemknn", "rp3b")
    assert without["lr"] == {"model": 3e-3}
    with pytest.raises(ValueError, match="depth must be one of"):
        L.lesson_baselines(ds, 0, FAST, depth=7)


def test_lesson_preset_caps_large_presets_at_ci_and_says_why():
    """The lessons run at the preset's own sizes up to ci; larger presets and real datasets run them in
    the same world at ci's sizes, with a sentence that says so; LESSON_PRESET overrides, checked."""
    assert L.lesson_preset("ci") == ("ci", None) and L.lesson_preset("tiny") == ("tiny", None)
    for preset in ("small", "large"):
        chosen, why = L.lesson_preset(preset)
        assert chosen == L.LESSON_MAX_PRESET == "ci" and preset in why and "LESSON_PRESET" in why
    chosen, why = L.lesson_preset("movielens-100k")
    assert chosen == "ci" and "real dataset" in why
    assert L.lesson_preset("small", "small") == ("small", None)
    with pytest.raises(ValueError, match="LESSON_PRESET must be a simulator preset"):
        L.lesson_preset("ci", "movielens-100k")


def test_the_readme_lesson_commands_run(capsys):
    """Every ``lessons`` line of README.md runs (on tiny, one seed, one epoch): a mistyped switch or a
    world the simulator refuses would fail here."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    prefix = ".venv/bin/python -m ytrec_lib "
    lines = [line.split("#")[0].removeprefix(prefix).split() for line in readme.splitlines()
             if line.startswith(prefix + "lessons ")]
    assert len(lines) >= 4, lines
    fast = ["--preset", "tiny", "--seeds", "0", "--epochs", "1", "--patience", "1", "--lrs", "3e-3",
            "--n-next", "2", "--json"]
    for args in lines:
        assert cli.main(args + fast) == 0, (args, capsys.readouterr().err)
        assert json.loads(capsys.readouterr().out)["rows"], args

