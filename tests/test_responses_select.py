"""The responses merge's column-wise parts against per-row oracles: selection (the Selector it
replaced, kept here as the oracle), duplicate ids (a set of seen ids), the ledger's Arrow rows
(record() per row)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder.ledger import KEPT, QUARANTINED, Ledger
from builder.responses.merge import (
    ONLY_REPLY,
    RANK_COLS,
    duplicate_positions,
    rank_keys,
    rank_table,
    select,
    selected_by,
)
from builder.rows import PARSED_FEATURES


class OracleSelector:
    """The per-row Selector the merge used before (builder/responses/merge.py at f1d9839)."""

    def __init__(self, precedence: list[str], teachers: list[str]) -> None:
        self.keys = [*precedence, "sample_index", "generation_id"]
        order = {name: i for i, name in enumerate(teachers)}
        value: dict[str, Callable[[dict[str, Any]], Any]] = {
            "verified_pass": lambda r: r["verify_status"] != "pass",
            "finish_stop": lambda r: r.get("finish_reason") != "stop",
            "teacher_order": lambda r: order.get(r.get("teacher") or "", len(order)),
            "sample_index": lambda r: r["sample_index"] if r["sample_index"] is not None else 1 << 30,
            "generation_id": lambda r: r["generation_id"],
        }
        self._values = [value[k] for k in self.keys]
        self.best: dict[str, tuple[tuple[Any, ...], str, tuple[Any, ...] | None]] = {}

    def offer(self, row: dict[str, Any]) -> None:
        key = f"{row['prompt_id']}\x00{row['teacher_role']}"
        rank = tuple(v(row) for v in self._values)
        cur = self.best.get(key)
        if cur is None:
            self.best[key] = (rank, row["generation_id"], None)
        elif rank < cur[0]:
            self.best[key] = (rank, row["generation_id"], cur[0])
        elif cur[2] is None or rank < cur[2]:
            self.best[key] = (cur[0], cur[1], rank)

    def chosen(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for rank, gid, runner in self.best.values():
            if runner is None:
                out[gid] = "only_reply"
            else:
                out[gid] = next(k for k, a, b in zip(self.keys, rank, runner) if a != b)
        return out


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    schema = PARSED_FEATURES.arrow_schema
    return pa.table({c: pa.array([r.get(c) for r in rows], schema.field(c).type) for c in RANK_COLS})


def _new(rows: list[dict[str, Any]], precedence: list[str], teachers: list[str], parts: int = 1) -> dict[str, str]:
    t = _table(rows)
    cuts = sorted({0, t.num_rows, *(random.Random(parts).randrange(t.num_rows + 1) for _ in range(parts - 1))})
    ranked = pa.concat_tables([rank_table(t.slice(a, b - a), precedence, teachers) for a, b in zip(cuts, cuts[1:])]
                              or [rank_table(t, precedence, teachers)])  # fmt: skip
    by = selected_by(select(ranked), precedence).to_pylist()
    return {r["generation_id"]: b for r, b in zip(rows, by) if b is not None}


def _oracle(rows: list[dict[str, Any]], precedence: list[str], teachers: list[str]) -> dict[str, str]:
    sel = OracleSelector(precedence, teachers)
    for r in rows:
        sel.offer(r)
    return sel.chosen()


def _random_rows(rng: random.Random) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Few prompts, many rivals: ties on every key but the id, several teachers (some unlisted
    or absent), n > 1 samples (some without an index), every verify status and finish reason."""
    teachers = rng.sample(["a", "b", "c", "d"], rng.randint(0, 4))
    keys = ["verified_pass", "finish_stop", "teacher_order", "sample_index"]
    precedence = rng.sample(keys, rng.randint(0, 4))
    rows = []
    ids = rng.sample(range(10**6), rng.randint(1, 60))
    for n in ids:
        rows.append({
            "generation_id": f"{n:06x}" if rng.random() < 0.9 else f"g{n}",
            "prompt_id": f"p{rng.randrange(6)}",
            "teacher_role": rng.choice(["reasoning", "control"]),
            "teacher": rng.choice(["a", "b", "c", "d", "zz", None]),
            "sample_index": rng.choice([0, 0, 1, 2, 3, None]),
            "verify_status": rng.choice(["pass", "fail", "unverifiable", "error", None]),
            "finish_reason": rng.choice(["stop", "length", None]),
        })  # fmt: skip
    return rows, precedence, teachers


def test_selection_matches_the_per_row_selector_on_random_inputs() -> None:
    rng = random.Random(16)
    seen_by: set[str] = set()
    for trial in range(150):
        rows, precedence, teachers = _random_rows(rng)
        want = _oracle(rows, precedence, teachers)
        assert _new(rows, precedence, teachers, parts=1 + trial % 4) == want, (trial, precedence, teachers)
        seen_by.update(want.values())
    assert seen_by == {*rank_keys(["verified_pass", "finish_stop", "teacher_order"]), ONLY_REPLY}  # all exercised


def test_selection_fails_on_another_winner_or_reason() -> None:
    """The comparison above can fail: a different winner or `selected_by` is told apart."""
    row = {"prompt_id": "p", "teacher_role": "reasoning", "sample_index": 0, "finish_reason": "stop"}
    rows = [{**row, "generation_id": "g1", "teacher": "first", "verify_status": "fail"},
            {**row, "generation_id": "g2", "teacher": "second", "verify_status": "pass"}]  # fmt: skip
    assert _new(rows, ["verified_pass", "teacher_order"], ["first", "second"]) == {"g2": "verified_pass"}
    assert _new(rows, ["teacher_order", "verified_pass"], ["first", "second"]) == {"g1": "teacher_order"}
    assert _new(rows[:1], ["teacher_order"], ["first"]) == {"g1": ONLY_REPLY}
    same = [{**r, "teacher": "first", "verify_status": "pass"} for r in rows]
    assert _new(same, ["verified_pass", "teacher_order"], ["first"]) == {"g1": "generation_id"}


def test_selection_of_nothing() -> None:
    assert _new([], ["verified_pass"], []) == {}


def _write(tmp: Path, shards: list[list[str | None]]) -> list[Path]:
    files = []
    for i, ids in enumerate(shards):
        files.append(tmp / f"{i}.parquet")
        pq.write_table(pa.table({"generation_id": pa.array(ids, pa.string()), "x": list(range(len(ids)))}), files[-1])
    return files


def test_duplicate_positions_match_a_set_of_seen_ids(tmp_path: Path) -> None:
    rng = random.Random(3)
    for trial in range(30):
        shards = [[rng.choice([f"g{rng.randrange(40)}", None]) if rng.random() < 0.1 else f"g{rng.randrange(40)}"
                   for _ in range(rng.randrange(0, 30))] for _ in range(rng.randint(1, 4))]  # fmt: skip
        seen: set[str | None] = set()
        want = []
        for pos, gid in enumerate(g for s in shards for g in s):
            if gid in seen:
                want.append(pos)
            seen.add(gid)
        (tmp_path / str(trial)).mkdir()
        assert duplicate_positions(_write(tmp_path / str(trial), shards)).tolist() == want


def _fates(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        codes = rng.choice([[], [], ["verify_fail"], ["missing_think", "truncated"], [""]])
        out.append({"source": rng.choice(["s1", "s2", None]), "source_row_id": f"g{i}", "prompt_id": f"p{i % 7}",
                    "status": QUARANTINED if codes else KEPT, "reason": codes[0] if codes else "",
                    "detail": ",".join(codes)})  # fmt: skip
    return out


@pytest.mark.parametrize("spill", [False, True])
def test_ledger_arrow_rows_equal_per_row_records(tmp_path: Path, spill: bool) -> None:
    rng = random.Random(9)
    rows = _fates(rng, 500)
    old, new = Ledger("responses"), Ledger("responses", spill=tmp_path / "spill.parquet" if spill else None)
    for led in (old, new):  # rows recorded before and after keep their order
        led.enter("read", 1)
        led.enter("after", 1)
        led.record("read", KEPT, source="x", source_row_id="r0")
    for name, led in (("old", old), ("new", new)):
        led.enter("step", len(rows))
        for lo in range(0, len(rows), 64):
            chunk = rows[lo : lo + 64]
            if name == "old":
                for r in chunk:
                    led.record("step", r["status"], **{k: v for k, v in r.items() if k != "status"})
            else:
                led.record_arrow("step", pa.Table.from_pylist(chunk))
        led.record("after", QUARANTINED, reason="x")
    assert new.summary() == old.summary()
    a, b = old.close(tmp_path / "old"), new.close(tmp_path / "new")
    assert pq.read_table(b).equals(pq.read_table(a))
    assert not (tmp_path / "spill.parquet").exists()
    same, moved = Ledger("responses"), Ledger("responses")  # and the comparison fails when a row differs
    same.record_arrow("step", pa.Table.from_pylist(rows))
    rows[3] = {**rows[3], "detail": "other"}
    moved.record_arrow("step", pa.Table.from_pylist(rows))
    assert not moved.table().equals(same.table())


def test_selected_by_names() -> None:
    codes = np.array([-1, 0, 2, 3], np.int8)
    assert selected_by(codes, ["verified_pass"]).to_pylist() == [None, "verified_pass", "generation_id", ONLY_REPLY]
