"""Math answers: the teacher's last `\\boxed{}` against a reference, with math-verify.

References may be plain ("72", "\\frac{1}{2}"), contain their own `\\boxed{}` (MATH
solutions) or end in a GSM8K line "#### 72". Parsing and comparison run under one wall-clock
deadline (see `deadline.py`), so a pathological expression costs at most `timeout_s`.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation

from .deadline import DeadlineExceeded, run_with_deadline
from .verdict import Verdict

METHOD = "math"
_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_GSM8K_RE = re.compile(r"####\s*(.+?)\s*$", re.S)
_THOUSANDS_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_TAIL_CHARS = 600  # unboxed fallback only looks at the end, where the conclusion is


class _DropTimeoutWarning(logging.Filter):
    # We pass timeout=None on purpose (our own deadline); math-verify warns about that.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutWarning())


def all_boxed(text: str) -> list[str]:
    """Non-empty contents of every `\\boxed{...}` / `\\fbox{...}` (balanced braces), in order."""
    return [content for content, _ in _boxes(text)]


def _boxes(text: str) -> list[tuple[str, int]]:
    """(content, index just after the closing brace) of every non-empty box, in order."""
    out: list[tuple[str, int]] = []
    for m in _BOX_RE.finditer(text):
        depth, start = 1, m.end()
        for i in range(start, len(text)):
            ch = text[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    content = text[start:i].strip()
                    if content:
                        out.append((content, i + 1))
                    break
    return out


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` (balanced braces), or None."""
    boxes = all_boxed(text)
    return boxes[-1] if boxes else None


def normalize_reference(reference: str) -> str:
    """Turn a reference into one LaTeX/plain expression: GSM8K '#### N', boxed, or as is."""
    ref = reference.strip()
    gsm = _GSM8K_RE.search(ref)
    if gsm:
        ref = gsm.group(1).strip()
    else:
        boxed = last_boxed(ref)
        if boxed is not None:
            ref = boxed
    if _THOUSANDS_RE.fullmatch(ref):
        ref = ref.replace(",", "")  # "1,000" is a thousands separator, not a tuple
    return ref


# An ordinal's suffix written as a superscript after a number ("12^{\text{th}}", "3^{\rm rd}"): math-verify
# read it as a power with an unparsable exponent, so "12^{th} grade" failed against 12 (MATH-500).
_ORDINAL = re.compile(
    r"(?<=\d)\s*\^\s*(?:\{\s*\\(?:text|textrm|mathrm)\s*\{\s*(?:st|nd|rd|th)\s*\}\s*\}"
    r"|\\(?:text|textrm|mathrm)\s*\{\s*(?:st|nd|rd|th)\s*\}|\{\s*(?:\\rm\s*)?(?:st|nd|rd|th)\s*\})"
)


def _compare(reference: str, prediction: str, boxed: bool) -> tuple[bool, bool, str]:
    """(parsed_any, equal, shown) -- run inside the deadline."""
    from math_verify import parse, verify

    prediction = _ORDINAL.sub("", prediction)

    gold = parse(f"${reference}$", parsing_timeout=None)  # type: ignore[arg-type]
    if not gold:
        gold = parse(reference, parsing_timeout=None)  # type: ignore[arg-type]
    pred_text = f"\\boxed{{{prediction}}}" if boxed else prediction
    pred = parse(pred_text, parsing_timeout=None)  # type: ignore[arg-type]
    if not gold or not pred:
        return bool(pred), False, f"gold={gold!r:.80} pred={pred!r:.80}"
    equal = verify(gold, pred, timeout_seconds=None) and _sides_agree(gold, pred[0])
    return True, bool(equal), f"gold={gold[0]!s:.80} pred={pred[0]!s:.80}"


