"""``run-notebooks --jobs N``: notebooks side by side, with real kernels on tiny notebooks made here."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ytrec_lib import report
from ytrec_lib.course import runner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import fake_notebooks  # noqa: E402
from test_runner import notebook_folder  # noqa: E402
from test_runner_faults import _alive, runner_env  # noqa: E402

TIMED = ('import time\nreport.record("start", time.time())\ntime.sleep({sleep})\n'
         'report.record("end", time.time())')


def make_notebook(folder: Path, stem: str, body: str) -> Path:
    return fake_notebooks.make_notebook(folder, stem, body, 'PRESET = "small"\nSEED = 0')


@pytest.fixture
def books(tmp_path, monkeypatch):
    """test_runner's notebook folder, with 02_c reusing 01_b's model and 03_d run alone."""
    monkeypatch.setattr(runner, "AFTER", {"02_c": ("01_b",)})
    monkeypatch.setattr(runner, "ALONE", ("03_d",))
    return notebook_folder(tmp_path, monkeypatch)


def test_order_is_longest_limit_first_and_alone_last(monkeypatch):
    monkeypatch.setattr(runner, "TIMEOUT_S", {"01_b": 3600, "02_c": 3600})
    monkeypatch.setattr(runner, "ALONE", ("00_a",))
    order = runner.side_by_side_order(["00_a", "01_b", "02_c", "03_d"], "ci")
    assert order == ["01_b", "02_c", "03_d", "00_a"]


def test_two_side_by_side_one_after_what_it_reuses_and_one_alone(books, tmp_path, capsys):
    for stem, sleep in (("00_a", 12), ("01_b", 1), ("02_c", 1), ("03_d", 1)):
        make_notebook(books, stem, TIMED.format(sleep=sleep))
    build = tmp_path / "build"
    assert runner.run_notebooks("ci", build=build, html=False, jobs=2) == 0
    r = report.load_all(build / "results")
    assert set(r) == {"00_a", "01_b", "02_c", "03_d"}
    a, b, c, d = (r[s] for s in ("00_a", "01_b", "02_c", "03_d"))
    assert a["start"] < b["end"] and b["start"] < a["end"], "00_a and 01_b did not run side by side"
    assert c["start"] >= b["end"], "02_c started before 01_b, which it reuses, ended"
    assert c["start"] < a["end"], "02_c waited for 00_a, which it does not reuse"
    assert d["start"] >= max(a["end"], b["end"], c["end"]), "03_d did not run alone"
    out = capsys.readouterr().out
    assert out.count(" done in ") == 4 and "[4/4] 03_d done in" in out


def test_section_lines_name_their_notebook(books, tmp_path, capfd):
    import nbformat

    for stem in ("00_a", "01_b"):
        path = make_notebook(books, stem, 'report.record("x", 1)')
        nb = nbformat.read(path, as_version=4)
        nb.cells.insert(1, nbformat.v4.new_markdown_cell("## 1. The part"))
        nbformat.write(nb, path)
    assert runner.run_notebooks("ci", build=tmp_path / "build", html=False, jobs=2) == 0
    lines = [ln for ln in capfd.readouterr().out.splitlines() if ln.startswith("    ")]
    assert sorted(ln.split("  ")[-1] for ln in lines) == ["[00_a]", "[01_b]"], lines


def test_a_failure_starts_nothing_more_and_the_running_one_finishes(books, tmp_path, capsys):
    make_notebook(books, "00_a", 'raise ValueError("boom here")')
    make_notebook(books, "01_b", TIMED.format(sleep=6))
    make_notebook(books, "02_c", TIMED.format(sleep=0))
    make_notebook(books, "03_d", TIMED.format(sleep=0))
    build = tmp_path / "build"
    assert runner.run_notebooks("ci", build=build, html=False, jobs=2) == 1
    assert "00_a failed" in capsys.readouterr().err
    assert set(report.load_all(build / "results")) == {"01_b"}  # finished and published; 02_c, 03_d never ran


def test_bad_jobs_is_one_clear_line(books, tmp_path, capsys):
    make_notebook(books, "00_a", 'report.record("x", 1)')
    assert runner.run_notebooks("ci", build=tmp_path / "build", jobs=0) == 1
    assert "--jobs must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()


def test_sigterm_kills_both_children_and_kernels(tmp_path):
    books = tmp_path / "notebooks"
    books.mkdir()
    pids = {stem: tmp_path / f"{stem}.pids" for stem in ("00_a", "01_b")}
    for stem, pids_file in pids.items():
        make_notebook(books, stem, f"import os, time\nopen({str(pids_file)!r}, 'w').write("
                      "f'{os.getpid()} {os.getppid()}')\ntime.sleep(120)")
    tmp_root, env = runner_env(tmp_path, books)
    cmd = [sys.executable, "-m", "ytrec_lib", "run-notebooks", "--preset", "tiny", "--jobs", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not all(p.exists() and p.read_text().count(" ") == 1 for p in pids.values()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the two kernels did not start within 90 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1].startswith("error: stopped by SIGTERM; ")
    assert _alive([int(x) for p in pids.values() for x in p.read_text().split()]) == []
    assert list(tmp_root.iterdir()) == []  # both staging folders removed
    assert not (tmp_path / "build" / "notebooks").exists()
