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
    """Two panels from ``candidate.step_time_table`` rows (n_classes, full_ms, sampled_ms, speedup):
    the time of one training step against the catalogue size, and the sampled softmax's speed-up."""
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


def candidate_label_recall(label_recall: dict[str, float]) -> Figure:
    """Recall@100 on the next watch of models trained on different labels (``{label: recall}``), as bars."""
    return _candidate_bars(label_recall, "Trained on which label? Both evaluated on the next watch",
                           "recall@100", (7, 2.4))


def candidate_age_transforms(map_by_transform: dict[str, float]) -> Figure:
    """Holdout MAP@100 of models fed different transforms of age (``{transforms: MAP}``), as bars."""
    return _candidate_bars(map_by_transform, "Holdout MAP@100 by the age transforms fed", "MAP@100", (7, 2.6))


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


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 05 (ANN serving)
# ----------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 06 (negative sampling)
# ----------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------
# Figures of notebook 07 (ranking)
# ----------------------------------------------------------------------------------------------------
