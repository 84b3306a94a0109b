"""Interactive explorers (the only module besides ``plots`` that imports ipywidgets).

:class:`SystemExplorer` puts the two-stage system (:mod:`ytrec_lib.serving.system`) under the reader's hands:
choose a user (their demographics and recent history with topics are shown), see the stage-1
candidates and the final ranked list with both scores and topics, change ``k``, the number of
candidates and the index's search parameter (``efSearch`` / ``nprobe``), and watch the quality
(true watch-time NDCG@k over a sample of users, and for the chosen user) and the latency change.

Everything runs headless: the widgets are plain ipywidgets objects, every callback is an ordinary
method, and :attr:`SystemExplorer.state` holds what the last refresh computed, so tests set widget
values and assert on the state and the rendered HTML.

In JupyterLab the kernel handles widget messages on a subshell thread, not the thread that built the
explorer: a refresh holds a lock (one at a time), runs with the torch thread count the explorer was
built with, and an error inside it is shown as a short line in the explorer instead of vanishing.
Videos are shown by title (:mod:`ytrec_lib.data.titles`), durations as m:ss, ages in whole years and
regions by name.
"""

from __future__ import annotations

import html
import threading
import traceback
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import torch

from ytrec_lib.data import titles as T
from ytrec_lib.serving import system as S

ERROR_STYLE = "color:#b00020;font-weight:bold"


