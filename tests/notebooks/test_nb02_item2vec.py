"""Notebook 02 (item2vec) at the ci preset: the claims it teaches, asserted on its recorded results."""

from __future__ import annotations

import pytest

STEM = "02_item2vec"
KEYS = ("purity@10_item2vec", "purity@10_svd", "purity@10_gensim", "purity@10_tail_item2vec",
        "purity@10_tail_svd", "throughput_item2vec", "throughput_gensim", "purity@10_tail_by_alpha")

pytestmark = pytest.mark.notebook


def test_records_the_issue_keys(notebook_results) -> None:
    r = notebook_results(STEM)
    missing = [k for k in KEYS if k not in r]
    assert not missing, f"02_item2vec did not record {missing}"
    assert set(r["purity@10_tail_by_alpha"]) == {"0.0", "0.5", "0.75", "1.0"}
    assert all(0.0 <= v <= 1.0 for v in r["purity@10_tail_by_alpha"].values())


def test_every_method_beats_chance(notebook_results) -> None:
    r = notebook_results(STEM)
    chance = r["purity@10_chance"]
    for method in ("item2vec", "gensim", "svd"):
        assert r[f"purity@10_{method}"] > 5 * chance, (method, r[f"purity@10_{method}"], chance)
    assert r["purity@10_by_band"]["random"]["tail"] < 2 * chance


def test_item2vec_is_within_005_of_gensim(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["purity@10_item2vec"] >= r["purity@10_gensim"] - 0.05, (r["purity@10_item2vec"],
                                                                     r["purity@10_gensim"])


def test_throughput_is_at_least_a_third_of_gensims(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["throughput_item2vec"] >= r["throughput_gensim"] / 3, (r["throughput_item2vec"],
                                                                    r["throughput_gensim"])


TAIL_REASON = (
    "not met at ci: tail purity@10 item2vec 0.484 against SVD 0.543 (dim 32, window 5). "
    "A 45-setting sweep (lr, epochs, dim, negatives, alpha, subsampling, window, batch, "
    "input+output vectors) reached 0.537 at best (negatives 30, alpha 0, t 1e-4, in+out); "
    "SVD also wins on seeds 1 and 2 (0.569, 0.568 against 0.529, 0.533). At the small preset "
    "(10x the watches) the notebook's own settings do win: 0.350 against 0.289 (alpha 0: 0.392). "
    "Remove this marker once item2vec wins at ci.")


@pytest.mark.xfail(strict=True, reason=TAIL_REASON)
def test_item2vec_beats_svd_on_the_tail(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["purity@10_tail_item2vec"] > r["purity@10_tail_svd"], (r["purity@10_tail_item2vec"],
                                                                    r["purity@10_tail_svd"])


def test_item2vec_beats_svd_on_the_tail_at_small() -> None:
    """The tail claim where the data can carry it: at ``small`` (10x ci's watches), with the notebook's
    own main settings read from its parameters cell, the same training and purity code as the notebook.
    Costs ~2-3 min (generating the small dataset on a fresh clone included)."""
    from pathlib import Path

    from ytrec_lib.course.runner import notebook_parameters
    from ytrec_lib.data import datasets
    from ytrec_lib.models import item2vec as iv
    from ytrec_lib.models.cooccurrence_svd import cooccurrence_svd

    p = notebook_parameters(Path(__file__).parents[2] / "notebooks" / f"{STEM}.ipynb")
    ds = datasets.load("small", seed=p["SEED"], progress=False)
    seqs, topics = ds.watch_sequences(), ds.videos["topic"].to_numpy()
    bands = iv.popularity_bands(iv.encode_corpus(seqs).id_map.counts)
    config = iv.SGNSConfig(dim=p["DIM"], window=p["WINDOW"], epochs=p["EPOCHS"], lr=p["LR"],
                           negatives=p["NEGATIVES"], seed=p["SEED"])
    ours = iv.Item2Vec(config).fit(seqs, progress=False)
    svd = cooccurrence_svd(seqs, dim=p["DIM"], window=p["WINDOW"], seed=p["SEED"])
    tail_ours = iv.topic_purity_at_k(ours.vectors, topics, k=p["K"], item_ids=ours.ids, bands=bands)["tail"]
    tail_svd = iv.topic_purity_at_k(svd.vectors, topics, k=p["K"], item_ids=svd.ids, bands=bands)["tail"]
    assert tail_ours > tail_svd, (tail_ours, tail_svd)