def _sides_agree(gold: list, pred: object) -> bool:
    """math-verify reads an equation against a plain gold by its last right side, so "3 = 5"
    passed against 5. A side that names the quantity ("x", "f(3)", "\\sin 18^\\circ") is fine;
    a side made of numbers only must be the gold's value too ("\\frac{10}{2} = 5" passes)."""
    from math_verify import verify
    from math_verify.grader import is_equation, is_relation
    from sympy import Function

    if is_relation(gold[0]) or not is_equation(pred):
        return True
    eqs = list(pred._unsorted_args) if not hasattr(pred, "lhs") else [pred]  # type: ignore[attr-defined]
    sides = [eqs[0].lhs, *(e.rhs for e in eqs)]
    numeric = [s for s in sides if not s.free_symbols and not s.atoms(Function)]
    return all(verify(gold, [s, str(s)], timeout_seconds=None) for s in numeric)


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
# Thousands separators: ",", "{,}", a LaTeX thin space "\," or a space, only between groups of
# three digits ("1,5" is a list or a decimal comma, never fifteen).
_GROUPED = re.compile(r"[-+]?\d{1,3}(?:(?:,|\{,\}|\\,|\\ | )\d{3})+(?:\.\d+)?")
_SEPARATOR = re.compile(r"\{,\}|\\,|\\ |[, ]")
_SEVERAL_MAX = 8  # distinct boxed answers checked one by one; more is a hedge on its face


def _plain_number(text: str | None) -> Decimal | None:
    """A bare number (thousands separators, a $ sign and surrounding spaces allowed), else None."""
    if text is None:
        return None
    t = text.strip().replace("\\$", "").replace("$", "").strip()
    if _GROUPED.fullmatch(t):
        t = _SEPARATOR.sub("", t)
    if not _NUMBER.fullmatch(t):
        return None
    try:
        return Decimal(t)
    except InvalidOperation:
        return None


def verify_math(answer: str, reference: str | None, timeout_s: float = 10.0) -> Verdict:
    """Verdict for a math answer; never raises."""
    if not reference or not reference.strip():
        return Verdict("unverifiable", METHOD, "no_reference")
    if not answer or not answer.strip():
        return Verdict("fail", METHOD, "empty_answer")
    ref = normalize_reference(reference)
    found = _boxes(answer)
    raw, end = [content for content, _ in found], found[-1][1] if found else len(answer)
    # Each distinct box is checked as written, as a single box is: without its blanks "1 2" (not
    # twelve on its own) read "12", so "\boxed{1 2} ... \boxed{12}" passed against 12. A run of
    # blanks is one blank to LaTeX, so only that is merged.
    boxes = list(dict.fromkeys(re.sub(r"\s+", " ", b) for b in raw))
    if len(boxes) <= 1:
        return _verify_one(answer, ref, raw[-1] if raw else None, end, timeout_s)
    # "\boxed{3} or \boxed{5}": the last box alone would pass a hedge; every distinct one must.
    if len(boxes) > _SEVERAL_MAX:
        return Verdict("fail", METHOD, "several_boxed", f"{len(boxes)} different boxed answers")
    for box in boxes:
        one = _verify_one(answer, ref, box, end, timeout_s)
        if one.status != "pass":
            return one if one.status == "error" else Verdict("fail", METHOD, "several_boxed", one.detail)
    return one


# A retraction: what follows it replaces what came before ("The answer is 72. Wait, no: 73.").
_CORRECTION = re.compile(
    r"\b(?:wait|actually|correction|oops|sorry|I mean|scratch that|on second thought)\b|(?:^|[.!?]\s)\s*no\s*[,:;!]",
    re.I | re.M,
)
# A second value offered beside the answer: "\boxed{5}\text{ (or 3)}", "5 (or maybe 3)". What
# follows "or" up to the end of its clause is read; "or approximately 0.33" is not a second answer.
_OR = re.compile(r"\bor\b(?!\s*(?:approximately|about|roughly|around|nearly|so|more|less|fewer|\\approx)\b)", re.I)
# The value right after "or" (and a filler word): digits, operators, braces and LaTeX commands.
_OR_VALUE = re.compile(
    r"\s*(?:(?:maybe|perhaps|possibly|equivalently|simply|even|just)\s+)?[\s$(]*(?:\\\(|\\text\{\s*\(?)?"
    r"((?:\\[A-Za-z]+|\\[,; ]|[-+*/^_.,=\d{}\s])+)",
    re.I,
)


