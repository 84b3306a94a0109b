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
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
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


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 04 (video embeddings)
# ----------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 05 (ANN serving)
# ----------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 06 (negative sampling)
# ----------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 07 (ranking)
# ----------------------------------------------------------------------------------------------------
