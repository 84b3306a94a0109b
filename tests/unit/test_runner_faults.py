"""The runner and update-readme under faults: bad values, concurrent writers, signals, stale leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from ytrec_lib import course, report
from ytrec_lib.course import cli, html_report, runner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import fake_notebooks  # noqa: E402

PRESETS = ["tiny", "ci", "small", "large"]
PARAMS = ('PRESET = "small"\nSEED = 0\nEPOCHS = 3\nLR = 0.05\nFLAG = True\nNAME = "x"\n'
          'HIDDEN = [64, 32]\nOPT = None\nUSERS = 100  # users scored (None: all of them)')


def make_notebook(folder: Path, stem: str, body: str, params: str = PARAMS) -> Path:
    return fake_notebooks.make_notebook(folder, stem, body, params)


@pytest.fixture
def books(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(folder))
    monkeypatch.setattr(runner, "known_presets", lambda: PRESETS)
    return folder


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if a notebook would start."""
    def refuse(*args, **kwargs):
        raise AssertionError("a notebook started although the input was bad")

    monkeypatch.setattr(runner, "run_one", refuse)


# ----------------------------------------------------------------------------------------------------
# parameters and folders are checked before any kernel starts
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "allowed"),
    [
        ("EPOCHS=abc", "EPOCHS takes an integer >= 1 (its default is 3)"),
        ("EPOCHS=-1", "EPOCHS takes an integer >= 1"),
        ("EPOCHS=0", "EPOCHS takes an integer >= 1"),
        ("EPOCHS=2.5", "EPOCHS takes an integer >= 1"),
        ("EPOCHS=True", "EPOCHS takes an integer >= 1"),
        ("SEED=-1", "SEED takes an integer >= 0"),
        ("LR=abc", "LR takes a number"),
        ("FLAG=1", "FLAG takes True or False"),
        ("NAME=3", "NAME takes a string"),
        ("HIDDEN=5", "HIDDEN takes a list of integers, like [64, 32]"),
        ("HIDDEN=[8, 'a']", "HIDDEN takes a list of integers"),
        ("PRESET=huge", "PRESET takes one of: tiny, ci, small, large"),
        ("OPT={1, 2}", "OPT takes a JSON-like value"),
        ("EPOCHS=None", "EPOCHS takes an integer >= 1 (its default is 3)"),
        ("USERS=0", "USERS takes an integer >= 1 or None (its default is 100)"),
    ],
)
def test_bad_parameter_value_fails_before_any_kernel(books, tmp_path, capsys, no_kernel, param, allowed):
    make_notebook(books, "00_first", "pass")
    build = tmp_path / "build"
    assert cli.main(["run-notebooks", "--preset", "ci", "--param", param, "--build", str(build)]) == 1
    err = capsys.readouterr().err.strip()
    name, _, _ = param.partition("=")
    assert err.count("\n") == 0
    assert err.startswith(f"error: --param {name}=") and "does not fit 00_first" in err and allowed in err
    assert not build.exists()


def test_good_parameter_values_pass_the_check(books):
    path = make_notebook(books, "00_first", "pass")
    params = dict(runner.parse_param(p) for p in [
        "EPOCHS=1", "SEED=0", "LR=1", "FLAG=False", "NAME=y", "HIDDEN=[8]", "OPT=[1, 'a']", "PRESET=tiny",
        "USERS=None"])
    plan = runner.plan_parameters([path], "ci", params)
    assert plan[path] == {"PRESET": "tiny", **params}
    for opt in ("OPT=3", "OPT=None", "OPT={'a': 1}", "OPT=word"):  # a None default takes anything JSON-like
        runner.plan_parameters([path], "ci", dict([runner.parse_param(opt)]))


def test_build_folder_that_is_a_file_fails_at_start(books, tmp_path, capsys, no_kernel):
    make_notebook(books, "00_first", "pass")
    a_file = tmp_path / "README.md"
    a_file.write_text("keep me")
    assert cli.main(["run-notebooks", "--preset", "ci", "--build", str(a_file)]) == 1
    assert f"the build folder {a_file} (--build or $YTREC_BUILD_DIR) is a file" in capsys.readouterr().err
    assert a_file.read_text() == "keep me"


def test_data_dir_that_is_a_file_fails_at_start(books, tmp_path, capsys, no_kernel, monkeypatch):
    make_notebook(books, "00_first", "pass")
    a_file = tmp_path / "data.txt"
    a_file.write_text("x")
    monkeypatch.setenv("YTREC_DATA_DIR", str(a_file))
    assert cli.main(["run-notebooks", "--preset", "ci", "--build", str(tmp_path / "build")]) == 1
    assert f"YTREC_DATA_DIR={a_file} is a file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()


# ----------------------------------------------------------------------------------------------------
# update-readme: no results is an error, the preset label comes from the run records
# ----------------------------------------------------------------------------------------------------

README = f"# x\n\n{html_report.README_START}\nold results\n{html_report.README_END}\n\nafter\n"
STEMS = [c.stem for c in course.CHAPTERS]


