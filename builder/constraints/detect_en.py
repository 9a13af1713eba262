"""English phrasings of IFEval's instructions → constraints (format, length, case, start/end).

Rules are written from the instruction *kinds* IFEval defines, in the many ways people phrase
them ("no commas", "refrain from using commas", "avoid any commas"), not from the 541 prompts'
exact wording; the word rules (keywords, letters, language) are in detect_words.py. Each rule
reads the prompt and returns kwargs dicts; a rule that cannot read a required argument emits
nothing (a constraint with a guessed argument would fail good replies). Which rules run on a
prompt (trigger substrings, tighter gates): detect_en_gates.py.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import regex

from builder.constraints.gate_patterns import ALL_COUNT_T, CASE_GATE, NTH_GATE, count_gate
from builder.constraints.literals import anchored_finditer
from builder.constraints.numbers import (
    NUM,
    NUM_WORD_LIST,
    ORDINAL,
    number,
    ordinal,
    relation,
)

Found = list[tuple[str, dict[str, Any]]]
_NEG = r"(?:\bno\b|\bnot\b|n't\b|\bcannot\b|\bwithout\b|\bavoid|\brefrain|\bnever\b|\bfree\s+of\b|\bzero\b|\bban|\bprohibit|\bforbid)"
_QUOTE_OPEN = "\"'“‘「`"
_QUOTED = r"[\"“](?P<q1>[^\"”\n]+)[\"”]|'(?P<q2>[^'\n]+)'|‘(?P<q3>[^’\n]+)’|`(?P<q4>[^`\n]+)`"


# Characters `re.I` matches to an ASCII letter although str.lower() does not give that letter
# (dotted / dotless i, long s, Kelvin sign): a substring gate on the lower-cased text could
# skip a rule that would match, so no gate is used on a text that has one.
_ODD_CASE = re.compile("[\u0130\u0131\u017f\u212a]")


# (?<=[.!?;])\s+(?=[A-Z0-9"'“(*-])|\n+, the same splits: both alternatives begin with a space,
# so written with that first, re skips ahead to spaces (a lookbehind first gets no skip).
_SPLIT = re.compile(r"\s(?:(?<=[.!?;]\s)\s*(?=[A-Z0-9\"'“(*-])|(?<=\n)\n*)")


lowered = functools.lru_cache(maxsize=4)(str.lower)  # text.lower(), once for all the rules of a prompt


@functools.lru_cache(maxsize=4)
def odd_free(text: str) -> bool:
    """No _ODD_CASE character in `text` (cached: every rule of a prompt asks)."""
    return text.isascii() or not _ODD_CASE.search(text)


def case_gate(text: str, low: str) -> str | None:
    """`low` when substring tests on it are exact stand-ins for `re.I` matches on `text`, else None."""
    return low if odd_free(text) else None


@functools.lru_cache(maxsize=4)
def sentences(text: str) -> tuple[str, ...]:
    """Instruction-sized pieces: sentences, lines and list items. Cached: up to eight rules split
    the same prompt (the split is most of a long prompt's cost)."""
    parts = _SPLIT.split(text)
    return tuple(p.strip() for p in parts if p.strip())


def quoted(m: re.Match[str]) -> str:
    return next(g for g in (m.group("q1"), m.group("q2"), m.group("q3"), m.group("q4")) if g is not None)


def _no_comma(text: str) -> Found:
    exact = odd_free(text)
    for s in sentences(text):
        if exact and "comma" not in s.lower():
            continue  # the pattern below holds "comma"
        m = re.search(r"\bcommas?\b", s, re.I)
        if m and (re.search(_NEG, s[: m.start()], re.I) or re.match(r"\s+out\s+of", s[m.end() :], re.I) or re.match(r"\s*(?:are|is)\s+(?:not|never)\s+(?:allowed|permitted)", s[m.end() :], re.I)) and not re.search(r"separat\w*\s+(?:\w+\s+){0,3}(?:by|with)\s+(?:a\s+)?commas?", s, re.I):
            return [("punctuation:no_comma", {})]
    return []


def _counted(text: str, unit: str) -> list[tuple[str, int]]:
    """(relation, n) for every bounded count of `unit` ('word', 'sentence'); a range or "exactly N" gives two."""
    out: list[tuple[str, int]] = []
    rng = rf"(?:between\s+|range\s+of\s+|from\s+)?(?P<a>{NUM})\s*(?:to|-|–|and|or)\s*(?P<b>{NUM})"
    for m in regex.finditer(rf"{rng}[\s-]+{unit}s?\b|{unit}s?\s+(?:\w+\s+){{0,3}}?(?:in\s+the\s+range\s+of|between|from)\s+{rng}", text, re.I):
        if _caps_words(text[m.end() : m.end() + 40]):
            continue
        a, b = number(m.group("a")), number(m.group("b"))
        if a is not None and b is not None and a < b and not _per_item(text[: m.start()]):
            out += [("at least", a), ("less than", b + 1)]
    for m in re.finditer(rf"\bexactly\s+(?P<n>{NUM})[\s-]+(?:\w+[\s-]+)?{unit}s?\b", text, re.I):
        n = number(m.group("n"))
        if n is not None and unit == "sentence":
            out += [("less than", n + 1), ("at least", n)]
    if out:
        return out
    pat = rf"(?P<n>{NUM})(?P<mid>\+?[\s-]*(?:or\s+(?:more|less|fewer)\s+)?(?:\w+[\s-]+)?){unit}s?\b(?P<after>[^.;\n]{{0,40}})"
    for m in re.finditer(pat, text, re.I):
        n = number(m.group("n"))
        if n is None or (unit == "word" and _caps_words(m.group("after"))) or _per_item(text[: m.start()]):
            continue
        prefix = re.sub(r"\s*(?:a\s+total\s+of|in\s+total|a|only|just|total)\s*$", "", text[max(0, m.start() - 50) : m.start()], flags=re.I)
        got = relation(prefix, n, m.group("mid") + " " + m.group("after"))
        if got is None and re.search(r"\b(?:in|with|using|of)\s*$", prefix, re.I) and \
                re.search(r"^\s*(?:or\s+(?:less|fewer))\b", m.group("after"), re.I):
            got = ("less than", n + 1)
        if got is not None:
            out.append(got)
    # "word count … under 100", "the number of sentences should be less than 6"
    for m in re.finditer(rf"(?:{unit}\s*(?:count|limit|length)|number\s+of\s+{unit}s)[^.\n]{{0,30}}?(?P<n>{NUM})", text, re.I):
        n = number(m.group("n"))
        got = relation(text[m.start() : m.start("n")], n) if n is not None else None
        if got is not None:
            out.append(got)
    return out


def _per_item(before: str) -> bool:
    """'each description … one or two sentences': a count per item, not the reply's length."""
    clause = re.split(r"[.!?\n]", before)[-1]
    return re.search(r"\b(?:each|every|per)\b", clause, re.I) is not None


def _caps_words(after: str) -> bool:
    """'at least 5 words in all caps' counts capital words, not length."""
    return re.match(r"\s*(?:\w+\s+){0,3}(?:in\s+)?(?:all\s+)?(?:capital|caps|upper)|\s*(?:with|be)\s+(?:in\s+)?all\s+cap", after, re.I) is not None


def _windows(text: str, unit: str, width: int = 90, low: str | None = None) -> list[str]:
    """The stretches of text around each mention of `unit`: the count rules' slow patterns run there only.
    `low`: the lower-cased text when it stands in for re.I matches (odd_free, same length)."""
    spans: list[list[int]] = []
    for m in re.finditer(unit, low) if low is not None else re.finditer(rf"{unit}", text, re.I):
        a, b = max(0, m.start() - width), min(len(text), m.end() + width)
        if spans and a <= spans[-1][1]:
            spans[-1][1] = b
        else:
            spans.append([a, b])
    return [text[a:b] for a, b in spans]


def _length(text: str) -> Found:
    out: Found = []
    seen = set()
    low = lowered(text) if odd_free(text) else None
    low = low if low is not None and len(low) == len(text) else None
    for unit, cid, key in (("word", "length_constraints:number_words", "num_words"),
                           ("sentence", "length_constraints:number_sentences", "num_sentences")):  # fmt: skip
        windows = _windows(text, unit, low=low) if low is not None else _windows(text, unit)
        if low is not None:  # only windows where one of _counted's patterns can match (count_gate)
            windows = [w for w in windows if count_gate(w.lower(), unit, ALL_COUNT_T)]
        for rel, n in (got for w in windows for got in _counted(w, unit)):
            if (cid, rel, n) not in seen:
                seen.add((cid, rel, n))
                out.append((cid, {"relation": rel, key: n}))
    return out


_DIVIDER = r"\*\*\*(?!\*)|markdown\s+divider|(?:three|3)\s+asterisks?(?:\s+symbols?)?"


_COUNT_STARTS = ("exactly", "only", "just", *NUM_WORD_LIST)  # with the digits: where a _count_of match begins


def _count_of(text: str, nouns: str) -> int | None:
    pat = re.compile(rf"(?:exactly\s+|only\s+|just\s+)?(?P<n>{NUM})[\s-]+(?:\w+[\s-]+)?(?:{nouns})\b", re.I)
    low = lowered(text)
    if odd_free(text) and len(low) == len(text):  # the first match, tried only where one can begin
        m = next(anchored_finditer(pat, _COUNT_STARTS, text, low, digits=True), None)
    else:
        m = pat.search(text)
    return number(m.group("n")) if m else None


def _paragraphs(text: str) -> Found:
    out: Found = []
    exact = odd_free(text)  # then the lower-cased text's literals and NTH_GATE stand in for re.I searches
    low = lowered(text)
    nth = None if exact and not NTH_GATE.search(low) else re.search(
        rf"(?:(?:the\s+)?(?:very\s+)?(?P<ord>{ORDINAL})\s+paragraph|paragraph\s+(?P<num>\d+|one|two|three))\s+"
        rf"(?:must|should|has\s+to|needs\s+to|will|shall)?\s*(?:start|begin)s?\s+with\s+(?:the\s+)?(?:word\s+)?"
        rf"(?:[\"“'‘](?P<w1>[\w'-]+)[\"”'’]|(?P<w2>[\w-]+))",
        text, re.I,
    ) or re.search(
        rf"(?:start|begin)\s+(?:the\s+)?(?P<ord>{ORDINAL})\s+paragraph\s+with\s+(?:the\s+)?(?:word\s+)?"
        rf"(?:[\"“'‘](?P<w1>[\w'-]+)[\"”'’]|(?P<w2>[\w-]+))",
        text, re.I,
    )  # fmt: skip
    total = _count_of(text, r"paragraphs?|para") if nth else None  # read only with nth
    if nth and total:
        o = nth.group("ord")
        k = (total if o.lower() in ("last", "final") else ordinal(o)) if o else number(nth.group("num"))
        word = nth.group("w1") or nth.group("w2")
        if k:
            out.append(("length_constraints:nth_paragraph_first_word",
                        {"num_paragraphs": total, "nth_paragraph": k, "first_word": word.lower()}))  # fmt: skip
            return out
    if (not exact or "***" in low or "divider" in low or "asterisk" in low) and re.search(_DIVIDER, text, re.I) and not re.search(r"\*{6}", text):
        n = _count_of(text, r"paragraphs?|sections?|parts?|chapters?|stanzas?|verses?")
        if n is None:
            lines = re.findall(r"^\s*\*\*\*\s*$", text, re.M)
            n = len(lines) + 1 if lines else None
        if n is None and re.search(r"separate\s+(?:your\s+|the\s+)?\w+(?:\s+\w+)?\s+and\s+", text, re.I):
            n = 2  # "separate your thinking and the final answer by ***"
        if n:
            out.append(("length_constraints:number_paragraphs", {"num_paragraphs": n}))
    return out


def _bullets(text: str) -> Found:
    m = re.search(rf"(?P<n>{NUM})\s+(?:markdown\s+)?(?:bullet(?:ed)?\s*(?:points?|lists?|items?)?|bullets)\b", text, re.I)
    if not m:
        m = re.search(rf"bullet(?:ed)?\s*(?:points?|list)\b[^.\n]{{0,30}}?\b(?:exactly\s+)(?P<n>{NUM})\b", text, re.I)
    n = number(m.group("n")) if m else None
    return [("detectable_format:number_bullet_lists", {"num_bullets": n})] if n is not None else []


def _constrained(text: str) -> Found:
    if re.search(r"my answer is (?:yes|no|maybe)", text, re.I):
        return [("detectable_format:constrained_response", {})]
    return []


def _highlights(text: str) -> Found:
    if not re.search(r"highlight|italic|\*[^*\n]+\*", text, re.I):
        return []
    hl = r"(?:highlight|italici[sz]e|emphasi[sz]e|bold)"
    m = re.search(rf"{hl}\w*\s+(?:at\s+least\s+|exactly\s+|a\s+minimum\s+of\s+)?(?P<n>{NUM})\b", text, re.I) or \
        re.search(rf"(?:at\s+least\s+)?(?P<n>{NUM})\s+(?:\w+\s+){{0,2}}(?:sections?|parts?|phrases?|words?|points?|keywords?)\s+"
                  rf"(?:\w+\s+){{0,3}}(?:highlight|italic)", text, re.I) or \
        re.search(rf"(?:at\s+least\s+)?(?P<n>{NUM})\s+(?:\w+\s+)?(?:italic|highlighted|bold)\w*\s+(?:text\s+)?(?:sections?|parts?|phrases?|words?)",
                  text, re.I) or \
        re.search(rf"{hl}\w*\s+(?:\w+\s+){{1,5}}(?P<n>once|twice|thrice|\d+\s+times)", text, re.I)  # fmt: skip
    if m and number(m.group("n")):
        return [("detectable_format:number_highlighted_sections", {"num_highlights": number(m.group("n").split()[0])})]
    if re.search(r"(?:highlight|italici[sz]e)\w*\s+(?:\w+\s+){0,6}(?:with|using|in|by)\s+(?:markdown|\*|asterisk)|markdown\s+highlight|\*highlighted|"
                 r"highlight\s+the\s+\w+\s+by\s+wrapping", text, re.I):
        return [("detectable_format:number_highlighted_sections", {"num_highlights": 1})]
    return []


_SECTION_SP = ("SECTION|Section|section|PARAGRAPH|Paragraph|PART|Part|CHAPTER|Chapter|Day|DAY|SLIDE|Slide|POINT|Point|"
               "STEP|Step|Episode|EPISODE|Act|ACT|Verse|VERSE")


def _sections(text: str) -> Found:
    sp = _SECTION_SP
    m = re.search(rf"\b(?P<sp>{sp})\s+(?:X|\{{?x\}}?|\[?N\]?)\b", text)
    if not m:  # "SECTION 1 and SECTION 2": an upper-case marker with its numbers
        m = re.search(r"\b(?P<sp>SECTION|PART|PARAGRAPH|CHAPTER|Section|Part)\s+1\b[^\n]{0,30}\b(?P=sp)\s+2\b", text)
        if m and re.search(_DIVIDER, text, re.I):
            return []  # "Section 1\n***\nSection 2": an example of ***-separated parts
    if not m:
        return []
    n = _count_of(text, m.group("sp").lower() + "s?|sections?|parts?|paragraphs?|days?")
    if n is None:
        nums = [int(x) for x in re.findall(rf"\b{m.group('sp')}\s+(\d+)\b", text)]
        n = max(nums) if nums else None
    return [("detectable_format:multiple_sections", {"section_spliter": m.group("sp"), "num_sections": n})] if n else []


def _json(text: str) -> Found:
    fmt = (r"(?:\bin|\bas|\binto|\buse|\busing|\bwrap\w*|\breturn|\boutput|\bformat\w*|\bvalid|\bentire)\s+(?:\w+\s+){0,3}?json\b|"
           r"\bjson\s+(?:format|code\s+block|block|only|output|object\s+(?:only|as\s+output))")  # fmt: skip
    exact = odd_free(text)
    for s in sentences(text):
        if exact and "json" not in s.lower():
            continue  # fmt holds "json"
        if re.search(fmt, s, re.I) and not re.search(rf"{_NEG}[^.]{{0,20}}\bjson\b|\b(?:given|this|the\s+following|a)\s+json\s+(?:object|file|string|data)", s, re.I):
            return [("detectable_format:json_format", {})]
    return []


def _title(text: str) -> Found:
    if re.search(r"<<[^<>\n;(){}]*[A-Za-z][^<>\n;(){}]*>>|double\s+angul?ar\s+brackets|double\s+angle\s+brackets", text, re.I):
        return [("detectable_format:title", {})]
    return []


_REPEAT = re.compile(
    r"\b(?:repeat|repleat|restate|copy|echo|reproduce)\b(?P<obj>[^.\n]{0,60}?)(?:\b(?P<what>request|question|prompt|instruction|"
    r"sentence|query|task|text|line|it)\b|(?P<quote>[\"“]))",
    re.I,
)


def _repeat(text: str) -> Found:
    m = _REPEAT.search(text)
    if not m:
        return []
    starts = [text.rfind(sep, 0, m.start()) + len(sep) for sep in ("\n", ". ", "? ", "! ") if text.rfind(sep, 0, m.start()) >= 0]
    start = max(starts, default=0)
    marker = text[start : text.find("\n", m.end()) if "\n" in text[m.end() :] else len(text)]
    if not re.search(r"\bfirst\b|\bbefore\b|beginning|\bstart|\bthen\b", marker, re.I):
        return []
    q = re.match(r"\s*(?:" + _QUOTED + ")", text[m.end() - 1 :]) if m.group("quote") else None
    if q:
        req = quoted(q)
    elif re.search(r"\bfirst\s+line\b", marker, re.I):
        req = text.split("\n", 1)[0]
    elif re.search(r"\bbelow\b|\bfollowing\b", marker, re.I) and "\n\n" in text[m.end() :]:
        req = text[m.end() :].split("\n\n", 1)[1]
    else:
        req = text[:start] if text[:start].strip() else text[m.end() :].split("\n\n", 1)[-1]
    req = req.strip()
    return [("combination:repeat_prompt", {"prompt_to_repeat": req})] if req else []


def _two(text: str) -> Found:
    if re.search(r"\*{6}|(?:two|2)\s+(?:different|distinct|separate|alternative)\s+(?:responses|answers|versions|replies)|"
                 r"six\s+asterisk|6\s+asterisk", text, re.I):  # fmt: skip
        return [("combination:two_responses", {})]
    return []


_END = re.compile(
    r"(?:(?:end|finish|conclude|close|wrap\s+up)(?:s|ing)?\s+(?:your|the|this|my|each|it)?\s*(?:entire\s+|whole\s+)?"
    r"(?:\w+\s+)?(?:with|by)\s+(?:this|the|a)?\s*(?:exact\s+|following\s+|same\s+)?(?:phrase|sentence|words?|line|"
    r"question|statement)?(?:\s+of)?|(?:last|final|closing)\s+(?:sentence|line|words?|phrase)\s+(?:of\s+\w+\s+\w+\s+)?"
    r"(?:should|must|has\s+to|needs\s+to)\s+(?:be|read)|(?:very\s+)?end\s+of\s+(?:your|the)\s+(?:entire\s+)?\w+\s+"
    r"(?:should|must)\s+(?:read|be)(?:\s+exactly)?(?:\s+like)?)\s*[:,]?\s*",
    re.I,
)


_END_LOWER = re.compile(_END.pattern)  # its literals are lower case: on ASCII text, re.I ≡ matching the lower-cased text
_END_STARTS = ("end", "finish", "conclude", "clos", "wrap", "last", "final", "very")  # where an _END match can begin


def _end_matches(text: str) -> Iterator[re.Match[str]]:
    """_END.finditer(text), tried only where a match can begin (found on the lower-cased text)."""
    low = lowered(text)
    if text.isascii():
        return anchored_finditer(_END_LOWER, _END_STARTS, low)
    if odd_free(text) and len(low) == len(text):
        return anchored_finditer(_END, _END_STARTS, text, low)
    return _END.finditer(text)


def _end(text: str) -> Found:
    for m in _end_matches(text):
        rest = text[m.end() :]
        if re.match(r"\s*(?:a\s+)?(?:post\s*script|p\.\s?s|note)", rest, re.I) or re.match(r"\s*(?:a|an|single)\s", rest) or \
                re.search(r"post\s*script|\bP\.\s?P?\.?\s?S\b", m.group(0), re.I):
            continue
        q = re.match(_QUOTED, re.sub(r"^(?:exactly|the\s+words?|typing|writing|saying)\s+", "", rest.lstrip(), flags=re.I))
        if q:
            return [("startend:end_checker", {"end_phrase": quoted(q).strip()})]
        line = rest.strip("\n").split("\n")[0].strip()
        if line and len(line) < 120 and re.search(r"\w", line) and not re.search(r"start\w*\s+and\s*$", text[: m.start()], re.I):
            return [("startend:end_checker", {"end_phrase": line})]
    return []


def _quotation(text: str) -> Found:
    for s in sentences(text):
        if re.search(r"double\s+quot\w*(?:\s+marks?)?|quotation\s+marks|in\s+quotes\b", s, re.I) and \
                re.search(r"\b(?:wrap|enclose|surround|around|put|place|encapsulate|within|inside|in)\b", s, re.I) and \
                re.search(r"\b(?:entire|whole|response|answer|reply|output|everything|all)\b", s, re.I):  # fmt: skip
            return [("startend:quotation", {})]
    return []


def _postscript(text: str) -> Found:
    m = re.search(r"\bP\.\s?P\.\s?S\b|\bP\.\s?S\b\.?", text)
    directive = r"post\s*-?\s*script|\badd|\binclude|\bappend|\bend\b|\bending|\bclose|\bfinish|\bnote\b|\bstart\w*\s+with|\bat\s+the\s+end"
    if not m or not any(re.search(r"\bP\.\s?P?\.?\s?S\b", s) and re.search(directive, s, re.I) for s in sentences(text)):
        return []
    marker = "P.P.S" if re.match(r"P\.\s?P", m.group(0)) else "P.S."
    return [("detectable_content:postscript", {"postscript_marker": marker})]


def _placeholders(text: str) -> Found:
    if not re.search(r"placeholder", text, re.I):
        return []
    m = re.search(rf"(?P<n>{NUM})\s+(?:\w+\s+)?placeholders?", text, re.I)
    n = number(m.group("n")) if m else None
    if n is None and re.search(r"square\s+brackets", text, re.I):
        n = 1
    return [("detectable_content:number_placeholders", {"num_placeholders": n})] if n else []


_CAPS = r"(?:capital(?:ized)?\s+letters?|capitals|all[\s-]+caps|upper[\s-]?case|block\s+letters|caps\s+lock)"


def _case(text: str) -> Found:
    out: Found = []
    exact = odd_free(text)
    for s in sentences(text):
        if exact and not CASE_GATE.search(s.lower()):
            continue  # CASE_GATE per sentence: each of this loop's patterns holds one of its parts
        word_freq = re.search(r"\bwords?\b[^.]{0,40}" + _CAPS + r"|" + _CAPS + r"[^.]{0,30}\b(?:words?)\b|"
                              r"stress\s+words|capitali[sz]e\s+(?:a\s+few|some|only|\d+|\w+\s+)?\s*words", s, re.I)  # fmt: skip
        lower = re.search(r"lower[\s-]?case|lowercased|small\s+letters|" + rf"{_NEG}[^.]{{0,30}}?{_CAPS}|"
                          r"(?:not|never)\s+(?:be\s+)?capitali[sz]e|without\s+(?:any\s+)?capitali[sz]", s, re.I)  # fmt: skip
        if lower and re.search(rf"{_NEG}[^.]{{0,40}}lower[\s-]?case", s, re.I):
            out.append(("change_case:english_capital", {}))  # "not a single word … should contain lowercase letters"
        elif lower and not word_freq and re.search(r"\ball\b|\bentire|\bwhole|\bonly|\bno\b|\bnot\b|without|\bany\b|"
                                                 r"\bresponse|\banswer|\breply|\beverything", s, re.I):  # fmt: skip
            out.append(("change_case:english_lowercase", {}))
        elif re.search(r"capitali[sz]e\s+(?:all|every)\s+(?:of\s+)?(?:your\s+|the\s+)?(?:words|letters)|all\s+(?:the\s+)?letters\s+[^.]{0,40}"
                       r"capitali[sz]ed|in\s+all\s+caps\b", s, re.I) or not word_freq and re.search(rf"(?:\ball|\bentire\w*|\bonly|\bin|\bwrite\w*|\bresponse\s+(?:should|must)\s+be)"
                                         rf"[^.]{{0,40}}?{_CAPS}|{_CAPS}\s+only", s, re.I) and \
                not re.search(rf"{_NEG}[^.]{{0,30}}?{_CAPS}", s, re.I):  # fmt: skip
            out.append(("change_case:english_capital", {}))
        elif word_freq:
            out += _capital_words(s)
    return list({k: (k, v) for k, v in out}.values()) if not any(k.endswith("frequency") for k, _ in out) else out


def _capital_words(s: str) -> Found:
    found: Found = []
    key = "change_case:capital_word_frequency"
    if re.search(r"\b(?:some|a\s+few|several|few)\s+(?:\w+\s+)?words\s+(?:in\s+)?(?:all\s+)?(?:caps|capital)|"
                 r"capitali[sz]e\s+(?:a\s+few|some)\s+words", s, re.I):  # fmt: skip
        found.append((key, {"capital_relation": "at least", "capital_frequency": 1}))
    rng = re.search(rf"(?P<a>{NUM})\s*(?:to|-)\s*(?P<b>{NUM})\s+(?:\w+\s+)?(?:capitali[sz]ed\s+)?(?:words|times)", s, re.I)
    if rng and number(rng.group("a")) is not None and number(rng.group("b")) is not None:
        return [*found, (key, {"capital_relation": "at least", "capital_frequency": number(rng.group("a"))}),
                (key, {"capital_relation": "less than", "capital_frequency": number(rng.group("b")) + 1})]  # fmt: skip
    for m in re.finditer(rf"(?P<n>{NUM})(?P<after>\+?\s*(?:(?:\w+\s+){{0,2}}(?:times|words?|or\s+more|or\s+less|or\s+fewer)|[.!]?\s*$))",
                         s, re.I):  # fmt: skip
        n = number(m.group("n"))
        got = relation(s[max(0, m.start() - 30) : m.start()], n, m.group("after")) if n is not None else None
        if got:
            found.append((key, {"capital_relation": got[0], "capital_frequency": got[1]}))
    return found
