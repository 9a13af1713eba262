"""The reply store's columnar index (builder/teachers/store_index.py): the same answers as reading
every line into Python objects (the pre-columnar reader, benchmarks/store_legacy.py), a parquet
cache that is used only while the `.idx` is unchanged, and vectorized scheduling."""

from __future__ import annotations

import logging
import random
import sys
from dataclasses import astuple
from pathlib import Path

import pytest

from builder.config.generate import TeacherConfig
from builder.teachers import store_index
from builder.teachers.items import WorkItem
from builder.teachers.send import schedule
from builder.teachers.store import StoreWriter, latest, scan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import store_legacy  # noqa: E402

TEACHER = TeacherConfig.model_validate({"name": "r1", "kind": "openai", "model": "m", "sampling": {"max_tokens": 8, "truncation_ladder": [16]},
                                        "endpoints": [{"base_url": "http://127.0.0.1:1/v1"}]})  # fmt: skip


def _fill(folder: Path, seed: int, segments: int = 3, n: int = 300) -> None:
    rnd = random.Random(seed)
    for k in range(segments):
        with StoreWriter(folder, f"t{k}") as w:
            for _ in range(n):
                g = f"g{rnd.randrange(n)}"  # many ids get several records
                status = rnd.choice(["ok", "ok", "failed"])
                w.append({"generation_id": g, "status": status, "attempts": rnd.randrange(1, 4),
                          "error_code": rnd.choice(["timeout", "content_filter"]) if status == "failed" else "",
                          "finish_reason": rnd.choice(["stop", "length"]), "max_tokens": rnd.choice([8, 16]),
                          "prompt_tokens": rnd.randrange(50), "completion_tokens": rnd.randrange(50)},
                         run=f"r{k}", source="s", category="c")  # fmt: skip


def _items(n: int) -> list[WorkItem]:
    return [WorkItem(f"g{i}", "p", 0, [], None, None, "s", str(i), "c") for i in range(n + 20)]  # type: ignore[arg-type]


def test_same_latest_and_schedule_as_the_line_by_line_reader(tmp_path: Path) -> None:
    _fill(tmp_path, 1)
    idx = sorted(tmp_path.glob("*.idx"))
    lines = idx[1].read_bytes().splitlines(keepends=True)
    idx[1].write_bytes(b"".join(lines[:5]) + b"garbage\n" + b"".join(lines[5:]) + b'{"g": "to')  # damage + torn tail
    new, old = latest(tmp_path), store_legacy.latest(tmp_path)
    assert len(new) == len(old) and set(new) == set(old)
    for g, want in old.items():
        got = new[g]
        assert (astuple(got.entry), got.attempts_total, got.records) == (
            astuple(want.entry),
            want.attempts_total,
            want.records,
        ), g
    assert sorted(e.seq for e in scan(tmp_path)) == sorted(e.seq for e in store_legacy.scan(tmp_path))
    a, b = _items(300), _items(300)
    todo_new = [(it.generation_id, it.max_tokens) for it in schedule(TEACHER, a, new)]
    todo_old = [(it.generation_id, it.max_tokens) for it in store_legacy.schedule(TEACHER, b, old)]
    assert todo_new == todo_old and len(todo_new) > 20  # the 20 never-stored items and retryable ones


def test_cache_is_used_only_while_the_index_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    monkeypatch.setattr(store_index, "CACHE_MIN_ROWS", 1)
    _fill(tmp_path, 2, segments=2, n=50)
    first = latest(tmp_path)
    caches = sorted(tmp_path.glob("*.idx.parquet"))
    assert len(caches) == 2
    # An unchanged index is read from its cache: the JSON parsers are not called.
    monkeypatch.setattr(store_index, "_parse_fast", lambda body: pytest.fail("parsed despite a valid cache"))
    monkeypatch.setattr(store_index, "_parse_slow", lambda p, body: pytest.fail("parsed despite a valid cache"))
    again = latest(tmp_path)
    assert {g: again[g].entry for g in again} == {g: first[g].entry for g in first}
    monkeypatch.undo()
    monkeypatch.setattr(store_index, "CACHE_MIN_ROWS", 1)
    # A record appended to a cached segment (a live writer) is seen: the stamp no longer matches.
    (idx,) = [p for p in tmp_path.glob("*.idx") if p.name.startswith("t0")]
    data = idx.with_suffix(".jsonl")
    off = data.stat().st_size
    line = b'{"generation_id":"fresh","status":"ok"}\n'
    with data.open("ab") as fh:
        fh.write(line)
    with idx.open("ab") as fh:
        fh.write(b'{"g":"fresh","s":"ok","c":"","f":"stop","m":8,"a":1,"pt":0,"ct":0,"rt":0,"r":"x","src":"s",'
                 b'"cat":"c","q":%d,"o":%d,"n":%d}\n' % (2**62, off, len(line)))  # fmt: skip
    assert latest(tmp_path)["fresh"].entry.offset == off
    count = len(list(scan(tmp_path)))
    # A hand edit is seen too, with the damage warned about once per line.
    idx.write_bytes(idx.read_bytes().replace(b'"o":0,', b'"o":"0",', 1))
    with caplog.at_level(logging.WARNING, logger="builder.teachers.store"):
        edited = latest(tmp_path)
    assert "fresh" in edited and len(list(scan(tmp_path))) == count - 1
    assert any(":1: unreadable reply-index line skipped" in r.getMessage() for r in caplog.records)
    # A damaged cache is rebuilt, never trusted.
    for c in tmp_path.glob("*.idx.parquet"):
        c.write_bytes(b"not parquet")
    assert set(latest(tmp_path)) == set(edited)


def test_an_empty_or_missing_store(tmp_path: Path) -> None:
    assert len(latest(tmp_path / "nothing")) == 0
    items = _items(3)
    assert [it.max_tokens for it in schedule(TEACHER, items, latest(tmp_path / "nothing"))] == [8] * len(items)
