"""The verify() dispatcher: method choice, explicit overrides, and no crash on bad input."""

from __future__ import annotations

import json

import pytest

from builder.responses.verify import Verdict, choose_verifier, verify

HE_TESTS = json.dumps({"format": "humaneval", "entry_point": "add", "test": "def check(c):\n    assert c(2, 3) == 5\n"})
IF_TESTS = json.dumps({"format": "ifeval", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]})


@pytest.mark.parametrize(
    ("category", "reference", "tests", "method"),
    [
        ("math", "#### 72", None, "math"),
        ("chat", "C", None, "mcq"),
        ("mcq", "(B)", None, "mcq"),
        ("code", None, HE_TESTS, "code"),
        ("chat", None, HE_TESTS, "code"),
        ("instruction_following", None, IF_TESTS, "ifeval"),
        ("chat", None, None, "none"),
        ("chat", "a free-text reference", None, "none"),
        ("code", None, None, "none"),
    ],
)
def test_method_choice(category: str, reference: str | None, tests: str | None, method: str) -> None:
    assert choose_verifier(category, reference, tests) == method


def test_verdicts_through_the_dispatcher() -> None:
    assert verify(r"so \boxed{72}", "math", "#### 72", None).status == "pass"
    assert verify("The answer is C.", "chat", "C", None) == Verdict("pass", "mcq", "ok", "chose C")
    code = "```python\ndef add(a, b):\n    return a + b\n```"
    assert verify(code, "code", None, HE_TESTS).status == "pass"
    assert verify(code.replace("+", "-"), "code", None, HE_TESTS).reason == "tests_failed"
    assert verify("no commas", "chat", None, IF_TESTS).status == "pass"
    none = verify("hello", "chat", None, None)
    assert (none.status, none.reason) == ("unverifiable", "no_reference")


def test_explicit_verifier_wins_and_unknown_is_recorded() -> None:
    assert verify("The answer is \\boxed{C}", "math", "C", None, verifier="mcq").method == "mcq"
    assert verify("x", "math", "5", None, verifier="none").status == "unverifiable"
    assert verify("x", "math", "5", None, verifier="llm-judge").reason == "unknown_verifier"


@pytest.mark.parametrize(
    ("answer", "category", "reference", "tests"),
    [
        (None, "math", "5", None),
        ("", "code", None, "{not json"),
        ("x" * 10_000, "mcq", "Z", None),
        ("```python\n" + "x = 1\n" * 50_000 + "```", "code", None, HE_TESTS),
        ("\\boxed{" * 500, "math", "1", None),
        ("ok", "chat", None, json.dumps({"format": "ifeval", "instruction_id_list": "nope"})),
        ("ok", "chat", None, json.dumps([1, 2])),
    ],
)
def test_bad_input_becomes_a_verdict(answer, category, reference, tests) -> None:  # noqa: ANN001
    verdict = verify(answer, category, reference, tests)
    assert isinstance(verdict, Verdict)
    assert verdict.status in ("fail", "unverifiable")
    assert verdict.reason


def test_an_option_letter_on_a_math_row_is_checked_as_a_choice() -> None:
    # MMLU-Pro math / Kaoyan rows: category math, reference "C". The math verifier failed the
    # R1 ending "The answer is (C)." (no box) on 90 of 94 correct MMLU-Pro math traces.
    assert choose_verifier("math", "C", None) == "mcq"
    assert choose_verifier("mathematics", "(B)", None) == "mcq"
    assert verify("85 x 84 x 83 = 592,620 lineups.\n\nThe answer is (C).", "math", "C", None).status == "pass"
    assert verify("The answer is (C).", "math", "B", None).status == "fail"
    assert choose_verifier("math", "e", None) == "math"  # Euler's number, not an option
