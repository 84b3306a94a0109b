"""Progress bars: tqdm's widget bar in a live notebook, its text bar when the runner executes one.

Every module imports ``from ytrec_lib.progress import tqdm`` instead of ``tqdm.auto``. Under papermill
``tqdm.auto`` would pick the ipywidgets bar, whose state papermill does not store: an executed
notebook would show each bar at its first frame (``0/3 [00:00<?, ?it/s]``). The runner sets
``$YTREC_TEXT_PROGRESS=1`` in the kernel's environment, and then the bars are ``tqdm.std`` text bars
written to stderr; :func:`final_frames` keeps only the last frame of each bar line, so the stored
output reads ``3/3 [00:42<00:00, 14.0s/it]``, as a terminal would show it.
"""

from __future__ import annotations

import os
import re

from tqdm import std
from tqdm.auto import tqdm as auto_tqdm

TEXT_ENV = "YTREC_TEXT_PROGRESS"
"""When set to anything but ``""`` or ``"0"``, bars are text bars (``tqdm.std.tqdm``)."""
OVERWRITTEN_RE = re.compile(r"[^\n]*\r(?=[^\n])")
"""Text a carriage return sends back over: everything on a line before its last ``\\r`` that is
followed by more text (a ``\\r`` right before ``\\n`` overwrites nothing)."""
PROGRESS_LINE_RE = re.compile(r"\[\d+:\d{2}(?::\d{2})?(?:<[^\]]*)?(?:, [^\]]*)?\]\s*$")
"""The end of a tqdm status line: ``[00:42<00:00, 14.0s/it]`` or ``[00:03, 5.1it/s]``."""


def text_bars() -> bool:
    """Whether ``$YTREC_TEXT_PROGRESS`` asks for text bars."""
    return os.environ.get(TEXT_ENV, "").strip() not in ("", "0")


def bar_class() -> type[std.tqdm]:
    """``tqdm.std.tqdm`` when :func:`text_bars`, else ``tqdm.auto.tqdm`` (widget bars in Jupyter)."""
    return std.tqdm if text_bars() else auto_tqdm


def final_frames(text: str) -> str:
    """``text`` as a terminal shows it: each line keeps what follows its last carriage return.

    ``"a: 0/3\\ra: 1/3\\ra: 3/3\\n"`` -> ``"a: 3/3\\n"``; text without ``\\r`` is returned unchanged.
    """
    return OVERWRITTEN_RE.sub("", text)


def is_progress_line(line: str) -> bool:
    """Whether ``line`` (one line, no newline) is a tqdm status line: ``fit: 100%|##| 3/3 [00:42<00:00]``."""
    return bool(PROGRESS_LINE_RE.search(line))


tqdm = bar_class()
"""The bar class for this process (fixed at import: the kernel's environment does not change)."""
