"""builder/landing.py: task outputs merged in unit order as they land, while the run goes on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from builder.landing import run_and_merge


class Outputs:
    """Units that have 'landed' (a task renamed their output into place)."""

    def __init__(self) -> None:
        self.landed: set[int] = set()
        self.lock = threading.Lock()

    def land(self, i: int) -> None:
        with self.lock:
            self.landed.add(i)

    def has(self, i: int) -> bool:
        with self.lock:
            return i in self.landed


def test_units_are_merged_in_order_while_the_run_goes_on() -> None:
    out, seen = Outputs(), []
    run_done = threading.Event()

    def run() -> None:
        for i in (1, 0, 3, 2):  # tasks finish out of order
            out.land(i)
            time.sleep(0.15)
        run_done.set()

    def merge(units: Iterator[int]) -> list[int]:
        for i in units:
            assert out.has(i)  # never before it landed
            seen.append((i, run_done.is_set()))
        return [i for i, _ in seen]

    assert run_and_merge(run, merge, 4, out.has, poll_s=0.01) == [0, 1, 2, 3]
    assert seen[0] == (0, False) and seen[1] == (1, False)  # merged while the run still ran


def test_a_unit_missing_when_the_run_ends_is_handed_over_for_the_merge_to_name() -> None:
    out = Outputs()

    def run() -> None:
        out.land(0)

    def merge(units: Iterator[int]) -> None:
        for i in units:
            if not out.has(i):
                raise RuntimeError(f"unit {i} left no output")

    with pytest.raises(RuntimeError, match="unit 1 left no output"):
        run_and_merge(run, merge, 3, out.has, poll_s=0.01)


def test_a_failed_run_stops_the_merge_and_its_error_is_raised() -> None:
    out, merged = Outputs(), []

    def run() -> None:
        out.land(0)
        time.sleep(0.1)
        out.land(2)  # unit 1 never lands
        raise ValueError("task 1 died")

    def merge(units: Iterator[int]) -> str:
        merged.extend(units)
        return "finished"  # never reached

    with pytest.raises(ValueError, match="task 1 died"):
        run_and_merge(run, merge, 3, out.has, poll_s=0.01)
    assert merged == [0]  # stopped at the unit that never landed: neither 1 nor 2 handed over


def test_a_merge_error_waits_for_the_run_then_is_raised() -> None:
    out, finished = Outputs(), threading.Event()

    def run() -> None:
        out.land(0)
        time.sleep(0.2)
        finished.set()

    def merge(units: Iterator[int]) -> None:
        next(units)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_and_merge(run, merge, 2, out.has, poll_s=0.01)
    assert finished.is_set()  # the run was not cut short (its tasks own their outputs)
