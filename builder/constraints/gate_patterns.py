"""Patterns the English rules (detect_en.py) test on a sentence or window, and their gates
(detect_en_gates.py) on the whole prompt: each holds a part every match of a rule's own patterns
holds, lower-cased, for the lower-cased text (plain literal-led patterns get re's fast skips;
`re.I` ones on the text do not)."""

from __future__ import annotations

import re

import regex

from builder.constraints.numbers import NUM, NUM_WORDS_REVERSED

CASE_GATE = re.compile(r"capital(?:ized)?\s+letter|capitals|all[\s-]+caps|upper[\s-]?case|block\s+letters|caps\s+lock|"
                        r"lower[\s-]?case|small\s+letters|capitali[sz]|stress\s+words")  # fmt: skip
# _paragraphs' "the Nth paragraph starts with …" patterns hold one of these.
NTH_GATE = re.compile(r"(?:start|begin)(?:s?\s+with\s|\s+(?:the\s+)?\w+\s+paragraph)")
# _counted's patterns, each cut to a part every match holds:
# - a count right before the unit, `NUM mid unit` (the third pattern; the first's range ends so):
#   searched backwards (the unit spelled backwards, then the count: the literal first gets re's
#   first-character skip; a pattern has a match iff its mirror has one in the mirrored text);
# - a range after the unit (the `regex` module, as _counted: its \w differs from re's);
# - "unit count/limit/length", "number of units"; "exactly N … sentences" (emitted for sentences only).
_COUNT_MID_REVERSED = r"(?:[\s-]+\w+)?(?:\s+(?:erom|ssel|rewef)\s+ro)?[\s-]*\+?"  # \+?[\s-]*(?:or\s+(?:more|less|fewer)\s+)?(?:\w+[\s-]+)?
COUNT_BEFORE_REVERSED = {u: re.compile(rf"{u[::-1]}{_COUNT_MID_REVERSED}(?:[\d,]*\d|{NUM_WORDS_REVERSED})") for u in ("word", "sentence")}
_RANGE_AFTER = {u: regex.compile(rf"{u}s?\s+(?:\w+\s+){{0,3}}?(?:in\s+the\s+range\s+of|between|from)\s") for u in ("word", "sentence")}
_NAMED_COUNT = {u: re.compile(rf"{u}\s*(?:count|limit|length)|number\s+of\s+{u}s") for u in ("word", "sentence")}
RANGE_T, NAMED_COUNT_T = frozenset(("between", "from", "range")), frozenset(("count", "limit", "length", "number"))
ALL_COUNT_T = RANGE_T | NAMED_COUNT_T | {"exactly"}  # every literal count_gate asks about (a window's own: unknown)
_EXACTLY_SENTENCES = re.compile(rf"exactly\s+(?:{NUM})[\s-]+(?:\w+[\s-]+)?sentence")


def count_gate(low: str, unit: str, found: set[str] | frozenset[str]) -> bool:
    """False only when _counted(…, unit) finds nothing in the text `low` lower-cases (`found`: a superset of its LITERALS)."""
    return (COUNT_BEFORE_REVERSED[unit].search(low[::-1]) is not None
            or (not RANGE_T.isdisjoint(found) and _RANGE_AFTER[unit].search(low) is not None)
            or (not NAMED_COUNT_T.isdisjoint(found) and _NAMED_COUNT[unit].search(low) is not None)
            or (unit == "sentence" and "exactly" in found and _EXACTLY_SENTENCES.search(low) is not None))  # fmt: skip
