"""Figures of the package that are drawn outside a notebook (the nearest-neighbour benchmark's plots),
and the helpers notebooks use so that the text of their figures renders.

With ``widgets``, the only module allowed to import matplotlib (design: package layout). It uses the
object-oriented ``Figure`` API, not pyplot, so drawing leaves no global state behind.

Matplotlib's default font (DejaVu Sans) has no Chinese glyphs: Chinese drawn with it comes out as
empty boxes under a "Glyph missing" warning per character. Figures therefore carry Chinese only
through :func:`cjk_title`, which uses it when :func:`cjk_font` finds an installed font that has the
glyphs (Noto Sans CJK, Source Han, WenQuanYi, ...) and the English text otherwise. Chinese terms stay
in markdown and tables, which the browser renders with its own fonts.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["cjk_font", "cjk_title", "ann_bench_figures", "catalogue_growth_figure", "long_tail_figure",
           "interest_by_age_figure", "watch_timelines_figure", "search_figure", "impression_log_figure",
           "split_timeline_figure", "recall_bars_figure", "item2vec_noise_figure", "item2vec_loss_figure",
           "item2vec_purity_figure", "item2vec_map_figure", "item2vec_sweep_figure", "candidate_recall_at_k",
           "candidate_step_times", "candidate_map_by_depth", "candidate_freshness",
           "candidate_age_transforms", "candidate_fresh_share", "softmax_matrix_figure", "serve_steps_figure",
           "purity_figure",
           "nb05_norms", "nb05_real_pareto", "nb05_latency_vs_n", "nb05_trees_vs_dim", "nb05_lsh",
           "nb05_batch", "strategy_figure", "popularity_histogram_figure", "crossover_figure",
           "stream_figure", "quantile_normalisation_figure", "calibration_figure", "hidden_layers_figure",
           "drop_one_figure", "nb09_allreduce", "nb09_cluster", "world_mechanisms_figure", "recall_by_world"]

CJK_FONT_HINTS = re.compile(r"CJK|Source Han|WenQuanYi|Droid Sans Fallback|Hei|PingFang|Song|Ming|Kai",
                            re.IGNORECASE)
"""Family names that usually carry Chinese glyphs; a candidate is kept only if it really has them."""
CJK_SAMPLE = "召回排序漏斗"


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed font that draws Chinese (checked on :data:`CJK_SAMPLE`), or None."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    for entry in sorted(font_manager.fontManager.ttflist, key=lambda f: ("CJK" not in f.name, f.name)):
        if not CJK_FONT_HINTS.search(entry.name):
            continue
        try:
            font = FT2Font(entry.fname)
        except (OSError, RuntimeError, ValueError):
            continue
        if all(font.get_char_index(ord(ch)) for ch in CJK_SAMPLE):
            return entry.name
    return None


def cjk_title(ax: Any, english: str, chinese: str) -> str:
    """Set the title of ``ax``: ``chinese`` (English with Chinese in it) in a CJK font when one is
    installed, else ``english``, so the figure never shows empty boxes. Returns the title set."""
    font = cjk_font()
    if font:
        ax.set_title(chinese, fontfamily=font)
        return chinese
    ax.set_title(english)
    return english


def ann_bench_figures(frames: dict[str, pd.DataFrame], machine: dict[str, Any],
                      k: int = 10) -> dict[str, Figure]:
    """The five plots of ``python -m ytrec_lib bench-ann`` from its tables (``frames``: main, sweep,
    scaling_n, scaling_d, batch) and ``machine.json`` values; ``k`` is the recall cut-off.
    Returns {name: Figure}: pareto, latency_vs_n, kdtree_vs_dim, lsh_bits, batch_roofline."""
    figures = {}
    for name, draw in (("pareto", _plot_pareto), ("latency_vs_n", _plot_latency_n),
                       ("kdtree_vs_dim", _plot_dim), ("lsh_bits", _plot_lsh),
                       ("batch_roofline", _plot_batch)):
        fig = Figure(figsize=(7.0, 4.6), layout="constrained")
        draw(fig.add_subplot(), frames, machine, k)
        figures[name] = fig
    return figures


def _plot_pareto(ax: Any, f: dict[str, pd.DataFrame], m: dict[str, Any], k: int) -> None:
    sw, main = f["sweep"], f["main"]
    sw = sw[sw["kind"] != "lsh"]
    sl = sw["param_shortlist"].fillna(0) if "param_shortlist" in sw else pd.Series(0, index=sw.index)
    for (kind, shortlist), g in sw.assign(shortlist=sl).groupby(["kind", "shortlist"], sort=False):
        extra = f" + exact re-ranking of {int(shortlist)}" if shortlist else ""
        ax.plot(g["p50_ms"], g[f"recall@{k}"], "o-", ms=3, label=f"{kind}{extra} (sweep)")
    for _, r in main.iterrows():
        ax.plot(r["p50_ms"], r[f"recall@{k}"], "k*", ms=9)
        ax.annotate(r["kind"], (r["p50_ms"], r[f"recall@{k}"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xscale="log", xlabel="single-query latency p50 (ms, 1 thread, log)", ylabel=f"recall@{k}",
           title=f"Recall against latency, N={int(main['n'].iloc[0]):,}, d={int(main['d'].iloc[0])} "
                 "(* = operating point)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _plot_latency_n(ax: Any, f: dict[str, pd.DataFrame], m: dict[str, Any], k: int) -> None:
    for kind, g in f["scaling_n"].groupby("kind", sort=False):
        ax.plot(g["n"], g["p50_ms"], "o-", label=kind)
    sn = f["scaling_n"]
    ax.set(xscale="log", yscale="log", xlabel="catalogue size N (items, log)",
           ylabel="p50 latency (ms, 1 thread, log)",
           title=f"Single-query latency against N (d={int(sn['d'].iloc[0])}, recall@{k} in the table)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")


def _plot_dim(ax: Any, f: dict[str, pd.DataFrame], m: dict[str, Any], k: int) -> None:
    sd = f["scaling_d"]
    colours = {("kdtree", "ip"): "C0", ("balltree", "ip"): "C1", ("kdtree", "l2"): "C2"}
    styles = ["o-", "s--", "^:"]
    for i, (n, gn) in enumerate(sd.groupby("n", sort=False)):
        for (kind, metric), g in gn[gn["kind"] != "exact"].groupby(["kind", "metric"], sort=False):
            task = "inner product, transformed" if metric == "ip" else "Euclidean"
            ax.plot(g["d"], g["over_exact_cpu"], styles[i % 3], color=colours[kind, metric],
                    label=f"{kind}, {task}, N={n:,}")
    ax.axhline(1.0, color="k", lw=0.8, ls=":", label="as fast as the exact scan")
    ax.set(xscale="log", yscale="log", xlabel="dimension d (log)", ylabel="p50 / exact p50 (CPU time, log)")
    ax.set_title("Trees against the exact scan as d grows (1 thread)")
    dims = sorted(sd["d"].unique())
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.xaxis.set_tick_params(which="minor", labelbottom=False)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")


def _plot_lsh(ax: Any, f: dict[str, pd.DataFrame], m: dict[str, Any], k: int) -> None:
    sw = f["sweep"]
    lsh = sw[sw["kind"] == "lsh"]
    for sl, g in lsh.groupby("param_shortlist"):
        label = "hash order only" if sl == 0 else f"exact re-ranking of a {int(sl)}-item shortlist"
        ax.plot(g["param_nbits"], g[f"recall@{k}"], "o-", label=label)
    ax.set(xscale="log", xlabel="hash bits (log)", ylabel=f"recall@{k}", ylim=(0, 1.02),
           title="LSH (random hyperplanes on the MIPS-transformed vectors)")
    bits = sorted(lsh["param_nbits"].unique())
    ax.set_xticks(bits, [str(int(b)) for b in bits])
    ax.minorticks_off()
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _plot_batch(ax: Any, f: dict[str, pd.DataFrame], m: dict[str, Any], k: int) -> None:
    """Throughput by the searching thread's CPU time (the wall clock of a shared machine also counts
    other jobs), against the limits measured the same way."""
    b = f["batch"]
    for method, g in b.groupby("method", sort=False):
        ax.plot(g["batch"], g["qps_cpu"], "o-", ms=3, label=method)
    g = b.drop_duplicates("batch").sort_values("batch")
    ax.plot(g["batch"], g["bandwidth_bound_qps_cpu"], "k--", lw=1, label="memory-bandwidth limit")
    ax.plot(g["batch"], g["arithmetic_bound_qps_cpu"], "k:", lw=1, label="arithmetic limit (GEMM peak)")
    switch = -(-m["distance_compute_blas_threshold"] // int(g["d"].iloc[0]))
    ax.axvline(switch, color="grey", lw=0.8, label=f"Faiss switches to BLAS (batch {switch})")
    ax.set(xscale="log", yscale="log", xlabel="queries per batch (log)",
           ylabel="throughput (queries per CPU-second, log)",
           title=f"Exact search throughput against batch size, 1 thread, N={int(g['n'].iloc[0]):,}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 01 (the UGC world)
# ----------------------------------------------------------------------------------------------------


def catalogue_growth_figure(days: np.ndarray, available: np.ndarray, per_creator: pd.Series) -> Figure:
    """Two panels: videos available on each day of the log (``days``, ``available`` (n_days,)) and
    videos per creator by rank (``per_creator``: counts sorted descending), log-log."""
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    ax = fig.subplots(1, 2)
    ax[0].plot(days, available)
    ax[0].set(title="Catalogue size over the log", xlabel="day of the log", ylabel="videos available")
    ax[1].loglog(np.arange(1, len(per_creator) + 1), per_creator.to_numpy(), ".")
    ax[1].set(title="Videos per creator (rank-size)", xlabel="creator rank", ylabel="videos uploaded")
    return fig


def long_tail_figure(views: dict[str, np.ndarray], lorenz: dict[str, tuple[np.ndarray, np.ndarray]],
                     head: dict[str, dict[str, float]]) -> Figure:
    """Two panels, one line per catalogue name: its Lorenz curve (``lorenz[name]`` = (x, y) from
    :func:`ytrec_lib.metrics.lorenz_curve`, labelled with ``head[name]["gini"]``, as
    :func:`ytrec_lib.metrics.long_tail` gives it) against perfect equality, and its views
    (``views[name]`` (n_videos,) counts) by popularity rank, log-log."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax = fig.subplots(1, 2)
    for name, c in views.items():
        x, y = lorenz[name]
        ax[0].plot(x, y, label=f"{name} (Gini {head[name]['gini']:.2f})")
        ax[1].loglog(np.arange(1, c.size + 1), np.sort(c)[::-1] + 1, label=name)
    ax[0].plot([0, 1], [0, 1], "k:", lw=1, label="perfect equality")
    ax[0].set(title="Lorenz curve of views", xlabel="share of videos (least viewed first)",
              ylabel="share of views")
    ax[1].set(title="Views by popularity rank", xlabel="video rank", ylabel="views + 1 (watches)")
    for a in ax:
        a.legend()
    return fig


