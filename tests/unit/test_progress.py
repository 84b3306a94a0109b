"""Progress bars: text bars under the runner's variable, widget bars otherwise, and executed notebooks
that keep only each text bar's final frame."""

from __future__ import annotations

import nbformat
import tqdm.auto
import tqdm.std

from ytrec_lib import progress
from ytrec_lib.course import runner


def test_bar_class_is_text_under_the_runner_variable_and_auto_otherwise(monkeypatch):
    monkeypatch.setenv(progress.TEXT_ENV, "1")
    assert progress.bar_class() is tqdm.std.tqdm
    for off in ("", "0"):
        monkeypatch.setenv(progress.TEXT_ENV, off)
        assert progress.bar_class() is tqdm.auto.tqdm
    monkeypatch.delenv(progress.TEXT_ENV)
    assert progress.bar_class() is tqdm.auto.tqdm


def test_the_runner_kernel_environment_asks_for_text_bars(monkeypatch, tmp_path):
    seen = {}

    def fake_papermill(src, out, params, env, limit):
        seen.update(env)
        return "stopped here"

    monkeypatch.setattr(runner, "_papermill", fake_papermill)
    monkeypatch.setattr(runner.tempfile, "tempdir", str(tmp_path))
    outcome = runner.run_one(tmp_path / "00_demo.ipynb", {}, "ci", tmp_path / "build")
    assert not outcome.ok
    assert seen[progress.TEXT_ENV] == "1"


def _text_bar_output(total: int) -> str:
    """What a tqdm.std text bar writes over ``total`` steps, every frame included."""
    import io

    sink = io.StringIO()
    for _ in tqdm.std.tqdm(range(total), desc="lesson baselines", file=sink, mininterval=0, miniters=1,
                           ascii=True):
        pass
    return sink.getvalue()


def test_final_frames_keeps_the_last_frame_of_a_real_text_bar():
    text = _text_bar_output(3)
    assert text.count("\r") >= 4  # every frame is there before
    shown = progress.final_frames(text)
    assert "\r" not in shown
    assert shown.count("\n") == 1 and shown.startswith("lesson baselines: 100%|")
    assert "| 3/3 [" in shown and "0/3" not in shown
    assert progress.is_progress_line(shown.rstrip("\n"))
    assert progress.final_frames("plain\ntext\n") == "plain\ntext\n"
    assert progress.final_frames("a\rb\r\nc\n") == "b\r\nc\n"


def test_settle_progress_bars_keeps_each_bars_final_frame_and_the_order(tmp_path):
    frames = ["\r" + f for f in _text_bar_output(3).split("\r") if f]  # one stream output a redraw
    stderr = [nbformat.v4.new_output("stream", name="stderr", text=f) for f in frames]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("run()", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="seed 0 done\n"), *stderr,
                    nbformat.v4.new_output("display_data", data={"text/plain": "table"}),
                    nbformat.v4.new_output("stream", name="stdout", text="mean 0.42\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("a\rb"), cell]
    path = tmp_path / "03_demo.ipynb"
    nbformat.write(nb, path)
    assert len(frames) >= 4
    assert runner.settle_progress_bars(path) > 0
    settled = nbformat.read(path, as_version=4)
    outs = settled.cells[1].outputs
    assert [o.get("name", o.output_type) for o in outs] == ["stdout", "stderr", "display_data", "stdout"]
    assert outs[1].text.startswith("lesson baselines: 100%|") and "| 3/3 [" in outs[1].text
    assert "\r" not in outs[1].text and "0/3" not in outs[1].text and outs[1].text.count("\n") == 1
    assert outs[0].text == "seed 0 done\n" and outs[3].text == "mean 0.42\n"
    assert settled.cells[0].source == "a\rb"
    assert runner.settle_progress_bars(path) == 0  # nothing left to settle


def test_settle_progress_bars_drops_a_bars_closing_newline_flushed_after_a_print(tmp_path):
    """As stored by a kernel: the bar, the cell's print, then the bar's own newline on stderr."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("run()", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="fit: 100%|##| 3/3 [00:42<00:00]"),
                    nbformat.v4.new_output("stream", name="stdout", text="chosen: 0.01\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="\n")]
    nb.cells = [cell]
    path = tmp_path / "03_demo.ipynb"
    nbformat.write(nb, path)
    assert runner.settle_progress_bars(path) == 2  # the blank stderr dropped, then the stdouts joined
    outs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [(o.name, o.text) for o in outs] == [("stderr", "fit: 100%|##| 3/3 [00:42<00:00]"),
                                                ("stdout", "chosen: 0.01\n\n")]


def test_is_progress_line_tells_bars_from_text():
    assert progress.is_progress_line("fit: 100%|##########| 3/3 [00:42<00:00, 14.00s/it]")
    assert progress.is_progress_line("epochs: 5it [00:01, 3.21it/s]")
    assert progress.is_progress_line("fit:   0%|          | 0/3 [00:00<?, ?it/s]")
    assert not progress.is_progress_line("/x/y.py:3: UserWarning: see [1]")
    assert not progress.is_progress_line("recall@10 [0.41, 0.45]")
