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

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import orjson

from builder.responses.answer_end import is_multiple_choice, option_letters
from builder.responses.verify.mathcheck import last_boxed, verify_math
from builder.responses.verify.mcq import _NEGATED, _TIER1, LETTERS, _tier1_letters, extract_choice

CODE = "think_answer_mismatch"
MATCH, MISMATCH, NOT_CHECKABLE = "match", "mismatch", "not_checkable"
VERDICTS = (MATCH, MISMATCH, NOT_CHECKABLE)
_TAIL = 1500  # characters of the thinking where it concludes
_CONCLUSION = 500  # characters of its last lines, where the result a math answer boxes is stated
_SHORT_WORDS = 6
_MATH_TIMEOUT_S = 10.0  # as verify_math: the first call also imports sympy

_O = r"(?:option\s+|choice\s+)?\(?([A-J])\b\)?"  # a letter, maybe named "option"
_COMMIT = (
    re.compile(rf"(?:go|going|stick|settle)\s+(?:with|on)\s+{_O}"),
    re.compile(
        rf"(?:^|[.\n]\s*)So,?\s+(?:the\s+answer\s+is\s+|definitely\s+|clearly\s+|it'?s\s+)?{_O}\s*(?:[:.)]|$)", re.M
    ),
    re.compile(rf"answer\s+(?:is|would\s+be|should\s+be)\s+(?:likely|probably|most\s+likely)\s+{_O}"),
    re.compile(r"(?:corresponds\s+to|matches|choose|pick|select|should\s+be|must\s+be)\s+option\s+\(?([A-J])\b"),
    re.compile(rf"correct\s+(?:pair|one|statement|option|choice|word|sequence|spelling|form)\s+is\s+{_O}"),
    re.compile(rf"answer\s+(?:here\s+)?must\s+be\s+{_O}"),
    re.compile(
        r"(?:^|[.\n,]\s*)(?:[Ss]o|[Dd]efinitely|[Hh]ence|[Tt]hus|[Tt]herefore),?\s+option\s+\(?([A-J])\b\)?"
        r"(?!\s*(?:is|are|seems|was)\s+(?:out|wrong|incorrect|not|false|also|excluded|eliminated))",
        re.M,
    ),
    re.compile(r"(?:which|that)\s+(?:is|would\s+be)\s+option\s+\(?([A-J])\b"),
    re.compile(
        r"option\s+\(?([A-J])\)?\s+(?:is|says)\s+[^.\n]{1,60}?,?\s+which\s+(?:should|must)\s+be\s+the\s+(?:correct|right)"
    ),
    re.compile(r"(?:^|[.\n]\s*)So,?\s+(?:option\s+)?\(?([A-J])\)?\s+looks\s+(?:correct|right)", re.M),
    re.compile(r"\((?:option\s+)?([A-J])\)\s+(?:is|are|would\s+be|should\s+be)\s+the\b"),  # "SO2 (option C) is the …"
    re.compile(rf"answer\s+here\s+is\s+{_O}"),
    re.compile(r"mak(?:es|ing)\s+(?:option\s+)?\(?([A-J])\)?\s+the\s+(?:correct|right|best)"),
    re.compile(r"(?:^|[.\n]\s*)(?:Definitely|Option)\s+\(?([A-J])\)?\s*[.!]", re.M),
    # "option B is [M⁻¹L³T⁻²]. That must be the correct answer."
    re.compile(
        r"option\s+\(?([A-J])\)?\s+is\s+[^.\n]{1,60}\.\s+That\s+(?:should|must|would)\s+be\s+the\s+(?:correct|right)"
    ),
)
# "X is correct", "option D: বনমালী বাবু is the correct answer" — and, when the question asks
# for the wrong one ("কোনটি সঠিক নয়", "which is incorrect"), "X is incorrect".
_RIGHT = r"(?:the\s+)?(?:correct|right)(?!\s+(?:formula|spelling|form|value|calculation|pair))"
_WRONG = r"(?:the\s+)?(?:incorrect|wrong|false|not\s+correct|the\s+odd\s+one|the\s+exception)"
_IS = r"(?:is|must\s+be|should\s+be|seems|would\s+be)"
_LETTER_IS = r"\b([A-J])\)?(?:\s*[:,]\s*[^.\n]{1,40}?,?)?\s+"  # "option D", "(D)", "D: text", "D, HIV,"
_POSITIVE = re.compile(rf"{_LETTER_IS}{_IS}\s+{_RIGHT}", re.M)
_NEGATIVE = re.compile(rf"{_LETTER_IS}{_IS}\s+{_WRONG}", re.M)
_NEGATIVE_ODD = re.compile(
    rf"(?:incorrect|wrong|false|odd)\s+(?:statement|option|choice|word|one|answer|function|pair)\s+is\s+{_O}"
)
# Bangla "নয়" (is not), "ভুল" (wrong), "অসত্য" (untrue); NFC, as prompts are compared in NFC.
_NEGATIVE_QUESTION = re.compile(
    unicodedata.normalize(
        "NFC", r"নয়|ভুল|অসত্য|মিথ্যা|incorrect|not\s+(?:true|correct)|false|except|least\s+likely|不正确|错误|不是"
    ),
    re.I,
)
_NOT_FALSE = re.compile(unicodedata.normalize("NFC", r"মিথ্যা\s*নয়|not\s+false|不是错误"), re.I)  # "which is not false?"
_OPTIONS_PART = re.compile(r"Options\b|\{\s*['\"]A['\"]\s*:|\n\s*\(?A[.)]\s")
_ANSWER_IS = re.compile(
    r"answer\s*(?:is|would\s+be|should\s+be|:|=|-)?\s*\**\s*:?\s*(?:option\s+|choice\s+)?"
    r"[\(\[（`\"“]?\**\s*((?-i:[A-J]))\s*\**[\)\]）`\"”]?(?![A-Za-z0-9])",
    re.I,
)
_ANSWER_OPENS = re.compile(r"^\W{0,3}([A-J])[.):]\s")
# "অপশন C তে" (in option C) — not "অপশন D ভুল" (option D is wrong) or "… নয়" (is not).
_BANGLA_OPTION = re.compile(
    unicodedata.normalize("NFC", r"(?:অপশন|বিকল্প)\s*\(?([A-J])\b(?![^।.\n]{0,12}(?:ভুল|নয়|সঠিক নয়))")
)
_HEDGE = re.compile(r"\b(?:alternatively|maybe|perhaps|might|if|unless|or|like|not|wait)\b", re.I)
_NUMBER = r"[-+−]?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?(?!\s*[-+*/^=\\]|[a-zA-Z(\d])"
_LEAD = r"(?:answer|result|total|value)\s*(?:is|=|:|should\s+be|would\s+be|must\s+be)\s*:?\s*\**\s*"
_STATED = re.compile(rf"{_LEAD}(?:\$([^$\n]+)\$|\\\((.+?)\\\)|({_NUMBER}))", re.I)
# "I'm confident with the answer 1 - 12i." / a last display block: math-verify parses or declines.
_STATED_EXPR = re.compile(r"(?:the|final)\s+answer\s*(?:is|:)?\s+([-+(\d\\][^\n]{0,40}?)\s*\.?\s*$", re.I | re.M)
_STATED_TEXT = re.compile(
    r"(?:final\s+)?answer\s*(?:is|should\s+be|would\s+be|:)\s*:?\s*\**\s*[\"“']?([^\n.\"”']{1,60})", re.I
)
_MARKUP = re.compile(r"[*_`$]|\\text\{|\\mathrm\{|[{}]")
_ARTICLES = re.compile(r"^(?:the|a|an)\s+")

