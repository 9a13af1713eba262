"""IFEval-style verifiable instructions, checked on the teacher's answer (prompt-strict).

A row carries its instructions in the tests field::

    {"format": "ifeval", "instruction_id_list": ["punctuation:no_comma", ...],
     "kwargs": [{}, ...], "prompt": "<optional: the user prompt>"}

The checkers themselves live in builder/constraints/checks.py (the variants stage checks whole
assistant turns with the same functions). Unknown instruction ids are unverifiable, never guessed.
"""

from __future__ import annotations

import json
from typing import Any

from builder.constraints.checks import CHECKERS, COVERED_INSTRUCTIONS

from .verdict import Verdict

METHOD = "ifeval"
__all__ = ["COVERED_INSTRUCTIONS", "check_instruction", "verify_ifeval"]

def check_instruction(instruction_id: str, kwargs: dict[str, Any] | None, response: str) -> Verdict:
    """One instruction on one response."""
    checker = CHECKERS.get(instruction_id)
    if checker is None:
        return Verdict("unverifiable", METHOD, "unsupported_instruction", instruction_id)
    kw = {k: v for k, v in (kwargs or {}).items() if v is not None}
    try:
        outcome = checker(response, kw)
    except (KeyError, ValueError, TypeError) as exc:
        return Verdict("unverifiable", METHOD, "bad_kwargs", f"{instruction_id}: {exc!r}"[:200])
    if outcome is None:
        return Verdict("unverifiable", METHOD, "undecidable", instruction_id)
    return Verdict("pass" if outcome else "fail", METHOD, "ok" if outcome else "instruction_failed", instruction_id)


def verify_ifeval(answer: str, tests: str | dict[str, Any] | None) -> Verdict:
    """All instructions must hold (prompt-strict). Any failure fails; else any unknown is unverifiable."""
    try:
        spec = json.loads(tests) if isinstance(tests, str) else tests
        ids = spec["instruction_id_list"]
        kwargs = spec.get("kwargs") or [{} for _ in ids]
        if not isinstance(ids, list) or len(kwargs) != len(ids):
            raise ValueError("instruction_id_list and kwargs differ in length")
    except (ValueError, TypeError, KeyError) as exc:
        return Verdict("unverifiable", METHOD, "bad_tests", str(exc)[:200])
    if not ids:
        return Verdict("unverifiable", METHOD, "no_instructions")
    if not answer or not answer.strip():  # "no commas", "under 50 words" hold for nothing at all
        return Verdict("fail", METHOD, "empty_answer")
    results = [check_instruction(i, k, answer) for i, k in zip(ids, kwargs, strict=True)]
    failed = [v.detail for v in results if v.status == "fail"]
    unknown = [f"{v.detail}({v.reason})" for v in results if v.status == "unverifiable"]
    if failed:
        return Verdict("fail", METHOD, "instruction_failed", ",".join(failed))
    if unknown:
        return Verdict("unverifiable", METHOD, "unsupported_instruction", ",".join(unknown))
    return Verdict("pass", METHOD, "ok", f"{len(results)} instructions")
