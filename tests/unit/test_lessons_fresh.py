"""Figure 4's lesson (ytrec_lib.studies.lessons.lesson_fresh) with the example age one-hot by day, and the
curves behind its lifts, at the tiny preset."""

import numpy as np
import pytest

from ytrec_lib.models import candidate as C
from ytrec_lib.studies import lessons as L

FAST = L.Protocol(lrs=(3e-3,), patience=1, epochs=2, n_next=2)


@pytest.fixture(scope="module")
def tiny_world():
    ds = L.world("tiny", 0, {})
    return ds, L.make_split(ds, "next_watch", 0, FAST.n_next)


def test_train_selected_builds_the_day_columns_it_is_asked_for(tiny_world):
    ds, split = tiny_world
    run = L.train_selected(ds, split, "all", (8,), 0, FAST, example_age_days=5)
    spec = run.model.spec
    assert spec.example_age and spec.example_age_days == 5
    assert run.builder.encoder.spec == spec
    assert spec.dense_names()[-5:] == [f"example_age:day{d}" for d in range(5)]
    plain = L.train_selected(ds, split, "all", (8,), 0, FAST, example_age=False, example_age_days=5)
    assert plain.model.spec.n_dense == spec.n_dense - 6  # no scalar, no day columns


def test_fresh_curves_are_the_lifts_and_the_empirical_counts_labels(tiny_world):
    ds, split = tiny_world
    run = L.train_selected(ds, split, "all", (8,), 0, FAST)
    curves = L.fresh_curves(ds, split, {"m": run}, 0)
    assert set(curves) == {"m", "empirical"} and all(c.shape == (L.AGE_DAYS,) for c in curves.values())
    assert L.fresh_lifts(ds, split, {"m": run}, 0) == {k: C.fresh_lift(c) for k, c in curves.items()}
    assert (curves["m"] >= 0).all() and (curves["m"] < 1).all() and (curves["empirical"] >= 0).all()
    assert curves["m"][:2].min() > 0  # (ages past the tiny log's end have no pairs: 0)


def test_lesson_fresh_by_day_gives_the_with_model_a_column_per_day_of_the_window(tiny_world, monkeypatch):
    ds, split = tiny_world
    seen = {}
    real = L.train_selected

    def spy(*args, **kw):
        run = real(*args, **kw)
        seen[kw["example_age"]] = run.model.spec.example_age_days
        return run

    monkeypatch.setattr(L, "train_selected", spy)
    row = L.lesson_fresh(ds, 0, FAST, tower=(8,), by_day=True)
    assert seen == {True: int(np.ceil(split.train_cutoff)), False: 0}
    assert row["effect"] == row["lift_with"] / row["lift_without"]
    assert C.fresh_lift(np.array(row["curve_empirical"])) == row["lift_empirical"]
    assert len(row["curve_with"]) == len(row["curve_without"]) == L.AGE_DAYS
