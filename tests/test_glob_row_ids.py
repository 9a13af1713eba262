"""A glob source without `fields.id`: every file's line (or row) numbers start at 1, so the row ids
name their file (its path under the glob's base); a single file's ids stay the plain numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from builder import tables
from builder.curate import read
from builder.curate.stage import run_curate
from builder.generate.stage import run_generate
from builder.ledger import Ledger
from builder.recipe import load_recipe
from builder.workdir import WorkDir
from tests.generate_helpers import write_recipe


def _lines(*rows: Any) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def _files(tmp: Path) -> list[dict[str, Any]]:
    for sub, texts in (("a", ["What is 2 plus 2?", "Name a prime."]), ("b", ["What is 3 plus 3?", "Name a colour."])):
        (tmp / "data" / sub).mkdir(parents=True)
        rows: list[Any] = [{"q": t} for t in texts]
        (tmp / "data" / sub / "x.jsonl").write_text(_lines(rows[0], "{broken" if sub == "a" else "", rows[1]))
    (tmp / "pq").mkdir()
    for k in (1, 2):
        pq.write_table(pa.table({"q": [f"Parquet question {k}.{i}?" for i in range(2)]}), tmp / "pq" / f"p{k}.parquet")
    (tmp / "one.jsonl").write_text(_lines({"q": "A single file's first row?"}, {"q": "And its second?"}))
    return [
        {"name": "globbed", "path": "data/**/*.jsonl", "fields": {"prompt": "q"}},
        {"name": "pq", "path": "pq/p*.parquet", "fields": {"prompt": "q"}},
        {"name": "single", "path": "one.jsonl", "fields": {"prompt": "q"}},
    ]


@pytest.mark.parametrize("workers", [1, 3])
def test_a_glob_source_s_row_ids_are_unique_and_name_their_file(tmp_path: Path, workers: int,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """data/a/x.jsonl and data/b/x.jsonl both had rows "1" and "3": the published source_row_id repeated
    and a reply keyed by it could pair with either file's prompt."""
    if workers > 1:  # every file the pool's way, in blocks of a line or two
        monkeypatch.setattr(read, "PARALLEL_FROM_BYTES", 1)
        monkeypatch.setattr(read, "BLOCK_BYTES", 30)
        monkeypatch.setattr(read, "BLOCK_ROWS", 1)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"name": "t", "version": "0.0.1", "sources": _files(tmp_path)}))
    ledger = Ledger("curate")
    table = read.read_all(load_recipe(tmp_path / "r.yaml"), ledger, [], workers=workers)
    rows = pq.read_table(ledger.close(tmp_path / "ledger")).to_pylist()
    ids = {(r["source"], r["status"]): sorted(x["source_row_id"] for x in rows if (x["source"], x["status"]) ==
                                              (r["source"], r["status"])) for r in rows}  # fmt: skip
    assert ids == {
        ("globbed", "kept"): ["a/x.jsonl:1", "a/x.jsonl:3", "b/x.jsonl:1", "b/x.jsonl:3"],
        ("globbed", "quarantined"): ["a/x.jsonl:2"],
        ("pq", "kept"): ["p1.parquet#0", "p1.parquet#1", "p2.parquet#0", "p2.parquet#1"],
        ("single", "kept"): ["1", "2"],
    }
    assert sorted(table.column("source_row_id").to_pylist()) == sorted(
        i for (_, status), got in ids.items() if status == "kept" for i in got)


def test_replies_pair_with_a_glob_source_s_rows_by_their_file(tmp_path: Path) -> None:
    """A reply file keyed by the source's row ids pairs each reply with its file's row, and the import
    of the source's own rows reads the same ids curate gave."""
    _files(tmp_path)
    src = {"name": "globbed", "path": str(tmp_path / "data/**/*.jsonl"), "fields": {"prompt": "q"}, "category": "math"}
    replies = tmp_path / "replies.jsonl"
    replies.write_text(_lines({"rid": "b/x.jsonl:1", "a": "6"}, {"rid": "1", "a": "4 or 6: which file?"}))
    (tmp_path / "data" / "a" / "x.jsonl").write_text(_lines({"q": "What is 2 plus 2?", "a": "4"}))
    teachers = [{"name": "file", "kind": "import", "model": "m",
                 "imports": [{"source": "globbed", "path": str(replies), "id_field": "rid", "answer": "a"}]},
                {"name": "own", "kind": "import", "model": "m", "imports": [{"source": "globbed", "answer": "a"}]}]  # fmt: skip
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": teachers}, sources=[src]))
    recipe.curate.near_dedupe.enabled = recipe.curate.decontaminate.enabled = False
    work = WorkDir(tmp_path / "w")
    run_curate(recipe, work)
    run_generate(recipe, work)
    text = {p["prompt_id"]: p["messages"][-1]["content"] for f in work.shards(tables.PROMPTS)
            for p in pq.read_table(f).to_pylist()}  # fmt: skip
    got = {(r["teacher"], text[r["prompt_id"]]): (r["status"], r["content"])
           for f in work.shards(tables.REPLIES) for r in pq.read_table(f).to_pylist()}  # fmt: skip
    assert got[("file", "What is 3 plus 3?")] == ("ok", "6")
    assert got[("file", "What is 2 plus 2?")][0] == "failed"  # "1" is no row's id: never file a's line 1
    assert got[("own", "What is 2 plus 2?")] == ("ok", "4")