# A literal each case-sensitive pattern of _think_letter cannot match without (any one of them);
# _ANSWER_IS (re.I: "anſwer" is an answer) is always run. tests/test_consistency.py holds each
# pattern to its literals.
_NEEDS: dict[re.Pattern[str], tuple[str, ...]] = {
    **dict(zip(_COMMIT, [("go", "stick", "settle"), ("So",), ("answer",), ("option",), ("correct",), ("answer",),
                         ("option",), ("option",), ("option",), ("looks",), ("the",), ("answer",), ("mak",),
                         ("Definitely", "Option"), ("That",)], strict=True)),
    _POSITIVE: ("correct", "right"),
    _NEGATIVE: ("incorrect", "wrong", "false", "not", "odd", "exception"),
    _NEGATIVE_ODD: ("incorrect", "wrong", "false", "odd"),
    _TIER1[0]: ("\\boxed",),
}  # fmt: skip


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
    if verifier == "mcq" or is_multiple_choice(prompt) or _tier1_letters(answer):
        return "mcq"  # options listed, or an answer that states a letter ("The answer is (B)")
    if verifier == "math" or category == "math" or "\\boxed" in answer:
        return "math"
    line = _MARKUP.sub("", answer).strip()
    if line and "\n" not in line and len(line.split()) <= _SHORT_WORDS:
        return "short"
    return "none"


