"""The explorer driven as JupyterLab drives it: a real kernel, widget changes sent as comm messages.

JupyterLab sends widget messages to a kernel *subshell* (its default ``commsOverSubshells`` setting),
so ipykernel runs the widget callbacks on the subshell's thread, not on the thread that built the
explorer. This test builds notebook 08's explorer in a kernel at the ``tiny`` preset, opens a subshell
as JupyterLab does, and sends several changes of the ``k`` slider and the user dropdown in a row,
checking after each that the explorer's tables follow. (Before the embedding store allowed other
threads, every change after the first raised ``sqlite3.ProgrammingError`` on the subshell thread and
the tables stayed as they were.)
"""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ytrec_lib.report import REPO_ROOT

jupyter_client = pytest.importorskip("jupyter_client")

BUILD = """
import json, threading
import torch
from ytrec_lib import pipeline
from ytrec_lib.widgets import SystemExplorer
torch.set_num_threads(1)
bundle = pipeline.system("tiny", 0, index_kind="hnsw", progress=False,
                         candidate_config={"epochs": 1, "tower": [16], "n_negatives": 50, "dim": 8},
                        ranker_config={"epochs": 1, "hidden": [8], "dim": 8, "max_train_impressions": 4000},
                        efSearch=16)
ex = SystemExplorer(bundle.system, bundle.dataset, bundle.test_users[:20], eval_users=bundle.test_users[:8],
                    k=5, n_candidates=40)
threads = []
ex.k.observe(lambda change: threads.append(threading.current_thread().name), names="value")

def probe():
    rows = lambda h: h.count("<tr") - 1
    return {"k": ex.state["k"], "user": ex.state["user"], "ranked_rows": rows(ex.ranked_html.value),
            "candidate_rows": rows(ex.candidates_html.value), "user_html": ex.user_html.value,
            "ranked_html": ex.ranked_html.value, "error": ex.error_html.value, "threads": threads,
            "main": threading.main_thread().name}

print(json.dumps({"k": ex.k.model_id, "user": ex.user.model_id, "options": list(ex.user.options)}))
"""


class Kernel:
    """A started kernel and its client, with helpers to run code and send widget updates."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        self.km = jupyter_client.KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.subshell_id = self._create_subshell()

    def _create_subshell(self) -> str | None:
        """A subshell as JupyterLab opens for widget comms (None if the kernel has no subshells)."""
        msg = self.kc.session.msg("create_subshell_request", {})
        self.kc.control_channel.send(msg)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = self.kc.control_channel.get_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return reply["content"].get("subshell_id") if reply["content"]["status"] == "ok" else None
        raise TimeoutError("no reply to create_subshell_request")

    def execute(self, code: str, timeout: float = 300) -> str:
        """Run ``code``; its stdout. An error in the kernel fails the test with the traceback."""
        msg_id = self.kc.execute(code)
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty as err:
                raise TimeoutError(f"the kernel did not finish within {timeout} s: {code[:80]!r}") from err
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                out.append(content["text"])
            elif kind == "error":
                pytest.fail("kernel error:\n" + "\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)

    def send_update(self, comm_id: str, state: dict[str, Any]) -> None:
        """What the frontend sends when the reader moves a control: an ``update`` comm message."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {
            "method": "update", "state": state, "buffer_paths": []}})
        if self.subshell_id is not None:
            msg["header"]["subshell_id"] = self.subshell_id
        self.kc.shell_channel.send(msg)

    def probe(self) -> dict[str, Any]:
        return json.loads(self.execute("print(json.dumps(probe()))").strip().splitlines()[-1])

    def wait_for(self, ok: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60,
                 error_ok: bool = False) -> dict[str, Any]:
        """Poll the explorer's state until ``ok`` holds (bounded); an error line (unless ``error_ok``)
        or the time running out fails with the explorer's last state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.probe()
            if ok(state):
                return state
            if state["error"] and not error_ok:
                pytest.fail(f"{what}: the explorer shows an error: {state['error']}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not reached within {timeout} s; explorer state {state}")
            time.sleep(0.2)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel() -> Iterator[tuple[Kernel, dict[str, Any]]]:
    k = Kernel()
    try:
        ids = json.loads(k.execute(BUILD).strip().splitlines()[-1])
        yield k, ids
    finally:
        k.close()


def test_every_change_sent_as_a_comm_message_redraws_the_tables(kernel):
    k, ids = kernel
    first = k.probe()
    assert first["ranked_rows"] == 5 and first["error"] == ""
    for step, (new_k, index) in enumerate([(7, 1), (9, 4), (3, 2), (12, 7)]):
        k.send_update(ids["k"], {"value": new_k})
        # the callback runs on the subshell thread: state["k"] changes before the tables are redrawn, so
        # wait for the whole redraw (the time running out fails with the explorer's last state)
        st = k.wait_for(lambda s, n=new_k: s["k"] == n and s["ranked_rows"] == n and s["candidate_rows"] == n,
                        f"change {step + 1} of the k slider to {new_k}")
        assert st["error"] == "", st["error"]
        user = ids["options"][index]
        k.send_update(ids["user"], {"index": index})
        st = k.wait_for(lambda s, u=user: s["user"] == u and f"user {u}</b>" in s["user_html"],
                        f"change {step + 1} of the user dropdown to {user}")
        assert st["ranked_rows"] == new_k
        assert st["error"] == "", st["error"]
        assert " · Creator " in st["ranked_html"] and "age: " in st["user_html"]
    if k.subshell_id is not None:  # the callbacks really ran where JupyterLab runs them
        assert set(st["threads"]) - {st["main"]}, st["threads"]


def test_an_error_in_a_callback_shows_in_the_explorer_and_the_next_change_recovers(kernel):
    k, ids = kernel
    k.execute("def _boom(*a, **kw):\n    raise RuntimeError('index unavailable')\n"
              "ex.system.recommend = _boom")
    k.send_update(ids["k"], {"value": 4})
    st = k.wait_for(lambda s: "index unavailable" in s["error"], "the error line in the explorer",
                    error_ok=True)
    assert "could not update" in st["error"] and "RuntimeError" in st["error"]
    k.execute("del ex.system.recommend")
    k.send_update(ids["k"], {"value": 6})
    st = k.wait_for(lambda s: s["k"] == 6 and s["ranked_rows"] == 6 and not s["error"],
                    "the change after the error", error_ok=True)
    assert st["error"] == "" and st["ranked_rows"] == 6
