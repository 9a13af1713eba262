"""Is a summary faithful to what it summarizes? Every claim traced back to the thinking or prompt.

A summary may restate, never add. Checked, in this order (the first failure is the code):

    answer    it states no final result other than the answer's (option letter, boxed value)
    language  it is in a language the prompt allows
    length    it is at most `max_ratio` x the thinking's length
    number    every number in it occurs in the thinking or the prompt
    formula   every formula in it (inline TeX, `a = b` atoms) occurs there, spacing ignored
    entity    every named entity (a capitalised word or run of them, not sentence-initial)
              occurs there, case and spacing kept

`faithfulness_score` = share of the summary's atoms (numbers, formulas, entities) found in the
sources, 0 when it contradicts the answer. Codes: `summary_unfaithful_<what>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from builder.language import identify, prompt_languages
from builder.variants.summary_quality import answer_results, is_letter, sentences, stated_results

# A number not inside a word or another number: `(?<![^\W\d_])(?<![\d.])[-+]?\d[\d,]*(?:\.\d+)?(?!\d)`
# (tests/test_summary_identity.py holds _NUM to it), written to open on its first character (re
# skips ahead to it in C; ~2.5x faster), each look-behind then seeing past that character.
_NUM = re.compile(r"[-+\d](?<![^\W\d_].)(?<![\d.].)(?:(?<=[-+])\d|(?<=\d))[\d,]*(?:\.\d+)?(?!\d)")
_TEX = regex.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]|\$\$(.+?)\$\$|\$(?![\d\s])([^$]+?)(?<!\s)\$", regex.S)  # "$100" is money
# A formula atom: a number, a short identifier (x, Ff, pq, not a word like "so"), an operator.
_STOP = r"(?:so|the|is|of|and|to|in|we|it|as|at|by|or|if|be|an|for|get|has|are|was|let|then|thus|gives)"
_TOK = rf"(?:\d+(?:\.\d+)?|(?<!\p{{L}})(?!{_STOP}(?!\p{{L}}))\p{{L}}{{1,3}}(?!\p{{L}})|[()\[\]^_{{}}²³√⁻¹/*+\-·×÷'])"
_EQ = regex.compile(rf"(?:{_TOK}\s*)+(?:=|≤|≥|<|>)(?:\s*{_TOK})+", regex.I)
# What no _EQ match can hold: a character no token, space or relation is, a "." outside a decimal,
# a word of 4+ letters (a token has 1-3). _EQ runs only between these (_equations): its scan tries
# every position, and prose is mostly long words. Case-insensitive like _EQ: the same \p{L}.
_EQ_BARRIER = regex.compile(r"[^\s\d.\p{L}()\[\]^_{}²³√⁻¹/*+\-·×÷'=≤≥<>]+|(?<!\d)\.|\.(?!\d)|\p{L}{4,}", regex.I)
_ENTITY = regex.compile(r"\b\p{Lu}[\p{Ll}\p{Lu}'’-]+(?:\s+\p{Lu}[\p{Ll}\p{Lu}'’-]+)*")
# Capitalised words that are not names: connectives a summary may open a clause with.
_NOT_NAMES = frozenset({
    "The", "A", "An", "This", "That", "These", "Those", "It", "Its", "In", "On", "At", "For", "From", "With", "By",
    "Of", "To", "And", "Or", "But", "So", "Thus", "Hence", "Therefore", "Since", "Because", "If", "When", "Then",
    "Also", "First", "Second", "Third", "Finally", "Next", "Option", "Options", "Answer", "Choice", "Using", "Given",
    "Each", "Both", "All", "No", "Not", "Only", "One", "Two", "Three", "Yes", "Step", "Case", "Note", "Here", "There",
    "Which", "What", "Why", "How", "Let", "We",
})  # fmt: skip


def _bare(text: str) -> str:
    return "".join(text.split())


_DIGITS = frozenset("0123456789")


def _has_number(n: str, source: str) -> bool:
    """`n` (commas dropped) occurs in `source` (commas dropped) as a whole number."""
    at = source.find(n)
    while at >= 0:
        before, after = source[at - 1 : at], source[at + len(n) : at + len(n) + 1]
        # ASCII digits only: "3²" holds a 3 ("²".isdigit() is True).
        if not (before in _DIGITS or before == ".") and after not in _DIGITS:
            return True
        at = source.find(n, at + 1)
    return False


def numbers(text: str) -> set[str]:
    return {n.replace(",", "").lstrip("+") for n in _NUM.findall(text)}


_RELATIONS = frozenset("=≤≥<>")


def formulas(text: str) -> set[str]:
    found: set[str] = set()
    if "$" in text or "\\" in text:  # every _TEX match holds one of them
        found = {_bare(next(g for g in m.groups() if g)) for m in _TEX.finditer(text)}
        text = _TEX.sub(" ", text)
    if not _RELATIONS.isdisjoint(text):  # _EQ is slow to fail: skip prose with no relation sign
        found |= {_bare(eq).rstrip(".,;") for eq in _equations(text)}
    return {f for f in found if f}


def _equations(text: str) -> list[str]:
    """_EQ.finditer(text)'s matches, _EQ run only on the stretches between barriers that hold a
    relation. Same matches: none crosses a barrier; a look-behind sees before `pos`; a stretch
    ends at a non-letter, so the look-aheads at its end decide as they would in the whole text."""
    out: list[str] = []
    start = 0
    for b in [*_EQ_BARRIER.finditer(text), None]:
        end = len(text) if b is None else b.start()
        if end > start and not _RELATIONS.isdisjoint(text[start:end]):
            out += [m.group(0) for m in _EQ.finditer(text, start, end)]
        if b is not None:
            start = b.end()
    return out


def entities(text: str) -> set[str]:
    """Capitalised words or runs of them, leaving out each sentence's first word."""
    out: set[str] = set()
    for s in sentences(_TEX.sub(" ", text) if "$" in text or "\\" in text else text):
        for m in _ENTITY.finditer(s):
            name = m.group(0)
            if m.start() == len(s) - len(s.lstrip()):  # sentence-initial: capitalised by grammar
                name = name.partition(" ")[2]
            parts = [w for w in name.split() if w not in _NOT_NAMES]
            if parts and len(" ".join(parts)) > 1:
                out.add(" ".join(parts))
    return out


