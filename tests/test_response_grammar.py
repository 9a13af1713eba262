"""Validation codes, repetition calibration and language checks on fixtures and real data."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from builder import language
from builder.responses import grammar, repetition
from builder.responses.grammar import validate
from tests.test_response_shapes import CASES, CORPUS, corpus, needs_corpus, parse_fixture, parse_row


@pytest.mark.parametrize(("name", "given", "expected"), CASES, ids=[c[0] for c in CASES])
def test_fixture_rejects(name: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    parsed = parse_fixture(given)
    result = validate(
        parsed,
        given.get("finish_reason"),
        given.get("prompt_language"),
        given.get("student_tokens"),
        language_switch_ok=given.get("language_switch_ok", False),
    )
    assert sorted(result.codes) == sorted(expected["rejects"])
    assert set(result.codes) <= grammar.REJECT_CODES
    assert set(result.info) <= grammar.INFO_CODES
    assert 0.0 <= result.repetition_score <= 1.0


def test_every_code_is_in_the_docstring_table() -> None:
    table = set(re.findall(r"^\| (\w+)\s+\| (?:reject|info)", grammar.__doc__ or "", re.M))
    assert table == grammar.CODES


def test_student_budget_edge() -> None:
    parsed = parse_row({"content": "<think>ok then</think>Done.", "format": "r1"})
    assert validate(parsed, "stop", None, 16_384).ok
    assert validate(parsed, "stop", None, 16_385).codes == ["too_long_for_student"]
    assert validate(parsed, "stop", None, 100, max_student_tokens=50).codes == ["too_long_for_student"]


# ---------- repetition ----------


def _scores(rows: list[dict[str, Any]]) -> list[float]:
    out = []
    for row in rows:
        parsed = parse_row(row)
        out.append(max(repetition.repetition_score(parsed.think), repetition.repetition_score(parsed.answer)))
    return out


@needs_corpus
def test_repetition_threshold_separates_r1_from_loops() -> None:
    data = corpus()
    r1 = _scores(data["r1_bangla"]) + _scores(data["r1_pcmb"])
    assert len(r1) == 5259
    # Calibration: R1 text peaks at ~0.43 (an "answer is C ... maybe D" dither); none reach 0.5.
    assert max(r1) < repetition.THRESHOLD
    assert sorted(r1)[int(0.99 * len(r1))] < 0.25
    # Sky-T1 AIME traces that ran out of budget (no end_of_thought) mostly loop.
    cut = [r for r in data["aime24_sky-t1-14b"] if "<|end_of_thought|>" not in r["content"]]
    looping = [s for s in _scores(cut) if s >= repetition.THRESHOLD]
    assert len(cut) == 22 and len(looping) >= 15


def test_repetition_score_on_constructed_text() -> None:
    para = "Wait, let me re-check the sum of the first two terms before going on.\n"
    assert repetition.repetition_score(para * 100) > 0.9
    assert repetition.repetition_score("") == 0.0
    words = " ".join(f"token{i}" for i in range(2000))
    assert repetition.repetition_score(words) < 0.05
    # Only the tail is looked at: a loop early in a long trace does not count.
    assert repetition.repetition_score(para * 100 + words) < 0.05


# ---------- language ----------


def _langs(texts: list[str]) -> Counter[str]:
    return Counter(language.identify(t).language for t in texts)


@needs_corpus
def test_language_on_real_chinese_and_english_answers() -> None:
    demo = CORPUS / "llamafactory-demo-data"
    en = json.loads((demo / "alpaca_en_demo.json").read_text())
    zh = json.loads((demo / "alpaca_zh_demo.json").read_text())
    align = [json.loads(line) for line in (CORPUS / "alignbench" / "data_v1.1_release.jsonl").open()]
    en_counts = _langs([r["output"] for r in en])
    assert en_counts["en"] / len(en) >= 0.98 and en_counts["zh"] == 0
    zh_counts = _langs([r["output"] for r in zh])
    assert zh_counts["zh"] / len(zh) >= 0.9
    questions = _langs([r["question"] for r in align])
    assert questions["zh"] / len(align) >= 0.95


def test_code_and_math_do_not_count() -> None:
    text = "用这个：\n```python\nprint('hello world, this is a long English-looking line')\n```\n其中 $\\alpha + \\beta$ 是常数。"
    assert language.identify(text).language == "zh"
    assert language.identify("\\boxed{42}").language == "unknown"
    assert language.identify("`numpy.linalg.solve`").language == "unknown"
    guess = language.identify("Привет мир, как дела?")
    assert guess.language == "ru" and guess.proportions == {"ru": 1.0}
    assert language.identify("こんにちは、世界。今日は良い天気です。").language == "ja"
    assert language.identify("মেটামারিজম সাধারণত ইথার").language == "bn"


def test_prompt_languages() -> None:
    assert language.prompt_languages("问题：Tatuya、Ivanna 和 Dorothy 一起参加了一个测验。") == {"zh"}
    wrapper = "Below there is a Bangla multiple choice question.\n Question in Bangla: ∛-8 এর মান কত?"
    assert language.prompt_languages(wrapper) == {"en", "bn"}
    assert language.prompt_languages("12 + 7 = ?") == frozenset()
    assert language.prompt_languages(["not", "a", "string"]) == frozenset()  # bad input: no opinion
    assert repetition.repetition_score(b"x" * 1000) == 0.0
    assert language.names_target_language("请把下面的句子翻译成英文")
    assert language.names_target_language("Translate to French: hello")
    assert not language.names_target_language("什么是黑洞？")


# ---------- real datasets: code distribution vs. simple counts ----------


def _validate_all(name: str) -> list[grammar.Validation]:
    out = []
    for row in corpus()[name]:
        parsed = parse_row(row)
        out.append(validate(parsed, row.get("finish_reason"), language.prompt_languages(row["prompt"]), None))
    return out


@needs_corpus
def test_clean_r1_sets_are_kept() -> None:
    pcmb = _validate_all("r1_pcmb")
    assert all(v.ok for v in pcmb)
    bangla = _validate_all("r1_bangla")
    codes = Counter(c for v in bangla for c in v.codes)
    # Only language codes may fire on well-formed R1 rows, and rarely.
    assert set(codes) <= {"language_mismatch_answer", "language_mismatch_think", "mixed_language_answer"}
    assert sum(v.ok for v in bangla) / len(bangla) >= 0.99
    assert Counter(v.answer_language for v in bangla)["bn"] > 2000  # R1 often answers in Bangla


@needs_corpus
def test_llama8b_codes() -> None:
    rows = corpus()["llama8b"]
    results = _validate_all("llama8b")
    unclosed = ["</think>" not in r["content"] for r in rows]
    assert [("unclosed_think" in v.codes) for v in results] == unclosed
    structural = {"unclosed_think"}
    assert all(set(v.codes) - {"repetition_loop"} <= structural for v in results)


@needs_corpus
def test_skythought_math500_codes() -> None:
    rows = corpus()["math500_sky-t1-27b"]
    results = _validate_all("math500_sky-t1-27b")
    counts = Counter(c for v in results for c in v.codes)
    no_thought_tags = sum(
        "<|begin_of_thought|>" not in r["content"] and "<|end_of_thought|>" not in r["content"] for r in rows
    )
    assert counts["missing_think"] == no_thought_tags == 210
    assert counts["unclosed_think"] == sum(
        "<|begin_of_thought|>" in r["content"] and "<|end_of_thought|>" not in r["content"] for r in rows
    )


@needs_corpus
def test_marco_codes() -> None:
    rows = corpus()["marco"]
    results = _validate_all("marco")
    counts = Counter(c for v in results for c in v.codes)
    assert counts["unclosed_answer"] == 2
    assert "binary_garbage" not in counts
    # Chinese instructions whose <Thought> is written in English are flagged; those in Chinese are not.
    zh_rows = [i for i, r in enumerate(rows) if language.identify(r["prompt"]).language == "zh"]
    english_thought = [
        i for i in zh_rows if language.identify(rows[i]["content"].split("</Thought>")[0]).language == "en"
    ]
    assert [i for i, v in enumerate(results) if "language_mismatch_think" in v.codes] == english_thought
