"""The `kind: llm` summarizer end to end: real curated prompts and traces, the real teacher
backend (openai.AsyncOpenAI) against the loopback server, the reply store, the variants stage."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder.config.variants import VariantsConfig
from builder.errors import UserError
from builder.tables import VariantsSummary
from builder.variants.llm_summary import load_summary_template
from builder.variants.stage import config_of, run_variants
from builder.workdir import WorkDir
from tests.fixtures.stages import REPO, Planted, build_responded, sample_recipe
from tests.servers.openai_server import prompt_hash, run_server

MODEL = "qwen2.5-7b-instruct"
KEY_ENV = "SUMMARY_TEST_API_KEY"
KEY = "sk-summary-planted-7f3a9c2e41"  # the server demands it: proof that it was sent
TEMPLATE = REPO / "recipes" / "prompts" / "summarize_think.yaml"
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "fail_fast_after": 3, "concurrency": 16}


def _read(folder: Path) -> list[dict[str, Any]]:
    return [r for f in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def _recipe(base_url: str, **summarizer: Any) -> Any:
    teacher = {"kind": "openai", "model": MODEL, "endpoints": [{"base_url": base_url, "api_key_env": KEY_ENV}],
               "limits": FAST}  # fmt: skip
    return sample_recipe(variants={
        "build": ["answer", "think_summary"],
        # The server's one-sentence summaries are long next to the shortest hand-made thinking.
        # The loopback server's canned summary names no final result: the result-coverage gate
        # (on by default) would leave every checkable row out; its own test is test_summary_quality.py.
        "summarizer": {"kind": "llm", "max_ratio": 0.9, "teacher": teacher, "require_final_result": False, **summarizer},
    })  # fmt: skip


def _user_text(prompt: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(prompt["messages"]) if m["role"] == "user")


@dataclass
class Run:
    planted: Planted
    srv: Any
    selected: dict[str, dict[str, Any]]  # prompt_id -> selected reasoning reply
    contradicted: str  # prompt ids planted with a scripted reply
    refused: str
    requests: int  # the server's count after the first run
    rows: dict[str, dict[str, Any]]  # think_summary rows by prompt_id
    ledger: list[dict[str, Any]]
    heard: list[tuple[str, int | None, int | None]]  # what run_variants told its progress callback


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    planted, _ = build_responded(tmp_path_factory.mktemp("llm-summary") / "work")
    parsed = _read(planted.work.root / "responses" / "parsed")
    selected = {r["prompt_id"]: r for r in parsed if r["selected"] and r["teacher_role"] == "reasoning"}
    boxed = [r for r in selected.values() if "\\boxed{" in (r["answer"] or "") and len(r["think"] or "") > 150]
    contradicted, refused = boxed[0], boxed[1]
    with pytest.MonkeyPatch.context() as mp, run_server(scenario="plain", models=[MODEL], api_key=KEY) as srv:
        mp.setenv(KEY_ENV, KEY)
        srv.control(
            script=[
                # A summary that boxes another value than the teacher's answer.
                {"match": contradicted["think"][:120], "steps": [{"content": "Adding it up gives \\boxed{-4242}."}]},
                {"match": refused["think"][:120], "steps": [{"status": 400}]},  # a permanent failure
            ]
        )
        heard: list[tuple[str, int | None, int | None]] = []
        run_variants(_recipe(srv.base_url), planted.work, progress=lambda s, d=None, t=None: heard.append((s, d, t)))
        root = planted.work.root
        rows = {r["prompt_id"]: r for r in _read(root / "variants" / "think_summary")}
        ledger = pq.read_table(root / "variants" / "ledger.parquet").to_pylist()
        yield Run(planted, srv, selected, contradicted["prompt_id"], refused["prompt_id"],
                  srv.stats()["requests_total"], rows, ledger, heard)  # fmt: skip


def _reasons(run: Run) -> dict[str, str]:
    return {r["prompt_id"]: r["reason"] for r in run.ledger if r["step"] == "think_summary" and r["reason"]}


def test_rows_are_the_llm_summary_then_the_exact_answer(run: Run) -> None:
    tpl = load_summary_template(TEMPLATE)
    assert len(run.rows) >= 0.5 * len(run.selected)
    for pid, row in run.rows.items():
        sel = run.selected[pid]
        text = row["messages"][-1]["content"]
        assert text.endswith("\n\n" + sel["answer"])
        summary = text[: -len(sel["answer"]) - 2]
        # The server's summary shape: it came from the model, not from the extractive path.
        assert summary.startswith("The reasoning examines ") and summary.endswith("settles on the answer.")
        assert (row["summarizer"], row["summary_template_id"], row["summary_template_hash"]) == (
            MODEL, "summarize_think", tpl.hash,
        )  # fmt: skip
        assert row["generation_id"] == sel["generation_id"]  # the row still names the reasoning reply
    assert len(tpl.hash) == 64


def test_the_request_is_our_prompt_with_question_and_thinking(run: Run) -> None:
    tpl = load_summary_template(TEMPLATE)
    by_prompt = run.srv.stats()["by_prompt"]
    pid = next(iter(run.rows))
    sent = tpl.messages(_user_text(run.planted.prompts[pid]), run.selected[pid]["think"])
    assert by_prompt.get(prompt_hash(sent), 0) >= 1
    assert sent[0]["role"] == "system" and run.selected[pid]["think"] in sent[1]["content"]
    # One request per reasoning reply with a thinking; none for the rest. (A few tool-use
    # prompts share their last user turn and hand-made thinking: same messages, own requests.)
    wanted = sum(1 for r in run.selected.values() if (r["think"] or "").strip())
    assert run.requests == sum(by_prompt.values()) == wanted


def test_checks_and_failed_requests_leave_the_prompt_out_with_a_reason(run: Run) -> None:
    reasons = _reasons(run)
    assert reasons[run.contradicted] == "summary_unfaithful_answer"
    assert reasons[run.refused] == "summary_failed:bad_request"
    # The server summarizes in English: the Chinese prompt's summary fails the language check.
    assert reasons[run.planted.zh_kept_prompt] == "summary_unfaithful_language"
    kept = {r["prompt_id"] for r in run.ledger if r["step"] == "think_summary" and r["status"] == "kept"}
    assert kept == set(run.rows)
    assert not ({run.contradicted, run.refused, run.planted.zh_kept_prompt} & set(run.rows))


def test_the_llm_summarizer_reports_its_requests_as_they_are_stored(run: Run) -> None:
    counts = [(d, t) for s, d, t in run.heard if s == f"summarizing thinking ({MODEL})"]
    assert counts and counts[-1][0] == counts[-1][1] == run.requests  # every request settled, ok or failed
    assert any(s == "building variant rows" for s, _, _ in run.heard)


def test_rerun_requests_nothing_and_gives_the_same_rows(run: Run) -> None:
    res = run_variants(_recipe(run.srv.base_url), run.planted.work)
    assert run.srv.stats()["requests_total"] == run.requests  # stored summaries and failures: no request
    again = {r["prompt_id"]: r for r in _read(run.planted.work.root / "variants" / "think_summary")}
    assert again == run.rows
    assert res.counts["think_summary"] == len(run.rows)
    summary = run.planted.work.read_summary(VariantsSummary)
    acc = summary.summarizer_accounting if summary else None
    assert acc is not None and acc.sent_this_run == 0 and acc.total.records == run.requests


def test_the_api_key_is_written_nowhere(run: Run) -> None:
    files = [p for p in run.planted.work.root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in files)  # the summary store is there and was searched
    leaks = [p for p in files if KEY.encode() in p.read_bytes()]
    assert leaks == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_endpoint_is_one_clear_line(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for stage in ("curate", "responses"):
        shutil.copytree(run.planted.work.root / stage, tmp_path / stage)
    monkeypatch.setenv(KEY_ENV, KEY)
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(UserError, match="cannot reach") as err:
        run_variants(_recipe(url), WorkDir(tmp_path))
    assert "\n" not in str(err.value) and url in str(err.value) and "variants.summarizer" in str(err.value)


def test_missing_key_is_a_user_error(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for stage in ("curate", "responses"):
        shutil.copytree(run.planted.work.root / stage, tmp_path / stage)
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(UserError, match=f"{KEY_ENV}.*not set"):
        run_variants(_recipe(run.srv.base_url), WorkDir(tmp_path))


def test_teacher_config_is_validated_with_the_teacher_schema(run: Run) -> None:
    cfg = config_of(_recipe(run.srv.base_url))
    t = cfg.summarizer.teacher
    assert t is not None and (t.name, t.sampling.temperature, t.sampling.max_tokens) == ("summarizer", 0.0, 1024)
    assert t.vllm.reasoning_parser is None
    custom = VariantsConfig.model_validate(
        {"summarizer": {"kind": "llm", "teacher": {"kind": "vllm", "model": "m", "sampling": {"temperature": 0.3}}}}
    )
    assert custom.summarizer.teacher is not None and custom.summarizer.teacher.sampling.temperature == 0.3
    for teacher, where in (
        ({"kind": "openai"}, "variants.summarizer.teacher.model: required"),
        (
            {"kind": "openai", "model": "m", "endpoints": [], "tempreature": 1},
            "variants.summarizer.teacher.tempreature",
        ),
        ({"kind": "openai", "model": "m"}, "variants.summarizer.teacher: .*endpoints"),
        ({"kind": "import", "model": "m", "imports": [{"source": "s", "answer": "a"}]}, "openai or vllm"),
    ):
        with pytest.raises(UserError, match=where):
            sample_recipe(variants={"summarizer": {"kind": "llm", "teacher": teacher}})
    with pytest.raises(UserError, match="variants.*summarizer.teacher is required"):
        sample_recipe(variants={"summarizer": {"kind": "llm"}})


def test_template_hash_follows_its_content(tmp_path: Path) -> None:
    tpl = load_summary_template(TEMPLATE)
    edited = tmp_path / "summarize_think.yaml"
    edited.write_text(TEMPLATE.read_text(encoding="utf-8").replace("version: 2", "version: 3"), encoding="utf-8")
    assert load_summary_template(edited).hash != tpl.hash
    msgs = tpl.messages("Why {thinking}? \\boxed{}", "Think {question}")
    assert "Why {thinking}? \\boxed{}" in msgs[-1]["content"] and "Think {question}" in msgs[-1]["content"]
    edited.write_text("id: summarize_think\nversion: 1\nsystem: s\nuser: 'no fields'\n", encoding="utf-8")
    with pytest.raises(UserError, match="question"):
        load_summary_template(edited)
