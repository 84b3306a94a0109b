"""The notebook runner, executed for real (papermill + a kernel) on tiny notebooks made here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

from ytrec_lib import report
from ytrec_lib.course import cli, html_report, runner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import fake_notebooks  # noqa: E402


def make_notebook(folder: Path, stem: str, body: str, params: str = 'PRESET = "small"\nSEED = 0') -> Path:
    return fake_notebooks.make_notebook(folder, stem, body, params)


def notebook_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``tmp_path/notebooks`` the runner reads instead of notebooks/, with the four presets."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", folder)
    monkeypatch.setattr(runner, "known_presets", lambda: ["tiny", "ci", "small", "large"])
    return folder


@pytest.fixture
def books(tmp_path, monkeypatch):
    return notebook_folder(tmp_path, monkeypatch)


def test_success_publishes_notebook_results_and_html(books, tmp_path, capsys):
    make_notebook(books, "00_first", 'report.record("preset_seen", PRESET)\nreport.record("seed", SEED)\n'
                  'import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()')
    build = tmp_path / "build"
    status = runner.run_notebooks("ci", params=["SEED=7"], build=build)
    assert status == 0
    assert report.load("00_first", build / "results") == {"preset_seen": "ci", "seed": 7}
    executed = nbformat.read(build / "notebooks" / "00_first.ipynb", as_version=4)
    assert executed.cells[-1].execution_count is not None
    assert any("image/png" in out.get("data", {}) for out in executed.cells[-1].outputs), "figure not kept"
    index = (build / "index.html").read_text()
    assert "html/00_first.html" in index and "preset_seen" in index
    assert (build / "html" / "00_first.html").exists()
    out = capsys.readouterr().out
    assert "[1/1] 00_first done in" in out and "index.html" in out


def test_failure_names_notebook_and_cell_and_leaves_build_untouched(books, tmp_path, capsys):
    make_notebook(books, "00_ok", 'report.record("x", 1)')
    make_notebook(books, "01_bad", 'report.record("half", 1)\nraise ValueError("boom here")')
    make_notebook(books, "02_never", 'report.record("y", 2)')
    build = tmp_path / "build"
    assert runner.run_notebooks("ci", build=build) == 1
    err = capsys.readouterr().err
    assert "01_bad failed" in err
    assert "cell In [4] ('report.record(\"half\", 1)'): ValueError: boom here" in err
    assert report.load_all(build / "results") == {"00_ok": {"x": 1}}  # nothing of 01 or 02
    assert not (build / "notebooks" / "01_bad.ipynb").exists()


def test_timeout_stops_the_notebook(books, tmp_path, capsys, monkeypatch):
    make_notebook(books, "00_slow", "import time\ntime.sleep(60)")
    monkeypatch.setattr(runner, "TIMEOUT_S", {"00_slow": 8})
    assert runner.run_notebooks("ci", build=tmp_path / "build", html=False) == 1
    assert "timed out after 8 s" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "huge"}, "unknown preset 'huge'; choose from: tiny, ci, small, large"),
        ({"params": ["EPOCHS=3"]}, "00_first has no parameter EPOCHS"),
        ({"params": ["not a param"]}, "write it as NAME=VALUE"),
        ({"only": ["07"]}, "--only 07: no such notebook; choose from: 00_first"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(books, tmp_path, capsys, kwargs, message):
    make_notebook(books, "00_first", 'report.record("x", 1)')
    build = tmp_path / "build"
    assert runner.run_notebooks(**{"preset": "ci", **kwargs}, build=build) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not build.exists()


def test_parameters_cell_is_required(books):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("X = 1")]
    nbformat.write(nb, books / "00_untagged.ipynb")
    with pytest.raises(runner.RunError, match="exactly one code cell tagged 'parameters'"):
        runner.notebook_parameters(books / "00_untagged.ipynb")


def test_parse_param_values():
    assert runner.parse_param("EPOCHS=3") == ("EPOCHS", 3)
    assert runner.parse_param("LR=1e-3") == ("LR", 0.001)
    assert runner.parse_param("PRESET=ci") == ("PRESET", "ci")
    assert runner.parse_param("DIMS=[8, 16]") == ("DIMS", [8, 16])


def test_select_by_number_or_stem(books):
    for stem in ("00_a", "01_b", "02_c"):
        make_notebook(books, stem, "pass")
    assert [p.stem for p in runner.select_notebooks(["02", "00_a"])] == ["00_a", "02_c"]


def test_results_command_prints_one_json_object(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("YTREC_RESULTS_DIR", str(tmp_path))
    report.record("k", 0.5, notebook="03_x")
    report.record("by_alpha", {0.75: 0.3}, notebook="02_y")
    assert cli.main(["results", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"02_y": {"by_alpha": {"0.75": 0.3}}, "03_x": {"k": 0.5}}


def test_index_html_escapes_and_formats():
    page = html_report.index_html({"01_x": {"a<b": 0.123456, "m": {"x": 1}}}, ["01_x"])
    assert "a&lt;b" in page and "0.1235" in page and "html/01_x.html" in page


def test_readme_results_section_is_generated_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{html_report.README_START}\nold\n{html_report.README_END}\n\nafter\n")
    results = {"01_a": {"n|users": 3, "share": 0.123456}}
    section = html_report.results_markdown(results, "ci", ["00_z", "01_a"])
    assert html_report.update_readme(readme, section)
    text = readme.read_text()
    assert "old" not in text and text.endswith("after\n")
    assert "**00_z** — no results recorded yet" in text
    assert "| `n\\|users` | 3 |" in text and "| `share` | 0.1235 |" in text
    assert not html_report.update_readme(readme, section)  # idempotent


def test_readme_without_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    with pytest.raises(ValueError, match="has no results markers"):
        html_report.update_readme(readme, "s")


def test_progress_shows_section_headings_and_no_transport_warning(tmp_path, monkeypatch, capfd):
    folder = tmp_path / "other-notebooks"
    folder.mkdir()
    path = make_notebook(folder, "00_sections", 'report.record("x", 1)')
    nb = nbformat.read(path, as_version=4)
    nb.cells[2:2] = [nbformat.v4.new_markdown_cell("## 1. Loading the world\n\nText.")]
    nb.cells += [nbformat.v4.new_markdown_cell("### a sub-heading"), nbformat.v4.new_code_cell("y = 2"),
                 nbformat.v4.new_markdown_cell("## Summary"), nbformat.v4.new_code_cell('print("done")')]
    nbformat.write(nb, path)
    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(folder))
    monkeypatch.setattr(runner, "known_presets", lambda: ["tiny", "ci", "small", "large"])
    assert runner.run_notebooks("ci", build=tmp_path / "build", html=False) == 0
    captured = capfd.readouterr()
    lines = captured.out.splitlines()
    sections = [ln.split(None, 1) for ln in lines if ln.startswith("    ")]
    assert [text for _, text in sections] == ["1. Loading the world", "Summary"]
    assert all(len(elapsed.split(":")) == 2 for elapsed, _ in sections)  # m:ss since the start
    assert "without encryption" not in captured.out + captured.err
    assert "cell/s" not in captured.out + captured.err  # no papermill cell counter
    info = json.loads((tmp_path / "build" / "results" / "run-info" / "00_sections.json").read_text())
    assert info["commit"] == runner.git_commit() and info["commit"]


def test_elapsed_time_and_commit_outside_git(tmp_path):
    assert [runner.format_elapsed(s) for s in (0, 75.4, 3725)] == ["0:00", "1:15", "1:02:05"]
    assert runner.git_commit(tmp_path) == "unknown"
    heading = runner.section_heading({"cell_type": "markdown", "source": "intro\n## 2. Two ##\n## 3"})
    assert heading == "2. Two"
    assert runner.section_heading({"cell_type": "markdown", "source": "### deeper"}) is None
    assert runner.section_heading({"cell_type": "code", "source": "## not markdown"}) is None


# ----------------------------------------------------------------------------------------------------
# Widget cells: the executing client looks for the kernel's reply again every second
# ----------------------------------------------------------------------------------------------------

WIDGET_CELL = '''out = widgets.Output()
pick = widgets.Dropdown(options=list(range(50)), value=0)

def show(change=None):
    with out:
        out.clear_output()
        print(f"video {pick.value}")
        display(pd.DataFrame({"a": range(10)}))

pick.observe(show, names="value")
show()
display(widgets.VBox([pick, out]))'''


def test_a_notebook_of_widget_cells_runs_to_the_end(tmp_path):
    """60 cells like notebook 02's explorer through the child the runner starts. Without
    :func:`runner.patch_shell_polling` a 150-cell notebook hung in 3 of 7 runs on the 2-core machine
    (jupyter/nbclient#312), with it none of 10; this one takes ~5 s, or hits the 120 s limit."""
    import subprocess

    cells = [nbformat.v4.new_code_cell("import ipywidgets as widgets\nimport pandas as pd\n"
                                       "from IPython.display import display")]
    cells += [nbformat.v4.new_code_cell(WIDGET_CELL) for _ in range(60)]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, out = tmp_path / "w.ipynb", tmp_path / "stage" / "w.ipynb"
    out.parent.mkdir()
    nbformat.write(nb, src)
    done = subprocess.run([sys.executable, "-m", "ytrec_lib.course.runner", str(src), str(out), "{}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    executed = nbformat.read(out, as_version=4)
    assert all(c.execution_count is not None for c in executed.cells)


def test_sliced_polling_keeps_the_timeout_and_returns_a_late_message():
    """The patched ``get_msg`` on a real zmq pair: a message sent 1.5 s late (past the first 1 s
    slice) arrives; with none sent, ``Empty`` comes after the caller's timeout, not before."""
    import asyncio
    import time
    from queue import Empty

    import zmq
    import zmq.asyncio
    from jupyter_client.channels import AsyncZMQSocketChannel
    from jupyter_client.session import Session

    runner.patch_shell_polling()
    runner.patch_shell_polling()  # idempotent
    assert AsyncZMQSocketChannel.get_msg.ytrec_sliced

    async def scenario():
        ctx = zmq.asyncio.Context()
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        session = Session()
        channel = AsyncZMQSocketChannel(b, session)
        t0 = time.monotonic()
        with pytest.raises(Empty):
            await channel.get_msg(timeout=1.6)
        waited = time.monotonic() - t0

        async def send_late():
            await asyncio.sleep(1.5)
            session.send(a, "execute_reply", {"status": "ok"})

        task = asyncio.ensure_future(send_late())
        msg = await channel.get_msg(timeout=10)
        await task
        a.close(0)
        b.close(0)
        ctx.term()
        return waited, msg

    waited, msg = asyncio.run(scenario())
    assert 1.5 <= waited < 3.0
    assert msg["header"]["msg_type"] == "execute_reply" and msg["content"] == {"status": "ok"}
