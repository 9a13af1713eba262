"""Verification of a teacher's final answer against what the source row knows.

`verify()` picks one method and always returns a `Verdict` (pass / fail / unverifiable / error
with a machine-readable reason); it never raises on bad input. `unverifiable`: nothing to check
against (no reference, no tests); `error`: the verifier itself failed or ran out of time, which
says nothing about the answer and is not kept by default.

Method choice: an explicit `verifier` ("math", "mcq", "code", "ifeval", "none") wins.
Otherwise it is inferred: a tests field with format "ifeval" -> ifeval; other tests on a code
row -> code; a reference that is a single option letter -> mcq (on a math row: an upper-case
one); a math row with a reference -> math. Anything else is unverifiable ("no_reference" / "no_method").
"""

from __future__ import annotations

import json
from typing import Any

from .codecheck import parse_tests, verify_code, verify_code_batch
from .ifeval import COVERED_INSTRUCTIONS, verify_ifeval
from .mathcheck import verify_math
from .mcq import normalize_reference_letter, verify_mcq
from .verdict import Verdict

__all__ = [
    "COVERED_INSTRUCTIONS",
    "VERIFIERS",
    "Verdict",
    "choose_verifier",
    "parse_tests",
    "verify",
    "verify_code",
    "verify_code_batch",
    "verify_ifeval",
    "verify_math",
    "verify_mcq",
]

VERIFIERS = ("math", "mcq", "code", "ifeval", "none")
_CODE = {"code", "coding", "programming"}
_MATH = {"math", "mathematics"}
_MCQ = {"mcq", "multiple_choice", "multiple-choice", "exam"}
_IF = {"instruction_following", "instruction-following", "if", "ifeval"}


def _tests_format(tests: str | None) -> str | None:
    if not tests:
        return None
    try:
        spec: Any = json.loads(tests)
    except ValueError:
        return None
    return spec.get("format") if isinstance(spec, dict) else None


def choose_verifier(category: str, reference_answer: str | None, tests: str | None) -> str:
    """The method `verify` would use when no explicit verifier is given ("none" if no method)."""
    cat = (category or "").strip().lower()
    fmt = _tests_format(tests)
    if fmt == "ifeval":
        return "ifeval"
    if fmt is not None and (cat in _CODE or fmt in ("humaneval", "mbpp", "asserts")):
        return "code"
    # An upper-case letter is an option even on a math row (MMLU-Pro math, Kaoyan): the math
    # verifier fails "The answer is (C)." for want of a box. A lower-case one ("e") stays math.
    letter = normalize_reference_letter(reference_answer) if reference_answer else None
    if letter is not None and (cat not in _MATH or reference_answer.strip().strip("()[]*. ").isupper()):
        return "mcq"
    if reference_answer and cat in _MATH:
        return "math"
    if reference_answer and cat in _MCQ:
        return "mcq"
    return "none"


def verify(
    answer: str,
    category: str,
    reference_answer: str | None,
    tests: str | None,
    verifier: str | None = None,
) -> Verdict:
    """Check `answer` (the teacher's final answer, without thinking) by the chosen method."""
    method = (verifier or "").strip().lower() or choose_verifier(category, reference_answer, tests)
    answer = answer if isinstance(answer, str) else ""
    try:
        if method == "math":
            return verify_math(answer, reference_answer)
        if method == "mcq":
            return verify_mcq(answer, reference_answer)
        if method == "code":
            return verify_code(answer, tests)
        if method == "ifeval":
            return verify_ifeval(answer, tests)
        if method == "none":
            has_ref = bool(reference_answer or tests)
            return Verdict("unverifiable", "none", "no_method" if has_ref else "no_reference")
        return Verdict("unverifiable", "none", "unknown_verifier", method[:40])
    except Exception as exc:  # noqa: BLE001 - last line of defence: the stage records, never crashes
        return Verdict("error", method, "verifier_error", f"{type(exc).__name__}: {exc}"[:200])
