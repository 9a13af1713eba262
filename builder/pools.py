"""Process pools whose workers do not inherit the driver's heap.

A worker forked from a driver that holds a million prompts maps every page of it: its RSS
counts them (a process tree's summed RSS, what a memory budget is checked against, counts
them once per worker) and any page it touches is copied. A forkserver's workers are forked
from a small server process instead, and get only what their jobs send them.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
from collections.abc import Callable
from multiprocessing.pool import Pool
from typing import Any

START_METHOD = "forkserver"


def lean_pool(workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple[Any, ...] = (),
              preload: list[str] | None = None) -> Pool:  # fmt: skip
    """A Pool of `workers` started from the forkserver; `preload` modules are imported once in
    the server (only on its first start) so each worker starts warm. Jobs and `initargs` travel pickled."""
    ctx = multiprocessing.get_context(START_METHOD)
    if preload:
        ctx.set_forkserver_preload(preload)
    return ctx.Pool(workers, initializer=initializer, initargs=initargs)


def release_freed_memory() -> None:
    """Hand memory freed by Python and Arrow back to the OS (RSS), e.g. after a step drops a big
    structure: glibc keeps freed heap pages mapped until trimmed, Arrow's allocator keeps its pools."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
