"""The reply store's columnar index (builder/teachers/store_index.py): the same answers as reading
every line into Python objects (the pre-columnar reader, benchmarks/store_legacy.py), a parquet
cache that is used only while the `.idx` is unchanged, and vectorized scheduling."""

from __future__ import annotations

import hashlib
import logging
import random
import sys
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from builder.config.generate import TeacherConfig
from builder.teachers import store_index, store_keys
from builder.teachers.items import WorkItem
from builder.teachers.send import schedule
from builder.teachers.store import StoreWriter, latest, scan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import store_legacy  # noqa: E402

TEACHER = TeacherConfig.model_validate({"name": "r1", "kind": "openai", "model": "m", "sampling": {"max_tokens": 8, "truncation_ladder": [16]},
                                        "endpoints": [{"base_url": "http://127.0.0.1:1/v1"}]})  # fmt: skip


def _mixed(i: int) -> str:
    return f"g{i}"  # ids of several widths: the dictionary path


def _hex32(i: int) -> str:
    return hashlib.md5(str(i).encode()).hexdigest()  # one width, a multiple of 8: the fixed-width path


def _hex12(i: int) -> str:
    return _hex32(i)[:12]  # one width, padded to 16 bytes


def _fill(folder: Path, seed: int, segments: int = 3, n: int = 300, gid: Callable[[int], str] = _mixed) -> None:
    rnd = random.Random(seed)
    for k in range(segments):
        with StoreWriter(folder, f"t{k}") as w:
            for _ in range(n):
                g = gid(rnd.randrange(n))  # many ids get several records
                status = rnd.choice(["ok", "ok", "failed"])
                w.append({"generation_id": g, "status": status, "attempts": rnd.randrange(1, 4),
                          "error_code": rnd.choice(["timeout", "content_filter"]) if status == "failed" else "",
                          "finish_reason": rnd.choice(["stop", "length"]), "max_tokens": rnd.choice([8, 16]),
                          "prompt_tokens": rnd.randrange(50), "completion_tokens": rnd.randrange(50)},
                         run=f"r{k}", source="s", category="c")  # fmt: skip


def _items(n: int, gid: Callable[[int], str] = _mixed) -> list[WorkItem]:
    return [WorkItem(gid(i), "p", 0, [], None, None, "s", str(i), "c") for i in range(n + 20)]  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["mixed", "hex32", "hex12", "hex32-colliding"])
def test_same_latest_and_schedule_as_the_line_by_line_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             kind: str) -> None:  # fmt: skip
    gid = {"mixed": _mixed, "hex12": _hex12}.get(kind, _hex32)
    if kind == "hex32-colliding":  # every id one hash: the collision is caught and the dictionary path used
        monkeypatch.setattr(store_keys, "_hash", lambda words: np.zeros(len(words), np.uint64))
    _fill(tmp_path, 1, gid=gid)
    idx = sorted(tmp_path.glob("*.idx"))
    lines = idx[1].read_bytes().splitlines(keepends=True)
    idx[1].write_bytes(b"".join(lines[:5]) + b"garbage\n" + b"".join(lines[5:]) + b'{"g": "to')  # damage + torn tail
    new, old = latest(tmp_path), store_legacy.latest(tmp_path)
    assert (new._keys is not None) == (kind in ("hex32", "hex12"))
    assert len(new) == len(old) and set(new) == set(old)
    for g, want in old.items():
        got = new[g]
        assert (astuple(got.entry), got.attempts_total, got.records) == (
            astuple(want.entry),
            want.attempts_total,
            want.records,
        ), g
    assert sorted(e.seq for e in scan(tmp_path)) == sorted(e.seq for e in store_legacy.scan(tmp_path))
    a, b = _items(300, gid), _items(300, gid)
    for items in (a, b):  # a lookup of an id of another width (or an unknown one) is a miss, never an error
        items += [WorkItem(g, "p", 0, [], None, None, "s", g, "c") for g in ("x", "y" * 32, "z" * 12)]  # type: ignore[arg-type]
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


def test_fixed_width_keys_compare_whole_ids_not_only_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_keys, "_hash", lambda words: words[:, 0].copy())  # ids sharing 8 bytes collide
    same8 = ["aaaaaaaa11111111", "aaaaaaaa99999999"]
    t = pa.table({"g": same8, "q": [1, 2], "a": [1, 1]})
    assert store_keys.IdKeys.of(t["g"]).latest(t) is None  # two ids, one hash: the caller falls back
    keys = store_keys.IdKeys.of(pa.array(["aaaaaaaa11111111", "bbbbbbbb22222222"]))
    assert keys.find(pa.array(["aaaaaaaa11111111", "aaaaaaaa99999999", "bbbbbbbb22222222"])).tolist() == [0, -1, 1]
    assert keys.find(pa.array(["short"])) is None and store_keys.IdKeys.of(pa.array(["a", "bb"])) is None
