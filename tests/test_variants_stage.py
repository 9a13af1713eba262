"""The variants stage end to end: real curated prompts, real traces, the responses stage."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder.config.variants import VariantsConfig
from builder.ledger import KEPT
from builder.rows import VARIANT_FEATURES, tools_list
from builder.tokens import load_tokenizer
from builder.variants.registry import to_build
from builder.variants.stage import run_variants
from builder.workdir import WorkDir
from tests.fixtures.stages import SAMPLE, Planted, build_responded, sample_recipe

VARIANTS = to_build(None)  # the registry's default variants
# r1-mmlupro-pcmb: its answer key is the community response (the sample's one-prompt-three-ways rows).
COMMUNITY = {"gsm8k-train", "mbpp", "alpaca-zh", "tool-use-demo", "r1-mmlupro-pcmb"}


def _read(folder: Path) -> list[dict[str, Any]]:
    return [r for f in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def _jsonl(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLE / name).read_text(encoding="utf-8").splitlines() if line.strip()]


class Built:
    def __init__(self, planted: Planted, result: Any) -> None:
        self.planted, self.result = planted, result
        root = planted.work.root
        self.rows = {v: _read(root / "variants" / v) for v in VARIANTS}
        self.by_pid = {v: {r["prompt_id"]: r for r in rows} for v, rows in self.rows.items()}
        self.ledger = pq.read_table(root / "variants" / "ledger.parquet").to_pylist()
        parsed = _read(root / "responses" / "parsed")
        self.selected = {(r["prompt_id"], r["teacher_role"]): r for r in parsed if r["selected"]}


def _copy(src: WorkDir, dst: Path) -> WorkDir:
    for stage in ("curate", "responses"):
        shutil.copytree(src.root / stage, dst / stage)
    return WorkDir(dst)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    planted, _ = build_responded(tmp_path_factory.mktemp("variants") / "work")
    return Built(planted, run_variants(sample_recipe(), planted.work))


def _assistant(row: dict[str, Any]) -> str:
    return row["messages"][-1]["content"]


def test_variants_share_prompt_ids_and_prompt_turns(built: Built) -> None:
    for v, rows in built.rows.items():
        assert len(built.by_pid[v]) == len(rows), f"{v}: a prompt appears twice"
        for r in rows:
            assert r["variant"] == v
            p = built.planted.prompts[r["prompt_id"]]
            # The prompt's own turns, unchanged, then exactly one assistant turn.
            assert r["messages"][:-1] == p["messages"]
            assert r["messages"][-1]["role"] == "assistant"
            assert len(r["messages"]) == len(p["messages"]) + 1
            assert (r["source"], r["source_row_id"], r["tools"]) == (
                p["source"],
                p["source_row_id"],
                tools_list(p["tools_json"]),
            )
    both = set(built.by_pid["answer"]) & set(built.by_pid["full"]) & set(built.by_pid["think_summary"])
    assert len(both) >= 200
    for pid in both:
        ids = {built.by_pid[v][pid]["generation_id"] for v in ("answer", "full", "think_summary")}
        assert len(ids) == 1  # all three come from the one selected reply


def test_answer_is_the_teachers_answer_byte_for_byte(built: Built) -> None:
    answers = built.by_pid["answer"]
    for pid, row in answers.items():
        assert _assistant(row) == built.selected[(pid, "reasoning")]["answer"]
    # Independently of the parser: the source data's own answer fields, whitespace-trimmed.
    pcmb = {p["source_row_id"]: pid for pid, p in built.planted.prompts.items() if p["source"] == "r1-mmlupro-pcmb"}
    bangla = {p["source_row_id"]: pid for pid, p in built.planted.prompts.items() if p["source"] == "r1-bangla-mmlu"}
    checked = 0
    for t in _jsonl("pcmb_traces.jsonl"):
        if t["id"] in pcmb and pcmb[t["id"]] in answers:
            assert _assistant(answers[pcmb[t["id"]]]) == t["answer_text"].strip()
            full = _assistant(built.by_pid["full"][pcmb[t["id"]]])
            assert full == f"<think>\n{t['reasoning'].strip()}\n</think>\n\n{t['answer_text'].strip()}"
            checked += 1
    for t in _jsonl("bangla_r1.jsonl"):
        if t["id"] in bangla and bangla[t["id"]] in answers:
            assert _assistant(answers[bangla[t["id"]]]) == t["gen_ans"].strip()
            think = t["reason"].strip().removeprefix("<think>").removesuffix("</think>").strip()
            assert _assistant(built.by_pid["full"][bangla[t["id"]]]).startswith(f"<think>\n{think}\n</think>\n\n")
            checked += 1
    assert checked >= 150


def test_full_is_think_then_answer(built: Built) -> None:
    for pid, row in built.by_pid["full"].items():
        sel = built.selected[(pid, "reasoning")]
        assert _assistant(row) == f"<think>\n{sel['think']}\n</think>\n\n{sel['answer']}"


def test_think_summary_is_a_short_summary_then_the_exact_answer(built: Built) -> None:
    ratio = VariantsConfig().summarizer.max_ratio
    rows = built.by_pid["think_summary"]
    assert len(rows) >= 0.9 * len(built.by_pid["answer"])
    for pid, row in rows.items():
        sel = built.selected[(pid, "reasoning")]
        text, answer, think = _assistant(row), sel["answer"], sel["think"]
        assert text.endswith("\n\n" + answer)
        summary = text[: -len(answer) - 2]
        assert summary.strip() and len(summary) <= ratio * len(think)
        assert "<think>" not in summary and "</think>" not in summary
        assert row["summarizer"] == "extractive"
    zh = rows[built.planted.zh_kept_prompt]
    assert "细胞" in _assistant(zh).split("\n\n")[0]  # a Chinese thinking gives a Chinese summary


def test_original_only_where_the_community_answered(built: Built) -> None:
    originals = built.by_pid["original"]
    assert {r["source"] for r in originals.values()} == COMMUNITY
    tagged = 0
    for pid, p in built.planted.prompts.items():
        resp = p["original_response"]
        if resp and "<think>" not in resp and "</think>" not in resp:
            assert _assistant(originals[pid]) == resp
            assert originals[pid]["generation_id"] is None and originals[pid]["verify_reason"] == "community_response"
            assert originals[pid]["messages"][-1]["tool_calls"] == p["original_tool_calls"]
        elif not resp and p["original_tool_calls"]:  # a reply that only calls tools: its calls are the turn
            last = originals[pid]["messages"][-1]
            assert last["content"] == "" and last["tool_calls"] == p["original_tool_calls"]
        else:
            assert pid not in originals
            tagged += bool(resp)
    missing = {r["prompt_id"]: r["reason"] for r in built.ledger if r["step"] == "original" and r["status"] != KEPT}
    assert tagged > 0  # the tool-use demo has community replies that leak </think>
    assert sorted(set(missing.values())) == ["no_original_response", "think_tag_in_original"]
    assert sum(v == "think_tag_in_original" for v in missing.values()) == tagged
    for pid, p in built.planted.prompts.items():
        if p["source"] in {"r1-bangla-mmlu", "marco-o1-cot", "arena-hard-v2"}:
            assert missing[pid] == "no_original_response"


def test_control_only_for_arena_prompts(built: Built) -> None:
    control = built.by_pid["control"]
    arena = {pid for pid, p in built.planted.prompts.items() if p["source"] == "arena-hard-v2"}
    assert control and set(control) <= arena
    assert {pid for pid, _ in built.selected if (pid, "control") in built.selected} == set(control)
    answers = {t["uid"]: t["messages"][-1]["content"]["answer"] for t in _jsonl("arena_hard_o3mini_answers.jsonl")}
    for row in control.values():
        assert _assistant(row) == answers[row["source_row_id"]].strip()
        assert row["teacher_model"] == "o3-mini-2025-01-31"
    assert not set(built.by_pid["answer"]) & arena  # no reasoning replies were made for them


def test_multi_turn_tool_prompts_keep_their_turns(built: Built) -> None:
    multi = [r for r in built.rows["answer"] if r["source"] == "tool-use-demo" and r["num_turns"] >= 2]
    assert multi
    for r in multi:
        roles = [m["role"] for m in r["messages"]]
        assert roles[0] == "system" and roles.count("user") == r["num_turns"]
        assert roles[-2] in ("user", "tool") and roles[-1] == "assistant"
        assert "assistant" in roles[:-1]  # the earlier assistant turns survive
        # ... with their structured tool calls, and the tool definitions ride along in `tools`.
        calls = [json.loads(c) for m in r["messages"][:-1] for c in m["tool_calls"] or []]
        assert calls and all(c["type"] == "function" and isinstance(c["function"]["arguments"], dict) for c in calls)
        names = {json.loads(t)["function"]["name"] for t in r["tools"]}
        assert {c["function"]["name"] for c in calls} <= names


def test_every_ledger_step_accounts_for_every_prompt(built: Built) -> None:
    n = len(built.planted.prompts)
    assert [s for s, *_ in built.result.steps] == list(VARIANTS)
    for step, rows_in, kept, dropped in built.result.steps:
        assert rows_in == n and kept + sum(dropped.values()) == n
        assert kept == len(built.rows[step])
        ids = [r["prompt_id"] for r in built.ledger if r["step"] == step]
        assert sorted(ids) == sorted(built.planted.prompts)
        kept_ids = {r["prompt_id"] for r in built.ledger if r["step"] == step and r["status"] == KEPT}
        assert kept_ids == set(built.by_pid[step])


def test_schema_and_token_counts(built: Built) -> None:
    folder = built.planted.work.root / "variants" / "answer"
    assert pq.read_schema(next(folder.glob("part-*.parquet"))) == VARIANT_FEATURES.arrow_schema
    tok = load_tokenizer("qwen2.5")  # the `tokenizers` library, not the stage's tiktoken path
    for row in built.rows["answer"][:20]:
        assert row["assistant_student_tokens"] == len(tok.encode(_assistant(row), add_special_tokens=False).ids)
        assert row["student_tokens"] > row["assistant_student_tokens"]


def test_turns_ending_in_the_answer_count_as_a_whole(built: Built) -> None:
    # think_summary / full / answer turns are counted as head + the answer (counted once per prompt):
    # every row's figure equals the `tokenizers` count of the whole turn.
    tok = load_tokenizer("qwen2.5")
    rows = [r for v in ("answer", "think_summary", "full") for r in built.rows[v]]
    assert len(rows) > 30
    whole = tok.encode_batch_fast([_assistant(r) for r in rows], add_special_tokens=False)
    assert [r["assistant_student_tokens"] for r in rows] == [len(e.ids) for e in whole]


def test_too_long_for_student(built: Built, tmp_path: Path) -> None:
    tokens = sorted(r["student_tokens"] for r in built.rows["full"])
    limit = tokens[len(tokens) // 2]  # about half the `full` rows fit
    work = _copy(built.planted.work, tmp_path / "w")
    recipe = sample_recipe(variants={"build": ["full", "answer"]}, student={"max_tokens": limit})
    res = run_variants(recipe, work)
    full = {r["prompt_id"]: r for r in _read(work.root / "variants" / "full")}
    expected = {r["prompt_id"] for r in built.rows["full"] if r["student_tokens"] <= limit}
    assert set(full) == expected
    too_long = [
        r
        for r in pq.read_table(work.root / "variants/ledger.parquet").to_pylist()
        if r["step"] == "full" and r["reason"] == "too_long_for_student"
    ]
    assert len(too_long) == len(built.rows["full"]) - len(expected) > 0
    assert res.absent["full"]["too_long_for_student"] == len(too_long)


def test_bucketed_join_gives_the_same_rows(built: Built, tmp_path: Path) -> None:
    work = _copy(built.planted.work, tmp_path / "w")
    recipe = sample_recipe(variants={"bucket_rows": 60, "shard_rows": 100})
    res = run_variants(recipe, work)
    assert res.counts == built.result.counts
    for v in VARIANTS:
        rows = _read(work.root / "variants" / v)
        assert len(list((work.root / "variants" / v).glob("part-*.parquet"))) == max(1, -(-len(rows) // 100))
        key = lambda r: r["prompt_id"]  # noqa: E731
        assert sorted(rows, key=key) == sorted(built.rows[v], key=key)
    assert not (work.root / "variants" / ".buckets").exists()


def test_reasons_are_counted(built: Built) -> None:
    absent = Counter(r["reason"] for r in built.ledger if r["step"] == "answer" and r["status"] != KEPT)
    assert absent == Counter(built.result.absent["answer"])
    assert set(absent) == {"no_kept_reply"}


def test_summary_workers_come_from_the_recipe(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`variants.workers` is how many summary processes a bucket built in this process gets
    (1: none, the one-core task of a scaling run); the rows do not depend on it."""
    from builder.variants import stage, summary_job

    seen: list[int] = []
    real = summary_job.summaries

    def spy(*args: Any, workers: int = 2, **kw: Any) -> None:
        seen.append(workers)
        real(*args, workers=workers, **kw)

    monkeypatch.setattr(stage, "summaries", spy)
    work = _copy(built.planted.work, tmp_path / "w")
    res = run_variants(sample_recipe(variants={"workers": 1}), work)
    assert seen == [1]
    assert res.counts == built.result.counts
    for v in VARIANTS:
        assert _read(work.root / "variants" / v) == built.rows[v]
