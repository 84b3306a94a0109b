"""Tests of ytrec_lib.models.item2vec_spark: the skip reasons (with java hidden or broken, pyspark
missing), and, where Spark runs, Word2Vec on a corpus of two planted groups of items."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from ytrec_lib.models import item2vec as iv
from ytrec_lib.models import item2vec_spark as sp

N_ITEMS = 45  # ids 0..39 occur in the corpus, 40..44 never do


def two_groups(n_sequences: int = 200, length: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Sequences that stay inside one group: ids 0..19 or ids 20..39 (int64 arrays)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 20, length) + 20 * (i % 2) for i in range(n_sequences)]


@pytest.fixture
def java_hidden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """pyspark 'installed', no JAVA_HOME, and a PATH of one empty folder (returned)."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "pyspark" else real_find_spec(name, *a))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_reason_names_java_when_java_is_hidden(java_hidden: Path) -> None:
    reason = sp.spark_unavailable_reason()
    assert reason is not None and "\n" not in reason
    assert "Java 17" in reason and "no java on PATH" in reason, reason


def test_reason_names_java_home_without_java(java_hidden: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(java_hidden))
    assert f"JAVA_HOME={java_hidden} has no bin/java" in sp.spark_unavailable_reason()


def test_reason_says_when_java_fails(java_hidden: Path) -> None:
    java = java_hidden / "java"
    java.write_text("#!/bin/sh\necho 'Error: broken runtime' >&2\nexit 3\n")
    java.chmod(0o755)
    reason = sp.spark_unavailable_reason()
    assert "exited with 3" in reason and "broken runtime" in reason, reason


def test_reason_says_pyspark_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyspark" else real_find_spec(name, *a))
    assert sp.spark_unavailable_reason() == "pyspark is not installed (pip install -e .[scale])"


def test_session_refuses_to_start_without_java(java_hidden: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sp, "_SESSION", None)
    with pytest.raises(RuntimeError, match="Spark cannot run here: Spark needs Java 17"):
        sp.spark_session()


def test_bad_input_fails_before_any_jvm_starts() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.29: pass n_items"):
        sp.train_spark_item2vec(two_groups(), 30, dim=4, window=2, epochs=1)
    with pytest.raises(ValueError, match="window must be >= 1"):
        sp.train_spark_item2vec(two_groups(), N_ITEMS, dim=4, window=0, epochs=1)
    with pytest.raises(ValueError, match=r"counts must be .* in 1\.\.200"):
        sp.engines_by_sequence_count(two_groups(), N_ITEMS, [0, 10], dim=4, window=2, epochs=1)


def test_gensim_wrapper_gives_an_id_table() -> None:
    vectors, stats = sp.train_gensim_item2vec(two_groups(), N_ITEMS, dim=8, window=2, epochs=2, workers=1)
    assert vectors.shape == (N_ITEMS, 8) and vectors.dtype == np.float32
    assert not vectors[40:].any() and np.all(np.abs(vectors[:40]).sum(1) > 0)
    assert stats["words"] == 200 * 8 * 2
    assert stats["words_per_s"] == pytest.approx(stats["words"] / stats["seconds"])


# ---------------------------------------------------------------------------------------------
# with Spark (skipped where it cannot run)

needs_spark = pytest.mark.skipif(sp.spark_unavailable_reason() is not None,
                                 reason=f"Spark unavailable: {sp.spark_unavailable_reason()}")


@pytest.fixture(scope="module")
def spark_fit() -> tuple[np.ndarray, dict[str, float]]:
    return sp.train_spark_item2vec(two_groups(), N_ITEMS, dim=8, window=2, epochs=3, seed=1, progress=False)


@needs_spark
def test_spark_gives_an_id_table_with_zero_rows_for_unseen_ids(spark_fit) -> None:
    vectors, stats = spark_fit
    assert vectors.shape == (N_ITEMS, 8) and vectors.dtype == np.float32
    assert not vectors[40:].any() and np.all(np.abs(vectors[:40]).sum(1) > 0)
    assert stats["vocabulary"] == 40 and stats["words"] == 200 * 8 * 3
    assert stats["words_per_s"] == pytest.approx(stats["words"] / stats["seconds"])


@needs_spark
def test_spark_vectors_are_rows_of_their_ids(spark_fit) -> None:
    """Neighbours stay in the planted group: a row put under the wrong id would fall to chance (~0.49)."""
    vectors, _ = spark_fit
    purity = iv.topic_purity_at_k(vectors[:40], np.arange(40) // 20, k=5)["overall"]
    assert purity > 0.9, purity


@needs_spark
def test_spark_is_deterministic_and_reuses_its_session(spark_fit) -> None:
    again, stats = sp.train_spark_item2vec(two_groups(), N_ITEMS, dim=8, window=2, epochs=3, seed=1,
                                           progress=False)
    assert np.array_equal(again, spark_fit[0])
    assert stats["startup_s"] == 0.0
    with pytest.raises(ValueError, match="one session per process"):
        sp.spark_session("local[1]")


@needs_spark
def test_engines_by_sequence_count_measures_both_engines() -> None:
    rows = sp.engines_by_sequence_count(two_groups(), N_ITEMS, [50, 200], dim=4, window=2, epochs=1,
                                        progress=False)
    assert [r["sequences"] for r in rows] == [50, 200] and [r["words"] for r in rows] == [400, 1600]
    for r in rows:
        assert r["spark_words_per_s"] == pytest.approx(r["words"] / r["spark_seconds"])
        assert r["gensim_words_per_s"] == pytest.approx(r["words"] / r["gensim_seconds"])


def test_no_java_on_this_path_hides_it_from_the_checks(java_hidden: Path) -> None:
    """The fixture itself: the folder on PATH is empty, so no check here could find a java."""
    assert os.listdir(java_hidden) == [] and sp.java_executable() is None
