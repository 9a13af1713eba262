"""Which units a task takes (builder/task_claims.py): its own first, then what nobody has taken;
never one unit by two tasks of a run, whatever the timing."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from builder import task_claims


def test_own_units_first_then_the_others_from_the_end() -> None:
    assert task_claims.order(8, 0, 2) == [0, 2, 4, 6, 7, 5, 3, 1]
    assert task_claims.order(5, 1, 2) == [1, 3, 4, 2, 0]
    assert task_claims.order(3, 0, 1) == [0, 1, 2]
    assert task_claims.order(1, 1, 2) == [0]  # more tasks than units: the second helps or idles


def test_a_task_that_finishes_early_takes_what_is_left(tmp_path: Path) -> None:
    claims = task_claims.new_run(tmp_path)
    slow = task_claims.units(6, 1, 2, claims, lambda i: False)
    assert next(slow) == 1  # task 1 is busy with its first unit…
    fast = list(task_claims.units(6, 0, 2, claims, lambda i: False))
    assert fast == [0, 2, 4, 5, 3]  # …while task 0 does its own and then task 1's others
    assert list(slow) == []


def test_done_units_are_skipped_and_a_rank_run_again_takes_back_its_claims(tmp_path: Path) -> None:
    claims = task_claims.new_run(tmp_path)
    assert list(task_claims.units(4, 0, 2, claims, lambda i: i == 2)) == [0, 3, 1]
    assert list(task_claims.units(4, 0, 2, claims, lambda i: i != 3)) == [3]  # a retry of rank 0
    assert list(task_claims.units(4, 1, 2, claims, lambda i: False)) == [2]  # 2 was never claimed


def test_a_new_run_forgets_the_last_runs_claims(tmp_path: Path) -> None:
    first = task_claims.new_run(tmp_path)
    assert list(task_claims.units(2, 0, 1, first, lambda i: False)) == [0, 1]
    second = task_claims.new_run(tmp_path)
    assert not first.exists()
    assert list(task_claims.units(2, 0, 1, second, lambda i: False)) == [0, 1]


def _grab(args: tuple[str, int, int, int]) -> list[int]:
    folder, n, rank, world = args
    return list(task_claims.units(n, rank, world, Path(folder), lambda i: False))


def test_racing_tasks_never_share_a_unit(tmp_path: Path) -> None:
    for attempt in range(5):
        claims = task_claims.new_run(tmp_path / str(attempt))
        with multiprocessing.get_context("fork").Pool(4) as pool:
            got = pool.map(_grab, [(str(claims), 200, r, 4) for r in range(4)])
        flat = [u for part in got for u in part]
        assert sorted(flat) == list(range(200))  # each unit once, by exactly one task