class SystemExplorer:
    """An explorer of a :class:`ytrec_lib.serving.system.TwoStageRecommender`.

    Args:
        system: the recommender; dataset: its Dataset (users, videos, truth for quality).
        users: the user ids offered in the chooser (e.g. the test users), (n,) int.
        eval_users: users over which quality and latency are measured on each settings change
            (default: the first 50 of ``users``); ``None`` entries / an empty list turn it off.
        k, n_candidates: starting values; n_history: watched videos shown for the user.
    """

    def __init__(self, system: S.TwoStageRecommender, dataset: Any, users: Sequence[int] | np.ndarray, *,
                 eval_users: Sequence[int] | np.ndarray | None = None, k: int = 10, n_candidates: int = 300,
                 n_history: int = 10) -> None:
        users = np.asarray(users, dtype=np.int64).ravel()
        if len(users) == 0:
            raise ValueError("SystemExplorer: give at least one user to choose from")
        for u in users[:1]:
            system.check_user(int(u))
        self.system, self.ds, self.n_history = system, dataset, int(n_history)
        self.eval_users = users[:50] if eval_users is None else np.asarray(eval_users, np.int64).ravel()
        self._has_truth = getattr(dataset, "truth", None) is not None
        self._ideal: dict[int, np.ndarray] = {}
        self._videos = dataset.videos.set_index("video_id")
        self._meta = dict(getattr(dataset, "meta", {}) or {})
        self._titles = T.video_titles(dataset.videos, self._meta)
        self._lock = threading.RLock()  # callbacks may run on a subshell thread while a cell runs
        self._torch_threads = torch.get_num_threads()
        self.last_error: str | None = None
        n_cat = len(system.index_ids)
        self.user = W.Dropdown(options=[int(u) for u in users], value=int(users[0]), description="user")
        self.k = W.IntSlider(value=int(k), min=1, max=50, description="k")
        self.n_candidates = W.IntSlider(value=int(n_candidates), min=10, max=min(2000, n_cat),
                                        step=10, description="candidates")
        param = system.search_param
        start = int(system.index.params.get(param, 1)) if param else 1
        self.search = W.IntSlider(value=start, min=1, max=max(512, start), description=param or "(none)",
                                  disabled=param is None)
        self.user_html, self.history_html = W.HTML(), W.HTML()
        self.candidates_html, self.ranked_html, self.stats_html = W.HTML(), W.HTML(), W.HTML()
        self.error_html = W.HTML()
        self.state: dict[str, Any] = {}
        self.n_refreshes = 0
        for w in (self.user, self.k, self.n_candidates, self.search):
            w.observe(self._on_change, names="value")
        self.widget = W.VBox([
            W.HBox([self.user, self.k, self.n_candidates, self.search]),
            self.error_html,
            W.HBox([self.user_html, self.history_html]),
            self.stats_html,
            W.HBox([self.candidates_html, self.ranked_html]),
        ])
        self.refresh()

    # ------------------------------------------------------------------ callbacks

    def _on_change(self, change: dict[str, Any]) -> None:
        """Any control changed: recompute everything; an error becomes a line in the explorer."""
        try:
            self.refresh()
        except Exception as err:  # a callback's exception would otherwise vanish in the kernel
            self._show_error(err)

    def _show_error(self, err: BaseException) -> None:
        """Keep the traceback in :attr:`last_error` and show one short line above the tables."""
        self.last_error = "".join(traceback.format_exception(err))
        message = f"{type(err).__name__}: {err}"
        if len(message) > 300:
            message = message[:297] + "..."
        text = f"The explorer could not update (user {self.user.value}, k = {self.k.value}): {message}"
        self.error_html.value = f'<div style="{ERROR_STYLE}">{html.escape(text)}</div>'

    def refresh(self) -> None:
        """Recompute the user's lists, the per-user and sample quality and the latency; redraw."""
        with self._lock:
            if torch.get_num_threads() != self._torch_threads:  # a new thread starts with the default
                torch.set_num_threads(self._torch_threads)
            self._refresh()
            self.last_error = None
            self.error_html.value = ""

    def _refresh(self) -> None:
        sys_, uid = self.system, int(self.user.value)
        k, n_cand = int(self.k.value), max(int(self.n_candidates.value), int(self.k.value))
        if sys_.search_param is not None:
            sys_.set_search_param(int(self.search.value))
        rec = sys_.recommend(uid, k, n_cand)
        state: dict[str, Any] = {"user": uid, "k": k, "n_candidates": n_cand,
                                 "search": int(self.search.value), "recommendation": rec,
                                 "latency_ms": rec.total_ms}
        if self._has_truth:
            ideal = self._ideal_for(np.array([uid]), k)
            state["user_ndcg"] = S.ndcg_true(self.ds, np.array([uid]), _pad(rec.video_ids, k)[None], ideal,
                                             sys_.serve_time, k)
        if len(self.eval_users):
            res = sys_.recommend_many(self.eval_users, k, n_cand, progress=False)
            state["latency_p50_ms"] = float(np.percentile(res.total_ms(), 50))
            state["latency_p99_ms"] = float(np.percentile(res.total_ms(), 99))
            if self._has_truth:
                ideal = self._ideal_for(self.eval_users, k)
                state["ndcg_two_stage"] = S.ndcg_true(self.ds, self.eval_users, res.shown, ideal,
                                                      sys_.serve_time, k)
                state["ndcg_candidates_only"] = S.ndcg_true(self.ds, self.eval_users, res.candidates_only,
                                                            ideal, sys_.serve_time, k)
        self.state = state
        self.n_refreshes += 1
        self._draw()

    def _ideal_for(self, users: np.ndarray, k: int) -> np.ndarray:
        """The oracle's top-k lists of ``users`` (computed once per user at the largest k asked)."""
        need = [int(u) for u in users if int(u) not in self._ideal or len(self._ideal[int(u)]) < k]
        if need:
            kk = max(k, 50)
            exclude = [self.system.watched(u) for u in need]
            lists = S.ideal_lists(self.ds, np.array(need), self.system.index_ids, self.system.serve_time, kk,
                                  exclude)
            self._ideal.update({u: row for u, row in zip(need, lists, strict=True)})
        return np.stack([self._ideal[int(u)][:k] for u in users])

    # ------------------------------------------------------------------ drawing

    def _video_table(self, ids: np.ndarray, extra: dict[str, np.ndarray]) -> pd.DataFrame:
        """Title, topic, creator and m:ss duration of ``ids`` (in order) plus the ``extra`` scores."""
        ids = np.asarray(ids, np.int64)
        rows = self._videos.loc[ids]
        info = pd.DataFrame({
            "video_id": ids, "title": self._titles.loc[ids].to_numpy(),
            "topic": [T.topic_name(t, self._meta) for t in rows["topic"].to_numpy()],
            "creator": [f"Creator {int(c)}" for c in rows["creator_id"].to_numpy()],
            "duration": [T.format_duration(d) for d in rows["duration"].to_numpy()],
        })
        for name, values in extra.items():
            info[name] = [f"{v:.3f}" for v in np.asarray(values, np.float64)]
        return info

    def _draw(self) -> None:
        st, rec = self.state, self.state["recommendation"]
        urow = self.ds.users.set_index("user_id").loc[st["user"]]
        self.user_html.value = (f"<b>user {st['user']}</b><br>" + "<br>".join(
            f"{c}: {html.escape(v)}" for c, v in T.describe_user(urow, self._meta).items()))
        seen = self.system.watched(st["user"])
        recent = seen[-self.n_history:][::-1]
        hist = self._video_table(recent, {}) if len(recent) else pd.DataFrame({"video_id": []})
        self.history_html.value = (f"<b>{len(seen)} watched before serving; most recent:</b>"
                                   + (hist.to_html(index=False) if len(recent) else "<br>(no history: "
                                      "demographics only)"))
        cand = rec.candidate_ids[: st["k"]]
        self.candidates_html.value = ("<b>stage 1: first candidates by inner product</b>" + self._video_table(
            cand, {"stage1": rec.candidate_scores[: st["k"]]}).to_html(index=False))
        self.ranked_html.value = ("<b>stage 2: shown, by the ranker</b>" + self._video_table(
            rec.video_ids, {"stage1": rec.stage1_scores, "stage2": rec.stage2_scores}).to_html(index=False))
        lines = [f"candidates: {len(rec.candidate_ids)} of {len(self.system.index_ids)} videos; "
                 f"this request {rec.total_ms:.1f} ms ("
                 + ", ".join(f"{s} {v:.1f}" for s, v in rec.timings_ms.items()) + ")"]
        if "user_ndcg" in st:
            lines.append(f"this user's true watch-time NDCG@{st['k']}: {st['user_ndcg']:.3f}")
        if "latency_p50_ms" in st:
            lines.append(f"over {len(self.eval_users)} users: latency p50 {st['latency_p50_ms']:.1f} ms, "
                         f"p99 {st['latency_p99_ms']:.1f} ms")
        if "ndcg_two_stage" in st:
            lines.append(f"NDCG@{st['k']} two-stage {st['ndcg_two_stage']:.3f} vs candidates only "
                         f"{st['ndcg_candidates_only']:.3f}")
        self.stats_html.value = "<br>".join(lines)

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a front end
        from IPython.display import display

        display(self.widget)


def _pad(ids: np.ndarray, k: int) -> np.ndarray:
    out = np.full(k, -1, dtype=np.int64)
    out[: len(ids)] = ids[:k]
    return out


__all__ = ["SystemExplorer"]
