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


def _compare(reference: str, prediction: str, boxed: bool) -> tuple[bool, bool, str]:
    """(parsed_any, equal, shown) -- run inside the deadline."""
    from math_verify import parse, verify

    gold = parse(f"${reference}$", parsing_timeout=None)  # type: ignore[arg-type]
    if not gold:
        gold = parse(reference, parsing_timeout=None)  # type: ignore[arg-type]
    pred_text = f"\\boxed{{{prediction}}}" if boxed else prediction
    pred = parse(pred_text, parsing_timeout=None)  # type: ignore[arg-type]
    if not gold or not pred:
        return bool(pred), False, f"gold={gold!r:.80} pred={pred!r:.80}"
    equal = verify(gold, pred, timeout_seconds=None)
    return True, bool(equal), f"gold={gold[0]!s:.80} pred={pred[0]!s:.80}"


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
    raw = all_boxed(answer)
    # Each distinct box is checked as written, as a single box is: without its blanks "1 2" (not
    # twelve on its own) read "12", so "\boxed{1 2} ... \boxed{12}" passed against 12. A run of
    # blanks is one blank to LaTeX, so only that is merged.
    boxes = list(dict.fromkeys(re.sub(r"\s+", " ", b) for b in raw))
    if len(boxes) <= 1:
        return _verify_one(answer, ref, raw[-1] if raw else None, timeout_s)
    # "\boxed{3} or \boxed{5}": the last box alone would pass a hedge; every distinct one must.
    if len(boxes) > _SEVERAL_MAX:
        return Verdict("fail", METHOD, "several_boxed", f"{len(boxes)} different boxed answers")
    for box in boxes:
        one = _verify_one(answer, ref, box, timeout_s)
        if one.status != "pass":
            return one if one.status == "error" else Verdict("fail", METHOD, "several_boxed", one.detail)
    return one


def _verify_one(answer: str, ref: str, boxed: str | None, timeout_s: float) -> Verdict:
    prediction = boxed if boxed is not None else answer[-_TAIL_CHARS:]
    # Plain numbers on both sides (GSM8K): compare exactly, without sympy (µs instead of ms).
    a, b = _plain_number(ref), _plain_number(boxed) if boxed is not None else None
    if a is not None and b is not None:
        return Verdict("pass", METHOD, "ok", str(b)) if a == b else Verdict("fail", METHOD, "mismatch", str(b))
    try:
        parsed, equal, shown = run_with_deadline(_compare, (ref, prediction, boxed is not None), timeout_s)
    except DeadlineExceeded:
        return Verdict("error", METHOD, "timeout", f"over {timeout_s}s")
    except Exception as exc:  # math-verify/sympy internals; record, never crash the stage
        return Verdict("error", METHOD, "verifier_error", f"{type(exc).__name__}: {exc}"[:200])
    if equal:
        return Verdict("pass", METHOD, "ok" if boxed is not None else "ok_unboxed", shown)
    if boxed is None and not parsed:
        return Verdict("fail", METHOD, "no_boxed")
    if not parsed:
        return Verdict("fail", METHOD, "unparsable_answer", shown)
    return Verdict("fail", METHOD, "mismatch", shown)
