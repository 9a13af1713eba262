"""Curate's memory at scale: a lean driver (rows as Arrow, not Python objects) and pool workers
that do not inherit the driver's heap (issue 16: the 1.3M rehearsal's tree peak ≤ 8 GB)."""

from __future__ import annotations

import os
import re
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pytest

import builder.executors
from builder.constraints.detect import constraints_json_many
from builder.curate.columns import ChunkedTexts, ConstraintItems
from builder.curate.read import read_all as _read_all
from builder.ledger import Ledger
from builder.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def test_lean_workers_are_not_forked_from_the_driver() -> None:
    # A worker forked from the driver is its child and maps its whole heap (its RSS counts it).
    parents = {ppid for _, ppid in builder.executors.lean_map(_parent, range(4), 2)}
    assert os.getpid() not in parents


def _parent(_: int) -> int:
    return os.getppid()


def test_constraint_detection_runs_on_lean_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[int] = []
    real = builder.executors.lean_map

    def spy(fn, jobs, workers, *a, **k):  # type: ignore[no-untyped-def]
        used.append(workers)
        return real(fn, jobs, workers, *a, **k)

    monkeypatch.setattr(builder.executors, "lean_map", spy)
    items = [(None, "Answer in exactly 3 bullet points. What is rain?"), (None, "Hi")] * 300
    got = constraints_json_many(items, workers=2, chunk=100)
    assert got == constraints_json_many(items, workers=1)  # same answers, in order
    assert used == [2]


def _square_or_die(job: tuple[int, int, int]) -> int:
    i, driver, kill_at = job
    if i == kill_at and os.getpid() != driver:
        os.kill(os.getpid(), __import__("signal").SIGKILL)  # as the OOM killer would
    return i * i


@pytest.mark.parametrize("kill_at", [0, 5, 19])
def test_lean_map_survives_a_killed_worker(kill_at: int) -> None:
    """multiprocessing's Pool waited for ever on a killed worker's job; lean_map runs what the
    broken pool left in the driver: every job answered once, no hang."""
    import threading

    got: dict[int, int] = {}

    def run() -> None:
        for job, out in builder.executors.lean_map(_square_or_die, ((i, os.getpid(), kill_at) for i in range(20)), 2):
            assert job[0] not in got
            got[job[0]] = out

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(60)
    assert not th.is_alive(), "lean_map hung after a worker was killed"
    assert got == {i: i * i for i in range(20)}


def test_no_stage_pool_is_forked_from_the_driver() -> None:
    # Curate's pools go through builder.executors; a `fork` context there would bring the heap back.
    for path in [*ROOT.glob("builder/curate/*.py"), *ROOT.glob("builder/constraints/*.py"), ROOT / "builder/executors.py"]:
        assert not re.search(r"""get_context\(\s*["']fork["']\s*\)""", path.read_text()), path


def test_driver_holds_read_rows_as_arrow_not_python_objects(tmp_path: Path) -> None:
    recipe = load_recipe(ROOT / "recipes/sample.yaml")
    _read_all(recipe, Ledger("curate"), [])  # once first: one-off caches (language models, regexes) are not per row
    arrow0 = pa.total_allocated_bytes()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        table = _read_all(recipe, Ledger("curate"), [])
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    rows = table.num_rows
    assert rows > 500
    # Lists of dicts cost ~5 KB a row; what stays in Python objects now is the ledger's few
    # quarantined rows and caches, not a per-row object graph.
    assert held / rows < 400, f"{held / rows:.0f} B of Python objects a row after read"
    text = sum(len(s.encode()) for s in table["_user"].to_pylist())
    assert (pa.total_allocated_bytes() - arrow0) < 6 * text + 400 * rows  # messages + user text + ids, in Arrow


