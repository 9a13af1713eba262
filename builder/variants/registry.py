"""The variants: one small registered function each. Adding a variant is one function.

A variant function gets a `Candidate` (the prompt and its selected replies) and returns the
assistant turn's text, or a `Skip` saying why this prompt is absent from the variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


@dataclass(slots=True)
class Candidate:
    prompt: dict[str, Any]  # a PROMPT_FEATURES row
    reasoning: dict[str, Any] | None  # the selected kept PARSED row of the reasoning teacher
    control: dict[str, Any] | None  # the selected kept PARSED row of the control teacher
    summary: str | None = None  # S_think, when the summarizer produced one that passed checks
    summary_failure: str | None = None


VariantFn = Callable[[Candidate], "str | Skip"]
REGISTRY: dict[str, VariantFn] = {}


def variant(name: str) -> Callable[[VariantFn], VariantFn]:
    def register(fn: VariantFn) -> VariantFn:
        REGISTRY[name] = fn
        return fn

    return register


@variant("original")
def original(c: Candidate) -> str | Skip:
    resp = c.prompt.get("original_response")
    if not resp:
        return Skip("no_original_response")
    # A community reply that carries reasoning tags would teach the non-reasoning student
    # to think aloud: it is left out of `original` (the card counts it) rather than edited.
    if "<think>" in resp or "</think>" in resp:
        return Skip("think_tag_in_original")
    return resp


@variant("answer")
def answer(c: Candidate) -> str | Skip:
    if c.reasoning is None:
        return Skip("no_kept_reply")
    return c.reasoning["answer"] or Skip("empty_answer")  # A_reason, byte-exact


@variant("think_summary")
def think_summary(c: Candidate) -> str | Skip:
    if c.reasoning is None:
        return Skip("no_kept_reply")
    if c.summary is None:
        return Skip(c.summary_failure or "no_summary")
    if not c.reasoning["answer"]:
        return Skip("empty_answer")
    # S_think ⊕ A_reason: the answer is appended byte-identical.
    return f"{c.summary}\n\n{c.reasoning['answer']}"


@variant("full")
def full(c: Candidate) -> str | Skip:
    if c.reasoning is None:
        return Skip("no_kept_reply")
    if not c.reasoning["think"] or not c.reasoning["answer"]:
        return Skip("empty_think" if not c.reasoning["think"] else "empty_answer")
    return f"<think>\n{c.reasoning['think']}\n</think>\n\n{c.reasoning['answer']}"


@variant("control")
def control(c: Candidate) -> str | Skip:
    if c.control is None:
        return Skip("no_control_reply")
    return c.control["answer"] or Skip("empty_answer")