def _think_letter(tail: str, negative: bool, letters: str) -> str | None:
    """The last letter the thinking commits to: "the answer is B", "go with option C",
    "So D: …", "D is correct"; a hedge in the same sentence ("maybe the answer is A",
    "Alternatively, B") is not a commitment."""
    found: list[tuple[int, str]] = []
    # mcq.py's statements, re-anchored on their keyword (its optional prefixes cost ~5x here),
    # its Chinese and Bangla ones only where their keyword occurs.
    pats = [*_answer_statements(tail), *_COMMIT, *((_NEGATIVE, _NEGATIVE_ODD) if negative else (_POSITIVE,))]
    for pat in pats:
        needs = _NEEDS.get(pat)
        if needs is not None and not any(map(tail.__contains__, needs)):
            continue  # a literal every match holds is absent: the scan would find nothing
        for m in pat.finditer(tail):
            at = m.start(1)
            # The clause it is in: "Maybe …, but since B is the closest, I'll go with B" commits.
            start = max(max(tail.rfind(c, 0, at) for c in ".?!;\n") + 1, tail.rfind(" but ", 0, at) + 1)
            if m.group(1) not in letters or _HEDGE.search(tail[start:at]) or _NEGATED.search(tail[m.start() : m.end()]):
                continue
            found.append((at, m.group(1)))
    return max(found)[1] if found else None


def _answer_letter(answer: str) -> tuple[str | None, str]:
    """`mcq.extract_choice`, with its first tier re-anchored on its keywords (as `_think_letter`):
    the same letter on R1's answers at a fifth of the cost."""
    found = {m.group(1) for p in _answer_statements(answer) for m in p.finditer(answer)}
    if len(found) == 1:
        return found.pop(), "ok"
    letter, why = extract_choice(answer)
    if why != "no_choice":
        return letter, why
    # An answer that opens on its option ("A. ভাইরাস** …") or names it in Bangla ("অপশন C তে").
    named = {m.group(1) for m in _ANSWER_OPENS.finditer(answer[:40])} | set(
        _BANGLA_OPTION.findall(unicodedata.normalize("NFC", answer))
    )
    return (named.pop(), "ok") if len(named) == 1 else (None, "no_choice" if not named else "ambiguous")


def _answer_statements(text: str) -> list[re.Pattern[str]]:
    pats = [_TIER1[0], _ANSWER_IS]
    return pats + [
        p for p, key in ((_TIER1[4], ("答案", "选项")), (_TIER1[5], ("উত্তর",))) if any(k in text for k in key)
    ]


def _stated_number(text: str) -> str | None:
    found = _STATED.findall(text)
    return next(g for g in found[-1] if g).strip() if found else None


def _math_value(text: str) -> str | None:
    """The last `\\boxed{}`, else the last stated result ("the answer is 42", "answer: $x=3$")."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    stated = _stated_number(text[-_TAIL:])
    if stated is not None:
        return stated
    expr = _STATED_EXPR.findall(text[-_TAIL:])
    return expr[-1].strip() if expr else None


_LATEX_NOISE = re.compile(r"\\left|\\right|\\[,;! ]|\\displaystyle|\s+|\$")
_FRAC = re.compile(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}")
_TEXT = re.compile(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}")


def _fold_math(text: str) -> str:
    """LaTeX and plain renderings of one value made alike: \\frac{a}{b} → a/b, \\text{x} → x,
    π → \\pi, sizing and spacing commands and blanks dropped."""
    text = _TEXT.sub(r"\1", _FRAC.sub(r"\1/\2", text)).replace("π", "\\pi")
    return _LATEX_NOISE.sub("", text)


# "= ", "is ", "is clearly ", "\\(", "{", then maybe "\\" and "(": what may precede a stated result.
_LEAD_IN = re.compile(r"(?:(?:=|is|be|are|:)(?:indeed|clearly|exactly|just|still)?|\\\(|\{)\\?\(?\Z")
_LEAD_IN_CHARS = 16  # longer than any lead-in ("is" + "exactly" + "\\(")
_MORE_DIGITS = re.compile(r"[\d.]\d|\d")


def _concluded(value: str, tail: str) -> bool:
    """The thinking's last lines state `value`: an expression appears there; a bare number
    appears as a result ("= 17", "is 17", "x = 17")."""
    v, t = _fold_math(value), _fold_math(tail[-_CONCLUSION:])
    if not v:
        return False
    if _as_number(value) is None:
        return v in t
    # Each place `v` occurs, with a result's lead-in (`_LEAD_IN`) just before it and no further
    # digit after it: one fixed pattern, not one compiled per value (~2 % of the stage).
    at = t.find(v)
    while at >= 0:
        end = at + len(v)
        if not _MORE_DIGITS.match(t, end) and _LEAD_IN.search(t, max(0, at - _LEAD_IN_CHARS), at):
            return True
        at = t.find(v, at + 1)
    return False


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


def _script(text: str) -> str:
    """ "latin", "cjk" or "other": enough to tell that two short answers are in different languages."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "none"
    if all(ch.isascii() for ch in letters):
        return "latin"
    return "cjk" if any("\u3400" <= ch <= "\u9fff" for ch in letters) else "other"


