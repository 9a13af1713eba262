"""Row ids that repeat within a source (`fields.id` not unique; a glob's files' line numbers did
before its ids named their file, tests/test_glob_row_ids.py):
they become source_row_id, which pairs imported replies with prompts. Curate says so in one
warning line, and no prompt is ever stored with another row's reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from builder.curate.stage import run_curate
from builder.generate.stage import run_generate
from builder.recipe import load_recipe
from builder.workdir import WorkDir
from tests.generate_helpers import write_recipe

# Source `s` repeats id 7: its first row is the same question as source `a` (higher priority), so
# exact dedupe keeps `a`'s and only the second id-7 row ("the largest planet") stays a prompt of `s`.
ROWS_S = [
    {"id": "7", "q": "What is two plus two?", "think": "2+2", "ans": "The answer is 4."},
    {"id": "7", "q": "Name the largest planet.", "think": "planets", "ans": "Jupiter."},
    {"id": "8", "q": "Name a prime number.", "think": "primes", "ans": "2"},
]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _build(tmp: Path, sources: list[dict[str, Any]], imp: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Curate and import; ({prompt text: (status, reply or error)}, curate's and generate's warnings)."""
    teacher = {"name": "r1", "kind": "import", "model": "m", "imports": [imp]}
    recipe = load_recipe(write_recipe(tmp, {"teachers": [teacher]}, sources=sources))
    recipe.curate.near_dedupe.enabled = False
    recipe.curate.decontaminate.enabled = False
    work = WorkDir(tmp / "w")
    warnings = list(run_curate(recipe, work).warnings)
    warnings += run_generate(recipe, work).warnings
    prompts = {r["prompt_id"]: r for f in (tmp / "w/curate/prompts").glob("*.parquet") for r in pq.read_table(f).to_pylist()}
    out = {}
    for f in (tmp / "w/generate/replies").glob("*.parquet"):
        for r in pq.read_table(f).to_pylist():
            p = prompts[r["prompt_id"]]
            if p["source"] == imp["source"]:
                out[p["messages"][-1]["content"]] = (r["status"], r["content"] or r["error_code"])
    return out, warnings


def _sources(tmp: Path) -> list[dict[str, Any]]:
    _write(tmp / "a.jsonl", [{"q": "What is two plus two?"}])
    _write(tmp / "s.jsonl", ROWS_S)
    return [{"name": "a", "path": str(tmp / "a.jsonl"), "fields": {"prompt": "q"}, "category": "chat", "priority": 0},
            {"name": "s", "path": str(tmp / "s.jsonl"), "fields": {"prompt": "q", "id": "id"}, "category": "chat",
             "priority": 1}]  # fmt: skip


def test_a_repeated_id_is_one_curate_warning_and_never_pairs_the_wrong_row(tmp_path: Path) -> None:
    """Only the second id-7 row survived curate, and the import (the source's own rows) gave it the
    first id-7 row's reply, stored ok: "Name the largest planet." -> "The answer is 4."; curate said
    nothing. The row's text now decides among the rows sharing the id."""
    out, warnings = _build(tmp_path, _sources(tmp_path), {"source": "s", "think": "think", "answer": "ans"})
    assert out == {"Name the largest planet.": ("ok", "Jupiter."), "Name a prime number.": ("ok", "2")}
    (line,) = [w for w in warnings if "fields.id" in w]
    assert line.startswith("source s: 1 row(s) repeat the `fields.id` (id) of an earlier row (1 id(s); first: '7' "
                           f"at {tmp_path / 's.jsonl'}:2)"), line


def test_a_reply_file_keyed_by_a_repeated_id_pairs_nothing(tmp_path: Path) -> None:
    """A separate reply file keyed by `id_field` cannot tell which id-7 row a reply answers, even when
    curate kept one of them: that prompt is a failed bad_import row saying why, not an ok reply."""
    _write(tmp_path / "replies.jsonl", [{"rid": "7", "a": "The answer is 4."}, {"rid": "8", "a": "2"}])
    imp = {"source": "s", "path": str(tmp_path / "replies.jsonl"), "id_field": "rid", "answer": "a"}
    out, _ = _build(tmp_path, _sources(tmp_path), imp)
    assert out == {"Name the largest planet.": ("failed", "bad_import"), "Name a prime number.": ("ok", "2")}


