"""Think–answer consistency: does the answer state the result the thinking reached?

A reasoning reply can conclude "so the answer is B" in its thinking and then write an
answer that commits to C (or to another number). Such a row teaches the `answer` and
`think_summary` variants a contradiction. Where the answer is checkable this module extracts
both final results and compares them, one reply at a time (`check`, pure, never raises):

| kind  | when                                               | thinking's result                     | answer's result           | compared by        |
|-------|----------------------------------------------------|---------------------------------------|---------------------------|--------------------|
| mcq   | verifier "mcq", or the prompt lists options A–C    | the last letter it commits to in its  | `mcq.extract_choice`      | letter             |
|       |                                                    | tail ("so the answer is B", "option C")|                           |                    |
| math  | verifier "math", category "math", or a `\\boxed{}` | its last `\\boxed{}`, else the last   | its last `\\boxed{}`, else| number, else       |
|       | in the answer                                      | "the answer is 42" in its tail        | "the answer is 42"        | math-verify        |
| short | the answer is one short line (<= 6 words)          | "the answer is X" in its tail         | the line                  | normalized string  |

Verdicts: `match`, `mismatch` (info code `think_answer_mismatch`), `not_checkable` (no kind,
or either result not found, or a comparison that cannot be made). Both results are kept as
evidence (`Consistency.to_json`, the parsed table's `consistency_json` column).

Measured on the corpus's real R1 traces in benchmarks/responses.py
(`think_answer_mismatch_rate` per source); 30 hand-checked cases of each verdict are in
tests/fixtures/consistency_cases.jsonl.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import orjson

from builder.responses.answer_end import is_multiple_choice
from builder.responses.verify.mathcheck import last_boxed, verify_math
from builder.responses.verify.mcq import _NEGATED, _TIER1, extract_choice

CODE = "think_answer_mismatch"
MATCH, MISMATCH, NOT_CHECKABLE = "match", "mismatch", "not_checkable"
VERDICTS = (MATCH, MISMATCH, NOT_CHECKABLE)
_TAIL = 1500  # characters of the thinking where it concludes
_SHORT_WORDS = 6
_MATH_TIMEOUT_S = 10.0  # as verify_math: the first call also imports sympy

_COMMIT = (
    re.compile(r"(?:go|going|stick|settle)\s+(?:with|on)\s+(?:option\s+|choice\s+)?\(?([A-J])\b"),
    re.compile(r"(?:^|[.\n]\s*)So,?\s+(?:option\s+)?\(?([A-J])\)?\s*[:.)]"),
    re.compile(r"\b(?:option\s+)?\(?([A-J])\)?\s+(?:is|must be|should be|seems)\s+(?:the\s+)?(?:correct|right|answer)"),
)
_HEDGE = re.compile(r"\b(?:alternatively|maybe|perhaps|might|if|unless|or|like|not|wait)\b", re.I)
_NUMBER = r"[-+−]?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?(?!\s*[-+*/^=\\]|[a-zA-Z(\d])"
_LEAD = r"(?:answer|result|total|value)\s*(?:is|=|:|should\s+be|would\s+be|must\s+be)\s*:?\s*\**\s*"
_STATED = re.compile(rf"{_LEAD}(?:\$([^$\n]+)\$|\\\((.+?)\\\)|({_NUMBER}))", re.I)
_STATED_TEXT = re.compile(r"(?:final\s+)?answer\s*(?:is|should\s+be|would\s+be|:)\s*:?\s*\**\s*[\"“']?([^\n.\"”']{1,60})", re.I)
_MARKUP = re.compile(r"[*_`$]|\\text\{|\\mathrm\{|[{}]")
_ARTICLES = re.compile(r"^(?:the|a|an)\s+")


@dataclass(frozen=True, slots=True)
class Consistency:
    verdict: str  # match | mismatch | not_checkable
    kind: str  # mcq | math | short | none
    think: str | None  # the thinking's final result, as found
    answer: str | None  # the answer's final result, as found

    def to_json(self) -> str:
        return orjson.dumps({"verdict": self.verdict, "kind": self.kind, "think": self.think,
                             "answer": self.answer}).decode()  # fmt: skip


def _kind(answer: str, prompt: str, category: str, verifier: str) -> str:
    if verifier == "mcq" or is_multiple_choice(prompt):
        return "mcq"
    if verifier == "math" or category == "math" or "\\boxed" in answer:
        return "math"
    line = _MARKUP.sub("", answer).strip()
    if line and "\n" not in line and len(line.split()) <= _SHORT_WORDS:
        return "short"
    return "none"


def _think_letter(tail: str) -> str | None:
    """The last letter the thinking commits to: "the answer is B", "go with option C",
    "So D: …", "D is correct"; a hedge in the same sentence ("maybe the answer is A",
    "Alternatively, B") is not a commitment."""
    found: list[tuple[int, str]] = []
    for pat in (*_TIER1, *_COMMIT):
        for m in pat.finditer(tail):
            start = max(tail.rfind(".", 0, m.start()), tail.rfind("\n", 0, m.start())) + 1
            if _HEDGE.search(tail[start : m.start() + 1]) or _NEGATED.search(tail[m.start() : m.end()]):
                continue
            found.append((m.start(), m.group(1).upper()))
    return max(found)[1] if found else None


def _stated_number(text: str) -> str | None:
    found = _STATED.findall(text)
    return next(g for g in found[-1] if g).strip() if found else None


def _math_value(text: str, tail_only: bool) -> str | None:
    part = text[-_TAIL:] if tail_only else text
    boxed = last_boxed(part)
    return boxed if boxed is not None else _stated_number(part[-_TAIL:])


def _as_number(text: str) -> Fraction | None:
    t = text.replace(",", "").replace("−", "-").replace(" ", "").strip().rstrip(".")
    t = t.removeprefix("$").removesuffix("$").removeprefix("\\$")
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            return Fraction(Decimal(num)) / Fraction(Decimal(den))
        return Fraction(Decimal(t))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def _same_math(a: str, b: str) -> bool | None:
    """True / False, or None when neither a number comparison nor math-verify decides."""
    x, y = _as_number(a), _as_number(b)
    if x is not None and y is not None:
        return x == y
    v = verify_math(f"\\boxed{{{a}}}", b, timeout_s=_MATH_TIMEOUT_S)
    if v.status == "pass":
        return True
    return False if v.status == "fail" and v.reason == "mismatch" else None


def normalize_text(text: str) -> str:
    """Case, width, markup, quotes, final punctuation and a leading article folded away."""
    t = unicodedata.normalize("NFKC", _MARKUP.sub("", text)).casefold().strip()
    t = t.strip(" \t\"'“”‘’«»()[]").rstrip(".。!！?？।")
    return _ARTICLES.sub("", " ".join(t.split()))


def check(think: object, answer: object, prompt: str = "", category: str = "", verifier: str = "") -> Consistency:
    """Compare the thinking's final result with the answer's (see the module table)."""
    if not isinstance(think, str) or not isinstance(answer, str) or not think.strip() or not answer.strip():
        return Consistency(NOT_CHECKABLE, "none", None, None)
    kind = _kind(answer, prompt or "", category or "", verifier or "")
    tail = think[-_TAIL:]
    if kind == "mcq":
        t = _think_letter(tail)
        a, why = extract_choice(answer)
        if t is None or a is None:
            return Consistency(NOT_CHECKABLE, kind, t, a if why == "ok" else None)
        return Consistency(MATCH if t == a else MISMATCH, kind, t, a)
    if kind == "math":
        t, a = _math_value(think, True), _math_value(answer, False)
        if t is None or a is None:
            return Consistency(NOT_CHECKABLE, kind, t, a)
        same = _same_math(t, a)
        if same is None:
            return Consistency(NOT_CHECKABLE, kind, t, a)
        return Consistency(MATCH if same else MISMATCH, kind, t, a)
    if kind == "short":
        found = _STATED_TEXT.findall(tail)
        a = answer.strip()
        if not found:
            return Consistency(NOT_CHECKABLE, kind, None, a)
        t = found[-1].strip()
        return Consistency(MATCH if normalize_text(t) == normalize_text(a) else MISMATCH, kind, t, a)
    return Consistency(NOT_CHECKABLE, kind, None, None)
