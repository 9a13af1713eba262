"""How a stage says how far it is, without knowing who listens.

A stage takes `progress: Progress | None` and calls it with a step name when a step starts,
then with `(step, done, total)` as items of that step get done. The console (builder/console.py)
turns the calls into bars with rate and ETA on a terminal, and into one line per step in a log;
tests pass a recorder. `counted` wraps an iterable so a loop reports itself, throttled so that a
million-row loop costs a few hundred calls, not a million.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None: ...


def report(progress: Progress | None, step: str, done: int | None = None, total: int | None = None) -> None:
    """Call `progress` if there is one (stages take None when nobody listens)."""
    if progress is not None:
        progress(step, done, total)


def counted(items: Iterable[T], progress: Progress | None, step: str, total: int | None,
            every_s: float = 0.2, weight: int = 1) -> Iterator[T]:  # fmt: skip
    """Yield `items`, reporting `(step, done, total)` at most every `every_s` seconds and once at
    the end; `weight` is how many units one item counts for (a batch of rows)."""
    if progress is None:
        yield from items
        return
    progress(step, 0, total)
    done, last = 0, time.monotonic()
    for item in items:
        yield item
        done += weight
        now = time.monotonic()
        if now - last >= every_s:
            progress(step, done, total)
            last = now
    progress(step, total if total is not None and done >= total else done, total)
