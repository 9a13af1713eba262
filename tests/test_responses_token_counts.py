"""Teacher token counts: the teacher's usage report where the reply's shape lets it be read,
counted texts everywhere else, and each text counted once (builder/responses/token_counts.py)."""

from __future__ import annotations

from typing import Any

import pytest

from builder import tokens
from builder.config.responses import ResponsesConfig
from builder.responses import token_counts
from builder.responses.stage import process_batch
from tests.fixtures.stages import reply_row

THINK = "First, 17 * 3 = 51. Then 51 + 4 = 55, so the total is fifty-five apples."
ANSWER = "The answer is 55."


def _row(content: str | None, reasoning: str | None, rt: int | None, ct: int | None) -> dict[str, Any]:
    r = reply_row("p" * 64, content, reasoning_content=reasoning)
    r.update(reasoning_tokens=rt, completion_tokens=ct)
    return r


def _counts(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    out = process_batch(rows, {}, ResponsesConfig())
    return [(o["teacher_think_tokens"], o["teacher_answer_tokens"]) for o in out]


def _counted(think: str, answer: str) -> tuple[int, int]:
    t, a = tokens.count_tokens("deepseek-r1", [think, answer])
    return t, a


def test_the_usage_report_gives_the_counts_of_a_reasoning_field_reply() -> None:
    assert _counts([_row(ANSWER, THINK, 20, 27)]) == [(20, 7)]


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(_row(ANSWER, THINK, None, None), id="no report"),
        pytest.param(_row(f"<think>{THINK}</think>{ANSWER}", None, 20, 27), id="inline thinking: report not split"),
        pytest.param(_row(f"<think>x</think>{ANSWER}", THINK, 20, 27), id="two traces"),
        pytest.param(_row(ANSWER, THINK, len(THINK) + 50, len(THINK) + 60), id="more tokens than characters"),
        pytest.param(_row(ANSWER, THINK, 20, 20 + len(ANSWER) + 40), id="answer longer than its text"),
        pytest.param(_row(ANSWER, THINK, 0, 7), id="zero reasoning tokens beside a thinking"),
        pytest.param(_row(ANSWER, THINK, 30, 20), id="reasoning above completion"),
    ],
)
def test_texts_are_counted_where_the_report_does_not_fit(row: dict[str, Any]) -> None:
    assert _counts([row]) == [_counted(THINK, ANSWER)]


def test_each_text_is_counted_once_and_only_where_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []
    real = tokens.count_tokens

    def spy(name: str, texts: list[str]) -> list[int]:
        seen.extend((name, t) for t in texts)
        return real(name, texts)

    monkeypatch.setattr(tokens, "count_tokens", spy)
    other = "Second thought: 2 + 2 = 4, nothing more to it."
    counts = _counts([_row(ANSWER, THINK, 20, 27), _row("Four.", other, None, None)])
    assert counts[0] == (20, 7)
    teacher = [t for n, t in seen if n == "deepseek-r1"]
    assert sorted(teacher) == sorted([other, "Four."])  # the reported reply's texts are not counted
    student = [t for n, t in seen if n == "qwen2.5"]
    assert sorted(student) == sorted([ANSWER, "Four."])  # the student counts every answer, once


def test_reported_reads_only_fitting_reports() -> None:
    from builder.responses.shapes import normalize

    p = normalize(ANSWER, THINK)
    assert token_counts.reported({"reasoning_tokens": 20, "completion_tokens": 27}, p) == (20, 7)
    assert token_counts.reported({"reasoning_tokens": 20, "completion_tokens": None}, p) is None
