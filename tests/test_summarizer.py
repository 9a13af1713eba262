"""The extractive S_think summarizer and the checks every summary must pass, on real traces."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from builder.variants.repeats import fold
from builder.variants.summarizer import SummaryGate, check_summary, extractive_summary, final_answers, sentences
from builder.variants.summary_quality import stated_results
from tests.fixtures.stages import SAMPLE


def _traces() -> list[tuple[str, str]]:
    """(thinking, answer) pairs from real R1 and Marco-o1 traces, English and Chinese."""
    out: list[tuple[str, str]] = []
    for line in (SAMPLE / "pcmb_traces.jsonl").read_text(encoding="utf-8").splitlines()[:40]:
        t: dict[str, Any] = json.loads(line)
        out.append((t["reasoning"], t["answer_text"]))
    for line in (SAMPLE / "marco_cot.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)["response"]
        if "</Output>" in r:
            think, _, rest = r.partition("</Thought>")
            out.append(
                (think.replace("<Thought>", "").strip(), rest.replace("<Output>", "").replace("</Output>", "").strip())
            )
    return out


TRACES = _traces()


def _drawn_from(summary: str, think: str) -> bool:
    """True when every summary sentence is a thinking sentence (markers cut, hedges settled) or
    the closing statement of the result, and the steps keep the thinking's order."""
    # The summarizer settles hedges ("the answer should be X" → "the answer is X").
    body = re.sub(r"\b(answer|result|option|choice) (?:should|must|would|will|might) be\b", r"\1 is", fold(think))
    last = -1
    for sent in sentences(summary):
        if stated_results(sent):
            continue  # the decisive step or the closing sentence (its wording may be settled)
        key = fold(sent).removeprefix("the ")  # "so correct answer is …" reads "The correct answer is …"
        at = body.find(key, last + 1)  # a step the thinking repeats: its next occurrence
        if not key or at < 0:
            return False
        last = at
    return True


def test_traces_cover_both_languages() -> None:
    assert len(TRACES) >= 150
    assert any("我" in t for t, _ in TRACES) and any("the" in t for t, _ in TRACES)


@pytest.mark.parametrize(("ratio", "max_chars"), [(0.35, 2000), (0.2, 400), (0.5, 150)])
def test_extractive_respects_the_budget_and_keeps_order(ratio: float, max_chars: int) -> None:
    nonempty = 0
    for think, answer in TRACES:
        s = extractive_summary(think, answer, ratio, max_chars)
        assert len(s) <= min(max_chars, ratio * len(think))
        if s:
            nonempty += 1
            assert len(sentences(s)) <= 8
            assert _drawn_from(s, think), s[:200]
    assert nonempty >= 0.9 * len(TRACES)


def test_extractive_is_deterministic() -> None:
    first = [extractive_summary(t, a, 0.35, 2000) for t, a in TRACES]
    second = [extractive_summary(t, a, 0.35, 2000) for t, a in reversed(TRACES)][::-1]
    assert first == second


def test_extractive_keeps_the_plan_the_steps_and_the_result() -> None:
    think = (
        "We need the number of moles. First, recall the ideal gas law. "
        "Irrelevant musing about the weather today goes here for a while. "
        "Then n = PV/RT gives 2 moles of gas. So the answer is 2 moles."
    )
    answer = "Using PV = nRT, n = 2 moles."
    s = extractive_summary(think, answer, 0.6, 2000)
    assert s.startswith("We need the number of moles.")
    assert "n = PV/RT gives 2 moles of gas." in s and "weather" not in s
    assert s.endswith("The answer is 2 moles.")


def test_chinese_sentences_split_without_spaces() -> None:
    think = "我需要计算平均分。首先，Dorothy得了90分。然后，Ivanna的得分是她的一半？最后求平均！"
    assert sentences(think) == [
        "我需要计算平均分。",
        "首先，Dorothy得了90分。",
        "然后，Ivanna的得分是她的一半？",
        "最后求平均！",
    ]
    s = extractive_summary(think * 4, "平均分是84分。", 0.35, 2000)
    assert s and " " not in s.replace("Dorothy", "").replace("Ivanna", "")  # no spaces between CJK sentences


