"""Which English rules (detect_en.py) run on a prompt: each rule's trigger substrings and, where a
trigger is a common word or the rule is slow on long prompts, a tighter gate (a part every match
of the rule's own patterns holds). detect.py reads TRIGGERS, GATES, RULES and LITERALS."""

from __future__ import annotations

import re
from typing import Any

from builder.constraints.detect_en import (
    _SECTION_SP,
    _bullets,
    _case,
    _constrained,
    _end,
    _highlights,
    _json,
    _length,
    _no_comma,
    _paragraphs,
    _placeholders,
    _postscript,
    _quotation,
    _repeat,
    _sections,
    _title,
    _two,
)
from builder.constraints.gate_patterns import CASE_GATE, NAMED_COUNT_T, NTH_GATE, RANGE_T, count_gate
from builder.constraints.literals import Keyed
from builder.constraints.numbers import NUM, NUM_WORDS

# A rule runs only when one of its trigger substrings is in the lower-cased prompt: most prompts
# state no constraint, and a substring test is ~100x cheaper than the rule's patterns.
TRIGGERS: dict[Any, tuple[str, ...]] = {
    _no_comma: ("comma",), _length: ("word", "sentence"), _paragraphs: ("paragraph", "***", "divider", "asterisk"),
    _bullets: ("bullet",), _constrained: ("my answer is",), _highlights: ("highlight", "italic", "*"),
    _sections: ("section", "paragraph", "part", "chapter", "day", "slide", "point", "step", "episode", "act", "verse"),
    _json: ("json",), _title: ("<<", "angul", "angle"), _repeat: ("repeat", "repleat", "restate", "copy", "echo", "reproduce"),
    _two: ("******", "asterisk", "different", "distinct", "separate", "alternative"),
    _end: ("end", "finish", "conclud", "clos", "last", "final", "wrap"), _quotation: ("quot",), _postscript: ("p.s", "p. s", "p.p"),
    _placeholders: ("placeholder",), _case: ("lower", "capital", "caps", "upper", "small letters", "block letters"),
}  # fmt: skip
# Tighter gates where a trigger is a common word ("end", "part", "*") or a rule's patterns are slow
# on long prompts: a substring or pattern that every match of the rule's own patterns contains,
# tested on the lower-cased text (plain patterns there get re's first-character skip; `re.I` ones
# on the text do not).
_SECTION_WORDS = tuple(_SECTION_SP.split("|"))
_SECTION_LOW = frozenset(w.lower() for w in _SECTION_WORDS)
_SECTION_FORMS = {lw: tuple(w for w in _SECTION_WORDS if w.lower() == lw) for lw in _SECTION_LOW}
# _sections' two patterns both hold a marker word then "X", "{x}", "[N]" or "1" (case-sensitive, on the text).
_SECTION_GATE = {w: re.compile(rf"{w}\s+(?:X|\{{?x\}}?|\[?N\]?|1)\b") for w in _SECTION_SP.split("|")}  # one per word: a literal prefix
# _highlights emits only when one of its patterns matches; each of these is one of them, or the
# part of it every match holds (the tail after the count), lower-cased, on the lower-cased text.
_HL = r"(?:highlight|italici[sz]e|emphasi[sz]e|bold)"
_HIGHLIGHT_GATES = tuple(re.compile(p) for p in (
    rf"{_HL}\w*\s+(?:at\s+least\s+|exactly\s+|a\s+minimum\s+of\s+)?{NUM}\b",
    r"(?:sections?|parts?|phrases?|words?|points?|keywords?)\s+(?:\w+\s+){0,3}(?:highlight|italic)",
    r"(?:italic|highlighted|bold)\w*\s+(?:text\s+)?(?:sections?|parts?|phrases?|words?)",
    rf"{_HL}\w*\s+(?:\w+\s+){{1,5}}(?:once|twice|thrice|\d+\s+times)",
    r"(?:highlight|italici[sz]e)\w*\s+(?:\w+\s+){0,6}(?:with|using|in|by)\s+(?:markdown|\*|asterisk)",
    r"markdown\s+highlight", r"\*highlighted", r"highlight\s+the\s+\w+\s+by\s+wrapping",
))  # fmt: skip
_DIVIDER_G = frozenset(("***", "divider", "asterisk"))


def _length_gate(text: str, low: str, found: set[str]) -> bool:
    return any(count_gate(low, u, found) for u in ("word", "sentence") if u in found)


