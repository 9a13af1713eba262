"""Counts and relations as prompts write them ("at least 3", "no more than five", "至少三", "不超过5"),
turned into IFEval's two relations: `at least N` and `less than N`."""

from __future__ import annotations

import re

_WORDS = {
    "zero": 0, "no": 0, "one": 1, "a single": 1, "single": 1, "once": 1, "two": 2, "twice": 2, "three": 3, "thrice": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "hundred": 100, "a hundred": 100, "one hundred": 100, "a couple of": 2, "a couple": 2, "a dozen": 12, "dozen": 12,
}  # fmt: skip
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
             "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3}  # fmt: skip
NUM_WORDS = "|".join(sorted((re.escape(w) for w in _WORDS if w != "no"), key=len, reverse=True))  # NUM's words
NUM_WORD_LIST = tuple(w for w in _WORDS if w != "no")
NUM_WORDS_REVERSED = "|".join(re.escape(w[::-1]) for w in _WORDS if w != "no")  # each spelled backwards
NUM = r"(?:\d[\d,]*|" + NUM_WORDS + r")"
ORDINAL = r"(?:\d+(?:st|nd|rd|th)|" + "|".join(_ORDINALS) + r"|last|final)"

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}  # fmt: skip
ZH_NUM = r"(?:\d+|[零〇一二两俩三四五六七八九十百千]+)"


def number(text: str) -> int | None:
    t = text.strip().lower().replace(",", "")
    if t.isdigit():
        return int(t)
    if t in _WORDS:
        return _WORDS[t]
    parts = t.replace("-", " ").split()
    if len(parts) == 2 and parts[0] in _WORDS and parts[1] in _WORDS and _WORDS[parts[0]] >= 20:
        return _WORDS[parts[0]] + _WORDS[parts[1]]
    return zh_number(text)


def ordinal(text: str) -> int | None:
    t = text.strip().lower()
    if t in _ORDINALS:
        return _ORDINALS[t]
    m = re.fullmatch(r"(\d+)(?:st|nd|rd|th)", t)
    return int(m.group(1)) if m else None


def zh_number(text: str) -> int | None:
    t = text.strip()
    if t.isdigit():
        return int(t)
    if not t or any(ch not in _ZH_DIGITS and ch not in "十百千" for ch in t):
        return None
    total, cur = 0, 0
    for ch in t:
        if ch in _ZH_DIGITS:
            cur = _ZH_DIGITS[ch]
        else:
            unit = {"十": 10, "百": 100, "千": 1000}[ch]
            total += (cur or 1) * unit
            cur = 0
    return total + cur


# English relation words before a number → (relation, offset added to the number).
_REL_BEFORE = [
    (r"at\s+least|no\s+less\s+than|not\s+less\s+than|no\s+fewer\s+than|a\s+minimum\s+of|minimum\s+of|minimum|"
     r"min\.?|not\s+fewer\s+than", "at least", 0),
    (r"at\s+most|no\s+more\s+than|not\s+more\s+than|up\s+to|a\s+maximum\s+of|maximum\s+of|maximum|max\.?|"
     r"within|no\s+longer\s+than|not\s+exceed(?:ing)?|(?:does|do|should|must|shall)\s+not\s+exceed|"
     r"never\s+exceed(?:ing)?|no\s+greater\s+than|not\s+go\s+over|(?:anything|nothing)\s+longer\s+than", "less than", 1),
    (r"more\s+than|over|greater\s+than|in\s+excess\s+of|upwards\s+of|exceed(?:s|ing)?|longer\s+than", "at least", 1),
    (r"less\s+than|fewer\s+than|under|below|shorter\s+than", "less than", 0),
]  # fmt: skip
_REL_AFTER = [
    (r"or\s+more|\+|or\s+above|or\s+greater|and\s+above|at\s+minimum", "at least", 0),
    (r"or\s+less|or\s+fewer|or\s+below|at\s+most|at\s+the\s+most|max(?:imum)?|tops", "less than", 1),
]


def relation_before(prefix: str) -> tuple[str, int] | None:
    """The relation the words just before a number state ('at least' → ('at least', 0))."""
    for pat, rel, add in _REL_BEFORE:
        if re.search(rf"\b(?:{pat})\s*$", prefix, re.I):
            return rel, add
    return None


def relation_after(suffix: str) -> tuple[str, int] | None:
    for pat, rel, add in _REL_AFTER:
        if re.match(rf"\s*(?:{pat})", suffix, re.I):
            return rel, add
    return None


def relation(prefix: str, n: int, suffix: str = "") -> tuple[str, int] | None:
    """(IFEval relation, number) from the words around a count, or None when no bound is stated."""
    got = relation_before(prefix) or relation_after(suffix)
    if got is None:
        return None
    rel, add = got
    return rel, n + add


_ZH_VERB = r"(?:包含|包括|有|写|使用|用|出现)?\s*$"
_ZH_REL = [  # longest first: 不超过 before 超过, 不少于 before 少于
    (r"(?:至少|最少|不少于|不低于|不小于|起码|最低)" + _ZH_VERB, "at least", 0),
    (r"(?:最多|至多|不超过|不多于|不得超过|不能超过|不要超过|不可超过|不大于|不高于|控制在|限制在)" + _ZH_VERB, "less than", 1),
    (r"(?:超过|多于|大于|高于|多过)" + _ZH_VERB, "at least", 1),
    (r"(?:少于|小于|低于|不足|不到)" + _ZH_VERB, "less than", 0),
]
_ZH_REL_AFTER = [
    (r"^\s*(?:个|句|段|条|处|次|字|词|个字|个词|个单词)?\s*(?:以上|或以上|或更多)", "at least", 0),
    (r"^\s*(?:个|句|段|条|处|次|字|词|个字|个词|个单词)?\s*(?:以内|以下|或以下|之内|或更少)", "less than", 1),
]


def zh_relation(prefix: str, n: int, suffix: str = "") -> tuple[str, int] | None:
    for pat, rel, add in _ZH_REL:
        if re.search(pat, prefix):
            return rel, n + add
    for pat, rel, add in _ZH_REL_AFTER:
        if re.search(pat, suffix):
            return rel, n + add
    return None