def _alternatives(text: str, in_box: bool = False) -> list[str]:
    """Values offered after "or". In a box only those math-verify does not see: it reads "2 or 3"
    and "2 \\text{ or } 3" itself (the set of solutions) but drops "\\text{ or 3}" and "(or 3)"."""
    out = []
    for m in _OR.finditer(text):
        before = text[: m.start()]
        opened = before.rfind("\\text{")
        in_text = opened >= 0 and "}" not in before[opened:]
        if in_box and not (in_text or before.rstrip().endswith("(")):
            continue
        v = _OR_VALUE.match(text, m.end())
        value = v.group(1) if v else ""
        value = (value.split("}", 1)[0] if in_text else value).strip(" ,.{")
        if re.search(r"\d", value) and value.count("{") == value.count("}"):
            out.append(value)
    return out


def _after_the_answer(answer: str, boxed: str | None, end: int) -> list[tuple[str, bool]]:
    """(text, is a bare value) whose value must agree with the answer's: second values offered with
    "or" in the box or on its line, and what follows the last retraction after the box (the last
    box ends at `end`)."""
    if boxed is None:
        return []
    line = answer[end:].split("\n", 1)[0]
    out = [(value, True) for value in _alternatives(boxed, in_box=True) + _alternatives(line)]
    marks = list(_CORRECTION.finditer(answer, end))
    if marks:
        out.append((answer[marks[-1].end() :], False))
    return out


def _compare_in_time(ref: str, text: str, boxed: bool, timeout_s: float) -> tuple[bool, bool, str] | Verdict:
    """_compare's result, or the error verdict when it overran its deadline or raised."""
    try:
        return run_with_deadline(_compare, (ref, text, boxed), timeout_s)
    except DeadlineExceeded:
        return Verdict("error", METHOD, "timeout", f"over {timeout_s}s")
    except Exception as exc:  # math-verify/sympy internals; record, never crash the stage
        return Verdict("error", METHOD, "verifier_error", f"{type(exc).__name__}: {exc}"[:200])


def _verify_one(answer: str, ref: str, boxed: str | None, end: int, timeout_s: float) -> Verdict:
    verdict = _verify_value(answer, ref, boxed, timeout_s)
    if verdict.status != "pass":
        return verdict
    for text, bare in _after_the_answer(answer, boxed, end):
        compared = _compare_in_time(ref, text, bare, timeout_s)
        if isinstance(compared, Verdict):
            return compared
        parsed, equal, shown = compared
        if parsed and not equal:
            return Verdict("fail", METHOD, "hedged", f"{text[:60]!r}: {shown}")
    return verdict


def _verify_value(answer: str, ref: str, boxed: str | None, timeout_s: float) -> Verdict:
    prediction = boxed if boxed is not None else _unboxed_tail(answer)
    # Plain numbers on both sides (GSM8K): compare exactly, without sympy (µs instead of ms).
    a, b = _plain_number(ref), _plain_number(boxed) if boxed is not None else None
    if a is not None and b is not None:
        return Verdict("pass", METHOD, "ok", str(b)) if a == b else Verdict("fail", METHOD, "mismatch", str(b))
    compared = _compare_in_time(ref, prediction, boxed is not None, timeout_s)
    if isinstance(compared, Verdict):
        return compared
    parsed, equal, shown = compared
    if equal:
        return Verdict("pass", METHOD, "ok" if boxed is not None else "ok_unboxed", shown)
    if boxed is None and not parsed:
        return Verdict("fail", METHOD, "no_boxed")
    if not parsed:
        return Verdict("fail", METHOD, "unparsable_answer", shown)
    return Verdict("fail", METHOD, "mismatch", shown)


def _unboxed_tail(answer: str) -> str:
    """The end of an answer without a box, from its last retraction on when one follows
    a value: math-verify prefers an "answer is 72" over a later "no: 73"."""
    tail = answer[-_TAIL_CHARS:]
    marks = list(_CORRECTION.finditer(tail))
    after = tail[marks[-1].end() :] if marks else ""
    return after if re.search(r"\d", after) else tail
