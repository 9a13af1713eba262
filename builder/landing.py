"""Merging task outputs as they land, while the tasks still run.

A stage that runs datatrove tasks merges their outputs in unit order (reply shards, buckets).
Merged only after the last task ended, the merge is serial time on top of the tasks' own, and
a core sits idle while the last task finishes its last unit. Here the run (the executor, in
the calling thread, which its pool watch needs) and the merge (a thread) overlap: the merge
takes unit i as soon as its output is whole (writers rename outputs into place), in order, so
the rows come out as an after-the-run merge would write them.

When the run ends, every unit not merged yet is handed over as is: a missing output is the
merge's own error to raise (it names the unit). When the run fails, the merge is stopped at its
next unit and the run's error is raised; a merge error is raised once the run has ended.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
POLL_S = 0.05


class RunFailed(Exception):
    """Raised in the merge thread when the run failed: the merge stops where it is."""


def run_and_merge(run: Callable[[], None], merge: Callable[[Iterator[int]], T], n: int,
                  landed: Callable[[int], bool], poll_s: float = POLL_S) -> T:  # fmt: skip
    """run() here while merge(units) runs in a thread; `units` yields 0..n-1 in order, each once
    landed(i) is true or the run has ended. Returns what merge returned."""
    ended, failed = threading.Event(), threading.Event()
    out: dict[str, T] = {}
    err: list[BaseException] = []

    def units() -> Iterator[int]:
        for i in range(n):
            while not landed(i) and not ended.is_set():
                ended.wait(poll_s)
            if failed.is_set():
                raise RunFailed
            yield i

    def body() -> None:
        try:
            out["value"] = merge(units())
        except RunFailed:
            pass
        except BaseException as e:  # handed to the caller's thread below
            err.append(e)

    thread = threading.Thread(target=body, name="merge-as-landed", daemon=True)
    thread.start()
    try:
        run()
    except BaseException:
        failed.set()
        raise
    finally:
        ended.set()
        thread.join()
    if err:
        raise err[0]
    return out["value"]