def interest_by_age_figure(by_age: pd.DataFrame) -> Figure:
    """Heat map of the mean interest in each category (columns) per age band (index), each column
    divided by its mean over the bands (1 = average)."""
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.subplots()
    rel = by_age.to_numpy() / by_age.to_numpy().mean(axis=0)                  # (n_bands, n_categories)
    im = ax.imshow(rel, aspect="auto", cmap="RdBu_r", vmin=0.5, vmax=1.5)
    ax.set(title="Interest in each category by age band (relative to all users)", xlabel="category",
           ylabel="age band", yticks=range(len(by_age)), yticklabels=by_age.index)
    fig.colorbar(im, ax=ax, label="mean interest / overall mean")
    return fig


def watch_timelines_figure(seq: pd.DataFrame, topic_of: np.ndarray, users: Any) -> Figure:
    """One panel per user id in ``users``: each watch of ``seq`` (columns user_id, video_id, time,
    source) at its time and its video's topic (``topic_of`` (n_videos,)), marked by source."""
    fig = Figure(figsize=(11, 2.2 * len(users)), layout="constrained")
    axes = fig.subplots(len(users), 1, sharex=True, squeeze=False)
    for ax, uid in zip(axes[:, 0], users, strict=True):
        s = seq[seq["user_id"] == uid]
        topic = topic_of[s["video_id"]]
        ax.plot(s["time"], topic, "-", color="0.8", lw=1)
        for src, mk in (("home", "o"), ("search", "s")):
            m = (s["source"] == src).to_numpy()
            ax.plot(s["time"].to_numpy()[m], topic[m], mk, ms=5, label=src)
        ax.set(title=f"user {uid}: {len(s)} watches", ylabel="topic")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("time (days)")
    return fig


