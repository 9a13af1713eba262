"""Ends a local executor's forkserver, and what it forked, once the run that started it is gone.

A forkserver exits when every holder of its "alive" pipe has closed it, and it hands that pipe
to each child it forks. datatrove's local executor starts a `multiprocess.Manager()` through the
server (executors._manager_start_method), and a Manager waits for a shutdown message that a
driver killed by `kill`, `kill -9`, `timeout` or an OOM kill never sends: the manager, the
server and its resource tracker stayed behind for good, the server holding its preloaded modules.

Listed in the server's preload (executors.make_executor), this module starts one thread in the
server that checks its parent every half second; when the parent is gone (the server has been
re-parented) it sends SIGTERM to the server's children, then SIGKILL to any left after a grace
period, and ends the server. Imported anywhere but a forkserver's preload, it does nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

SERVERS = ("multiprocess.forkserver", "multiprocessing.forkserver")


def _in_server_preload() -> bool:
    """True while a forkserver's main() imports its preload modules (this import, in the server)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "main" and frame.f_globals.get("__name__") in SERVERS:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (from /proc: no psutil in a server)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # it ended while we looked
        if int(stat[stat.rindex(b")") + 2 :].split()[1]) == pid:  # after "(comm)": state, ppid
            out.append(int(name))
    return out


def _end_children(grace_s: float) -> None:
    me = os.getpid()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = children(me)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = children(me)  # the server's SIGCHLD handler reaps them
        if not left:
            return


def _watch(parent: int, interval_s: float, grace_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval_s)
    _end_children(grace_s)
    os._exit(0)  # the server's own loop would wait on the alive pipe for ever


def start(interval_s: float = 0.5, grace_s: float = 3.0) -> None:
    threading.Thread(target=_watch, args=(os.getppid(), interval_s, grace_s), name="parent-watch", daemon=True).start()


if _in_server_preload():
    start()
