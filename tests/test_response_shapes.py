"""The reply normalizer on hand-labelled fixtures and on every row of the real traces."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.reasoning_format import MARCO, R1, SKYTHOUGHT, Delimiters, resolve_delimiters
from builder.responses import shapes
from builder.responses.shapes import normalize
from tests.corpus import corpus_dir

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
CORPUS = corpus_dir()
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real corpus not found at {CORPUS}")


# ---------- fixtures ----------


def decode(value: Any) -> Any:
    """Build inputs JSON cannot hold literally: {"$repeat"}, {"$concat"}, {"$bytes_hex"}."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "$repeat":
            return arg[0] * arg[1]
        if key == "$concat":
            return "".join(decode(part) for part in arg)
        if key == "$bytes_hex":
            return bytes.fromhex(arg)
    return value


def fixture_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    cases = []
    for path in sorted(FIXTURES.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            given = {k: decode(v) for k, v in case["input"].items()}
            cases.append((f"{path.stem}:{case['name']}", given, case["expected"]))
    return cases


CASES = fixture_cases()


def parse_fixture(given: dict[str, Any]) -> shapes.Parsed:
    return normalize(
        given.get("content"),
        given.get("reasoning_content"),
        given.get("reasoning"),
        given.get("finish_reason"),
        resolve_delimiters(given.get("reasoning_format")),
    )


def test_enough_hand_labelled_fixtures() -> None:
    assert len(CASES) >= 30
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "given", "expected"), CASES, ids=[c[0] for c in CASES])
def test_fixture_parse(name: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    parsed = parse_fixture(given)
    assert parsed.shape == expected["shape"]
    assert parsed.think == decode(expected["think"])
    assert parsed.answer == decode(expected["answer"])
    assert sorted(parsed.codes) == sorted(expected["codes"])
    assert parsed.shape in shapes.SHAPES


# ---------- unit checks ----------


def test_answer_is_a_byte_identical_slice() -> None:
    answer = "  \n**Answer:** C\r\n\n| a | b |\n|---|---|\n\u200bend \t"
    parsed = normalize(f"<think>t</think>{answer}")
    assert parsed.answer is not None and parsed.answer in answer
    assert parsed.answer == answer.strip().strip("\u200b")[: len(parsed.answer)]
    assert parsed.answer.startswith("**Answer:**") and parsed.answer.endswith("end")


def test_strip_set_covers_all_unicode_whitespace() -> None:
    every = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert every <= set(shapes._STRIP)


def test_presets_and_recipe_forms() -> None:
    assert resolve_delimiters(None) is R1
    assert resolve_delimiters("SkyThought") is SKYTHOUGHT
    assert resolve_delimiters("marco") is MARCO
    custom = {"think_open": "<t>", "think_close": "</t>", "answer_open": "<a>", "answer_close": "</a>"}
    assert resolve_delimiters(custom) == Delimiters("<t>", "</t>", "<a>", "</a>")
    with pytest.raises(ValueError, match="unknown reasoning_format 'o1'"):
        resolve_delimiters("o1")
    with pytest.raises(ValueError, match="lacks"):
        resolve_delimiters({"think_open": "<t>"})
    with pytest.raises(ValueError, match="distinct"):
        Delimiters("<t>", "<t>", "<a>", "</a>")


def test_huge_reply_is_rejected_without_scanning() -> None:
    big = "<think>" + "x" * 5_000_000
    start = time.perf_counter()
    for _ in range(100):
        parsed = normalize(big)
    assert parsed.shape == shapes.TOO_LARGE
    assert time.perf_counter() - start < 0.05  # O(1): len() only


# ---------- real traces ----------


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def real_replies() -> dict[str, list[dict[str, Any]]]:
    """Every row of the staged reasoning traces, as stored replies (+ prompt)."""
    data: dict[str, list[dict[str, Any]]] = {}
    bangla = CORPUS / "r1-bangla-mmlu-reasoning" / "r1_bangla_mmlu_reasoning.jsonl"
    # Stored as an R1 completion without the API split: think block, then the answer.
    data["r1_bangla"] = [
        {"content": r["reason"] + "\n\n" + r["gen_ans"], "prompt": r["formated_question"], "format": "r1"}
        for r in _jsonl(bangla)
    ]
    pcmb = CORPUS / "r1-mmlupro-pcmb-traces" / "pcmb_traces.jsonl"
    data["r1_pcmb"] = [
        {"content": r["answer_text"], "reasoning_content": r["reasoning"], "prompt": r["question"], "format": "r1"}
        for r in _jsonl(pcmb)
    ]
    llama = json.loads(
        (CORPUS / "r1distill-llama8b-thinking-llms-interp" / "responses_deepseek-r1-distill-llama-8b.json").read_text()
    )
    # full_response is raw template text; the generation starts after the assistant tag.
    data["llama8b"] = [
        {"content": r["full_response"].split("<｜Assistant｜>", 1)[1], "prompt": r["question"], "format": "r1"}
        for r in llama
    ]
    for name in ("math500_sky-t1-27b", "aime24_sky-t1-14b"):
        rows = _jsonl(CORPUS / "skythought-skyt1-outputs" / f"{name}.jsonl")
        data[name] = [{"content": r["code"][0], "prompt": r["question"], "format": "skythought"} for r in rows]
    marco = json.loads((CORPUS / "marco-o1-cot-demo" / "CoT_demo.json").read_text())
    data["marco"] = [{"content": r["response"], "prompt": r["instruction"], "format": "marco"} for r in marco]
    tool_turns = []
    for r in _jsonl(CORPUS / "llamafactory-demo-data" / "reason_tool_use_demo_50.jsonl"):
        prompt = None
        for m in r["messages"]:
            parts = m["content"]
            if m["role"] == "user":
                prompt = " ".join(p["value"] for p in parts if p["type"] == "text")
            elif m["role"] == "assistant":
                # A typed 'reasoning' part is what a router returns as `reasoning`.
                thinking = "\n".join(p["value"] for p in parts if p["type"] == "reasoning") or None
                text = "\n".join(p["value"] for p in parts if p["type"] != "reasoning")
                tool_turns.append({"content": text, "reasoning": thinking, "prompt": prompt, "format": "r1"})
    data["tool_use"] = tool_turns
    return data


_CACHE: dict[str, Any] = {}


def corpus() -> dict[str, list[dict[str, Any]]]:
    if "data" not in _CACHE:
        _CACHE["data"] = real_replies()
    return _CACHE["data"]


def parse_row(row: dict[str, Any]) -> shapes.Parsed:
    return normalize(
        row.get("content"), row.get("reasoning_content"), row.get("reasoning"), None, resolve_delimiters(row["format"])
    )


@needs_corpus
def test_row_counts_match_source_notes() -> None:
    sizes = {k: len(v) for k, v in corpus().items()}
    assert sizes["r1_bangla"] == 4846 and sizes["r1_pcmb"] == 413 and sizes["llama8b"] == 500
    assert sizes["math500_sky-t1-27b"] == 500 and sizes["aime24_sky-t1-14b"] == 30 and sizes["marco"] == 125


@needs_corpus
def test_r1_traces_split_cleanly() -> None:
    rows = corpus()["r1_bangla"]
    raw = [json.loads(line) for line in (CORPUS / "r1-bangla-mmlu-reasoning" / "r1_bangla_mmlu_reasoning.jsonl").open()]
    parsed = [parse_row(r) for r in rows]
    assert Counter(p.shape for p in parsed) == {"inline_tags": 4846}
    for p, r in zip(parsed, raw, strict=True):
        # The answer must come back exactly as R1 wrote it (modulo outer whitespace).
        assert p.answer == r["gen_ans"].strip()
        assert p.think == r["reason"].removeprefix("<think>").removesuffix("</think>").strip()
    pcmb = [parse_row(r) for r in corpus()["r1_pcmb"]]
    assert Counter(p.shape for p in pcmb) == {"reasoning_field": 413}
    assert all(p.answer == r["content"].strip() for p, r in zip(pcmb, corpus()["r1_pcmb"], strict=True))


@needs_corpus
def test_llama8b_unclosed_count_matches_rows_without_close_tag() -> None:
    rows = corpus()["llama8b"]
    lacking_close = sum("</think>" not in r["content"] for r in rows)
    parsed = [parse_row(r) for r in rows]
    assert lacking_close == 226
    assert sum("unclosed_think" in p.codes for p in parsed) == lacking_close
    assert Counter(p.shape for p in parsed) == {"inline_tags": 500 - lacking_close, "unclosed_think": lacking_close}
    assert all(p.answer is None for p in parsed if p.shape == "unclosed_think")


def _sky_expectation(text: str) -> str:
    """Independent, simple classification of a Sky-T1 generation by tag counts."""
    o, c = text.count("<|begin_of_thought|>"), text.count("<|end_of_thought|>")
    so = text.count("<|begin_of_solution|>")
    if o == 0 and c == 0:
        return "answer_only"
    if c == 0:
        return "unclosed_think"
    if o == 0:
        return "inline_no_open"
    return "think_answer_tags" if so else "inline_tags"


@needs_corpus
@pytest.mark.parametrize("name", ["math500_sky-t1-27b", "aime24_sky-t1-14b"])
def test_skythought_shapes_match_tag_counts(name: str) -> None:
    rows = corpus()[name]
    parsed = [parse_row(r) for r in rows]
    assert [p.shape for p in parsed] == [_sky_expectation(r["content"]) for r in rows]
    unclosed_solution = sum(
        "<|begin_of_solution|>" in r["content"] and "<|end_of_solution|>" not in r["content"] for r in rows
    )
    assert sum("unclosed_answer" in p.codes for p in parsed) == unclosed_solution
    if name.startswith("math500"):  # SOURCE.md: 194 well-formed of 500
        assert Counter(p.shape for p in parsed)["think_answer_tags"] == 194


@needs_corpus
def test_marco_outputs_and_replacement_chars() -> None:
    rows = corpus()["marco"]
    parsed = [parse_row(r) for r in rows]
    assert all(p.shape == "think_answer_tags" for p in parsed)
    assert sum("unclosed_answer" in p.codes for p in parsed) == sum("</Output>" not in r["content"] for r in rows) == 2
    with_fffd = sum("\ufffd" in r["content"] for r in rows)
    assert with_fffd == 5  # SOURCE.md
    assert sum("replacement_chars" in p.codes for p in parsed) == with_fffd
    assert not any(p.shape == shapes.BINARY for p in parsed)


@needs_corpus
def test_tool_use_reasoning_parts() -> None:
    rows = corpus()["tool_use"]
    parsed = [parse_row(r) for r in rows]
    assert all(p.shape == "reasoning_field" for p in parsed)
    leaked = sum("<think>" in r["content"] or "</think>" in r["content"] for r in rows)
    assert leaked == 2
    assert sum("duplicate_think" in p.codes for p in parsed) == leaked
    assert all(p.think == r["reasoning"].strip() for p, r in zip(parsed, rows, strict=True))