def search_figure(query_lengths: pd.Series, tokens: np.ndarray) -> Figure:
    """Two panels: searches by query length (``query_lengths``: tokens per search) and the frequency
    of each token id typed (``tokens``: every token of every query, flat) by rank, log-log."""
    fig = Figure(figsize=(11, 3.2), layout="constrained")
    ax = fig.subplots(1, 2)
    query_lengths.value_counts().sort_index().plot.bar(ax=ax[0])
    ax[0].set(title="Query length", xlabel="tokens per query", ylabel="searches")
    freq = np.sort(np.bincount(tokens))[::-1]
    freq = freq[freq > 0]
    ax[1].loglog(np.arange(1, freq.size + 1), freq, ".")
    ax[1].set(title="Token frequency (rank-size)", xlabel="token rank", ylabel="occurrences")
    return fig


def impression_log_figure(ctr: pd.DataFrame, by_clickbait: pd.DataFrame) -> Figure:
    """Two panels: click-through by position (``ctr``: index position, one column per source) and,
    per clickbait quintile, click-through against the watched fraction (``by_clickbait``, the frame
    of :func:`ytrec_lib.data.describe.by_clickbait_quintile`) on a second axis."""
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    ax = fig.subplots(1, 2)
    ctr.plot(ax=ax[0], marker="o")
    ax[0].set(title="Click-through by slot (position bias)", xlabel="position (0 = top)",
              ylabel="click-through rate")
    by_clickbait.plot(ax=ax[1], marker="o", secondary_y="watched fraction")
    ax[1].set(title="Clickbait raises clicks, not watching", xlabel="clickbait quintile (0 = least)")
    ax[1].set_ylabel("click-through rate")
    ax[1].right_ax.set_ylabel("share of the video watched")
    return fig


def split_timeline_figure(split: Any) -> Figure:
    """Histogram over time of a split's training examples and test labels (``split``: a
    :class:`ytrec_lib.data.splits.Split`), with its cutoff; a leave-last-out split has no cutoff, so
    none is drawn."""
    fig = Figure(figsize=(9, 3), layout="constrained")
    ax = fig.subplots()
    lastout = split.kind == "leave_last_out"
    ax.hist(split.train["time"], bins=60, alpha=0.7, label="training examples")
    test_label = "each user's last watch" if lastout else "first watch after the cutoff"
    ax.hist(split.test["time"], bins=30, alpha=0.7, label=f"test labels ({test_label})")
    if not lastout:
        ax.axvline(split.train_cutoff, color="k", ls="--", label=f"cutoff, day {split.train_cutoff:.0f}")
    title = "The leave-last-out split over time" if lastout else "The next-watch split over time"
    ax.set(title=title, xlabel="time (days)", ylabel="examples")
    ax.legend()
    return fig


def recall_bars_figure(recall: dict[str, float], k: int, n_users: int) -> Figure:
    """Horizontal bars of recall@k per model name (``recall``), measured on ``n_users`` test users."""
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(list(recall), list(recall.values()))
    ax.set(title=f"Next-watch recall@{k} on {n_users:,} test users", xlabel=f"recall@{k}", ylabel="model")
    return fig


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 02 (item2vec)
# ----------------------------------------------------------------------------------------------------


def item2vec_noise_figure(noise: Mapping[float, np.ndarray], keep: Mapping[float, np.ndarray],
                          counts: np.ndarray) -> Figure:
    """Two panels: the noise distribution (n,) of each alpha of ``noise`` against popularity rank
    (log-log), and the keep probability (n,) of each subsampling threshold t of ``keep`` against the
    item's frequency; ``counts`` (n,) are the items' watch counts."""
    counts = np.asarray(counts)
    order = np.argsort(-counts)  # most watched first
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    for alpha, p in noise.items():
        left.loglog(np.arange(1, len(p) + 1), np.asarray(p)[order], label=f"alpha = {alpha}")
    left.set(title="Noise distribution count^alpha", xlabel="video popularity rank",
             ylabel="probability of a draw")
    left.legend()
    freq = counts / counts.sum()
    for t, k in keep.items():
        right.semilogx(freq[order], np.asarray(k)[order], label=f"t = {t:g}")
    right.set(title="Subsampling: chance to keep an occurrence",
              xlabel="item frequency f (share of all watches)", ylabel="keep probability")
    right.legend()
    return fig


def item2vec_loss_figure(history: Sequence[Mapping[str, float]]) -> Figure:
    """The SGNS training loss of ``Item2Vec.history`` (dicts with "words" and "loss") against the
    corpus words processed."""
    hist = pd.DataFrame(list(history))
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(hist["words"] / 1e3, hist["loss"])
    ax.set(title="item2vec training loss", xlabel="corpus words processed (thousands)",
           ylabel="SGNS loss per pair")
    return fig


def item2vec_purity_figure(table: pd.DataFrame, chance: float, k: int = 10) -> Figure:
    """Bars of topic purity@k per method (rows of ``table``) and band (its columns: overall, head,
    torso, tail), with the purity of random neighbours ``chance`` as a dashed line."""
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.add_subplot()
    table.plot.bar(ax=ax, rot=0)
    ax.set(title=f"Topic purity@{k} by popularity band", xlabel="method",
           ylabel=f"share of {k} neighbours on topic")
    ax.axhline(chance, color="grey", ls="--", lw=1)
    return fig


def item2vec_map_figure(xy: np.ndarray, categories: np.ndarray) -> Figure:
    """Scatter of a 2-D map ``xy`` (n, 2) of item vectors (t-SNE), coloured by ``categories`` (n,) ints."""
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.add_subplot()
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=categories, cmap="tab10", s=8)
    ax.legend(*sc.legend_elements(), title="category", fontsize=7, loc="best")
    ax.set(title=f"t-SNE of item2vec vectors ({len(xy)} most watched videos)", xlabel="t-SNE 1 (a.u.)",
           ylabel="t-SNE 2 (a.u.)")
    return fig


