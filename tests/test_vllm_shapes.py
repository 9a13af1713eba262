"""vLLM's reply shapes, from response bodies in vLLM's own layout to the stage's verdict.

Each fixture in tests/fixtures/replies/vllm/ is a whole chat.completion body. It goes through
`reply_fields` (what the OpenAI backend stores), then `normalize` and `validate` as the
responses stage calls them. Covers the field rename (`reasoning_content` -> `reasoning`,
vllm#27755: either, both), the misrouted answer (vllm#48645: no `</think>`, everything filed
as reasoning) and the `content: null` cut (vllm#52640: budget spent mid-think).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builder.responses.grammar import REJECT_CODES, validate
from builder.responses.shapes import normalize
from builder.teachers.reply_shape import reply_fields

FIXTURES = Path(__file__).parent / "fixtures" / "replies" / "vllm"

# fixture -> (shape, reject codes, truncation evidence info code or None)
EXPECTED: dict[str, tuple[str, set[str], str | None]] = {
    "reasoning_field_stop": ("reasoning_field", set(), None),
    "reasoning_content_field_stop": ("reasoning_field", set(), None),
    "both_fields_stop": ("reasoning_field", set(), None),
    "misrouted_answer_null_content": ("null_content", {"content_null", "answer_in_reasoning"},
                                      "cut_final_answer_in_reasoning"),
    "misrouted_answer_empty_content": ("reasoning_field", {"empty_answer", "answer_in_reasoning"},
                                       "cut_final_answer_in_reasoning"),
    "length_mid_think_null_content": ("null_content", {"content_null", "truncated_in_think"}, "cut_finish_length"),
    "length_mid_answer": ("reasoning_field", {"truncated_in_answer"}, "cut_finish_length"),
    "prefilled_think_in_content": ("inline_no_open", set(), None),
    "stop_thinking_only": ("null_content", {"content_null"}, None),
}  # fmt: skip


def _load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _verdict(body: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    fields = reply_fields(body)
    assert fields["status"] == "ok", fields
    parsed = normalize(fields["content"], fields["reasoning_content"], fields["reasoning"], fields["finish_reason"])
    val = validate(
        parsed,
        fields["finish_reason"],
        frozenset({"en"}),
        None,
        completion_tokens=fields["completion_tokens"],
        infer_truncation=True,
    )
    return parsed, val, fields


def test_every_fixture_is_listed() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vllm_body(name: str) -> None:
    body = _load(name)
    assert body["object"] == "chat.completion" and "message" in body["choices"][0]  # vLLM's own layout
    shape, rejects, evidence = EXPECTED[name]
    parsed, val, _ = _verdict(body)
    assert parsed.shape == shape
    assert set(val.codes) == rejects, val.codes
    assert set(val.codes) <= REJECT_CODES
    cut_codes = [c for c in val.info if c.startswith("cut_")]
    assert cut_codes == ([evidence] if evidence else [])


def test_either_field_or_both_give_the_same_split() -> None:
    split = {n: _verdict(_load(n))[0] for n in ("reasoning_field_stop", "reasoning_content_field_stop", "both_fields_stop")}
    assert len({(p.think, p.answer) for p in split.values()}) == 1
    message = _load("reasoning_field_stop")["choices"][0]["message"]
    assert next(iter(split.values())).think == message["reasoning"].strip()
    assert all("two_reasoning_fields" not in p.codes for p in split.values())  # same text in both names


def test_two_different_reasoning_fields_keep_reasoning_content_and_say_so() -> None:
    body = _load("both_fields_stop")
    body["choices"][0]["message"]["reasoning"] = "a different trace"
    parsed, val, _ = _verdict(body)
    assert parsed.think == _load("reasoning_content_field_stop")["choices"][0]["message"]["reasoning_content"].strip()
    assert "two_reasoning_fields" in val.info and val.ok


def test_misrouted_and_cut_are_told_apart_without_a_finish_reason() -> None:
    """An import keeps no finish reason: the text alone separates the two content-null bugs."""
    for name, code in (("misrouted_answer_null_content", "answer_in_reasoning"),
                       ("length_mid_think_null_content", "truncated_in_think")):  # fmt: skip
        body = _load(name)
        body["choices"][0]["finish_reason"] = None
        _, val, _ = _verdict(body)
        assert code in val.codes, (name, val.codes)


def test_length_cut_is_caught_from_token_counts_at_the_budget() -> None:
    """finish_reason lost, but usage says the whole budget was spent."""
    body = _load("length_mid_answer")
    body["choices"][0]["finish_reason"] = None
    fields = reply_fields(body)
    parsed = normalize(fields["content"], None, fields["reasoning"])
    val = validate(parsed, None, None, None, completion_tokens=200, max_tokens=200, infer_truncation=True)
    assert "truncated_in_answer" in val.codes and "cut_token_budget" in val.info
    # A "stop" at exactly the budget is the server's word: the model ended on its last token.
    val = validate(parsed, "stop", None, None, completion_tokens=200, max_tokens=200, infer_truncation=True)
    assert "truncated_in_answer" not in val.codes
