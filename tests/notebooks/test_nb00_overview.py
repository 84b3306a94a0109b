"""Notebook 00 runs at the ci preset and records its funnel and map."""


def test_overview_records_funnel_and_map(notebook_results):
    r = notebook_results("00_overview")
    funnel = r["funnel"]
    assert funnel["catalogue"] > funnel["candidates"] > funnel["shown"] > 0
    assert r["ranker_work_reduction"] == funnel["catalogue"] / funnel["candidates"]
    assert r["n_chapters"] == 12
    assert 1 <= r["n_chapters_built"] <= r["n_chapters"]
    assert r["n_glossary_terms"] >= 20
