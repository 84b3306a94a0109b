"""Item2vec against the co-occurrence SVD on the tail, for a world and seeds (notebook 02's tail claim).

For a world (a simulator preset plus :class:`~ytrec_lib.data.presets.SimConfig` switches) and seeds, this
script measures what notebook 02 compares, with the notebook's settings (``--dim``, ``--window``,
``--epochs``, ``--lr``, ``--negatives``): topic purity@10 of the nearest neighbours (cosine, self
excluded) on the tail band (the least watched half of the videos) and overall, of

* ``svd``: :func:`~ytrec_lib.models.cooccurrence_svd.cooccurrence_svd` (rows of U S^1/2);
* ``i2v``: :class:`~ytrec_lib.models.item2vec.Item2Vec`'s input vectors, as the notebook uses them;
* ``i2v_t1e-4``: the same with subsampling threshold 1e-4 (t = 1e-3 drops nothing on a small corpus);
* ``i2v_t1e-4_inout``: that model's input + output vectors (Levy et al. 2015's w + c).

Beside them, the world's tail as the two methods see it: watches of the corpus, videos per topic, mean
sequence length, watches per tail video, distinct videos co-watched within the window per tail video,
and the share of the tail videos' co-watch counts that stay in their topic. Each seed prints one JSON
line; the last line is the mean and standard error over seeds of every number, and of each item2vec
variant's tail purity minus SVD's, with whether it is more than 2 SE from zero. Usage::

    YTREC_DATA_DIR=/tmp/me-data PYTHONPATH=. nice -n 19 python scripts/tail_study.py --preset ci
    ... --preset ci --set n_users=12000 --set n_videos=24000 --set n_creators=3200 --seeds 0
    ... --preset ci --choose     # lr in LRS and t in SUBSAMPLES chosen on half of the tail videos

(ci: ~40 s a seed on one busy core; small: ~7 min a seed.)
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from ytrec_lib.models import item2vec as iv
from ytrec_lib.models.cooccurrence_svd import cooccurrence_matrix, cooccurrence_svd
from ytrec_lib.studies.lessons import beyond_noise, mean_se, parse_switch, world

LRS = (0.025, 0.05, 0.1)  # item2vec learning rates tried by --choose
SUBSAMPLES = (1e-3, 1e-4, 1e-5)  # subsampling thresholds tried by --choose


def tail_stats(corpus: iv.Corpus, bands: np.ndarray, topic: np.ndarray, window: int) -> dict[str, float]:
    """The tail as both methods see it; ``topic`` (n,) per corpus row, ``bands`` (n,) per corpus row."""
    counts = corpus.id_map.counts  # (n,)
    cooc = cooccurrence_matrix(corpus.tokens, corpus.lengths, len(counts), window).tocsr()  # (n, n)
    row = np.repeat(np.arange(len(counts)), np.diff(cooc.indptr))  # (nnz,) row of each stored count
    tail = bands == "tail"
    from_tail = tail[row]  # (nnz,)
    same = topic[row] == topic[cooc.indices]  # (nnz,)
    return {"watches": int(counts.sum()), "videos": len(counts),
            "videos_per_topic": len(counts) / len(np.unique(topic)),
            "mean_sequence_length": float(corpus.lengths.mean()),
            "watches_per_tail_video": float(counts[tail].mean()),
            "cowatched_per_tail_video": float(np.diff(cooc.indptr)[tail].mean()),
            "tail_same_topic_share": float(cooc.data[from_tail & same].sum() / cooc.data[from_tail].sum())}


def one_seed(ds: Any, seed: int, args: argparse.Namespace) -> dict[str, float]:
    """Tail statistics and purity@10 (tail and overall) of SVD and the item2vec variants at ``seed``."""
    seqs, topics = ds.watch_sequences(), ds.videos["topic"].to_numpy()
    corpus = iv.encode_corpus(seqs)
    bands = iv.popularity_bands(corpus.id_map.counts)
    row = tail_stats(corpus, bands, topics[corpus.id_map.ids], args.window)
    config = iv.SGNSConfig(dim=args.dim, window=args.window, epochs=args.epochs, lr=args.lr,
                           negatives=args.negatives, seed=seed)
    main = iv.Item2Vec(config).fit(seqs, progress=False)
    sub = iv.Item2Vec(config, subsample=1e-4).fit(seqs, progress=False)
    vectors = {"svd": cooccurrence_svd(seqs, dim=args.dim, window=args.window, seed=seed).vectors,
               "i2v": main.vectors, "i2v_t1e-4": sub.vectors,
               "i2v_t1e-4_inout": sub.vectors + sub.context_vectors}
    for name, vec in vectors.items():  # every method's rows are the corpus rows
        pur = iv.topic_purity_at_k(vec, topics, k=10, item_ids=corpus.id_map.ids, bands=bands)
        row[f"tail_{name}"], row[f"overall_{name}"] = pur["tail"], pur["overall"]
    for name in ("i2v", "i2v_t1e-4", "i2v_t1e-4_inout"):
        row[f"tail_{name}_minus_svd"] = row[f"tail_{name}"] - row["tail_svd"]
    return row


def chosen_on_validation(ds: Any, config: iv.SGNSConfig, seed: int) -> dict[str, float]:
    """Item2vec's lr and subsampling t chosen on the tail purity of a random half of the tail videos
    (validation), then item2vec and SVD scored on the other half (test); rows are the corpus rows."""
    seqs, topics = ds.watch_sequences(), ds.videos["topic"].to_numpy()
    corpus = iv.encode_corpus(seqs)
    bands = iv.popularity_bands(corpus.id_map.counts)  # (n,) head / torso / tail
    half = np.random.default_rng(seed).random(len(bands)) < 0.5  # (n,) bool: validation half
    split = np.where(bands == "tail", np.where(half, "val", "test"), bands)  # (n,) labels
    def purity(vectors: np.ndarray) -> dict[str, float]:
        return iv.topic_purity_at_k(vectors, topics, k=10, item_ids=corpus.id_map.ids, bands=split)
    grid = {(lr, t): iv.Item2Vec(config, lr=lr, subsample=t).fit(seqs, progress=False)
            for lr in LRS for t in SUBSAMPLES}
    val = {key: purity(m.vectors)["val"] for key, m in grid.items()}
    lr, t = max(val, key=val.get)
    svd = cooccurrence_svd(seqs, dim=config.dim, window=config.window, seed=seed).vectors
    test_i2v, test_svd = purity(grid[lr, t].vectors)["test"], purity(svd)["test"]
    return {"chosen_lr": lr, "chosen_t": t, "val_tail_i2v": val[lr, t], "test_tail_i2v": test_i2v,
            "test_tail_svd": test_svd, "test_tail_i2v_minus_svd": test_i2v - test_svd}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="ci")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a SimConfig switch or size, e.g. --set n_videos=24000 (repeatable)")
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--choose", action="store_true",
                   help="instead: choose item2vec's lr and t on half of the tail, score on the other half")
    args = p.parse_args()
    switches = dict(parse_switch(s) for s in args.set)
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        ds = world(args.preset, seed, switches)
        if args.choose:
            config = iv.SGNSConfig(dim=args.dim, window=args.window, epochs=args.epochs,
                                   negatives=args.negatives, seed=seed)
            rows.append(chosen_on_validation(ds, config, seed))
        else:
            rows.append(one_seed(ds, seed, args))
        seconds = round(time.perf_counter() - t0, 1)
        print(json.dumps({"seed": seed, **rows[-1], "seconds": seconds}), flush=True)
    summary = {k: mean_se([r[k] for r in rows]) for k in rows[0]}
    beyond = {k: beyond_noise(m, s, 0.0) for k, (m, s) in summary.items() if k.endswith("_minus_svd")}
    print(json.dumps({"preset": args.preset, "switches": switches, "seeds": args.seeds,
                      "mean_se": summary, "beyond_2se": beyond}))


if __name__ == "__main__":
    main()