def normalize_text(text: str) -> str:
    """Case, width, markup, quotes, final punctuation and a leading article folded away."""
    t = unicodedata.normalize("NFKC", _MARKUP.sub("", text)).casefold().strip()
    t = t.strip(" \t\"'“”‘’«»()[]").rstrip(".。!！?？।")
    return _ARTICLES.sub("", " ".join(t.split()))


@functools.lru_cache(maxsize=4096)  # a prompt's replies (teachers, samples) ask again
def _mcq_frame(prompt: str) -> tuple[bool, str]:
    """(the question asks for the wrong option, the letters it offers)."""
    prompt = unicodedata.normalize("NFC", prompt)
    # Only letters the prompt offers ("18 J" is a unit, "I think" a pronoun, with A–D).
    question = _OPTIONS_PART.split(prompt, 1)[0]  # the question, not its options
    negative = _NEGATIVE_QUESTION.search(question) is not None and not _NOT_FALSE.search(question)
    return negative, option_letters(prompt) or LETTERS


def check(think: object, answer: object, prompt: str = "", category: str = "", verifier: str = "") -> Consistency:
    """Compare the thinking's final result with the answer's (see the module table)."""
    if not isinstance(think, str) or not isinstance(answer, str) or not think.strip() or not answer.strip():
        return Consistency(NOT_CHECKABLE, "none", None, None)
    kind = _kind(answer, prompt or "", category or "", verifier or "")
    tail = think[-_TAIL:]
    if kind == "mcq":
        negative, letters = _mcq_frame(prompt or "")
        # Its last lines first (where R1 concludes; a quarter of the cost), then the whole tail.
        t = _think_letter(tail[-_CONCLUSION:], negative, letters) or _think_letter(tail, negative, letters)
        a, why = _answer_letter(answer)
        if t is None or a is None:
            return Consistency(NOT_CHECKABLE, kind, t, a if why == "ok" else None)
        return Consistency(MATCH if t == a else MISMATCH, kind, t, a)
    if kind == "math":
        a = _math_value(answer)
        if a is None:
            return Consistency(NOT_CHECKABLE, kind, _math_value(tail), None)
        if _concluded(a, tail):
            return Consistency(MATCH, kind, a, a)
        t = _math_value(tail)  # an explicit statement only: the last lines are not a result
        same = None if t is None else _same_math(t, a)
        if same is None:
            return Consistency(NOT_CHECKABLE, kind, t, a)
        return Consistency(MATCH if same else MISMATCH, kind, t, a)
    if kind == "short":
        found = _STATED_TEXT.findall(tail)
        a = answer.strip()
        if not found:
            return Consistency(NOT_CHECKABLE, kind, None, a)
        t = found[-1].strip()
        nt, na = normalize_text(t), normalize_text(a)
        if _script(nt) != _script(na):
            return Consistency(NOT_CHECKABLE, kind, t, a)  # "Cannot Determine" vs "无法判断": another language
        same = nt == na or (min(len(nt), len(na)) >= 2 and (na in nt or nt in na))
        return Consistency(MATCH if same else MISMATCH, kind, t, a)
    return Consistency(NOT_CHECKABLE, kind, None, None)


# ---------- the stage's per-row hook and the summary's figures ----------


def row_check(parsed: Any, prompt: str, pinfo: dict[str, Any], teacher_role: object, info: list[str]) -> str | None:
    """The `consistency_json` of one validated reply (None for a control teacher's, which has
    no thinking); appends CODE to `info` on a mismatch."""
    if teacher_role == "control":
        return None
    c = check(parsed.think, parsed.answer, prompt, pinfo.get("category") or "", pinfo.get("verifier") or "")
    if c.verdict == MISMATCH:
        info.append(CODE)
    return c.to_json()


def verdict_of(consistency_json: object) -> str:
    """The verdict stored in a `consistency_json` cell ("not_checkable" when there is none)."""
    if not isinstance(consistency_json, str):
        return NOT_CHECKABLE
    try:
        verdict = orjson.loads(consistency_json).get("verdict")
    except (orjson.JSONDecodeError, AttributeError):
        return NOT_CHECKABLE
    return verdict if verdict in VERDICTS else NOT_CHECKABLE


def summarize(counts: Mapping[tuple[str, str, str], int]) -> dict[str, dict[str, int | float]]:
    """Per "source | teacher": rows per verdict and the mismatch rate among checkable rows
    (the responses summary's `consistency`, which the card shows)."""
    out: dict[str, dict[str, int | float]] = {}
    for (source, teacher, verdict), n in sorted(counts.items()):
        row = out.setdefault(f"{source or 'unknown'} | {teacher}", dict.fromkeys(VERDICTS, 0))
        row[verdict] += n
    for row in out.values():
        checkable = row[MATCH] + row[MISMATCH]
        row["mismatch_rate"] = round(row[MISMATCH] / checkable, 4) if checkable else 0.0
    return out
