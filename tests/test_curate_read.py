"""Curate's read step in parallel (builder/curate/read.py): a big JSONL file cut into blocks and read
by the driver and a lean pool side by side gives the serial read's table, ledger and warnings,
row for row; a killed worker costs time, not rows; the per-row shortcuts equal what they replace."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import sys
import threading
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import regex
import yaml

import builder.executors
from builder.curate import read
from builder.curate.normalize import dedupe_key, normalize_text, visible_chars
from builder.ledger import Ledger
from builder.recipe import load_recipe
from builder.sources.readers import jsonl_blocks, parquet_blocks, read_jsonl_block, read_local, read_parquet_block

DATA = Path(__file__).resolve().parents[1] / "data/sample"


def _texts(name: str, field: str, n: int) -> list[str]:
    rows = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()[:n]]
    return [r[field] for r in rows]


def _messy_lines() -> list[bytes]:
    """Real prompts (English and Chinese) with every kind of line a reader must place exactly."""
    en, zh = _texts("gsm8k_train.jsonl", "question", 60), _texts("alpaca_zh.jsonl", "instruction", 40)
    good = [json.dumps({"q": t, "id": f"r{i}"}, ensure_ascii=i % 2 == 0).encode() for i, t in enumerate(en + zh)]
    bad = [
        b'{"q": "unterminated',  # bad_json
        b'{"q": "caf\xe9 au lait"}',  # bad_utf8
        b"[1, 2]",  # not_an_object
        b"",  # blank
        b"   \t",  # blank
        json.dumps({"q": "x" * 2000}).encode(),  # too_long (max 1500 below)
        json.dumps({"q": "a b c"}).encode(),  # too_short (3 visible < 5)
        json.dumps({"q": " \u200b\u00a0 "}).encode(),  # empty after normalization
        json.dumps({"other": "no prompt"}).encode(),  # missing_field
        json.dumps({"q": "Line one\r\nline two\rline three", "id": "crlf-in-text"}).encode(),
        json.dumps({"q": en[0].upper(), "id": "dup"}).encode(),  # kept here: exact dedupe is a later step
    ]
    lines = good[:]
    rng = random.Random(7)
    for b in bad * 3:
        lines.insert(rng.randrange(1, len(lines)), b)
    lines = [ln + b"\r" if i % 9 == 4 else ln for i, ln in enumerate(lines)]  # CRLF line ends
    return lines


def _write_sources(tmp: Path) -> list[dict[str, Any]]:
    lines = _messy_lines()
    (tmp / "big.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))  # a BOM; the last line has no newline
    (tmp / "small.jsonl").write_bytes(b"\n".join(lines[:12]) + b"\n")
    gz = gzip.compress(b"\n".join(lines) + b"\n")
    (tmp / "whole.jsonl.gz").write_bytes(gz)
    (tmp / "cut.jsonl.gz").write_bytes(gz[: len(gz) * 2 // 3])  # ends mid-stream
    (tmp / "empty.jsonl").write_bytes(b"")
    # too long, too short, empty, null among real prompts: parquet rows have no bad bytes nor lines
    texts = [*_texts("gsm8k_train.jsonl", "question", 30), "x" * 2000, "a b", "\u200b", "", None,
             *_texts("alpaca_zh.jsonl", "instruction", 20)]  # fmt: skip
    pq.write_table(pa.table({"q": texts, "meta": [{"k": [i, i + 1]} for i in range(len(texts))]}), tmp / "rows.parquet",
                   row_group_size=7)  # fmt: skip
    fields = {"prompt": "q", "id": "id"}
    return [
        {"name": "big", "path": "big.jsonl", "fields": fields},
        {"name": "pq", "path": "rows.parquet", "fields": {"prompt": "q", "category": "meta.k.0"},
         "category_map": {"0": "math"}, "priority": 1},
        {"name": "globbed", "path": "*.jsonl*", "fields": {"prompt": "q"}, "priority": 2},
        {"name": "limited", "path": "big.jsonl", "fields": fields, "limit": 50, "priority": 3},
    ]


def _recipe(tmp: Path) -> Any:
    data = {"name": "t", "version": "0.0.1", "sources": _write_sources(tmp),
            "curate": {"normalize": {"max_prompt_chars": 1500, "min_prompt_chars": 5}}}  # fmt: skip
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(data))
    return load_recipe(tmp / "recipe.yaml")


def _read(recipe: Any, workers: int) -> tuple[pa.Table, pa.Table, list[str]]:
    ledger, warnings = Ledger("curate"), []
    table = read.read_all(recipe, ledger, warnings, workers=workers)
    out = ledger.close(recipe.path.parent / f"ledger-{workers}-{random.randrange(1 << 30)}")
    return table, pq.read_table(out), warnings


@pytest.fixture()
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every JSONL file goes the parallel way, cut into blocks of a few lines.
    monkeypatch.setattr(read, "PARALLEL_FROM_BYTES", 1)
    monkeypatch.setattr(read, "BLOCK_BYTES", 700)
    monkeypatch.setattr(read, "BLOCK_ROWS", 10)


def _spy_pool(monkeypatch: pytest.MonkeyPatch, kill_at: int = 0) -> list[int]:
    """Count the jobs the pool got; `kill_at`: SIGKILL its workers right after that job is handed over."""
    jobs: list[int] = []
    real = builder.executors.lean_executor

    def spy(*a: Any, **k: Any) -> Any:
        pool = real(*a, **k)
        submit = pool.submit

        def counted(*sa: Any, **sk: Any) -> Any:
            fut = submit(*sa, **sk)
            jobs.append(1)
            if len(jobs) == kill_at:
                for p in list(pool._processes.values()):  # type: ignore[attr-defined]
                    os.kill(p.pid, signal.SIGKILL)
            return fut

        pool.submit = counted  # type: ignore[method-assign]
        return pool

    monkeypatch.setattr(builder.executors, "lean_executor", spy)
    return jobs


def test_parallel_read_equals_serial_read_row_for_row(tmp_path: Path, tiny_blocks: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    recipe = _recipe(tmp_path)
    t1, l1, w1 = _read(recipe, workers=1)
    jobs = _spy_pool(monkeypatch)
    switch = sys.getswitchinterval()
    t2, l2, w2 = _read(recipe, workers=3)
    assert len(jobs) > 10  # the pool did read blocks (the driver read the rest)
    assert sys.getswitchinterval() == switch  # lowered while the pool read, and given back
    assert t1.schema == t2.schema and t1.num_rows == t2.num_rows
    assert t1.to_pylist() == t2.to_pylist()
    assert l1.to_pylist() == l2.to_pylist()
    assert w1 == w2
    # the input really has what the test is about, and locations are the file's own lines
    reasons = {r["reason"] for r in l1.to_pylist() if r["status"] == "quarantined"}
    assert {"bad_json", "bad_utf8", "not_an_object", "too_long", "too_short", "empty_prompt", "missing_field",
            "truncated_file"} <= reasons  # fmt: skip
    assert any("cut.jsonl.gz" in w and "mid-stream" in w for w in w1) and any("empty.jsonl is empty" in w for w in w1)
    raw = (tmp_path / "big.jsonl").read_bytes().split(b"\n")
    for r in l1.to_pylist():
        if r["status"] == "quarantined" and r["location"].startswith(f"{tmp_path / 'big.jsonl'}:"):
            line = raw[int(r["location"].rsplit(":", 1)[1]) - 1]
            assert r["reason"] != "bad_utf8" or b"\xe9" in line
            assert r["reason"] != "too_long" or len(line) > 1500
    kept = t1.filter(pc.equal(t1["source"], "globbed")).to_pylist()
    crlf = [r for r in kept if r["messages"][0]["content"].startswith("Line one")]
    assert crlf and crlf[0]["messages"][0]["content"] == "Line one\nline two\nline three"


# 1: while the pool still starts its workers (a later submit can start one the break never ends);
# 5: once every worker runs, as an OOM kill mid-file
@pytest.mark.parametrize("kill_at", [1, 5])
def test_a_killed_worker_neither_hangs_nor_loses_rows(tmp_path: Path, tiny_blocks: None, kill_at: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    recipe = _recipe(tmp_path)
    serial = _read(recipe, workers=1)
    jobs = _spy_pool(monkeypatch, kill_at=kill_at)
    got: list[Any] = []
    th = threading.Thread(target=lambda: got.append(_read(recipe, workers=3)), daemon=True)
    th.start()
    th.join(60)
    assert not th.is_alive(), "the read hung after its worker was killed"
    assert len(jobs) >= kill_at and got
    table, ledger, warnings = got[0]
    assert table.to_pylist() == serial[0].to_pylist()
    assert ledger.to_pylist() == serial[1].to_pylist()
    assert warnings == serial[2]


def test_blocks_cut_at_line_ends_and_know_their_first_line(tmp_path: Path) -> None:
    lines = [b'{"q": "%d"}' % i for i in range(40)] + [b'{"q": "' + b"y" * 300 + b'"}', b"", b'{"q": "last"}']
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\n".join(lines))  # no newline at the end
    for size in (1, 17, 64, 10_000):
        blocks = list(jsonl_blocks(path, size))
        assert b"".join(d for _, d in blocks) == path.read_bytes()
        for first, data in blocks:
            assert data.endswith(b"\n") or data is blocks[-1][1]
            assert data.split(b"\n")[0] == lines[first - 1]
        items = [it for first, data in blocks for it in read_jsonl_block(path, first, data)]
        whole = list(read_local(_recipe_for(tmp_path, "f.jsonl"), _recipe_for(tmp_path, "f.jsonl").sources[0], []))
        assert [(i.location, i.row_id, getattr(i, "data", None)) for i in items] == \
               [(i.location, i.row_id, getattr(i, "data", None)) for i in whole]  # fmt: skip
    assert len(list(jsonl_blocks(path, 17))) > 20


def test_gzip_blocks_end_with_the_serial_reader_s_bad_row(tmp_path: Path) -> None:
    data = b"".join(b'{"q": "row %d %s"}\n' % (i, os.urandom(8).hex().encode()) for i in range(3000))
    gz = gzip.compress(data)
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gz[: len(gz) // 2])
    recipe = _recipe_for(tmp_path, "c.jsonl.gz")
    whole = list(read_local(recipe, recipe.sources[0], []))
    blocks = list(jsonl_blocks(path, 2000))
    items = [it for b in blocks[:-1] for it in read_jsonl_block(path, *b)] + [blocks[-1]]
    assert whole[-1].reason == "truncated_file" and len(whole) > 100  # type: ignore[union-attr]
    assert [(i.location, i.row_id) for i in items] == [(i.location, i.row_id) for i in whole]


def _recipe_for(tmp: Path, name: str) -> Any:
    data = {"name": "t", "version": "0.0.1", "sources": [{"name": "s", "path": name, "fields": {"prompt": "q"}}]}
    (tmp / "r.yaml").write_text(yaml.safe_dump(data))
    return load_recipe(tmp / "r.yaml")


def test_parquet_runs_of_row_groups_read_as_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"q": [f"row {i}" for i in range(100)], "n": [[i] * (i % 3) for i in range(100)]}), path,
                   row_group_size=9)  # fmt: skip
    recipe = _recipe_for(tmp_path, "p.parquet")
    whole = [(i.location, i.row_id, i.data) for i in read_local(recipe, recipe.sources[0], [])]  # type: ignore[union-attr]
    for rows in (1, 10, 40, 1000):
        runs = list(parquet_blocks(path, rows))
        assert [g for _, gs in runs for g in gs] == list(range(12))
        got = [(i.location, i.row_id, i.data) for first, gs in runs for i in read_parquet_block(path, first, gs)]  # type: ignore[union-attr]
        assert got == whole and len(got) == 100


def test_bad_utf8_is_told_apart_from_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    # valid JSON but for one byte; broken JSON with a bad byte; a surrogate in UTF-8 form; plain bad JSON
    path.write_bytes(b'{"q": "ok \xff"}\n{"q": \xc3\n{"q": "\xed\xa0\x80"}\n{"q": nope}\n')
    recipe = _recipe_for(tmp_path, "u.jsonl")
    got = [(i.location.rsplit(":", 1)[1], i.reason, i.detail[:11]) for i in read_local(recipe, recipe.sources[0], [])]
    assert got == [("1", "bad_utf8", "byte 10 is "), ("2", "bad_utf8", "byte 6 is n"),
                   ("3", "bad_utf8", "byte 7 is n"), ("4", "bad_json", got[3][2])]  # fmt: skip


# normalize_text before its fast paths, the oracle the shortcut must equal
_OLD_INVISIBLE = regex.compile(r"[\u00AD\u180E\u200B\u2060\uFEFF]")
_OLD_CONTROL = regex.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]")
_OLD_SPACES = regex.compile(r"[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]")


def _old_normalize(text: str, form: str) -> str:
    if text.isascii():
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text.translate({c: None for c in (*range(0, 9), 11, 12, *range(14, 32), 127)}).strip()
    text = unicodedata.normalize(form, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    return _OLD_SPACES.sub(" ", _OLD_CONTROL.sub("", _OLD_INVISIBLE.sub("", text))).strip()


def _adversarial_texts() -> list[str]:
    rng = random.Random(3)
    pool = [chr(c) for c in range(0, 0x3100)] + ["\U0001f600", "\u3000", "\ufeff", "\u2028", "\u2029", "\r\n"]
    out = [f"a{c}b {c} c{c}" for c in pool]  # every character of the first blocks, inside and at the ends
    out += ["".join(rng.choice(pool) for _ in range(rng.randrange(1, 40))) for _ in range(3000)]
    out += ["".join(rng.choice(" \t\r\n\x0b\x0c\x1c\x1fab") for _ in range(rng.randrange(1, 20))) for _ in range(2000)]
    return out + _texts("alpaca_zh.jsonl", "instruction", 100) + _texts("gsm8k_train.jsonl", "question", 100)


@pytest.mark.parametrize("form", ["NFC", "NFKC"])
def test_normalize_text_fast_paths_equal_the_plain_substitutions(form: str) -> None:
    for t in _adversarial_texts():
        assert normalize_text(t, form) == _old_normalize(t, form), repr(t)


def test_visible_chars_counts_what_split_and_join_count_on_normalized_text() -> None:
    for t in _adversarial_texts():
        n = normalize_text(t)
        assert visible_chars(n) == len("".join(n.split())), repr(n)


def test_min_chars_one_needs_no_count(tmp_path: Path) -> None:
    # read skips the count at the default minimum: any user turn left non-empty has a visible char
    for t in _adversarial_texts():
        n = normalize_text(t)
        assert not n or visible_chars(n) >= 1, repr(n)


def test_dedupe_key_shortcut_equals_casefold_split_join() -> None:
    rng = random.Random(5)
    raw = ["".join(rng.choice(" \t\n\r\x0b\x0c\x1c\x1f\x00aBß") for _ in range(rng.randrange(0, 12))) for _ in range(5000)]
    for t in [*_adversarial_texts(), *raw, "Plain words here", " lead", "trail ", "two  spaces", "ÀB c"]:
        for text in (t, normalize_text(t)):
            msgs = [{"role": "system", "content": "Sys", "tool_calls": None}, {"role": "user", "content": text, "tool_calls": None}]
            oracle = "\x1e".join(m["role"] + "\x1f" + " ".join(m["content"].casefold().split()) for m in msgs)
            assert dedupe_key(msgs) == oracle, repr(text)


def test_a_pool_that_cannot_start_a_worker_leaves_the_read_to_the_driver(tmp_path: Path, tiny_blocks: None,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A worker killed while submit forks another raised OSError (EBADF from the forkserver) out
    of the read, not BrokenProcessPool: curate died with "internal error" on an OOM kill."""
    recipe = _recipe(tmp_path)
    serial = _read(recipe, workers=1)
    real = builder.executors.lean_executor

    def failing(*a: Any, **k: Any) -> Any:
        pool = real(*a, **k)

        def submit(*sa: Any, **sk: Any) -> Any:
            raise OSError(9, "Bad file descriptor")

        pool.submit = submit  # type: ignore[method-assign]
        return pool

    monkeypatch.setattr(builder.executors, "lean_executor", failing)
    table, ledger, warnings = _read(recipe, workers=3)
    assert table.to_pylist() == serial[0].to_pylist() and ledger.to_pylist() == serial[1].to_pylist()
    assert warnings == serial[2]
