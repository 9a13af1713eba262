"""A killed driver leaves no forkserver, manager or worker behind (builder/forkserver_guard.py).

datatrove's local executor starts a multiprocess Manager through the forkserver; a Manager waits
for a shutdown message a killed driver never sends, and the server stays while any child holds its
alive pipe. The driver here does what make_executor and LocalPipelineExecutor.run do, then is
killed (-9 and plain kill); the test process is not the server's parent, so nothing reaps for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DRIVER = """
import json, sys, time
from builder.executors import _manager_start_method
_manager_start_method("forkserver")
import multiprocess, multiprocess.forkserver as fs
m = multiprocess.Manager()
q = m.Queue()
pool = multiprocess.get_context("forkserver").Pool(1)
worker = pool.apply(__import__("os").getpid)
print(json.dumps({"manager": m._process.pid, "server": fs._forkserver._forkserver_pid, "worker": worker}), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return state[state.rindex(b")") + 2 : state.rindex(b")") + 3] != b"Z"  # a zombie has ended


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_driver_leaves_no_server_manager_or_worker(sig: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=REPO, start_new_session=True)  # fmt: skip
    try:
        pids = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert all(_alive(p) for p in pids.values()), pids
        os.kill(proc.pid, sig)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [k for k, p in pids.items() if _alive(p)], "left behind after the driver was killed"
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_the_guard_does_nothing_outside_a_server() -> None:
    import builder.forkserver_guard  # noqa: F401  (maybe imported earlier in this process: no matter)

    assert "parent-watch" not in {t.name for t in threading.enumerate()}
    code = "import threading, builder.forkserver_guard; print([t.name for t in threading.enumerate()])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout  # fmt: skip
    assert "parent-watch" not in out and "MainThread" in out
