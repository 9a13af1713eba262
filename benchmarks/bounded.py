"""Run a benchmark baseline in a fresh process, bounded in time.

A baseline is someone else's code: it may hang (datatrove's readiness probe once waited over ten
minutes). `bounded(fn, *args, timeout_s=60)` runs `fn(*args)` (a module-level function returning
a dict) in a spawned process and returns its dict with `cpu_s` (the child's own CPU time) and
`peak_rss_mb` (its own high-water mark); past the deadline the child and every process it
started are killed and `{"error": "<why>"}` comes back instead, as it does when `fn` raises.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import time
from pathlib import Path
from typing import Any

import psutil

DEFAULT_TIMEOUT_S = 60.0


def _own_peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _child(q: Any, fn: Any, args: tuple[Any, ...]) -> None:
    try:
        c0 = time.process_time()
        res = dict(fn(*args))
        res.setdefault("cpu_s", time.process_time() - c0)
        res.setdefault("peak_rss_mb", _own_peak_rss_mb())
        q.put(res)
    except BaseException as e:  # noqa: BLE001 - report, never hang the parent
        q.put({"error": f"{type(e).__name__}: {str(e)[:300]}"})


def kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


def bounded(fn: Any, *args: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, fn, args), daemon=False)
    p.start()
    try:
        out = q.get(timeout=timeout_s)
    except queue.Empty:
        kill_tree(p.pid)
        out = {"error": f"did not finish within {timeout_s:.0f} s (stopped)"}
    p.join(10)
    if p.is_alive():
        kill_tree(p.pid)
        p.join()
    return out
