"""IFEval's verifiable instructions as checkers: one function per instruction id, (text, kwargs) → pass?

Checkers follow the IFEval definitions (Zhou et al. 2023) as we read them, written here from
scratch; differences: word/sentence counts use our own tokenizer and sentence splitter, and
`language:response_language` / `change_case:english_*` judge the *writing script* instead of
running a language identifier -- a language that shares its script with others (Latin,
Cyrillic, Arabic, Devanagari) can fail (wrong script) but never pass: it is undecidable (None).

A library (no stage): the responses stage verifies answers with it, the variants stage checks
whole assistant turns with it (the format survival gate), the detector names its ids.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any

Outcome = bool | None  # None: cannot be decided here
Checker = Callable[[str, dict[str, Any]], Outcome]


def _relation(count: int, relation: str, n: int) -> bool:
    if relation == "less than":
        return count < n
    if relation == "at least":
        return count >= n
    raise ValueError(f"unknown relation {relation!r}")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|vs|etc|e\.g|i\.e|U\.S|Inc|Ltd|Co|a\.m|p\.m)\.", re.I)


def _sentences(text: str) -> list[str]:
    # Protect dots that do not end a sentence: abbreviations, decimals, URLs, initials.
    t = _ABBREV.sub(lambda m: m.group(0).replace(".", "<d>"), text)
    t = re.sub(r"(?<=\d)\.(?=\d)", "<d>", t)
    t = re.sub(r"\b([A-Z])\.(?=\s*[A-Z]\.)", r"\1<d>", t)
    t = re.sub(r"(?<=\w)\.(?=\w)", "<d>", t)
    parts = re.split(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n", t)
    return [p for p in (s.strip() for s in parts) if re.search(r"\w", p)]


def _no_comma(r: str, kw: dict[str, Any]) -> Outcome:
    return "," not in r


def _number_words(r: str, kw: dict[str, Any]) -> Outcome:
    return _relation(len(_words(r)), kw["relation"], int(kw["num_words"]))


def _number_sentences(r: str, kw: dict[str, Any]) -> Outcome:
    return _relation(len(_sentences(r)), kw["relation"], int(kw["num_sentences"]))


def _number_paragraphs(r: str, kw: dict[str, Any]) -> Outcome:
    parts = re.split(r"\s?\*\*\*\s?", r)
    n = len(parts)
    for i, p in enumerate(parts):
        if not p.strip():
            if i in (0, len(parts) - 1):
                n -= 1  # a divider at the very start or end does not open a paragraph
            else:
                return False
    return n == int(kw["num_paragraphs"])


def _nth_paragraph_first_word(r: str, kw: dict[str, Any]) -> Outcome:
    paragraphs = r.split("\n\n")
    count = sum(1 for p in paragraphs if p.strip())
    nth = int(kw["nth_paragraph"])
    if nth > count or not paragraphs[nth - 1].strip():
        return False
    # As IFEval: the word up to its first . , ? ! ' " -- so "Summary:" is not "summary".
    word = paragraphs[nth - 1].split()[0].lstrip("'\"")
    first = re.split(r"[.,?!'\"]", word, maxsplit=1)[0].lower()
    return count == int(kw["num_paragraphs"]) and first == str(kw["first_word"]).lower()


def _number_bullets(r: str, kw: dict[str, Any]) -> Outcome:
    stars = re.findall(r"^\s*\*[^\*].*$", r, re.M)
    dashes = re.findall(r"^\s*-.*$", r, re.M)
    return len(stars) + len(dashes) == int(kw["num_bullets"])


def _constrained_response(r: str, kw: dict[str, Any]) -> Outcome:
    return any(opt in r for opt in ("My answer is yes.", "My answer is no.", "My answer is maybe."))


def _highlighted(r: str, kw: dict[str, Any]) -> Outcome:
    singles = [h for h in re.findall(r"\*[^\n\*]*\*", r) if h.strip("*").strip()]
    doubles = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", r) if h.strip("*").strip()]
    return len(singles) + len(doubles) >= int(kw["num_highlights"])


def _multiple_sections(r: str, kw: dict[str, Any]) -> Outcome:
    splitter = re.escape(str(kw["section_spliter"]).strip())
    sections = re.split(rf"\s?{splitter}\s?\d+\s?", r)
    return len(sections) - 1 >= int(kw["num_sections"])


def _json_format(r: str, kw: dict[str, Any]) -> Outcome:
    body = re.sub(r"^\s*```(?:json|Json|JSON)?\s*|\s*```\s*$", "", r.strip())
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _title(r: str, kw: dict[str, Any]) -> Outcome:
    return any(t.strip() for t in re.findall(r"<<([^\n]+?)>>", r))


def _repeat_prompt(r: str, kw: dict[str, Any]) -> Outcome:
    return r.strip().lower().startswith(str(kw["prompt_to_repeat"]).strip().lower())


def _two_responses(r: str, kw: dict[str, Any]) -> Outcome:
    parts = r.split("******")
    kept = []
    for i, p in enumerate(parts):
        if not p.strip():
            if i not in (0, len(parts) - 1):
                return False
        else:
            kept.append(p.strip())
    return len(kept) == 2 and kept[0] != kept[1]


def _end_checker(r: str, kw: dict[str, Any]) -> Outcome:
    return r.strip().strip('"').lower().endswith(str(kw["end_phrase"]).strip().lower())


def _quotation(r: str, kw: dict[str, Any]) -> Outcome:
    s = r.strip()
    return len(s) > 1 and s[0] == '"' and s[-1] == '"'


def _postscript(r: str, kw: dict[str, Any]) -> Outcome:
    marker = str(kw["postscript_marker"]).strip().lower()
    if marker == "p.s.":
        pattern = r"\s*p\.\s?s\..*$"
    elif marker == "p.p.s":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    else:
        pattern = r"\s*" + re.escape(marker) + r".*$"
    return re.search(pattern, r.lower(), re.M) is not None


def _placeholders(r: str, kw: dict[str, Any]) -> Outcome:
    return len(re.findall(r"\[.*?\]", r)) >= int(kw["num_placeholders"])


def _lowercase(r: str, kw: dict[str, Any]) -> Outcome:
    if not r.islower():
        return False
    return _dominant_script(r) == "LATIN" or None


def _capital(r: str, kw: dict[str, Any]) -> Outcome:
    if not r.isupper():
        return False
    return _dominant_script(r) == "LATIN" or None


def _capital_word_frequency(r: str, kw: dict[str, Any]) -> Outcome:
    count = sum(1 for w in _words(r) if w.isupper())
    return _relation(count, kw["capital_relation"], int(kw["capital_frequency"]))


def _existence(r: str, kw: dict[str, Any]) -> Outcome:
    return all(re.search(re.escape(k), r, re.I) for k in kw["keywords"])


def _frequency(r: str, kw: dict[str, Any]) -> Outcome:
    count = len(re.findall(re.escape(str(kw["keyword"])), r, re.I))
    return _relation(count, kw["relation"], int(kw["frequency"]))


def _forbidden(r: str, kw: dict[str, Any]) -> Outcome:
    return not any(re.search(rf"\b{re.escape(w)}\b", r, re.I) for w in kw["forbidden_words"])


def _letter_frequency(r: str, kw: dict[str, Any]) -> Outcome:
    letter = str(kw["letter"]).lower()
    return _relation(r.lower().count(letter), kw["let_relation"], int(kw["let_frequency"]))


# Writing script per language code; True when that script identifies the language alone.
_LANG_SCRIPT: dict[str, tuple[str, bool]] = {
    "kn": ("KANNADA", True), "ko": ("HANGUL", True), "pa": ("GURMUKHI", True),
    "gu": ("GUJARATI", True), "te": ("TELUGU", True), "ta": ("TAMIL", True),
    "th": ("THAI", True), "bn": ("BENGALI", True), "el": ("GREEK", True),
    "he": ("HEBREW", True), "ml": ("MALAYALAM", True), "ja": ("JAPANESE", True),
    "zh": ("CJK", True), "hi": ("DEVANAGARI", False), "mr": ("DEVANAGARI", False),
    "ne": ("DEVANAGARI", False), "ru": ("CYRILLIC", False), "bg": ("CYRILLIC", False),
    "uk": ("CYRILLIC", False), "ar": ("ARABIC", False), "fa": ("ARABIC", False),
    "ur": ("ARABIC", False),
}  # fmt: skip


def _script_of(ch: str) -> str | None:
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    if name.startswith(("HIRAGANA", "KATAKANA")):
        return "KANA"
    if name.startswith("CJK"):
        return "CJK"
    first = name.split(" ")[0]
    return first if first.isalpha() else None


def _dominant_script(text: str) -> str | None:
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            script = _script_of(ch)
            if script:
                counts[script] = counts.get(script, 0) + 1
    if not counts:
        return None
    if counts.get("KANA", 0) >= 0.1 * sum(counts.values()):
        return "JAPANESE"  # Japanese mixes kana with kanji; Chinese has no kana
    return max(counts, key=lambda k: counts[k])


def _response_language(r: str, kw: dict[str, Any]) -> Outcome:
    lang = str(kw["language"]).lower()
    script, unique = _LANG_SCRIPT.get(lang, ("LATIN", False))
    got = _dominant_script(r)
    if script == "CJK" and got == "JAPANESE":
        return False
    if got != script:
        return False
    return True if unique else None


CHECKERS: dict[str, Checker] = {
    "punctuation:no_comma": _no_comma,
    "length_constraints:number_words": _number_words,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "detectable_format:number_bullet_lists": _number_bullets,
    "detectable_format:constrained_response": _constrained_response,
    "detectable_format:number_highlighted_sections": _highlighted,
    "detectable_format:multiple_sections": _multiple_sections,
    "detectable_format:json_format": _json_format,
    "detectable_format:title": _title,
    "combination:repeat_prompt": _repeat_prompt,
    "combination:two_responses": _two_responses,
    "startend:end_checker": _end_checker,
    "startend:quotation": _quotation,
    "detectable_content:postscript": _postscript,
    "detectable_content:number_placeholders": _placeholders,
    "change_case:english_lowercase": _lowercase,
    "change_case:english_capital": _capital,
    "change_case:capital_word_frequency": _capital_word_frequency,
    "keywords:existence": _existence,
    "keywords:frequency": _frequency,
    "keywords:forbidden_words": _forbidden,
    "keywords:letter_frequency": _letter_frequency,
    "language:response_language": _response_language,
}
COVERED_INSTRUCTIONS = frozenset(CHECKERS)


def check(instruction_id: str, kwargs: dict[str, Any] | None, text: str) -> Outcome:
    """One instruction on one text: True / False / None (undecidable, unknown id or bad kwargs)."""
    checker = CHECKERS.get(instruction_id)
    if checker is None:
        return None
    kw = {k: v for k, v in (kwargs or {}).items() if v is not None}
    try:
        return checker(text, kw)
    except (KeyError, ValueError, TypeError):
        return None