THINK = "Let me add. 1 + 3 = 4. I checked it twice, the sum is four. " * 3


def test_check_accepts_a_good_summary() -> None:
    assert check_summary("1 + 3 = 4.", THINK, "The sum is \\boxed{4}.", "What is 1 + 3?", 0.35) is None


@pytest.mark.parametrize(
    ("summary", "answer", "prompt", "code"),
    [
        ("", "\\boxed{4}", "What is 1 + 3?", "summary_empty"),
        ("  \n ", "\\boxed{4}", "What is 1 + 3?", "summary_empty"),
        (THINK[: int(0.35 * len(THINK)) + 1], "\\boxed{4}", "What is 1 + 3?", "summary_unfaithful_length"),
        ("So the result is \\boxed{3}.", "The sum is \\boxed{4}.", "What is 1 + 3?", "summary_unfaithful_answer"),
        ("Hence the answer is B.", "The answer is C.", "Pick one: A, B, C.", "summary_unfaithful_answer"),
        ("The answer is (B) here.", "Answer: C", "Pick one: A, B, C.", "summary_unfaithful_answer"),
        ("I add the numbers and get four.", "答案是4。", "一加三等于几？请详细说明。", "summary_unfaithful_language"),
        ("<think>add</think>", "\\boxed{4}", "What is 1 + 3?", "summary_has_tags"),
    ],
)
def test_check_catches(summary: str, answer: str, prompt: str, code: str) -> None:
    assert check_summary(summary, THINK, answer, prompt, 0.35) == code


def test_check_does_not_misread_ordinary_words() -> None:
    # "answer is a …" is prose, not option A; the lower-case letter must not count.
    assert final_answers("The answer is a bit subtle.") == set()
    assert final_answers("so the answer is (C)") == {"C"}
    assert final_answers("答案是 B") == {"B"}
    assert (
        check_summary("The answer is a bit subtle, so check it.", THINK, "The answer is C.", "Pick A, B or C.", 0.35)
        is None
    )
    zh = "我把一和三相加，得到四。"
    assert check_summary(zh, THINK, "答案是4。", "一加三等于几？请详细说明。", 0.35) is None


def test_forked_summary_workers_match_the_inline_path() -> None:
    """More than one chunk of candidates takes the forked-worker path: same summaries."""
    import json as _json
    from pathlib import Path as _Path

    from builder.config.variants import VariantsConfig
    from builder.variants import summary_job
    from builder.variants.registry import Candidate

    root = _Path(__file__).resolve().parents[1]
    rows = [_json.loads(line) for line in (root / "data/sample/pcmb_traces.jsonl").open()]
    cands = [
        Candidate({"messages": [{"role": "user", "content": r["question"]}]},
                  {"think": r["reasoning"], "answer": r["answer_text"]}, None)
        for r in rows * 20
    ] + [Candidate({"messages": [{"role": "user", "content": "x"}]}, None, None)]
    assert len(cands) > 2048  # two chunks: the forked path
    cfg = VariantsConfig()
    summary_job.summaries(cands, cfg)
    expected = []
    for c in cands:
        if c.reasoning is None:
            expected.append((None, None))
            continue
        q, sc = c.prompt["messages"][0]["content"], cfg.summarizer
        s = extractive_summary(c.reasoning["think"], c.reasoning["answer"], sc.max_ratio, sc.max_chars, q, sc.max_sentences)
        f = check_summary(s, c.reasoning["think"], c.reasoning["answer"], q, sc.max_ratio, SummaryGate.of(sc))
        expected.append((None, f) if f else (s, None))
    assert [(c.summary, c.summary_failure) for c in cands] == expected
    assert sum(c.summary is not None for c in cands) > 2000
