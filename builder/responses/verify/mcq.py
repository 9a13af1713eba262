"""Multiple-choice answers: find the letter the teacher committed to, compare with the gold.

Extraction works in tiers, strongest first; the first tier that finds anything decides:

1. explicit statements: `\\boxed{C}`, "answer is (C)", "Answer: **C**", "correct option: C",
   "答案是 C", "答案：C", "故选 C", "উত্তর: C" (Bangla "answer");
2. emphasis: "**C**", "**C.** text", "**Option C**", "**(C)**";
3. the last non-empty line being just a letter ("C", "(C)", "C.").

Within the deciding tier, several *different* letters mean the answer is ambiguous (fail).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .verdict import Verdict

METHOD = "mcq"
LETTERS = "ABCDEFGHIJ"  # MMLU-Pro has up to 10 options
_L = rf"(?-i:[{LETTERS}])"  # letters stay upper-case even in re.I patterns
# A letter standing alone: not part of a word ("A" in "A cat" is excluded by the follow-up check).
_OPEN, _CLOSE = r"[\(\[（`\"“]?", r"[\)\]）`\"”]?"
_LETTER = rf"{_OPEN}\**\s*({_L})\s*\**{_CLOSE}(?![A-Za-z0-9])"

_Q = r"(?:final|correct|right|best|most\s+(?:appropriate|accurate|suitable)|true)"
_TIER1 = [
    re.compile(rf"\\boxed\s*\{{\s*(?:\\text(?:bf)?\{{)?\s*\(?({_L})\)?\s*\}}"),
    # "answer" is a commitment on its own; "option"/"choice" only with a qualifier.
    re.compile(
        rf"(?:{_Q}\s+)?answer\s*(?:is|would\s+be|should\s+be|:|=|-)?\s*\**\s*:?\s*"
        rf"(?:option\s+|choice\s+)?{_LETTER}",
        re.I,
    ),
    re.compile(rf"{_Q}\s+(?:option|choice)\s*(?:is|would\s+be|:|=|-)?\s*\**\s*:?\s*{_LETTER}", re.I),
    re.compile(rf"(?:option|choice)\s+{_LETTER}\s*(?:is|would\s+be)\s+(?:the\s+)?{_Q}", re.I),
    re.compile(rf"(?:正确)?(?:答案|选项)\s*(?:是|为|应为|应该是)?\s*[:：]?\s*\**\s*[\(（]?\s*({_L})(?![A-Za-z])"),
    # "故选B" / "应选 (B)" / "选择：B" (Chinese "so choose B"); "不选A" (do not choose A) is no choice.
    re.compile(rf"(?<!不)选(?:择)?\s*[:：]?\s*\**\s*[\(（]?\s*({_L})(?![A-Za-z])"),
    re.compile(rf"(?:সঠিক\s*)?(?:উত্তর|উত্তরঃ)\s*(?:হলো|হল|হচ্ছে)?\s*[:ঃ]?\s*\**\s*[\(\[]?({_L})(?![A-Za-z])"),
]
# A literal each _TIER1 pattern cannot match without (same flags, so the same case rules): the
# patterns open with optional groups, so `re` tries them at every position of a long answer;
# skipping a pattern whose literal is absent cannot change what it finds.
_TIER1_NEEDS = [
    re.compile(r"\\boxed"),
    re.compile("answer", re.I),
    re.compile("option|choice", re.I),
    re.compile("option|choice", re.I),
    re.compile("答案|选项"),
    re.compile("选"),
    re.compile("উত্তর"),
]
_TIER2 = [
    re.compile(rf"\*\*\s*(?:option\s+|choice\s+)?\(?({_L})\)?\s*(?:[.:)]|\*\*)", re.I),
]
_TIER3 = re.compile(rf"^\W*\(?({_L})\)?[.:]?\W*$")

# "answer" inside these must not count: "the answer is not A" / "answer is between".
_NEGATED = re.compile(r"\b(?:not|n't|isn't|exclude|eliminat|rule[sd]? out|incorrect|wrong)\b", re.I)


# A second letter joined on right after a statement: "answer is (A) or (B)", "Answer: A/B",
# "A, B, C or D", "A and C". The joined letter must end there (punctuation, the end, another
# join), so "A and I think" or "A, Beijing" do not count as a second letter.
# "A or B", "A, or B" (the Oxford comma), "A, or maybe B", "A/B"
_JOIN = r"\s*(?:,?\s*\bor\b(?:\s+(?:maybe|perhaps|possibly))?|,?\s*\band\b|,|/|&)\s*"
_JOINED = re.compile(
    rf"{_JOIN}[\(\[]?\**({_L})\**[\)\]]?(?=\s*(?:$|[.,;:!?/&]|or\b|and\b))", re.I
)


# The options list restated after the statement ("Answer: A) Paris B) London C) Rome"): the
# next letter's option marker, "(B)" / "B)" / "B." opening a line, after at most an option's
# text -- no sentence ends before it, so "A: Paris. London (B) is ..." is an explanation.
_MARKER = re.compile(rf"(?:(?<=\s)|(?<=^))[\(\[]({_L})[\)\]]|(?:(?<=\s)|(?<=^))({_L})\)|(?m:^[ \t]*({_L})\.\s)")

_SENTENCE_END = re.compile(r"[.!?।]\s")
_OPTION_TEXT = 150  # chars: longer than an option's text, shorter than an explanation


def _joined_letters(text: str, end: int, letter: str) -> list[str]:
    out = []
    while (j := _JOINED.match(text, end)) is not None:
        out.append(j.group(1).upper())
        end = j.end()
    para = text[end : end + _OPTION_TEXT].split("\n\n", 1)[0]
    following = chr(ord(letter) + 1)
    marker = next((m for m in _MARKER.finditer(para) if following in m.groups()), None)
    if marker is not None:
        before = para[: marker.start()]
        # "(A minus B)": a bare "B)" closing a parenthesis is not a marker.
        closes = marker.group(2) is not None and before.count("(") > before.count(")")
        text_between = before.lstrip(".:)]）*` ").rstrip().rstrip(".!?।")  # an option may end in "."
        if not closes and not _SENTENCE_END.search(text_between):
            out.append(following)
    return out


_Q_ENDS = frozenset("lLtTeE")  # the last letters of _Q's words (re.I gives them no other match)


def _blanks_from(text: str, end: int) -> int:
    """Where the run of blanks (`\\s`: str.isspace) ending at `end` starts."""
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def _qualified(text: str, k: int) -> list[int]:
    """Where a match whose keyword is at k can start: there, or at a _Q word before its blanks
    (single characters match single characters under re.I, so each word's length is fixed)."""
    j = _blanks_from(text, k)
    if j == k or text[j - 1 : j] not in _Q_ENDS:
        return [k]
    out = [k, j - 4, j - 5, j - 7]  # best / true, final / right, correct
    for n in (8, 11):  # most accurate / suitable, most appropriate
        i = j - n
        if i > 0 and (i2 := _blanks_from(text, i)) < i:
            out.append(i2 - 4)
    return out


# For each _TIER1 pattern, where a match can start given where its keyword (the _TIER1_NEEDS
# match) is. The patterns open with optional groups and no look-behind, so `re` tries them at
# every character (~0.1 ms an answer, more in a thinking); trying them only at these starts
# finds the same matches: tests/test_check_shortcuts.py.
_STARTS = (
    lambda text, k: [k],
    _qualified,
    _qualified,
    lambda text, k: [k],
    lambda text, k: [k - 2, k],  # 正确
    lambda text, k: [k],
    lambda text, k: [_blanks_from(text, k) - 4, k],  # সঠিক and blanks
)


def tier1_matches(i: int, text: str) -> Iterator[re.Match[str]]:
    """`_TIER1[i].finditer(text)`, tried only where a match can start (`_STARTS`)."""
    return _matches_from(_TIER1[i], _TIER1_NEEDS[i], _STARTS[i], text)


def _matches_from(
    pat: re.Pattern[str], needs: re.Pattern[str], starts: Callable[[str, int], list[int]], text: str
) -> Iterator[re.Match[str]]:
    """`pat`'s non-overlapping matches, tried only at `starts` of each `needs` keyword."""
    candidates = sorted({s for key in needs.finditer(text) for s in starts(text, key.start()) if s >= 0})
    pos = 0
    for s in candidates:
        if s >= pos and (m := pat.match(text, s)) is not None:
            yield m
            pos = m.end()


def _tier1_letters(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for i in range(len(_TIER1)):
        for m in tier1_matches(i, text):
            before = text[max(0, m.start() - 1) : m.start()]
            if before.isalpha() and before.isascii():  # e.g. "reanswer", not a statement
                continue
            window = text[m.start() : m.end()]
            if _NEGATED.search(window):
                continue
            letter = m.group(1).upper()
            found.append((m.start(), letter))
            found.extend((m.start(), other) for other in _joined_letters(text, m.end(), letter))
    return [letter for _, letter in sorted(found)]


# "Answer: c" / "the answer is (c)." (options labelled a-j): a lower-case letter only where it
# cannot be a word -- in brackets, bold or backticks, before ")", or alone at the end of its
# clause; "a" bare only after "answer:" at the end of its line ("the answer is a tricky one").
_LOWER_STATEMENT = re.compile(
    rf"(?<![A-Za-z])(?:{_Q}\s+)?answer\s*(?:(is|would\s+be|should\s+be)|(:|=|-))?\s*\**\s*(:)?\s*\**\s*"
    r"(?:option\s+|choice\s+)?(?:[\(\[`]([a-j])[\)\]`]|\*\*([a-j])\*\*|([a-j])\)"
    r"|([b-j])(?=\**(?:[.,;!]\**(?:\s|$)|[ \t]*(?:\n|$)))|(?<=[:=\s])(a)(?=\**\.?\**[ \t]*(?:\n|$)))",
    re.I,
)
_LOWER_JOINED = re.compile(rf"{_JOIN}[\(\[]?\**([a-jA-J])\**[\)\]]?(?=\s*(?:$|[.,;:!?/&]|or\b|and\b))")


def _lower_letters(text: str) -> list[str]:
    found: list[str] = []
    # Tried only where a statement can start, as tier1_matches does (the pattern opens optionally).
    for m in _matches_from(_LOWER_STATEMENT, _TIER1_NEEDS[1], _qualified, text):
        letter = next(g for g in m.groups()[3:] if g)
        if not letter.islower() or _NEGATED.search(m.group(0)):
            continue
        if m.group(8) and not (m.group(2) or m.group(3)):
            continue  # a bare "a" after "answer is": the article
        found.append(letter.upper())
        end = m.end()
        while (j := _LOWER_JOINED.match(text, end)) is not None:
            found.append(j.group(1).upper())
            end = j.end()
    return found


def extract_choice(answer: str) -> tuple[str | None, str]:
    """(letter or None, reason). reason is "ok", "ambiguous" or "no_choice"."""
    letters = _tier1_letters(answer) + _lower_letters(answer)
    if not letters:
        letters = [m.group(1).upper() for p in _TIER2 for m in p.finditer(answer)]
    if not letters:
        lines = [ln for ln in answer.strip().splitlines() if ln.strip()]
        if lines and (m := _TIER3.match(lines[-1].strip())):
            letters = [m.group(1).upper()]
    if not letters:
        return None, "no_choice"
    if len(set(letters)) > 1:
        return None, "ambiguous"
    return letters[0], "ok"


def normalize_reference_letter(reference: str) -> str | None:
    ref = reference.strip().strip("()[]*. ").upper()
    return ref if len(ref) == 1 and ref in LETTERS else None


def verify_mcq(answer: str, reference: str | None) -> Verdict:
    """Verdict for a multiple-choice answer; never raises."""
    gold = normalize_reference_letter(reference or "")
    if gold is None:
        return Verdict(
            "unverifiable", METHOD, "no_reference" if not reference else "bad_reference", (reference or "")[:40]
        )
    if not answer or not answer.strip():
        return Verdict("fail", METHOD, "empty_answer")
    letter, why = extract_choice(answer)
    if letter is None:
        return Verdict("fail", METHOD, why)
    if letter == gold:
        return Verdict("pass", METHOD, "ok", f"chose {letter}")
    return Verdict("fail", METHOD, "mismatch", f"chose {letter}, gold {gold}")