@dataclass(frozen=True, slots=True)
class Faithfulness:
    score: float
    failure: str | None  # summary_unfaithful_<what>, or None
    unsupported: tuple[str, ...]  # the atoms not found (evidence for the ledger detail)


def check_faithful(
    summary: str, think: str, answer: str, prompt: str, max_ratio: float, min_score: float = 1.0
) -> Faithfulness:
    """The summary's faithfulness score and its first failure; atoms fail only below `min_score`."""
    source = f"{think}\n{prompt}"
    stated, final = stated_results(summary), set(answer_results(answer or ""))
    # Like with like: "answer is 1.8 mm" and "answer is (I)" are one answer in two kinds.
    contradicts = any(
        bool(a and b and not (a & b))
        for a, b in (({x for x in stated if is_letter(x)}, {x for x in final if is_letter(x)}),
                     ({x for x in stated if not is_letter(x)}, {x for x in final if not is_letter(x)}))
    )  # fmt: skip
    missing: dict[str, list[str]] = {"number": [], "formula": [], "entity": []}
    atoms = 0
    nums, forms = numbers(summary), formulas(summary)
    src_plain = source.replace(",", "") if nums else ""  # copies of the whole thinking: only when needed
    src_bare = _bare(source) if forms else ""
    for n in nums:
        atoms += 1
        if not _has_number(n.lstrip("-"), src_plain):
            missing["number"].append(n)
    for f in forms:
        atoms += 1
        if f not in src_bare and f[:1].lower() + f[1:] not in src_bare:  # a re-capitalised opening
            missing["formula"].append(f)
    for e in entities(summary):
        atoms += 1
        if e not in source:
            missing["entity"].append(e)
    bad = sum(len(v) for v in missing.values())
    score = 0.0 if contradicts else (1.0 - bad / atoms if atoms else 1.0)
    failure = None
    if contradicts:
        failure = "summary_unfaithful_answer"
    else:
        allowed = prompt_languages(prompt)
        lang = identify(summary).language if allowed else "unknown"
        if allowed and lang not in ("mixed", "unknown") and lang not in allowed:
            failure = "summary_unfaithful_language"
        elif len(summary) > max_ratio * len(think or ""):
            failure = "summary_unfaithful_length"
        elif score < min_score:
            failure = next((f"summary_unfaithful_{k}" for k, v in missing.items() if v), None)
    unsupported = tuple(x for v in missing.values() for x in v)
    return Faithfulness(round(score, 4), failure, unsupported)
