"""Notebooks 05 and 08 in JupyterLab, driven by headless Chromium as a student would.

JupyterLab is started on a free local port (127.0.0.1, a token) over a temporary folder holding copies
of the two notebooks at the fastest preset. Chromium (the Debian package, through Playwright) opens each,
runs all cells, moves each explorer control three times and checks that what is displayed follows: the
ranked table of 08 has k rows and names the chosen user, 05's printed recall lines name the chosen
``nprobe`` / ``efSearch``. Screenshots go to ``build/browser/``.

Skipped (with the reason) when Chromium or Playwright is missing. Run with ``make test-browser``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ytrec_lib.report import REPO_ROOT

FAST_PRESET = "tiny"
NOTEBOOKS = ("05_ann_serving", "08_two_stage_system")
SHOTS = REPO_ROOT / "build" / "browser"
RUN_ALL_TIMEOUT_S = 240          # per notebook, at the tiny preset (about 40-100 s on 2 shared cores)
CHANGE_TIMEOUT_MS = 60_000       # one explorer refresh (a few seconds on a loaded machine)
CHROMIUM = os.environ.get("YTREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# settings of the lab under test: no windowing (every cell in the page), no news or update checks
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                          "checkForUpdates": False},
}


def _requirements() -> Any:
    """playwright.sync_api, or a skip saying what is missing."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set YTREC_CHROMIUM)")
    try:
        from playwright import sync_api
    except ImportError:
        pytest.skip("playwright is not installed (pip install -r requirements.lock)")
    return sync_api


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _copy_at_fast_preset(src: Path, dst: Path) -> None:
    """Copy a notebook; its parameters cell reads ``YTREC_PRESET`` or gets ``PRESET = "tiny"``."""
    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            text = "".join(cell["source"])
            if "YTREC_PRESET" not in text:
                text, n = re.subn(r'^PRESET = "[^"]*"', f'PRESET = "{FAST_PRESET}"', text, flags=re.M)
                assert n == 1, f"{src.name}: no PRESET line in the parameters cell"
            cell["source"] = text
            break
    else:
        raise AssertionError(f"{src.name} has no parameters cell")
    dst.write_text(json.dumps(nb))


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - a local test server
        return json.loads(r.read())


class Lab:
    """A JupyterLab server over a temporary folder; ``url(path)`` and ``kernels()`` talk to it."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        for stem in NOTEBOOKS:
            _copy_at_fast_preset(REPO_ROOT / "notebooks" / f"{stem}.ipynb", root / f"{stem}.ipynb")
        conf = root.parent / "lab-config"
        for name, value in LAB_SETTINGS.items():
            (conf / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
            (conf / "settings" / name).write_text(json.dumps(value))
        env = dict(os.environ, YTREC_PRESET=FAST_PRESET, YTREC_BUILD_DIR=str(root.parent / "build"),
                   JUPYTERLAB_SETTINGS_DIR=str(conf / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(conf / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(conf / "runtime"),
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p))
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = (root.parent / "lab.log").open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_until_up(timeout=120)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?token={self.token}"

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}; see {self.log.name}")
            try:
                _get_json(self.url("api/status"))
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s; see {self.log.name}")

    def kernels(self) -> list[dict[str, Any]]:
        return _get_json(self.url("api/kernels"))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sync_api = _requirements()
    root = tmp_path_factory.mktemp("lab") / "root"
    root.mkdir()
    SHOTS.mkdir(parents=True, exist_ok=True)
    lab = Lab(root)
    try:
        with sync_api.sync_playwright() as pw:
            args = ["--disable-dev-shm-usage"] + (["--no-sandbox"] if os.geteuid() == 0 else [])
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                pg = browser.new_page(viewport={"width": 1600, "height": 1000})
                pg.lab = lab
                yield pg
            finally:
                browser.close()
    finally:
        lab.close()


def _panel(page: Any) -> Any:
    """The notebook panel on show (the workspace may restore other notebooks in hidden tabs)."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


def _kernel_idle(page: Any, stem: str) -> bool:
    """Whether the server has an idle kernel for the notebook ``stem``."""
    sessions = _get_json(page.lab.url("api/sessions"))
    return any(s["path"].endswith(f"{stem}.ipynb") and s.get("kernel") and
               s["kernel"]["execution_state"] == "idle" for s in sessions)


