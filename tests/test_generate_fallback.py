"""Teachers that fit real builds: per-teacher `sources:` and `mode: fallback`, counted at the
loopback OpenAI-compatible server (every request the build would pay for shows there)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder import tables
from builder.curate.stage import run_curate
from builder.generate.stage import run_generate
from builder.recipe import load_recipe
from builder.tables import GenerateSummary
from builder.workdir import WorkDir
from tests.generate_helpers import openai_teacher, write_recipe
from tests.servers.openai_server import ServerHandle, run_server

CHAT = "POST /v1/chat/completions"


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerHandle]:
    with run_server(tokens_per_reply=60) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _reset(srv: ServerHandle) -> None:
    srv.control(reset=True, config={"api_key": None, "models": ["deepseek-reasoner", "deepseek-chat"]})


def _source(tmp: Path, name: str, texts: list[str]) -> dict[str, Any]:
    f = tmp / f"{name}.jsonl"
    f.write_text("".join(json.dumps({"id": f"{name}-{i}", "q": t}) + "\n" for i, t in enumerate(texts)))
    return {"name": name, "path": str(f), "fields": {"prompt": "q", "id": "id"}, "category": "chat"}


def _build(tmp: Path, sources: list[dict[str, Any]], teachers: list[dict[str, Any]]) -> tuple[WorkDir, Any]:
    recipe = load_recipe(write_recipe(tmp, {"teachers": teachers}, sources=sources))
    recipe.curate.near_dedupe.enabled = False
    recipe.curate.decontaminate.enabled = False
    work = WorkDir(tmp / "w")
    run_curate(recipe, work)
    run_generate(recipe, work)
    return work, recipe


def _rows(work: WorkDir) -> list[dict[str, Any]]:
    return [r for f in work.shards(tables.REPLIES) for r in pq.read_table(f).to_pylist()]


def test_live_fallback_asks_only_for_prompts_the_import_did_not_answer(srv: ServerHandle, tmp_path: Path) -> None:
    texts = [f"Question number {i}: what is {i} plus {i}?" for i in range(10)]
    src = _source(tmp_path, "demo", texts)
    answered = [0, 2, 3, 5, 8, 9]
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps({"rid": f"demo-{i}", "t": "sum it", "a": str(2 * i)}) + "\n" for i in answered))
    imp = {"name": "public", "kind": "import", "model": "deepseek-ai/DeepSeek-R1",
           "imports": [{"source": "demo", "path": str(traces), "id_field": "rid", "think": "t", "answer": "a"}]}
    live = openai_teacher(srv.base_url, name="r1-live", mode="fallback")
    work, _ = _build(tmp_path, [src], [imp, live])
    assert srv.stats()["by_path"].get(CHAT, 0) == len(texts) - len(answered)  # paid only for the others
    rows = _rows(work)
    live_rows = [r for r in rows if r["endpoint_kind"] == "openai"]
    assert sorted(texts.index(t) for t in _texts(work, live_rows)) == [1, 4, 6, 7]
    assert all(r["status"] == "ok" for r in live_rows)
    summary = work.read_summary(GenerateSummary)
    assert summary is not None
    runs = {t.name: t for t in summary.teachers}
    assert runs["r1-live"].covered_by_earlier == 6 and runs["r1-live"].items == 4
    # A re-run asks nothing, and a paid reply stays exported even once the import covers its
    # prompt too (prompt 1 is now in the traces): nothing paid for is thrown away.
    traces.write_text("".join(json.dumps({"rid": f"demo-{i}", "t": "sum it", "a": str(2 * i)}) + "\n"
                              for i in [*answered, 1]))  # fmt: skip
    work, _ = _build(tmp_path, [src], [imp, live])
    assert srv.stats()["by_path"].get(CHAT, 0) == 4
    live_rows = [r for r in _rows(work) if r["endpoint_kind"] == "openai"]
    assert sorted(texts.index(t) for t in _texts(work, live_rows)) == [1, 4, 6, 7]


def _texts(work: WorkDir, rows: list[dict[str, Any]]) -> list[str]:
    prompts = {r["prompt_id"]: r["messages"][-1]["content"] for f in work.shards(tables.PROMPTS)
               for r in pq.read_table(f).to_pylist()}  # fmt: skip
    return [prompts[r["prompt_id"]] for r in rows]


def test_fallback_after_a_live_teacher_retries_only_truncated_or_failed_prompts(srv: ServerHandle, tmp_path: Path) -> None:
    texts = [f"Tell me fact {i}." for i in range(6)] + [f"Tell me fact {i}.\n@@scenario: length_partial" for i in (6, 7)]
    src = _source(tmp_path, "demo", texts)
    first = openai_teacher(srv.base_url, name="r1", sampling={"max_tokens": 4096})
    backup = openai_teacher(srv.base_url, name="r1-backup", model="deepseek-chat", mode="fallback")
    work, _ = _build(tmp_path, [src], [first, backup])
    assert srv.stats()["by_path"].get(CHAT, 0) == len(texts) + 2  # the backup got the two cut replies only
    backup_rows = [r for r in _rows(work) if r["teacher_model"] == "deepseek-chat"]
    assert len(backup_rows) == 2 and all("length_partial" in t for t in _texts(work, backup_rows))


def test_sources_include_and_exclude(srv: ServerHandle, tmp_path: Path) -> None:
    a = _source(tmp_path, "alpha", [f"alpha prompt {i}" for i in range(3)])
    b = _source(tmp_path, "beta", [f"beta prompt {i}" for i in range(4)])
    only_a = openai_teacher(srv.base_url, name="only-a", sources={"include": ["alpha"]})
    not_a = openai_teacher(srv.base_url, name="not-a", model="deepseek-chat", role="control",
                           sources={"exclude": ["alpha"]})  # fmt: skip
    work, _ = _build(tmp_path, [a, b], [only_a, not_a])
    assert srv.stats()["by_path"].get(CHAT, 0) == 3 + 4
    rows = _rows(work)
    assert {t.split()[0] for t in _texts(work, [r for r in rows if r["teacher_model"] == "deepseek-reasoner"])} == {"alpha"}
    assert {t.split()[0] for t in _texts(work, [r for r in rows if r["teacher_model"] == "deepseek-chat"])} == {"beta"}


def _selected(tmp: Path, teachers: list[dict[str, Any]], precedence: list[str] | None) -> list[dict[str, Any]]:
    from builder.responses.stage import run_responses

    tmp.mkdir(parents=True)
    src = _source(tmp, "demo", [f"Name a colour, case {i}." for i in range(4)])
    recipe = load_recipe(write_recipe(tmp, {"teachers": teachers, **({"precedence": precedence} if precedence else {})},
                                      sources=[src]))  # fmt: skip
    recipe.curate.near_dedupe.enabled = False
    recipe.curate.decontaminate.enabled = False
    recipe.responses.workers = 1
    work = WorkDir(tmp / "w")
    run_curate(recipe, work)
    run_generate(recipe, work)
    run_responses(recipe, work)
    return [r for f in work.shards(tables.PARSED) for r in pq.read_table(f).to_pylist()]


def test_precedence_between_two_reasoning_teachers_is_recorded_per_row(srv: ServerHandle, tmp_path: Path) -> None:
    a = openai_teacher(srv.base_url, name="a")
    b = openai_teacher(srv.base_url, name="b", model="deepseek-chat")
    rows = _selected(tmp_path / "1", [a, b], None)
    assert len(rows) == 8 and {r["teacher"] for r in rows} == {"a", "b"}
    chosen = [r for r in rows if r["selected"]]
    # Nothing to verify against: verified_pass ties, so teacher order decides, on every row.
    assert len(chosen) == 4 and {(r["teacher"], r["selected_by"]) for r in chosen} == {("a", "teacher_order")}
    assert all(r["selected_by"] is None for r in rows if not r["selected"])
    rows = _selected(tmp_path / "2", [b, a], ["teacher_order"])
    assert {(r["teacher"], r["selected_by"]) for r in rows if r["selected"]} == {("b", "teacher_order")}


def test_selector_prefers_a_verified_pass_over_teacher_order() -> None:
    import pyarrow as pa

    from builder.responses.merge import rank_table, select, selected_by

    def row(gid: str, teacher: str, status: str, finish: str = "stop") -> dict[str, Any]:
        return {"generation_id": gid, "prompt_id": "p", "teacher_role": "reasoning", "teacher": teacher,
                "sample_index": 0, "verify_status": status, "finish_reason": finish}  # fmt: skip

    def chosen(rows: list[dict[str, Any]], precedence: list[str], teachers: list[str]) -> dict[str, str]:
        by = selected_by(select(rank_table(pa.Table.from_pylist(rows), precedence, teachers)), precedence)
        return {r["generation_id"]: b for r, b in zip(rows, by.to_pylist()) if b}

    rows = [row("g1", "first", "fail"), row("g2", "second", "pass"), row("g3", "second", "fail")]
    assert chosen(rows, ["verified_pass", "teacher_order"], ["first", "second"]) == {"g2": "verified_pass"}
    rows = [row("g1", "first", "pass", "length"), row("g2", "second", "pass")]
    assert chosen(rows, ["finish_stop", "teacher_order"], ["first", "second"]) == {"g2": "finish_stop"}
    assert chosen([row("g9", "second", "pass")], ["teacher_order"], ["first", "second"]) == {"g9": "only_reply"}