def test_chunked_views_give_the_rows_a_slice_at_a_time() -> None:
    t = pa.table({"tests_json": [None, '{"a": 1}', None],
                  "messages": [[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                               [{"role": "user", "content": "c"}], [{"role": "system", "content": "s"}]]})  # fmt: skip
    items = ConstraintItems(t, __import__("numpy").array([2, 0]))
    assert len(items) == 2 and items[0:2] == [(None, ""), (None, "a")] and items[1] == (None, "a")
    texts = ChunkedTexts(pa.chunked_array([["x", "y"], ["z"]]))
    assert len(texts) == 3 and texts[1:3] == ["y", "z"] and texts[0] == "x"


def test_last_user_texts_agree_with_the_per_row_dicts() -> None:
    """The column reading gives the per-row answer (the last user turn's content, "" without one) on
    every shape: several user turns, none, an empty or null content, rows split over chunks and
    read through a slice."""
    import random

    import numpy as np

    from builder.curate.columns import last_user_texts

    def last_user(messages: list[dict]) -> str:
        return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")

    rng = random.Random(7)
    rows = []
    for _ in range(400):
        turns = [{"role": rng.choice(["user", "assistant", "system"]),
                  "content": rng.choice(["", None, "x", "多少", f"t{rng.randrange(99)}"])}
                 for _ in range(rng.randrange(0, 5))]  # fmt: skip
        rows.append(turns)
    typ = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    col = pa.chunked_array([pa.array(rows[:150], typ), pa.array(rows[150:], typ)])
    assert last_user_texts(col) == [last_user(m) for m in rows]
    assert last_user_texts(col.slice(97, 200)) == [last_user(m) for m in rows[97:297]]
    t = pa.table({"tests_json": pa.chunked_array([pa.array([None] * 150, pa.string()), pa.array(["{}"] * 250)]),
                  "messages": col})  # fmt: skip
    pick = np.array(sorted(rng.sample(range(400), 120)))
    items = ConstraintItems(t, pick)
    assert items[0:120] == [(None if i < 150 else "{}", last_user(rows[i])) for i in pick]


def test_key_twins_equal_a_first_seen_dict() -> None:
    """Exact dedupe's array pairing gives what a dict of first occurrences gives, on a sliced array."""
    import random

    import numpy as np

    from builder.curate.stage import _key_twins

    rng = random.Random(3)
    pool = [rng.randbytes(16) for _ in range(50)]
    keys = [rng.choice(pool) if rng.random() < 0.6 else rng.randbytes(16) for _ in range(2_000)]
    arr = pa.array(keys, pa.binary(16)).slice(7)
    first: dict[bytes, int] = {}
    want = [(i, first.setdefault(k, i)) for i, k in enumerate(keys[7:]) if first.setdefault(k, i) != i]
    twin, by = _key_twins(arr)
    assert list(zip(twin.tolist(), by.tolist())) == want and len(want) > 500
    assert _key_twins(pa.array([], pa.binary(16)))[0].tolist() == []
    assert isinstance(twin, np.ndarray)
    from builder.curate.stage import _exact_dedupe

    t = pa.table({"_key": pa.array(keys, pa.binary(16)), "prompt_id": [f"p{i}" for i in range(len(keys))]})
    seen: dict[bytes, int] = {}
    assert _exact_dedupe(t) == {i: ("exact_dup", f"p{seen[k]}") for i, k in enumerate(keys) if seen.setdefault(k, i) != i}


def _fail_on_three(i: int) -> int:
    if i == 3:
        raise ValueError("job 3 is bad")
    return i


def test_lean_map_passes_a_job_error_up_and_ends_its_workers() -> None:
    """A job that raises in a worker raises the same error from lean_map (not a hang, not a
    silent None), and the pool's processes are gone afterwards."""
    import multiprocessing

    before = {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(ValueError, match="job 3 is bad"):
        for _ in builder.executors.lean_map(_fail_on_three, range(8), 2):
            pass
    assert not {p.pid for p in multiprocessing.active_children()} - before