def test_a_source_of_several_files_pairs_each_row_with_its_own_reply(tmp_path: Path) -> None:
    """Without `fields.id` a row's id is its line: two files of one glob both have a line 1, and both
    prompts were failed as "id '1' is on 2 different prompts … make its ids unique" (there are no ids)."""
    _write(tmp_path / "parts/a.jsonl", [{"q": "Name the largest planet.", "ans": "Jupiter."}])
    _write(tmp_path / "parts/b.jsonl", [{"q": "Name a prime number.", "ans": "2"}])
    src = {"name": "p", "path": str(tmp_path / "parts/*.jsonl"), "fields": {"prompt": "q"}, "category": "chat"}
    out, warnings = _build(tmp_path, [src], {"source": "p", "answer": "ans"})
    assert out == {"Name the largest planet.": ("ok", "Jupiter."), "Name a prime number.": ("ok", "2")}
    assert not [w for w in warnings if "fields.id" in w]  # no `fields.id`: nothing the user could fix


def test_unique_ids_give_no_warning(tmp_path: Path) -> None:
    rows = [dict(r, id=str(i)) for i, r in enumerate(ROWS_S)]
    _write(tmp_path / "u.jsonl", rows)
    src = {"name": "u", "path": str(tmp_path / "u.jsonl"), "fields": {"prompt": "q", "id": "id"}, "category": "chat"}
    out, warnings = _build(tmp_path, [src], {"source": "u", "answer": "ans"})
    assert len(out) == 3 and {s for s, _ in out.values()} == {"ok"}
    assert not [w for w in warnings if "fields.id" in w or "repeated" in w], warnings


def test_an_empty_id_is_the_rows_own_line_for_the_import_too(tmp_path: Path) -> None:
    """Curate gives a row whose `fields.id` is "" its line number as source_row_id; the import took ""
    as the id, so neither prompt found its reply and both were stored as an expected not_in_import."""
    rows = [{"id": "", "q": "Name the largest planet.", "ans": "Jupiter."}, {"id": "", "q": "Name a prime.", "ans": "2"}]
    _write(tmp_path / "e.jsonl", rows)
    src = {"name": "e", "path": str(tmp_path / "e.jsonl"), "fields": {"prompt": "q", "id": "id"}, "category": "chat"}
    out, _ = _build(tmp_path, [src], {"source": "e", "answer": "ans"})
    assert out == {"Name the largest planet.": ("ok", "Jupiter."), "Name a prime.": ("ok", "2")}


def test_reply_files_split_in_parts_read_the_source_once(tmp_path: Path, monkeypatch: Any) -> None:
    """One import entry per reply file (a dataset shipped in parts) read the whole source again for
    each entry, to find its ids on several prompts: once per source is enough; the pairing stays."""
    import builder.generate.import_backend as backend

    passes: list[str] = []
    real = backend.mapped_rows
    monkeypatch.setattr(backend, "mapped_rows", lambda recipe, src: passes.append(src.name) or real(recipe, src))
    _write(tmp_path / "replies-1.jsonl", [{"rid": "7", "a": "The answer is 4."}])
    _write(tmp_path / "replies-2.jsonl", [{"rid": "8", "a": "2"}])
    teacher = {"name": "r1", "kind": "import", "model": "m", "imports": [
        {"source": "s", "path": str(tmp_path / f"replies-{k}.jsonl"), "id_field": "rid", "answer": "a"} for k in (1, 2)]}
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [teacher]}, sources=_sources(tmp_path)))
    recipe.curate.near_dedupe.enabled = recipe.curate.decontaminate.enabled = False
    work = WorkDir(tmp_path / "w")
    run_curate(recipe, work)
    run_generate(recipe, work)
    assert passes == ["s"]
    got = sorted((r["status"], r["content"] or r["error_code"]) for f in (tmp_path / "w/generate/replies").glob("*.parquet")
                 for r in pq.read_table(f).to_pylist())  # fmt: skip
    assert got == [("failed", "bad_import"), ("failed", "not_in_import"), ("ok", "2")], got