def item2vec_sweep_figure(by_alpha: Mapping[float, float], by_subsample: Mapping[float, float],
                          k: int = 10) -> Figure:
    """Two panels: tail purity@k against the noise exponent alpha (``by_alpha``), and against the
    subsampling threshold t (``by_subsample``, t = 0: off)."""
    fig = Figure(figsize=(10, 3.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(list(by_alpha), list(by_alpha.values()), "o-")
    left.set(title=f"Tail purity@{k} against the noise exponent", xlabel="alpha", ylabel=f"tail purity@{k}")
    right.bar([f"t = {t:g}" for t in by_subsample], list(by_subsample.values()))
    right.set(title="Tail purity with and without subsampling", xlabel="subsampling threshold",
              ylabel=f"tail purity@{k}")
    return fig


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 03 (candidate generation)
# ----------------------------------------------------------------------------------------------------


def candidate_recall_at_k(table: pd.DataFrame, k_list: list[int], n_users: int, preset: str) -> Figure:
    """Recall@K against K (log axis) for every method, a row of ``table`` (columns ``recall@K`` for
    each K of ``k_list``), measured on ``n_users`` test users of dataset ``preset``."""
    fig = Figure(figsize=(8, 3.4), layout="tight")
    ax = fig.add_subplot()
    for name in table.index:
        ax.plot(k_list, [table.loc[name, f"recall@{k}"] for k in k_list], marker="o", label=name)
    ax.set(title=f"Next-watch recall@K, {n_users:,} test users ({preset})", xlabel="K (videos retrieved)",
           ylabel="recall@K", xscale="log")
    ax.legend(fontsize=8)
    return fig


def candidate_step_times(steps: pd.DataFrame, n_negatives: int) -> Figure:
    """Two panels from :func:`ytrec_lib.studies.softmax_timing.step_time_table` rows (n_classes, full_ms,
    sampled_ms, speedup): the time of one training step against the catalogue size, and the sampled
    softmax's speed-up."""
    fig = Figure(figsize=(10, 3.4), layout="tight")
    ax = fig.subplots(1, 2)
    ax[0].loglog(steps["n_classes"], steps["full_ms"], marker="o", label="full softmax")
    ax[0].loglog(steps["n_classes"], steps["sampled_ms"], marker="o",
                 label=f"sampled, {n_negatives} negatives")
    ax[0].set(title="Time of one training step", xlabel="catalogue size (videos)", ylabel="ms per step")
    ax[0].legend(fontsize=8)
    ax[1].semilogx(steps["n_classes"], steps["speedup"], marker="o")
    ax[1].set(title="Speed-up of the sampled softmax", xlabel="catalogue size (videos)",
              ylabel="full / sampled step time (×)")
    return fig


def candidate_map_by_depth(map_by_depth: dict[str, list[float]], depths: list[int]) -> Figure:
    """Holdout MAP@100 against tower depth, one line per feature set (``{name: [MAP at each depth]}``),
    as in the paper's Figure 6."""
    fig = Figure(figsize=(7, 3.8), layout="tight")
    ax = fig.add_subplot()
    for name, values in map_by_depth.items():
        ax.plot(list(depths), values, marker="o", label=name)
    ax.set(title="Holdout MAP@100 by features and depth (cf. paper Fig. 6)", xlabel="depth (ReLU layers)",
           ylabel="MAP@100", xticks=list(depths))
    ax.legend(fontsize=8)
    return fig


def candidate_freshness(curves: dict[str, Any]) -> Figure:
    """Class probability of a video against its age in days (log scale), one line per curve
    (``{name: (days,) probabilities}``; the curve named "empirical" in black), as in the paper's Figure 4."""
    fig = Figure(figsize=(8, 3.6), layout="tight")
    ax = fig.add_subplot()
    for name, c in curves.items():
        ax.semilogy([day + 0.5 for day in range(len(c))], c, marker="o", label=name,
                    **({"color": "k"} if name == "empirical" else {}))
    ax.set(title="Probability of a video against its age (cf. paper Fig. 4)", xlabel="days since upload",
           ylabel="class probability (per video)")
    ax.legend(fontsize=8)
    return fig


def candidate_age_transforms(map_by_transform: dict[str, float]) -> Figure:
    """Holdout MAP@100 of models fed different transforms of age (``{transforms: MAP}``), as bars."""
    return _candidate_bars(map_by_transform, "Holdout MAP@100 by the age transforms fed", "MAP@100", (7, 2.6))


def candidate_fresh_share(shares: dict[str, float], young_days: float = 7.0, k: int = 100) -> Figure:
    """Share of videos younger than ``young_days`` days in served top-``k`` lists and in the videos watched
    next (``{label: share}``), as bars."""
    return _candidate_bars(shares, f"Videos under {young_days:g} days old: served top {k} (example age 0) "
                           "and watched next", f"share of videos younger than {young_days:g} days", (7, 2.2))


def _candidate_bars(values: dict[str, float], title: str, xlabel: str,
                    figsize: tuple[float, float]) -> Figure:
    """Horizontal bars of ``values`` ({label: value}), one per label."""
    fig = Figure(figsize=figsize, layout="tight")
    ax = fig.add_subplot()
    ax.barh(list(values), list(values.values()))
    ax.set(title=title, xlabel=xlabel)
    return fig


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 04 (video embeddings)
# ----------------------------------------------------------------------------------------------------


def softmax_matrix_figure(W: np.ndarray, cols: np.ndarray, topics: np.ndarray, label_counts: np.ndarray,
                          bias: np.ndarray) -> Figure:
    """The m x n softmax matrix drawn as a heatmap of the columns ``cols``, beside bias against popularity.

    W: (n, m) video embeddings (row j = column j of the matrix); cols: (c,) video ids to draw, grouped by
    topic; topics: (n,) topic per video; label_counts: (n,) training labels per video; bias: (n,) output bias.
    """
    n_videos, m = W.shape
    fig = Figure(figsize=(12, 4), layout="tight")
    ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    lim = np.abs(W[cols]).max()
    im = ax[0].imshow(W[cols].T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    for e in np.flatnonzero(np.diff(topics[cols])) + 0.5:  # topic boundaries
        ax[0].axvline(e, color="k", lw=0.6)
    ax[0].set(title=f"The m × n softmax matrix: {m} × {len(cols)} of its {n_videos:,} columns",
              xlabel="video column (most-watched videos, grouped by topic; lines = topic boundaries)",
              ylabel="coordinate i of the embedding (0 … m−1)")
    fig.colorbar(im, ax=ax[0], label="weight W[j, i] (unitless)")
    ax[1].scatter(np.log1p(label_counts), bias, s=4, alpha=0.4)
    ax[1].set(title="Output bias against popularity", xlabel="log(1 + training labels of the video)",
              ylabel="bias b_j (logit units)")
    return fig


def serve_steps_figure(timings: dict[str, np.ndarray], n_videos: int, k: int) -> Figure:
    """Box plot of each serving step's milliseconds per request: ``timings[step]`` (n_users,) float ms
    for the steps lookup_ms, score_ms, select_ms, total_ms (as ``StoreServer.recommend_many`` returns)."""
    steps = ["lookup_ms", "score_ms", "select_ms", "total_ms"]
    fig = Figure(figsize=(8, 3), layout="tight")
    ax = fig.subplots()
    ax.boxplot([timings[s] for s in steps], orientation="horizontal", showfliers=False)
    ax.set_yticks(range(1, len(steps) + 1), ["store lookup", f"score {n_videos:,} videos", f"select top-{k}",
                                              "total"])
    ax.set(title=f"One request, step by step ({len(timings['total_ms']):,} users, one at a time)",
           xlabel="milliseconds per request (box: quartiles, whiskers: 1.5 IQR)", ylabel="step")
    return fig


def purity_figure(table: pd.DataFrame, chance: float, k: int, n_videos: int) -> Figure:
    """Bars of topic purity@k per popularity band (``table``: rows overall/head/torso/tail, one column
    per embedding), with the purity of random neighbours ``chance`` as a dotted line."""
    fig = Figure(figsize=(7, 3), layout="tight")
    ax = fig.subplots()
    table.plot.bar(ax=ax, rot=0)
    ax.axhline(chance, color="k", ls=":", label="random neighbours")
    ax.set(title=f"Topic purity@{k} of {n_videos:,} videos by popularity band",
           xlabel="videos (overall, and head / torso / tail by watches before the cutoff)",
           ylabel=f"share of {k} neighbours with the same topic")
    ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 05 (ANN serving)
# ----------------------------------------------------------------------------------------------------


def nb05_norms(norms: Any, max_norm: float, d: int) -> Figure:
    """Histogram of the video vectors' Euclidean norms ``norms`` (n,), with the largest one ``max_norm``
    (the radius of the MIPS-to-L2 transform) marked; ``d`` is their dimension (for the title)."""
    fig = Figure(figsize=(7, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(norms, bins=60, color="C0")
    ax.axvline(max_norm, color="k", ls=":", label=f"M = largest norm = {max_norm:.2f}")
    ax.set(title=f"Norms of the {len(norms):,} real video vectors [v, b] (d = {d})",
           xlabel="Euclidean norm |x|", ylabel="videos")
    ax.legend()
    return fig


def nb05_real_pareto(sweep: pd.DataFrame, latency: str, k: int, n: int, d: int) -> Figure:
    """Recall@k against single-query latency of every index on the real vectors: ``sweep`` holds
    :func:`ytrec_lib.studies.ann_bench.sweep` rows (one per index and search setting;
    HNSW with ``metric`` "l2"
    is the one on the transformed vectors); ``latency`` is the latency column (ms) to plot."""
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.add_subplot()
    shortlist = sweep["param_shortlist"].fillna(0) if "param_shortlist" in sweep else 0
    sw = sweep.assign(shortlist=shortlist)
    for (kind, metric), g in sw[sw["kind"] != "lsh"].groupby(["kind", "metric"], sort=False):
        label = kind + (" (transformed, L2)" if metric == "l2" else "")
        parts = [("", g)] if kind != "ivfpq" else [(" (PQ scores)", g[g["shortlist"] == 0]),
                                                   (" + exact re-ranking of 100", g[g["shortlist"] > 0])]
        for tag, gg in parts:
            ax.plot(gg[latency], gg[f"recall@{k}"], "o-", ms=4, label=label + tag)
    lsh = sw[(sw["kind"] == "lsh") & (sw["shortlist"] > 0)]
    if len(lsh):
        bits = lsh["param_nbits"].astype(int)
        ax.plot(lsh[latency], lsh[f"recall@{k}"], "x--",
                label=f"lsh {bits.min()}…{bits.max()} bits + re-ranking of {int(lsh['shortlist'].iloc[0])}")
    ax.set(xscale="log", xlabel="single-query latency p50 (ms, one thread, log scale)", ylabel=f"recall@{k}",
           title=f"Recall against latency on the real video vectors (N = {n:,}, d = {d})", ylim=(0, 1.03))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def nb05_latency_vs_n(scaling: pd.DataFrame, slopes: dict[str, float], d: int) -> Figure:
    """Single-query p50 against catalogue size, log-log: ``scaling`` has columns index, N, p50_ms;
    ``slopes`` the fitted log-log slope of each index (in the legend)."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for kind, g in scaling.groupby("index", sort=False):
        ax.plot(g["N"], g["p50_ms"], "o-", label=f"{kind} (slope {slopes[kind]:.2f})")
    ax.set(xscale="log", yscale="log", xlabel="catalogue size N (items, log scale)",
           ylabel="single-query p50 latency (ms, log scale)",
           title=f"Latency against catalogue size (d = {d}, one thread)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


def nb05_trees_vs_dim(dims: pd.DataFrame, n: int) -> Figure:
    """Two panels over the dimension d: p50 of each index, and each tree's p50 over the exact scan's.
    ``dims`` has columns d, index, p50_ms, over_exact; ``n`` is the catalogue size (title)."""
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax = fig.subplots(1, 2)
    for kind, g in dims.groupby("index", sort=False):
        ax[0].plot(g["d"], g["p50_ms"], "o-", label=kind)
        if kind != "exact":
            ax[1].plot(g["d"], g["over_exact"], "o-", label=kind)
    ax[0].set(xscale="log", yscale="log", xlabel="dimension d (log scale)",
              ylabel="p50 latency (ms, log scale)",
              title=f"Single-query latency against d (N = {n:,})")
    ax[1].axhline(1, color="k", ls=":", label="as fast as the exact scan")
    ax[1].set(xscale="log", yscale="log", xlabel="dimension d (log scale)",
              ylabel="p50 / exact-scan p50 (log scale)",
              title="Trees relative to the exact scan")
    grid = sorted(dims["d"].unique())
    for a in ax:
        a.set_xticks(grid, [str(d) for d in grid])
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=8)
    return fig


def nb05_lsh(lsh: pd.DataFrame, latency: str, k: int, n: int, d: int) -> Figure:
    """LSH recall@k (left, drawn by the benchmark's LSH plot) and single-query latency (right, column
    ``latency``) against its bits, with and without re-ranking: ``lsh`` holds the LSH rows of a
    :func:`ytrec_lib.studies.ann_bench.sweep` (param_nbits, param_shortlist)."""
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax = fig.subplots(1, 2)
    _plot_lsh(ax[0], {"sweep": lsh}, {}, k)
    ax[0].set_title(f"LSH recall (N = {n:,}, d = {d})")
    for sl, g in lsh.groupby("param_shortlist"):
        label = "hash order only" if sl == 0 else f"exact re-ranking of a {int(sl)}-item shortlist"
        ax[1].plot(g["param_nbits"], g[latency], "o-", label=label)
    bits = sorted(lsh["param_nbits"].unique())
    ax[1].set(xscale="log", yscale="log", xlabel="hash bits (log scale)",
              ylabel="p50 latency (ms, log scale)",
              title="LSH single-query latency")
    ax[1].set_xticks(bits, [str(int(b)) for b in bits])
    ax[1].minorticks_off()
    ax[1].legend(fontsize=7)
    ax[1].grid(alpha=0.3, which="both")
    return fig


def nb05_batch(qps: pd.DataFrame, scan_s: float, arith_qps: float, switch: int, n: int, d: int,
               k: int) -> Figure:
    """Throughput against batch size, log-log: ``qps`` (batch x method, queries/s), the memory limit
    (one read of the matrix, ``scan_s`` seconds, per batch), the arithmetic limit ``arith_qps`` and the
    batch ``switch`` where Faiss starts to use BLAS."""
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.add_subplot()
    for m in qps.columns:
        ax.plot(qps.index, qps[m], "o-", ms=4, label=m)
    ax.plot(qps.index, qps.index / scan_s, "k--", lw=1,
            label="memory limit: one read of the matrix per batch")
    ax.axhline(arith_qps, color="k", ls=":", lw=1, label="arithmetic limit (GEMM peak)")
    ax.axvline(switch, color="grey", lw=0.8, label=f"Faiss default switches to BLAS (batch {switch})")
    ax.set(xscale="log", yscale="log", xlabel="queries per batch (log scale)",
           ylabel="throughput (queries/s, log scale)",
           title=f"Exact top-{k} throughput against batch size (N = {n:,}, d = {d}, one thread)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig



# ----------------------------------------------------------------------------------------------------
# Figures of notebook 06 (negative sampling)
# ----------------------------------------------------------------------------------------------------


def strategy_figure(table: pd.DataFrame, k: int, n_videos: int) -> Figure:
    """Notebook 06: recall@k of each retrieval strategy (bars; exposed red, references grey) and recall
    against the mean popularity percentile of its top k (scatter). ``table``: one row per strategy
    (index), columns ``recall@{k}`` and ``top{k} popularity pct``."""
    recall, pop = table[f"recall@{k}"], table[f"top{k} popularity pct"]
    order = table.sort_values(f"recall@{k}").index
    fig = Figure(figsize=(12, 4.2), layout="tight")
    ax1, ax2 = fig.subplots(1, 2)
    grey = ("full_softmax", "hard_only")                                  # the references
    colors = ["tab:red" if n == "exposed" else "tab:gray" if n in grey else "tab:blue" for n in order]
    ax1.barh(order, recall[order], color=colors)
    ax1.set_xlabel(f"recall@{k} of the next watch (fraction of test users)")
    ax1.set_ylabel("negatives of the strategy")
    ax1.set_title(f"Retrieval over all {n_videos:,} videos, same budget")
    for name in table.index:
        ax2.scatter(pop[name], recall[name], s=40)
        ax2.annotate(name, (pop[name], recall[name]), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax2.set_xlabel(f"mean popularity percentile of the top {k} (100 = most watched)")
    ax2.set_ylabel(f"recall@{k}")
    ax2.set_title("What each strategy recommends")
    return fig


def popularity_histogram_figure(pct: dict[str, Any], colors: dict[str, str], k: int) -> Figure:
    """Notebook 06: density of the popularity percentile of the videos each strategy recommends.
    ``pct``: {strategy: (n,) percentiles in (0, 100] of its top-k videos}; ``colors``: {strategy: colour}."""
    fig = Figure(figsize=(7.5, 4), layout="tight")
    ax = fig.subplots()
    bins = [2.5 * i for i in range(41)]                                  # 40 bins over (0, 100]
    for name, color in colors.items():
        ax.hist(pct[name], bins=bins, histtype="step", lw=2, color=color, density=True, label=name)
    ax.set_xlabel("popularity percentile of a recommended video (100 = most watched)")
    ax.set_ylabel("density")
    ax.set_title(f"What the top {k} is made of: in-batch with and without logQ")
    ax.legend()
    return fig


def crossover_figure(retrieval: Any, ranking: Any, cross_check: Any, k: int) -> Figure:
    """Notebook 06: the 2 x 2 crossover as three bar panels, each (global, exposed) negatives: the
    retrieval model's recall@k, the ranking model's grouped AUC, and the retrieval models' grouped AUC
    as rankers (a cross-check). AUC axes start at chance (0.5) or just below the lowest bar."""
    fig = Figure(figsize=(13, 3.8), layout="tight")
    axes = fig.subplots(1, 3)
    kinds, colors = ["global", "exposed"], ["tab:blue", "tab:red"]
    panels = [(axes[0], retrieval, f"recall@{k}", "Retrieval model, retrieval task"),
              (axes[1], ranking, "grouped AUC", "Ranking model, ranking task"),
              (axes[2], cross_check, "grouped AUC", "Cross-check: retrieval model as a ranker")]
    for ax, values, ylab, title in panels:
        vals = [float(v) for v in values]                                 # (global, exposed)
        ax.bar_label(ax.bar(kinds, vals, color=colors), fmt="%.3f", padding=2)
        ax.set_ylabel(ylab)
        ax.set_xlabel("negatives used in training")
        ax.set_title(title, fontsize=10)
        low = min(0.5, min(vals) - 0.01) if "AUC" in ylab else 0.0
        ax.set_ylim(low, low + (max(vals) - low) * 1.15)                 # room above the bars for the labels
    fig.suptitle("The 2 x 2 crossover: which negatives each stage wants")
    return fig


def stream_figure(errors: dict[float, Any], shift_at: int, curves: list[tuple[str, str, Any, Any]],
                  alpha: float) -> Figure:
    """Notebook 06: the streaming frequency estimator on a stream reshuffled at step ``shift_at``.
    Left: ``errors`` {alpha: (n_steps,) median |log(estimate / truth)|}; right, log scale: ``curves``
    (label, colour, (n_steps,) true probability, (n_steps,) estimate at ``alpha``) of a few videos."""
    fig = Figure(figsize=(13, 4), layout="tight")
    ax1, ax2 = fig.subplots(1, 2)
    for a, e in errors.items():
        ax1.plot(e, label=f"alpha = {a}")
    ax1.axvline(shift_at, color="k", ls="--", lw=1, label="popularity reshuffled")
    ax1.set_xlabel("step (batches seen)")
    ax1.set_ylabel("median |log(estimate / truth)|")
    ax1.set_title("Estimator error on a shifting stream")
    ax1.legend()
    for label, color, truth, est in curves:
        ax2.plot(truth, color=color, ls="--", label=f"{label}: truth")
        ax2.plot(est, color=color, label=f"{label}: estimate (alpha={alpha})")
    ax2.axvline(shift_at, color="k", ls="--", lw=1)
    ax2.set_yscale("log")
    ax2.set_xlabel("step (batches seen)")
    ax2.set_ylabel("probability of one draw")
    ax2.set_title("Two videos through the shift")
    ax2.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 07 (ranking)
# ----------------------------------------------------------------------------------------------------


def quantile_normalisation_figure(raw: dict[str, tuple[Any, str]], normalised: dict[str, Any]) -> Figure:
    """Raw (top row) against quantile-normalised (bottom row) histograms of some continuous features.

    ``raw``: ``{name: (values (n,) float, unit)}``; ``normalised``: ``{name: x~ (m,) float in [0, 1]}``,
    same names. One column per feature.
    """
    fig = Figure(figsize=(4 * len(raw), 6))
    axes = fig.subplots(2, len(raw), squeeze=False)
    for j, (name, (x, unit)) in enumerate(raw.items()):
        axes[0, j].hist(x, bins=60, color="tab:blue")
        axes[0, j].set(title=f"raw {name}", xlabel=f"{name} ({unit})", ylabel="impressions")
        axes[1, j].hist(normalised[name], bins=50, color="tab:orange")
        axes[1, j].set(title=f"normalised {name}~ (empirical CDF)", xlabel=f"{name}~ (unitless, [0, 1])",
                       ylabel="impressions")
    fig.tight_layout()
    return fig


def calibration_figure(calib: pd.DataFrame, truth: str = "true") -> Figure:
    """Log-log reliability plot of a watch-time estimate: ``calib`` has one row per bin with columns
    ``predicted``, ``truth`` and ``truth_odds`` (s); ``truth`` names the truth in the y label ("true" or
    "realised")."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.loglog(calib["predicted"], calib["truth"], "o-", label="true E[T]")
    ax.loglog(calib["predicted"], calib["truth_odds"], "s--", label="true E[T] / (1 - P(click))")
    lo = float(calib[["predicted", "truth"]].min().min())
    hi = float(calib[["predicted", "truth_odds"]].max().max())
    ax.loglog([lo, hi], [lo, hi], "k:", lw=1, label="y = x (perfect calibration)")
    ax.set(title="Calibration of exp(logit), deciles of test impressions",
           xlabel="mean predicted watch time exp(logit) (s)",
           ylabel=f"mean {truth} watch time in the decile (s)")
    ax.legend()
    return fig


def hidden_layers_figure(wpul: pd.Series, noise: float | None = None) -> Figure:
    """Bar chart of the weighted per-user loss (values) per hidden-layer configuration (index), the axis
    from 0; with ``noise`` (a loss difference single runs show from training seeds alone), a band from the
    best configuration's loss up to ``noise`` above it: a bar inside the band is level with the best."""
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.bar(wpul.index, wpul.values, color="tab:blue")
    if noise is not None:
        best = float(wpul.min())
        ax.axhspan(best, best + noise, color="tab:orange", alpha=0.3,
                   label=f"within training noise of the best (+{noise:.3f})")
        ax.legend(loc="upper right", fontsize=8)
    ax.set(title="Hidden layers vs weighted per-user loss (lower is better)", xlabel="ReLU layers (widths)",
           ylabel="weighted per-user loss (fraction)", ylim=(0.0, 1.2 * wpul.max()))
    return fig


def drop_one_figure(increase: pd.Series) -> Figure:
    """Horizontal bars of the loss increase (values, largest first) when a feature group (index) is
    dropped; positive increases (the group helped) in red."""
    fig = Figure(figsize=(8, 3.8))
    ax = fig.subplots()
    values = increase.values[::-1]
    ax.barh(increase.index[::-1], values, color=["tab:red" if v > 0 else "tab:gray" for v in values])
    ax.axvline(0, color="k", lw=0.8)
    ax.set(title="Drop-one ablation of the weighted ranker",
           xlabel="increase of weighted per-user loss (fraction)", ylabel="feature group dropped")
    return fig


def nb09_allreduce(sizes_bytes: Sequence[float], median_s: Sequence[float], latency_s: float,
                   s_per_byte: float, nprocs: int) -> Figure:
    """Measured all-reduce times (``median_s`` (n,) seconds at ``sizes_bytes`` (n,) bytes) between
    ``nprocs`` processes, log-log, with the fitted line ``latency_s + bytes * s_per_byte``."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.add_subplot()
    x = np.geomspace(min(sizes_bytes), max(sizes_bytes), 50)  # (50,) bytes
    ax.loglog(sizes_bytes, np.asarray(median_s) * 1e3, "o", label="measured (median)")
    ax.loglog(x, (latency_s + x * s_per_byte) * 1e3, "k:",
              label=f"fit: {latency_s * 1e3:.3f} ms + bytes / {1e-9 / s_per_byte:.2f} GB/s")
    ax.set(title=f"All-reduce (gloo, sum) between {nprocs} processes",
           xlabel="tensor size (bytes, log scale)", ylabel="time (ms, log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig


def nb09_cluster(hours: Mapping[int, Mapping[str, float]]) -> Figure:
    """Projected training hours (left) and communication share of a step (right) against the number
    of machines K, from ``hours`` = :func:`ytrec_lib.studies.scale_out.cluster_hours`'s result."""
    ks = sorted(hours)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.loglog(ks, [hours[k]["hours"] for k in ks], "o-", label="projected")
    left.loglog(ks, [hours[ks[0]]["hours"] * ks[0] / k for k in ks], "k:", label="linear speed-up")
    left.set(title="Projected hours per training run", xlabel="machines K (log scale)",
             ylabel="hours (log scale)")
    left.grid(alpha=0.3, which="both")
    left.legend()
    right.semilogx(ks, [hours[k]["comm_share"] for k in ks], "o-", color="C1")
    right.set(title="Communication share of a step", xlabel="machines K (log scale)",
              ylabel="share of step time", ylim=(0, 1))
    right.grid(alpha=0.3, which="both")
    return fig


# ----------------------------------------------------------------------------------------------------
# world01: notebook 01's mechanisms behind the paper's lessons
# ----------------------------------------------------------------------------------------------------


def world_mechanisms_figure(bars: Mapping[str, Mapping[str, tuple[float, float]]], ylabels: Mapping[str, str],
                            lines: Mapping[str, tuple[float, str] | None], n_seeds: int) -> Figure:
    """One panel per mechanism of ``bars`` ({mechanism: {world: (mean, standard error)}}), a bar per
    world with error bars of two standard errors over ``n_seeds`` seeds; ``ylabels`` names each panel's
    statistic and ``lines`` a reference value of it with its legend label (a dashed line; None: none),
    e.g. its value when the mechanism plays no part."""
    fig = Figure(figsize=(3.2 * len(bars), 3.6), layout="constrained")
    colours = {"plain": "C7", "default": "C0"}
    for ax, (mechanism, worlds) in zip(np.atleast_1d(fig.subplots(1, len(bars))), bars.items(), strict=True):
        names = list(worlds)
        mean = [worlds[w][0] for w in names]
        err = [2 * worlds[w][1] for w in names]
        ax.bar(range(len(names)), mean, yerr=err, capsize=4, color=[colours.get(w, "C1") for w in names])
        if lines.get(mechanism) is not None:
            value, label = lines[mechanism]
            ax.axhline(value, color="k", ls="--", lw=0.8, label=label)
            ax.legend(fontsize=7, loc="upper left")
        ax.set_ylim(top=1.2 * ax.get_ylim()[1])  # headroom for the legend
        ax.set_xticks(range(len(names)), [w.replace(" off", "\noff") for w in names], fontsize=8)
        ax.set(title=mechanism, xlabel="world", ylabel=ylabels[mechanism])
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"Strength of each mechanism (mean of {n_seeds} seeds, bars: 2 standard errors)")
    return fig


# ----------------------------------------------------------------------------------------------------
# branch softmax: full against sampled softmax at equal training time (notebook 03 §3)
# ----------------------------------------------------------------------------------------------------


def softmax_time_curves(curves: Mapping[str, Sequence[Sequence[Sequence[float]]]],
                        means: Mapping[str, tuple[Sequence[float], Sequence[float]]], budget_s: float,
                        clock: str = "cpu") -> Figure:
    """Validation recall@100 against cumulative training seconds for each loss: ``curves`` = {loss: one
    ``[[t, recall], ...]`` per seed} (thin lines, one point per epoch), ``means`` = {loss: (grid (G,),
    mean best-so-far recall (G,))} (thick steps), and the equal-time budget (dashed line)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    for i, (loss, runs) in enumerate(curves.items()):
        color = f"C{i}"
        for j, c in enumerate(runs):
            t, r = np.asarray(c, dtype=float).T                                   # (E + 1,), (E + 1,)
            ax.plot(t, r, marker="o", ms=3, lw=0.8, alpha=0.45, color=color,
                    label=f"{loss} softmax, each seed (per epoch)" if j == 0 else None)
        grid, mean = means[loss]
        ax.plot(grid, mean, lw=2.2, color=color, drawstyle="steps-post",
                label=f"{loss} softmax, best so far (mean over seeds)")
    ax.axvline(budget_s, color="k", ls="--", lw=1, label=f"equal-time budget ({budget_s:.1f} s)")
    ax.set(title=f"Validation recall@100 against training {clock.upper() if clock == 'cpu' else clock} time",
           xlabel=f"cumulative training {'CPU ' if clock == 'cpu' else 'wall-clock '}seconds "
                  "(validation passes excluded)", ylabel="validation recall@100")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 03b (the paper's lessons) — branch lessons
# ----------------------------------------------------------------------------------------------------


def lessons_map_by_depth(depths: Sequence[int], mean: Sequence[float], se: Sequence[float],
                         off: Mapping[int, tuple[float, float]] | None = None,
                         off_label: str = "mechanism off") -> Figure:
    """Test MAP@100 against tower depth with ± 1 standard-error bars over seeds (the paper's Figure 6):
    ``mean``/``se`` (one per depth of ``depths``; an SE that is NaN draws no bar) in the world with every
    mechanism on, and ``off`` ({depth: (mean, se)}) in the world with one switched off (``off_label``)."""
    fig = Figure(figsize=(7, 3.8), layout="tight")
    ax = fig.add_subplot()
    bars = np.nan_to_num(np.asarray(se, dtype=float))  # (n_depths,)
    ax.errorbar(list(depths), list(mean), yerr=bars, marker="o", capsize=4, label="every mechanism on")
    if off:
        ds = sorted(off)
        ax.errorbar(ds, [off[d][0] for d in ds], yerr=[off[d][1] for d in ds], marker="s", capsize=4,
                    linestyle="--", label=off_label)
    ax.set(title="Test MAP@100 by tower depth, all features (cf. paper Fig. 6)",
           xlabel="depth (ReLU layers)", ylabel="MAP@100 (mean ± SE over seeds)", xticks=list(depths))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------------------------------
# recall@100 of models in two worlds, mean and 2 SE over seeds (notebook 03 §2c, notebook 03c §3)
# ----------------------------------------------------------------------------------------------------


def recall_by_world(series: Mapping[str, Mapping[str, tuple[float, float]]], groups: Mapping[str, str],
                    n_seeds: int, title: str) -> Figure:
    """Grouped bars of test recall@100 with error bars of two standard errors: one group on the x axis
    per key of ``groups`` (key -> its label, in that order; a key missing from a series is left out),
    one bar per entry of ``series`` ({legend entry: {key: (mean, standard error over ``n_seeds``
    seeds)}}) in each group; ``title`` on top. 03 §2c groups models and has a bar per world; 03c §3
    groups worlds and has a bar per kind of label, so the bars compared stand side by side."""
    keys = [k for k in groups if all(k in values for values in series.values())]
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        x = np.arange(len(keys)) + (i - (len(series) - 1) / 2) * width  # (n_groups,)
        ax.bar(x, [values[k][0] for k in keys], width, yerr=[2 * values[k][1] for k in keys], capsize=3,
               label=name)
    ax.set_xticks(range(len(keys)), [textwrap.fill(groups[k], 16) for k in keys], fontsize=8)  # no overlap
    ax.set(ylabel="test recall@100", title=f"{title}\n(mean of {n_seeds} seeds, bars: 2 standard errors)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig
