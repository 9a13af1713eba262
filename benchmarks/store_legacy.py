"""The reply store's reading before the columnar index (commit 20416a7), kept as the baseline that
benchmarks/store.py measures in the same run: every index line becomes one Python object, the
latest per id is kept in a dict, and `schedule` looks each item up in it. Unchanged apart from
this docstring, the logger name and dropping the writer (which did not change).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from builder.teachers.items import PERMANENT_CODES
from builder.teachers.store_index import Entry, warn_bad_line  # the record layout is unchanged; only reading differs


def scan(folder: Path) -> Iterator[Entry]:
    """Every intact record in the store folder, in no particular order."""
    if not folder.is_dir():
        return
    for idx_path in sorted(folder.glob("*.idx")):
        data = idx_path.with_suffix(".jsonl")
        size = data.stat().st_size if data.is_file() else 0
        with idx_path.open("rb") as fh:
            for lineno, line in enumerate(fh, 1):
                try:
                    d = orjson.loads(line)
                    e = Entry(
                        d["g"], d["s"], d["c"], d["f"], d["m"], d["a"], d["pt"], d["ct"], d["rt"],
                        d["r"], d["src"], d["cat"], d["q"], data, d["o"], d["n"],
                    )  # fmt: skip
                    # Offsets and stamps are compared and summed: a wrong type is damage too.
                    if not (type(e.seq) is type(e.offset) is type(e.length) is int and type(e.generation_id) is str):
                        raise TypeError("wrong field types")
                except (ValueError, KeyError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
                    # A torn tail (a crash cut the last write: no newline) is expected after a
                    # kill; a whole line that does not parse is damage, so say so.
                    if line.endswith(b"\n"):
                        warn_bad_line(idx_path, lineno, exc)
                    continue
                if e.offset + e.length > size:
                    continue  # the index outlived its data line (crash between the two writes)
                yield e


@dataclass(slots=True)
class Latest:
    entry: Entry
    attempts_total: int  # every HTTP attempt for this id, over all records and runs
    records: int


def latest(folder: Path) -> dict[str, Latest]:
    out: dict[str, Latest] = {}
    for e in scan(folder):
        cur = out.get(e.generation_id)
        if cur is None:
            out[e.generation_id] = Latest(e, e.attempts, 1)
            continue
        cur.attempts_total += e.attempts
        cur.records += 1
        if e.seq > cur.entry.seq:
            cur.entry = e
    return out


def schedule(teacher: Any, items: list[Any], stored: dict[str, Latest]) -> list[Any]:
    """Items still to request, each with the max_tokens of its next attempt."""
    steps = teacher.sampling.steps()
    todo: list[Any] = []
    for it in items:
        got = stored.get(it.generation_id)
        if got is None:
            it.max_tokens = steps[0]
            todo.append(it)
            continue
        e = got.entry
        if e.status == "ok":
            nxt = [s for s in steps if s > e.max_tokens]
            if e.finish_reason == "length" and nxt and teacher.kind != "import":
                it.max_tokens = nxt[0]  # a recipe with a longer ladder picks up where it stopped
                todo.append(it)
            continue
        if e.error_code in PERMANENT_CODES:
            continue
        it.max_tokens = e.max_tokens or steps[0]
        todo.append(it)
    return todo
