"""The one-hot-by-day encoding of example age (``FeatureSpec.example_age_days``): its columns at training and
serving, its width in the model, its checkpoint round trip and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_features import N_REGIONS, N_TOKENS, N_VIDEOS, tiny_tables

from ytrec_lib.features import FeatureBuilder, FeatureEncoder, FeatureSpec, example_age_onehot
from ytrec_lib.models.candidate import CandidateModel, checkpoint_payload, model_from_payload


def builder(spec: FeatureSpec, window: tuple[float, float] = (0.0, 10.0)) -> FeatureBuilder:
    users, watches, searches = tiny_tables()
    enc = FeatureEncoder.fit(users, N_VIDEOS, N_TOKENS, N_REGIONS, spec, window=window)
    return FeatureBuilder.from_tables(enc, watches, users, searches)


def test_onehot_puts_each_whole_day_in_its_column_and_clips_both_ends():
    days = np.array([0.0, 0.99, 1.0, 2.5, 3.999, 4.0, 37.0, -0.5])
    got = example_age_onehot(days, 4)
    assert got.shape == (8, 4) and got.dtype == np.float32
    assert got.sum(axis=1).tolist() == [1.0] * 8
    assert got.argmax(axis=1).tolist() == [0, 0, 1, 2, 3, 3, 3, 0]


def test_training_examples_get_their_day_and_serving_examples_day_zero():
    spec = FeatureSpec(example_age_days=5)
    b = builder(spec)
    names = spec.dense_names()
    assert names[-6:] == ["example_age"] + [f"example_age:day{d}" for d in range(5)]
    assert spec.n_dense == FeatureSpec().n_dense + 5
    times = np.array([9.5, 8.2, 6.0, 0.5])  # 0.5, 1.8, 4.0 and 9.5 days before the window end 10
    train = b.examples([0, 1, 2, 3], times, window_end=10.0).dense  # (4, n_dense)
    assert train.shape == (4, spec.n_dense)
    np.testing.assert_allclose(train[:, -6], (10.0 - times) / 10.0, rtol=1e-6)  # the scalar, unchanged
    assert train[:, -5:].argmax(axis=1).tolist() == [0, 1, 4, 4] and train[:, -5:].sum() == 4.0
    serve = b.examples([0, 1, 2, 3], times).dense
    assert (serve[:, -6] == 0).all() and (serve[:, -5] == 1).all() and serve[:, -4:].sum() == 0


def test_default_spec_keeps_one_example_age_column():
    b = builder(FeatureSpec())
    d = b.examples([0, 1], [2.0, 3.0], window_end=10.0).dense
    assert d.shape[1] == FeatureSpec().n_dense and FeatureSpec().dense_names()[-1] == "example_age"
    off = FeatureSpec(example_age=False, example_age_days=7)  # no example age: no day columns either
    assert off.n_dense == FeatureSpec(example_age=False).n_dense


def test_model_takes_the_day_columns_and_its_checkpoint_round_trips():
    spec = FeatureSpec(example_age_days=6)
    model = CandidateModel(N_VIDEOS, N_TOKENS, N_REGIONS, dim=8, tower=(16,), spec=spec, seed=0)
    batch = builder(spec).examples([0, 1, 2], [3.0, 5.0, 9.0], window_end=10.0).batch()
    logits = model(batch)  # (3, N_VIDEOS)
    assert logits.shape == (3, N_VIDEOS)
    again, _ = model_from_payload(checkpoint_payload(model))
    assert again.spec.example_age_days == 6
    assert torch.equal(again(batch), logits)


@pytest.mark.parametrize("bad", [-1, 2.5, "7", True])
def test_bad_example_age_days_is_refused_with_a_message(bad):
    with pytest.raises(ValueError, match="example_age_days must be an integer >= 0"):
        FeatureSpec(example_age_days=bad)