_REPEAT_MARK = frozenset(("first", "before", "beginning", "start", "then"))
_REPEAT_KEYED = Keyed({w: w for w in ("repeat", "repleat", "restate", "copy", "echo", "reproduce")},
                      r"\b(?:[^.\n]{0,60}?)(?:\b(?:request|question|prompt|instruction|sentence|query|task|text|line|it)\b|[\"“])")
# _two's pattern, one alternative each (a literal first); _bullets' and _placeholders' patterns from the count.
_TWO_T = frozenset(("responses", "answers", "versions", "replies"))
_TWO_PLAIN = re.compile(r"(?:two|2)\s+(?:different|distinct|separate|alternative)\s+(?:responses|answers|versions|replies)")
_TWO_ASTERISKS = re.compile(r"six\s+asterisk|6\s+asterisk")
_BULLET_GATES = (re.compile(r"\d[\d,]*\s+(?:markdown\s+)?bullet"), re.compile(rf"(?:{NUM_WORDS})\s+(?:markdown\s+)?bullet"),
                 re.compile(r"bullet(?:ed)?\s*(?:points?|list)\b[^.\n]{0,30}?\bexactly\s"))  # fmt: skip
_PLACEHOLDER_GATES = (re.compile(r"\d[\d,]*\s+(?:\w+\s+)?placeholder"), re.compile(rf"(?:{NUM_WORDS})\s+(?:\w+\s+)?placeholder"),
                      re.compile(r"square\s+brackets"))  # fmt: skip
_HIGHLIGHT_G = frozenset(("highlight", "italic", "emphasi", "bold"))
_END_G = frozenset(("with", "by", "should", "must", "has", "need"))
# _END's three alternatives: "end/finish/conclude/close/wrap up … with/by", "last/final/closing
# sentence/line/word/phrase … should/must/has to/needs to be", "end of your … should/must read".
_END_VERB, _WITH_BY = frozenset(("end", "finish", "conclud", "clos", "wrap")), frozenset(("with", "by"))
_LAST, _END_UNIT, _MODAL = frozenset(("last", "final", "clos")), frozenset(("sentence", "line", "word", "phrase")), _END_G - _WITH_BY


def _end_gate(found: set[str]) -> bool:
    return (not (_END_VERB.isdisjoint(found) or _WITH_BY.isdisjoint(found))
            or not (_LAST.isdisjoint(found) or _END_UNIT.isdisjoint(found) or _MODAL.isdisjoint(found))
            or ("end" in found and ("should" in found or "must" in found)))  # fmt: skip
# Each gate reads (text, lower-cased text, the LITERALS that lower-cased text holds).
GATES: dict[Any, Any] = {
    _highlights: lambda text, low, found: not _HIGHLIGHT_G.isdisjoint(found) and any(g.search(low) for g in _HIGHLIGHT_GATES),
    _length: _length_gate,
    # _repeat emits only with a match of _REPEAT and, in its line, "first/before/beginning/start/then"
    _repeat: lambda text, low, found: not _REPEAT_MARK.isdisjoint(found) and _REPEAT_KEYED.search(low, found),
    _two: lambda text, low, found: "******" in found or (not _TWO_T.isdisjoint(found) and _TWO_PLAIN.search(low) is not None) or (
        "asterisk" in found and _TWO_ASTERISKS.search(low) is not None),
    _bullets: lambda text, low, found: any(g.search(low) for g in _BULLET_GATES),
    _placeholders: lambda text, low, found: any(g.search(low) for g in _PLACEHOLDER_GATES),
    _paragraphs: lambda text, low, found: not _DIVIDER_G.isdisjoint(found) or ("paragraph" in found and NTH_GATE.search(low) is not None),
    _case: lambda text, low, found: CASE_GATE.search(low) is not None,
    _end: lambda text, low, found: _end_gate(found),
    # its patterns are case-sensitive: a word is in `text` only if its lower-case form is in `low`
    _sections: lambda text, low, found: any(w in text and _SECTION_GATE[w].search(text) is not None
                                            for lw in _SECTION_LOW.intersection(found) for w in _SECTION_FORMS[lw]),
}
# Every substring a trigger or gate above tests for (detect.py finds them all in one pass).
LITERALS = frozenset([t for ts in TRIGGERS.values() for t in ts] + [*_HIGHLIGHT_G, *_END_G, *_DIVIDER_G, "sentence", "exactly"]
                     + [*RANGE_T, *NAMED_COUNT_T, *_TWO_T, "asterisk", *_REPEAT_MARK]
                     + list(_SECTION_LOW))
RULES = (_no_comma, _length, _paragraphs, _bullets, _constrained, _highlights, _sections, _json, _title, _repeat,
         _two, _end, _quotation, _postscript, _placeholders, _case)  # fmt: skip
