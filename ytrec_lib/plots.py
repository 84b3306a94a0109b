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
from functools import lru_cache
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["ann_bench_figures", "cjk_font", "cjk_title"]

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


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 02 (item2vec)
# ----------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 03 (candidate generation)
# ----------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 04 (video embeddings)
# ----------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 05 (ANN serving)
# ----------------------------------------------------------------------------------------------------


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
