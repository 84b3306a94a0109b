"""Figure text renders: Chinese only in a font that has the glyphs, English otherwise."""

from __future__ import annotations

import warnings

from matplotlib import font_manager
from matplotlib.figure import Figure

from ytrec_lib import plots


def draw_title(english: str, chinese: str) -> tuple[str, list[str]]:
    fig = Figure()
    ax = fig.add_subplot()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        title = plots.cjk_title(ax, english, chinese)
        fig.canvas.draw()
    assert ax.get_title() == title
    return title, [str(w.message) for w in caught]


def test_without_a_cjk_font_the_title_is_english_and_draws_cleanly(monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    title, caught = draw_title("candidate generation, then ranking", "candidate generation (召回), ranking")
    assert title == "candidate generation, then ranking"
    assert caught == []


def test_with_a_cjk_font_the_title_keeps_its_chinese(monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: "DejaVu Sans")
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.cjk_title(ax, "ranking", "ranking (排序)") == "ranking (排序)"
    assert ax.title.get_fontfamily() == ["DejaVu Sans"]


def test_a_font_named_cjk_without_the_glyphs_is_not_taken(monkeypatch):
    dejavu = font_manager.findfont("DejaVu Sans")
    fake = font_manager.FontEntry(fname=dejavu, name="Noto Sans CJK SC")
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [fake])
    plots.cjk_font.cache_clear()
    try:
        assert plots.cjk_font() is None
    finally:
        plots.cjk_font.cache_clear()


def test_the_font_found_has_every_sample_glyph():
    from matplotlib.ft2font import FT2Font

    name = plots.cjk_font()
    if name is not None:  # none installed is a valid answer (the machine decides)
        font = FT2Font(font_manager.findfont(name, fallback_to_default=False))
        assert all(font.get_char_index(ord(ch)) for ch in plots.CJK_SAMPLE)
