"""ytrec_lib.stats: the one mean ± standard-error convention, and the studies' wrappers of it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ytrec_lib import stats
from ytrec_lib.studies import lessons, softmax_convergence


def test_known_values():
    assert stats.mean_se([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0 / math.sqrt(3)))
    assert stats.standard_error(np.array([1, 2, 3, 4], dtype=np.int64)) == pytest.approx(
        np.std([1, 2, 3, 4], ddof=1) / 2)
    assert stats.mean_se([2.0, 2.0]) == (2.0, 0.0)
    mean, se = stats.mean_se(np.array([0.1, 0.4], dtype=np.float32))
    assert isinstance(mean, float) and isinstance(se, float)


def test_one_value_gives_single():
    assert stats.standard_error([7.0]) == 0.0
    assert stats.mean_se([7.0]) == (7.0, 0.0)
    assert stats.mean_se([7.0], single=1.5) == (7.0, 1.5)
    assert math.isnan(stats.standard_error([7.0], single=float("nan")))


@pytest.mark.parametrize("fn", [stats.standard_error, stats.mean_se])
def test_bad_input_is_rejected_with_a_message(fn):
    with pytest.raises(ValueError, match="non-empty.*got an empty one"):
        fn([])
    with pytest.raises(ValueError, match=r"1-D.*shape \(2, 2\)"):
        fn([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="1-D"):
        fn(3.0)


def test_studies_keep_their_one_value_conventions():
    mean, se = lessons.mean_se([5.0])
    assert mean == 5.0 and math.isnan(se)
    assert softmax_convergence.mean_se([0.4]) == (0.4, 0.0)
    values = [0.3, 0.5, 0.4]
    assert lessons.mean_se(values) == softmax_convergence.mean_se(values) == stats.mean_se(values)