def _run_all(page: Any, stem: str) -> None:
    """Open ``stem``, wait for its kernel, Run > Run All Cells, and wait (bounded) until all ran."""
    from playwright.sync_api import expect

    page.goto(page.lab.url(f"lab/tree/{stem}.ipynb"))
    expect(_panel(page).locator(".jp-Cell").first).to_be_visible(timeout=60_000)
    accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")  # "Select Kernel": Python 3
    deadline = time.monotonic() + 60
    while accept.count() or not _kernel_idle(page, stem):
        if accept.count():
            accept.first.click()
        if time.monotonic() > deadline:
            page.screenshot(path=str(SHOTS / f"{stem}-no-kernel.png"))
            pytest.fail(f"{stem}: the kernel did not start within 60 s")
        time.sleep(0.5)
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']", has_text="Run All Cells").click()
    prompts = _panel(page).locator(".jp-CodeCell .jp-InputArea-prompt")
    page.screenshot(path=str(SHOTS / f"{stem}-run-all.png"))
    expect(prompts.filter(has_text=re.compile(r"\[(\*|\d+)\]"))).not_to_have_count(0, timeout=30_000)
    deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
    while True:
        texts = prompts.all_inner_texts()
        busy = any("*" in t for t in texts)
        idle = _kernel_idle(page, stem)
        if not busy and idle and texts and all(re.search(r"\[\d+\]", t) for t in texts):
            break
        errors = _panel(page).locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
        if errors.count():
            pytest.fail(f"{stem}: a cell failed in the browser:\n{errors.first.inner_text()[:2000]}")
        if time.monotonic() > deadline:
            page.screenshot(path=str(SHOTS / f"{stem}-timeout.png"))
            pytest.fail(f"{stem}: Run All did not finish within {RUN_ALL_TIMEOUT_S} s (prompts {texts})")
        time.sleep(1)
    page.screenshot(path=str(SHOTS / f"{stem}-ran.png"))


def _slider(page: Any, label: str) -> Any:
    """The slider described ``label`` in the notebook on show."""
    name = page.locator("label", has_text=re.compile(f"^{label}$"))
    return _panel(page).locator(".widget-slider", has=name)


def _keys_to_move(handle: Any) -> str:
    """ArrowRight when three steps to the right fit, else ArrowLeft."""
    now, top = float(handle.get_attribute("aria-valuenow")), float(handle.get_attribute("aria-valuemax"))
    return "ArrowRight" if now + 3 <= top else "ArrowLeft"


def test_notebook_08_explorer_follows_every_move(page):
    from playwright.sync_api import expect

    stem = "08_two_stage_system"
    _run_all(page, stem)
    nb = _panel(page)
    ranked = nb.locator(".widget-html", has_text="stage 2: shown").locator("tbody tr")
    header = nb.locator(".widget-html b", has_text=re.compile(r"^user \d+$"))
    errors = nb.locator(".widget-html", has_text="could not update")
    expect(ranked).to_have_count(5, timeout=CHANGE_TIMEOUT_MS)  # the cell set k = 5
    select = nb.locator(".widget-dropdown select").first
    handle = _slider(page, "k").locator(".noUi-handle").first
    key = _keys_to_move(handle)
    for move in range(1, 4):
        handle.focus()
        handle.press(key)
        k = int(float(handle.get_attribute("aria-valuenow")))
        expect(ranked).to_have_count(k, timeout=CHANGE_TIMEOUT_MS)
        users = [u.strip() for u in select.locator("option").all_inner_texts()]
        index = (select.evaluate("s => s.selectedIndex") + move * 3) % len(users)  # another user
        select.select_option(index=index)
        expect(header).to_have_text(f"user {users[index]}", timeout=CHANGE_TIMEOUT_MS)
        expect(ranked).to_have_count(k, timeout=CHANGE_TIMEOUT_MS)
        expect(errors).to_have_count(0)
        assert " · Creator " in ranked.first.inner_text()  # videos by title, not bare ids
        demographics = nb.locator(".widget-html", has_text="age:").inner_text()
        assert re.search(r"age: (\d+ years|unknown)", demographics), demographics
        header.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"{stem}-move{move}.png"))


def test_notebook_05_explorer_follows_every_move(page):
    from playwright.sync_api import expect

    stem = "05_ann_serving"
    _run_all(page, stem)
    for label, pattern in (("nprobe", r"nprobe=\s*{} of"), ("efSearch", r"efSearch=\s*{}:")):
        handle = _slider(page, label).locator(".noUi-handle").first
        readout = _slider(page, label).locator(".widget-readout")
        output = _panel(page).locator(".widget-output", has_text="HNSW efSearch=")
        key = _keys_to_move(handle)
        for move in range(1, 4):
            before = readout.inner_text().strip()
            handle.focus()
            handle.press(key)
            expect(readout).not_to_have_text(before, timeout=CHANGE_TIMEOUT_MS)
            value = readout.inner_text().strip()
            expect(output).to_contain_text(re.compile(pattern.format(re.escape(value))),
                                           timeout=CHANGE_TIMEOUT_MS)
            output.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / f"{stem}-{label}-move{move}.png"))
