"""Run a pure-Python callable under a wall-clock deadline, from any thread.

math-verify's own timeouts use `signal.alarm`, which only works on the main thread (from a
worker thread it raises ValueError) and whose `alarm(0)` would cancel any outer alarm. So we
disable its timeouts and impose one deadline ourselves:

* main thread: an ITIMER_REAL timer whose handler raises `DeadlineExceeded` (a BaseException,
  so library `except Exception` blocks cannot swallow it; the timer re-fires every 0.5 s in
  case a bare `except:` does). A timer already armed by someone else (pytest-timeout, a
  caller's alarm) is saved and re-armed afterwards; if it is due first, it is left to fire;
* any other thread: the call runs in a small process pool whose worker uses the main-thread
  path; a worker that overruns is killed.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from builder.cpus import usable_cores

T = TypeVar("T")


class DeadlineExceeded(BaseException):  # noqa: N818 - BaseException on purpose, see module doc
    """The deadline passed before the callable returned."""


def _raise_deadline(signum: int, frame: Any) -> None:
    raise DeadlineExceeded()


def _can_use_signals() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _call_with_timer(fn: Callable[..., T], args: tuple[Any, ...], seconds: float) -> T:
    outer_left, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        return fn(*args)  # the outer timer fires first and its owner handles it
    started = time.monotonic()
    old = signal.signal(signal.SIGALRM, _raise_deadline)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
        if outer_left:
            left = max(outer_left - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


_pool: cf.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _get_pool() -> cf.ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # forkserver: forking a multi-threaded parent is unsafe, spawn is slower per worker.
            ctx = multiprocessing.get_context("forkserver")
            _pool = cf.ProcessPoolExecutor(max_workers=max(1, min(4, usable_cores())), mp_context=ctx)
            atexit.register(_kill_pool)  # a clean stop, before interpreter teardown
        return _pool


def _kill_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is None:
        return
    # A stuck worker never returns; the executor has no public kill, so signal its processes.
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _pool_entry(fn: Callable[..., T], args: tuple[Any, ...], seconds: float) -> T:
    return _call_with_timer(fn, args, seconds)


def run_with_deadline(fn: Callable[..., T], args: tuple[Any, ...], seconds: float) -> T:
    """Return fn(*args), or raise DeadlineExceeded after `seconds` of wall-clock time.

    Off the main thread, `fn` and `args` must be picklable (a module-level function).
    """
    if _can_use_signals():
        return _call_with_timer(fn, args, seconds)
    future = _get_pool().submit(_pool_entry, fn, args, seconds)
    try:
        # The worker enforces the deadline itself; the extra margin covers pool start-up.
        return future.result(timeout=seconds + 30)
    except cf.TimeoutError:
        _kill_pool()
        raise DeadlineExceeded() from None
    except cf.process.BrokenProcessPool:
        _kill_pool()
        raise