@pytest.fixture
def readme(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README.md").write_text(README)
    monkeypatch.setattr(report, "REPO_ROOT", root)
    return root / "README.md"


def publish(results: Path, stem: str, values: dict, preset: str | None) -> None:
    """Results as run-notebooks publishes them (with a run record when ``preset`` is given)."""
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(values))
    if preset:
        runner.write_run_info(results, stem, preset, {"PRESET": preset}, 1.0)


@pytest.mark.parametrize("make", ["missing", "empty", "only_empty_results"])
def test_update_readme_without_results_is_an_error_and_keeps_readme(readme, tmp_path, capsys, make):
    folder = tmp_path / "results"
    if make != "missing":
        folder.mkdir()
    if make == "only_empty_results":
        (folder / f"{STEMS[0]}.json").write_text("{}")
    assert cli.main(["update-readme", "--results", str(folder)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(folder) in err and "README.md left unchanged" in err
    assert readme.read_text() == README


def test_update_readme_labels_the_preset_the_results_were_recorded_at(readme, tmp_path, capsys):
    folder = tmp_path / "results"
    publish(folder, STEMS[0], {"n": 1}, "tiny")
    publish(folder, STEMS[1], {"m": 0.5}, "tiny")
    assert cli.main(["update-readme", "--results", str(folder)]) == 0
    text = readme.read_text()
    assert "at the `tiny` preset" in text and "`small`" not in text and "| `m` | 0.5 |" in text
    assert "old results" not in text and text.endswith("after\n")
    assert [p.name for p in readme.parent.iterdir()] == ["README.md"]  # no temporary file left
    assert report.load_all(folder) == {STEMS[0]: {"n": 1}, STEMS[1]: {"m": 0.5}}  # run records: not results


def test_update_readme_refuses_mixed_presets_naming_each(readme, tmp_path, capsys):
    folder = tmp_path / "results"
    publish(folder, STEMS[0], {"n": 1}, "tiny")
    publish(folder, STEMS[1], {"m": 2}, "small")
    assert cli.main(["update-readme", "--results", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"{STEMS[0]} at tiny; {STEMS[1]} at small" in err and "different presets" in err
    assert readme.read_text() == README


def test_update_readme_preset_option_must_agree_with_the_records(readme, tmp_path, capsys):
    folder = tmp_path / "results"
    publish(folder, STEMS[0], {"n": 1}, "tiny")
    assert cli.main(["update-readme", "--results", str(folder), "--preset", "small"]) == 1
    assert f"--preset small, but the results in {folder.resolve()} were recorded at another preset " \
           f"({STEMS[0]} at tiny)" in capsys.readouterr().err
    assert readme.read_text() == README


def test_update_readme_unrecorded_or_changed_results_need_a_stated_preset(readme, tmp_path, capsys):
    folder = tmp_path / "results"
    publish(folder, STEMS[0], {"n": 1}, None)  # written without the runner
    publish(folder, STEMS[1], {"m": 2}, "ci")
    (folder / f"{STEMS[1]}.json").write_text(json.dumps({"m": 3}))  # changed after the runner published it
    assert cli.main(["update-readme", "--results", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"{STEMS[0]}: not recorded" in err and f"{STEMS[1]}: unknown (its results changed" in err
    assert readme.read_text() == README
    assert cli.main(["update-readme", "--results", str(folder), "--preset", "ci"]) == 0
    assert "at the `ci` preset" in readme.read_text()


# ----------------------------------------------------------------------------------------------------
# concurrent writers of one file
# ----------------------------------------------------------------------------------------------------


def hammer(work, n_threads: int = 4, iterations: int = 150) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def loop(i: int) -> None:
        start.wait()
        for _ in range(iterations):
            try:
                work(i)
            except BaseException as err:  # noqa: BLE001 - collected and asserted on below
                errors.append(err)
                return

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_installs_of_one_file_never_fail_and_leave_one_whole_file(tmp_path):
    sources = []
    for i in range(4):
        src = tmp_path / f"src{i}.ipynb"
        src.write_bytes(bytes([65 + i]) * 300_000)
        sources.append(src)
    dst = tmp_path / "build" / "notebooks" / "00_x.ipynb"
    errors = hammer(lambda i: runner._install(sources[i], dst))
    assert errors == []
    assert dst.read_bytes() in {s.read_bytes() for s in sources}
    assert [p.name for p in dst.parent.iterdir()] == ["00_x.ipynb"]


def test_concurrent_writers_of_one_html_page_never_fail(tmp_path):
    build = tmp_path / "build"
    (build / "html").mkdir(parents=True)
    (build / "html" / "00_x.html").write_text("<p>page</p>")
    publish(build / "results", "00_x", {"k": list(range(2000))}, None)
    errors = hammer(lambda i: html_report.write_index(build))
    assert errors == []
    page = (build / "index.html").read_text()
    assert page == html_report.index_html(report.load_all(build / "results"), ["00_x"])
    assert [p.name for p in build.iterdir() if p.is_file()] == ["index.html"]


def test_each_failed_run_keeps_its_executed_copy_in_a_folder_of_its_own(books, tmp_path, monkeypatch):
    path = make_notebook(books, "00_bad", "pass")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    runs = iter(["first", "second"])

    def failing_papermill(src, out, params, env, limit):
        out.write_text(next(runs))
        return "cell In [3]: ValueError: boom"

    monkeypatch.setattr(runner, "_papermill", failing_papermill)
    kept = []
    for _ in range(2):
        outcome = runner.run_one(path, {}, "ci", tmp_path / "build")
        assert not outcome.ok and " — executed copy kept at " in outcome.message
        kept.append(Path(outcome.message.split(" — executed copy kept at ")[1]))
    assert kept[0] != kept[1] and [k.read_text() for k in kept] == ["first", "second"]
    assert all(k.parent.name.startswith("ytrec-failed-00_bad-") for k in kept)
    assert not (tmp_path / "build").exists()  # a failure publishes nothing


# ----------------------------------------------------------------------------------------------------
# a real run: run record, stale leftovers swept; a real run stopped by a signal
# ----------------------------------------------------------------------------------------------------


def test_run_records_its_preset_and_sweeps_stale_leftovers(books, tmp_path, monkeypatch, capsys):
    make_notebook(books, "00_first", 'report.record("preset_seen", PRESET)')
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_root))
    build = tmp_path / "build"
    old = time.time() - 2 * runner.SWEEP_AGE_S
    stale_file = build / "html" / ".00_first.html.abc123.tmp"
    fresh_file = build / "html" / ".00_first.html.def456.tmp"  # perhaps another run, writing right now
    stale_staging = tmp_root / "ytrec-00_first-abc123"
    live_staging = tmp_root / "ytrec-01_other-def456"  # old, but its run is still going (our own pid)
    for path in (stale_file, fresh_file):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    for folder, pid in ((stale_staging, 2**22 + 12345), (live_staging, os.getpid())):
        folder.mkdir()
        (folder / runner.OWNER_FILE).write_text(str(pid))
        os.utime(folder, (old, old))
    os.utime(stale_file, (old, old))

    assert runner.run_notebooks("ci", params=["PRESET='tiny'"], build=build, html=False) == 0
    assert not stale_file.exists() and not stale_staging.exists()
    assert fresh_file.exists() and live_staging.exists()
    assert report.load_all(build / "results") == {"00_first": {"preset_seen": "tiny"}}
    assert runner.recorded_preset(build / "results", "00_first") == ("tiny", "")
    info = json.loads((build / "results" / runner.RUN_INFO_DIR / "00_first.json").read_text())
    assert info["parameters"] == {"PRESET": "tiny"}
    assert sorted(p.name for p in tmp_root.iterdir()) == ["ytrec-01_other-def456"]  # own staging removed


def _alive(pids: list[int]) -> list[int]:
    """The pids still running (a zombie waiting for its reaper does not count), after a short grace."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        running = []
        for p in procs:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    running.append(p)
            except psutil.NoSuchProcess:
                continue
        if not running:
            return []
        time.sleep(0.05)
    return [p.pid for p in running]


def runner_env(tmp_path: Path, books: Path) -> tuple[Path, dict[str, str]]:
    """A fresh temp folder ``tmp_path/tmp`` and the environment of a ``run-notebooks`` subprocess on the
    notebooks of ``books``: its temp folder that one, its build folder ``tmp_path/build``."""
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir()
    repo = Path(__file__).resolve().parents[2]
    return tmp_root, {**os.environ, runner.NOTEBOOKS_ENV: str(books), "TMPDIR": str(tmp_root),
                      "YTREC_BUILD_DIR": str(tmp_path / "build"),
                      "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_kills_child_and_kernel_and_removes_staging(tmp_path, signum):
    books = tmp_path / "notebooks"
    books.mkdir()
    pids_file = tmp_path / "pids.txt"
    make_notebook(books, "00_sleepy", f"import os, time\nopen({str(pids_file)!r}, 'w').write("
                  "f'{os.getpid()} {os.getppid()}')\ntime.sleep(120)")
    tmp_root, env = runner_env(tmp_path, books)
    proc = subprocess.Popen([sys.executable, "-m", "ytrec_lib", "run-notebooks", "--preset", "tiny"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (pids_file.exists() and pids_file.read_text().count(" ") == 1):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the notebook's kernel did not start within 60 s"
            time.sleep(0.05)
        kernel, child = (int(x) for x in pids_file.read_text().split())
        assert [p.name for p in tmp_root.iterdir() if p.name.startswith("ytrec-00_sleepy-")]
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum
    assert err.strip().splitlines()[-1].startswith(f"error: stopped by {signal.Signals(signum).name}; ")
    assert _alive([child, kernel]) == []
    assert list(tmp_root.iterdir()) == []  # staging folder removed, nothing else left
    assert not (tmp_path / "build" / "notebooks").exists()
