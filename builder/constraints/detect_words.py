"""English phrasings of IFEval's word-level instructions: keywords that must / must not appear,
how often a word or a letter appears, and the response language."""

from __future__ import annotations

import re
from typing import Any

from builder.constraints.detect_en import _NEG, _QUOTED, Found, case_gate, quoted, sentences
from builder.constraints.literals import Keyed, anchored_finditer, matches_at
from builder.constraints.numbers import NUM, number, relation

LANGUAGES = {
    "kannada": "kn", "korean": "ko", "punjabi": "pa", "gujarati": "gu", "telugu": "te", "tamil": "ta", "thai": "th",
    "bengali": "bn", "bangla": "bn", "greek": "el", "hebrew": "he", "malayalam": "ml", "japanese": "ja",
    "chinese": "zh", "mandarin": "zh", "hindi": "hi", "marathi": "mr", "nepali": "ne", "russian": "ru",
    "bulgarian": "bg", "ukrainian": "uk", "arabic": "ar", "persian": "fa", "farsi": "fa", "urdu": "ur",
    "vietnamese": "vi", "swahili": "sw", "german": "de", "french": "fr", "spanish": "es", "italian": "it",
    "portuguese": "pt", "finnish": "fi", "indonesian": "id", "tagalog": "tl", "turkish": "tr", "polish": "pl",
    "dutch": "nl", "swedish": "sv", "amharic": "am", "english": "en", "danish": "da", "norwegian": "no",
    "czech": "cs", "romanian": "ro", "hungarian": "hu", "malay": "ms",
}  # fmt: skip
# `re.I` matches these to ASCII letters, str.lower() does not ("İndonesian" → "i̇ndonesian"): a
# matched name is folded first, else its look-up fails (it raised KeyError before).
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_LANG_ALT = "|".join(sorted(LANGUAGES, key=len, reverse=True))
_LANG = r"(?P<lang>" + _LANG_ALT + r")"
_ANY_LANG = r"(?:" + _LANG_ALT + r")"
# Words and phrases a keyword list may hold; a list stops at the sentence end or one of these.
_STOP = r"\s+(?:in|into|to|within|throughout|anywhere|at\s+all|for|when|while|as|so|because|on|from|and\s+(?:make|be|use|do|wrap|have|end|should|must|the\s+(?:letter|word))|but|or\s+(?:any|their))\b"
_LIST_TRIGGER = (r"(?:key\s*words?|keywords?|words?|terms?|phrases?|names?)(?:\s+(?:of|like|such\s+as))?\s*[:\-]?\s*")


def _split_list(raw: str) -> list[str]:
    """'waste, material and meal' / '"a", "b"' / "['bad', 'underperform']" → words."""
    q = [quoted(m) for m in re.finditer(_QUOTED, raw)]
    if q:
        return [w.strip() for w in q if w.strip()]
    raw = re.split(_STOP, raw, maxsplit=1, flags=re.I)[0]
    raw = raw.strip(" .:;[]()")
    parts = re.split(r"\s*,\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+|\s*/\s*", raw)
    words = [p.strip(" .'\"“”[]") for p in parts if p.strip(" .'\"“”[]")]
    return words if words and all(len(w.split()) <= 3 for w in words) else []


_FORB_M1 = re.compile(
    rf"(?:{_NEG}|don't|do\s+not|must\s+not|should\s+not|cannot|can't)\s*(?:\w+\s+){{0,3}}?"
    rf"(?:us(?:e|ing)|includ(?:e|ing)|say(?:ing)?|mention(?:ing)?|contain(?:ing)?|writ(?:e|ing)|hav(?:e|ing)|"
    rf"utiliz(?:e|ing)|employ(?:ing)?)\s+(?:any\s+of\s+|any\s+)?(?:the\s+)?(?:following\s+)?"
    rf"(?:{_LIST_TRIGGER})?(?P<rest>.+)",
    re.I,
)  # fmt: skip
_FORB_M2 = re.compile(r"\b(?:avoid|without|exclude|excluding|ban|never\s+use)\s+(?:using\s+|mentioning\s+|saying\s+)?(?:the\s+|these\s+)?"
                      r"(?:following\s+)?(?:key\s*)?(?:words?|terms?|phrases?)\s*[:\-]?\s*(?P<rest>.+)", re.I)  # fmt: skip
_FORB_M3 = re.compile(r"(?:the\s+)?(?:key)?words?\s+(?P<rest>.+?)\s+(?:should|must|may|can)\s*(?:not|n't|never)\s+"
                      r"(?:appear|be\s+(?:used|mentioned|included)|occur)", re.I)  # fmt: skip
_NEG_QUICK = re.compile(r"\bno\b|\bnot\b|n't\b|\bcannot\b|without|avoid|refrain|never|free\s+of|zero|ban|prohibit|forbid", re.I)
_FORB_QUICK = re.compile(r"(?:us|includ|say|mention|contain|writ|hav|utiliz|employ)\w*\s|appear|occur|avoid|exclud|without|\bban\b", re.I)


def _forbidden(text: str, found: set[str] | None = None) -> Found:
    """`found`: the LITERALS of the lower-cased text when it is an exact stand-in (case_gate): then a
    sentence is read only if _forb_gate passes on it (a sentence's match is a match there)."""
    out: list[str] = []
    for s in sentences(text):
        if found is not None and not _forb_gate(s.lower(), found):
            continue
        if not (_NEG_QUICK.search(s) and _FORB_QUICK.search(s)) or re.search(r"\bletter\b|\bcommas?\b|capital|language", s, re.I):
            continue
        m = _FORB_M1.search(s)
        if m:
            head, rest = s[m.start() : m.start("rest")], m.group("rest")
            items = _split_list(rest)
            named = re.search(r"\bkey\s*words?\b|\bwords?\b|\bterms?\b|\bphrases?\b|following", head, re.I)
            quoted_words = re.match(r"\s*[\"“'‘]", rest) and all(re.fullmatch(r"[\w' -]+", w) for w in items)
            if named or quoted_words:
                out += items
                continue
        m = _FORB_M2.search(s)
        if m:
            out += _split_list(m.group("rest"))
            continue
        m = _FORB_M3.search(s)
        if m:
            out += _split_list(m.group("rest"))
    out = list(dict.fromkeys(out))
    return [("keywords:forbidden_words", {"forbidden_words": out})] if out else []


_TIMES_QUICK = re.compile(r"times|once|twice|thrice|at\s+least|at\s+most|fewer|less|more|only|exactly", re.I)


_FREQ_WORD = r"(?:[\"“'‘](?P<w1>[^\"”'’\n]{1,30})[\"”'’]|(?P<w2>[A-Za-z][\w'-]*))"


def _freq_patterns(word: str = _FREQ_WORD) -> list[tuple[tuple[str, ...], re.Pattern[str]]]:
    """(substrings one of which a match needs in the lower-cased text, pattern), compiled once."""
    pats = [
        rf"(?:the\s+)?(?:key)?word\s+{word}\s+(?:should\s+|must\s+|to\s+|will\s+|needs\s+to\s+|is\s+|gets\s+)?(?:appear|be\s+used|used|occur|be\s+mentioned|be\s+included|show\s+up|shows\s+up|turns?\s+up|comes?\s+up)s?\s+(?:in\s+\w+\s+\w+\s+)?(?P<tail>[^.;\n]{{0,40}})",
        rf"(?:use|include|mention|repeat|say|contain)s?\s+(?:the\s+)?(?:key)?(?:word|name|term)?\s*{word}\s+(?P<tail>(?:for\s+)?(?:at\s+least|at\s+most|more\s+than|less\s+than|fewer\s+than|no\s+more\s+than|no\s+less\s+than|exactly|only|once|twice|thrice|\d+|{NUM}\s+(?:or\s+more\s+)?times)[^.;\n]{{0,30}})",
        rf"(?:key)?word\s+{word}\s+(?P<tail>(?:at\s+least|at\s+most|more\s+than|less\s+than|once|twice|\d+\s+times)[^.;\n]{{0,30}})",
    ]  # fmt: skip
    needs = [("word",), ("use", "include", "mention", "repeat", "say", "contain"), ("word",)]
    # the tail is a lookahead: the next keyword's match may start inside it
    return [(n, re.compile(pat.replace("(?P<tail>", "(?=(?P<tail>", 1) + ")", re.I)) for n, pat in zip(needs, pats)]


# Where each _FREQ_PATS pattern's match can begin (lower-case literals, searched in the lower-cased text).
_FREQ_STARTS = (("the", "key", "word"), ("use", "include", "mention", "repeat", "say", "contain"), ("key", "word"))
def _word_starts(low: str) -> list[int]:
    """Where a match of the first _FREQ_PATS pattern, `(?:the\\s+)?(?:key)?word…`, can begin: at each
    "word", at "key" right before it, and at "the" + whitespace right before either ("the" alone
    is too common a start to try every one)."""
    out = set()
    i = low.find("word")
    while i >= 0:
        out.add(i)
        j = i - 3 if low.startswith("key", i - 3) and i >= 3 else i
        out.add(j)
        k = j
        while k > 0 and low[k - 1].isspace():
            k -= 1
        if k < j and k >= 3 and low.startswith("the", k - 3):
            out.add(k - 3)
        i = low.find("word", i + 1)
    return sorted(out)


# A literal each pattern's match holds besides: the first's verb ("appear", "be used", "show up" …),
# the third's count ("at least", "once", "3 times" …); the second's count may be bare digits.
_FREQ_ALSO = (frozenset(("appear", "used", "occur", "mentioned", "included", "show", "turn", "come")),
              frozenset(("least", "most", "more", "less", "fewer", "exactly", "only", "once", "twice", "thrice", "times")),
              frozenset(("least", "most", "more", "less", "once", "twice", "times")))  # fmt: skip


_FREQ_PATS = _freq_patterns()


def _frequency(text: str, low: str | None = None, lits: set[str] | frozenset[str] = frozenset()) -> Found:
    """`low`: the lower-cased text when substring tests on it are exact (case_gate), with `lits`,
    the LITERALS it holds; None: every pattern runs."""
    found: Found = []
    if low is None:
        if not _TIMES_QUICK.search(text):
            return found
    elif _TIMES_T.isdisjoint(lits) and not ({"least", "most"} & lits and _AT_LEAST_MOST.search(low)):
        return found
    seen = set()
    for (needs, pat), starts, also in zip(_FREQ_PATS, _FREQ_STARTS, _FREQ_ALSO, strict=True):
        if low is not None and (lits.isdisjoint(needs) or (lits.isdisjoint(also) and (also is not _FREQ_ALSO[1] or not _DIGIT.search(low)))):
            continue
        if low is None or len(low) != len(text):
            matches = pat.finditer(text)
        elif starts is _FREQ_STARTS[0]:
            matches = matches_at(pat, text, _word_starts(low))
        else:
            matches = anchored_finditer(pat, starts, text, low)
        for m in matches:
            w = (m.group("w1") or m.group("w2")).strip()
            tail = m.group("tail")
            got = _times(tail)
            if got is None or w.lower() in ("letter", "with", "that", "which", "of", "in") or w.lower() in seen or \
                    re.match(rf"[^.]{{0,20}}{NUM}\s+(?:words|sentences|paragraphs)", tail, re.I):
                continue
            seen.add(w.lower())
            rng = re.match(rf"\s*(?P<a>{NUM})\s*(?:to|or|-)\s*(?P<b>{NUM})\s+times", tail, re.I)
            if rng and number(rng.group("a")) is not None and number(rng.group("b")) is not None:
                found.append(("keywords:frequency", {"keyword": w, "relation": "at least", "frequency": number(rng.group("a"))}))
                got = ("less than", number(rng.group("b")) + 1)
            found.append(("keywords:frequency", {"keyword": w, "relation": got[0], "frequency": got[1]}))
    return found


def _times(tail: str) -> tuple[str, int] | None:
    t = tail.strip()
    if re.match(rf"(?:{NUM})\s*(?:to|or|-)\s*(?:{NUM})\s+times", t, re.I):
        return ("range", 0)
    if re.match(r"(?:only\s+)?once\b", t, re.I) and not re.search(r"at\s+least\s+once", t, re.I):
        return ("less than", 2)
    m = re.search(rf"(?P<n>{NUM})(?P<after>\s*(?:times?)?\s*(?:or\s+(?:more|less|fewer))?)", t, re.I)
    if not m or number(m.group("n")) is None:
        return None
    n = number(m.group("n"))
    after = re.sub(r"^\s*times?", "", m.group("after"))
    got = relation(t[: m.start()], n, after)
    if got is None and re.match(r"\s*(?:(?:only|just)\s+)?$", t[: m.start()], re.I) and m.group("n").lower() in ("once", "twice", "thrice"):
        return None if t[: m.start()].strip() else ("at least", n)
    return got


_EXIST_QUICK = re.compile(r"(?:includ|contain|us|mention|hav|has|featur|incorporat)\w*\s+[^.]{0,40}(?:key|word|term|item|line|[\"“'‘])", re.I)
_EXIST_QUICK_LOW = re.compile(_EXIST_QUICK.pattern)  # its literals are lower case: on `low` it gets re's first-character skip


def _existence(text: str, exclude: set[str], low: str | None = None) -> Found:
    """`low`: the lower-cased text when `re.I` matches on `text` are plain matches on it (case_gate)."""
    words: list[str] = []
    if not (_EXIST_QUICK_LOW.search(low) if low is not None else _EXIST_QUICK.search(text)):  # a sentence's match is a whole-text match too
        return []
    for s in sentences(text):
        if not (_EXIST_QUICK_LOW.search(s.lower()) if low is not None else _EXIST_QUICK.search(s)):
            continue
        m = re.search(r"(?<!#)\b(?:includ(?:e|es|ing)|contain(?:s|ing)?|us(?:e|es|ing)|mention(?:s|ing)?|hav(?:e|ing)|has|featur(?:e|ing)|"
                      r"incorporat(?:e|ing))\s+(?:all\s+)?(?:of\s+)?(?:the\s+|these\s+)?(?:following\s+)?"
                      r"(?P<trig>key\s*words?|keywords?|words?|terms?|items?|line)\b\s*[:\-]?\s*(?P<rest>.+)", s, re.I)  # fmt: skip
        if not m:
            m = re.search(r"(?<!#)\b(?:mention|include)\s+(?P<rest>[\"“'‘].+)", s, re.I)
        if not m or re.search(rf"(?:{_NEG}|don't|must\s+not|should\s+not|\bstart|\bbegin)[^.,]{{0,30}}$", s[: m.start()], re.I) \
                or re.search(r"\bletters?\b", m.group(0)[:40], re.I):
            continue
        rest = m.group("rest")
        if re.match(rf"[^.]{{0,40}}\b(?:at\s+least|at\s+most|more\s+than|less\s+than|{NUM}\s+times|once|twice)\b", rest, re.I) \
                and not re.search(r"\band\b|,", rest.split(" at ")[0]):  # fmt: skip
            continue  # a counted word: keywords:frequency
        ws = _split_list(re.split(r"\s+(?:at\s+least|at\s+most|for\s+at)\b", rest)[0])
        words += [w for w in ws if w.lower() not in exclude]
    words = list(dict.fromkeys(words))
    return [("keywords:existence", {"keywords": words})] if words else []


def _letters(text: str) -> Found:
    found: Found = []
    for m in re.finditer(r"\bletters?\s+[\"“'‘]?(?P<l>[A-Za-z])[\"”'’]?(?![\w])(?P<tail>[^.;\n]{0,60})", text):
        before = text[max(0, m.start() - 60) : m.start()]
        tail = m.group("tail")
        if re.search(rf"(?:{_NEG}|don't|do\s+not)[^.]{{0,30}}$", before, re.I) and not re.search(r"more\s+than", tail, re.I):
            found.append(("keywords:letter_frequency", {"letter": m.group("l").lower(), "let_relation": "less than", "let_frequency": 1}))
            continue
        got = _times(tail) or _times(before[-30:] + " " + tail.split(" in ")[0])
        if got:
            if re.search(r"\bmore\s+than\b", tail, re.I) and re.search(r"avoid|not|n't", before + tail.split("more")[0], re.I):
                n = number(re.search(rf"more\s+than\s+(?P<n>{NUM})", tail, re.I).group("n")) or 0
                got = ("less than", n + 1)
            found.append(("keywords:letter_frequency", {"letter": m.group("l").lower(), "let_relation": got[0], "let_frequency": got[1]}))
    return found


def _language(text: str, names: set[str] | None = None) -> Found:
    """`names`: the language names the lower-cased text holds when it is an exact stand-in (case_gate):
    a sentence holding none of them cannot match (the re.I search is skipped)."""
    for s in sentences(text):
        if names is not None and not any(n in s.lower() for n in names):
            continue
        m = re.search(rf"\b{_LANG}\b", s, re.I)
        if not m:
            continue
        lang = LANGUAGES[m.group("lang").translate(_FOLD).lower()]
        strong = re.search(r"no\s+other\s+language|other\s+languages?\s+(?:is|are)\s+not|only\s+(?:in|using|use)\s+(?:the\s+)?"
                           rf"{_ANY_LANG}|{_ANY_LANG}\s+(?:language\s+)?only|entirely\s+in|entire\s+(?:response|answer|reply|output)[^.]{{0,30}}\bin\b|"
                           r"(?:respond|reply|answer|write|response)\w*\s+(?:\w+\s+){0,3}(?:only\s+)?in\s+(?:the\s+)?" + _ANY_LANG +
                           r"(?:\s+language)?\s*[.,!]?$|exclusively\s+in|in\s+(?:the\s+)?" + _ANY_LANG + r"\s+language", s, re.I)  # fmt: skip
        if not strong or not re.search(r"respon|repl|answer|writ|output|languag|\buse\b|using|speak|say|tell|explain", s, re.I):
            continue
        if lang == "en" and re.search(r"capital|lower[\s-]?case|letters", s, re.I):
            continue  # "in English, and in all capital letters" is the case rule
        return [("language:response_language", {"language": lang})]
    return []


# Substrings that must be in the lower-cased prompt for the word rules to look (see detect.py).
_FREQ_T = frozenset(("time", "once", "twice", "thrice"))
_EXIST_T = frozenset(("includ", "contain", "mention", "use", "using", "has ", "have", "having", "featur", "incorporat"))
_FORB_T = frozenset(("no ", "not", "n't", "cannot", "without", "avoid", "refrain", "never", "free of", "zero", "ban", "prohibit", "forbid"))
# A counted or required word is named as a word, a term, a name, or in quotes.
_NAMED_T = frozenset(("word", "term", "item", "line", "name", "phrase", '"', "“", "'", "‘", "mention"))
_LIST_T = frozenset(("word", "term", "item", "line"))
_LANG_NAMES = frozenset(LANGUAGES)
# _TIMES_QUICK's literals: with an exact case gate, one of these or "at least/most" is in `low` iff it matches.
_TIMES_T = frozenset(("times", "once", "twice", "thrice", "fewer", "less", "more", "only", "exactly"))
_DIGIT = re.compile(r"\d")
_AT_LEAST_MOST = re.compile(r"at\s+(?:least|most)")
# A language name as a whole [a-z]+ run of the lower-cased text (the literal first: re's prefix search).
_LANG_WORD = {n: re.compile(rf"{n}(?<![a-z]{n})(?![a-z])") for n in LANGUAGES}

# What _forbidden's three patterns need to emit (lower-cased text): a list named as words, terms,
# phrases or "the following" within the negated clause, or a quoted list right after the verb
# (the verb's patterns, so a clause's match is a match here too). One pattern per branch, each split
# by its leading literal (literals.Keyed: only the literals the text holds are searched).
_VERB = r"(?:us(?:e|ing)|includ(?:e|ing)|say(?:ing)?|mention(?:ing)?|contain(?:ing)?|writ(?:e|ing)|hav(?:e|ing)|utiliz(?:e|ing)|employ(?:ing)?)"
_VERBS = {"use": "use", "using": "using", "includ": r"includ(?:e|ing)", "say": r"say(?:ing)?", "mention": r"mention(?:ing)?",
          "contain": r"contain(?:ing)?", "write": "write", "writing": "writing", "have": "have", "having": "having",
          "utiliz": r"utiliz(?:e|ing)", "employ": r"employ(?:ing)?"}  # fmt: skip  (together: _VERB)
_QUOTES = frozenset(('"', "“", "'", "‘"))
_FORB_GATES = (
    Keyed({w: w for w in ("word", "term", "phrase", "following")}, rf"\w*\s+(?:\w+\s+){{0,2}}{_VERB}", (frozenset(_VERBS),)),  # named before the verb
    Keyed(_VERBS, r"\s+(?:any\s+of\s+|any\s+)?(?:the\s+)?(?:following|key|word|term|phrase)",
          (frozenset(("following", "key", "word", "term", "phrase")),)),  # named after it
    Keyed(_VERBS, r"\s+[\w\s:\-]*?[\"“'‘]", (_QUOTES,)),  # a quoted list
    Keyed({"avoid": "avoid", "without": "without", "exclud": r"exclud(?:e|ing)", "ban": "ban", "never": r"never\s+use"},
          r"\s+[\w\s]*?(?:word|term|phrase)", (frozenset(("word", "term", "phrase")),)),
    Keyed({w: w for w in ("should", "must", "may", "can")}, r"\s*(?:not|n't|never)\s+(?:appear|be\s+(?:used|mentioned|included)|occur)",
          (frozenset(("not", "n't", "never")), frozenset(("appear", "used", "mentioned", "included", "occur")))),
)  # fmt: skip
# _existence's two patterns from their verb (to the list's name, or the quote): a sentence's match is a match of the text.
_EXIST_GATE = Keyed({"includ": r"includ(?:e|es|ing)", "contain": r"contain(?:s|ing)?", "use": r"uses?", "using": "using",
                     "mention": r"mention(?:s|ing)?", "have": "have", "having": "having", "has": "has", "featur": r"featur(?:e|ing)",
                     "incorporat": r"incorporat(?:e|ing)"},
                    r"\s+(?:all\s+)?(?:of\s+)?(?:the\s+|these\s+)?(?:following\s+)?(?:key\s*words?|keywords?|words?|terms?|items?|line)\b")
_QUOTED_AFTER_MENTION = Keyed({"mention": "mention", "includ": "include"}, r"\s+[\"“'‘]", (_QUOTES,))
# _language's "strong" alternatives, one pattern each (the sentence-end `$` of one dropped: weaker).
# Each with a literal its matches hold (tested first).
_STRONG_GATES = tuple((frozenset(n), re.compile(p)) for n, p in (
    (("other",), r"no\s+other\s+language"), (("other",), r"other\s+languages?\s+(?:is|are)\s+not"),
    (("only",), rf"only\s+(?:in|using|use)\s+(?:the\s+)?{_ANY_LANG}"), (("only",), rf"{_ANY_LANG}\s+(?:language\s+)?only"),
    (("entire",), r"entirely\s+in"), (("entire",), r"entire\s+(?:response|answer|reply|output)[^.]{0,30}\bin\b"),
    (("respond", "reply", "answer", "write", "response"),
     rf"(?:respond|reply|answer|write|response)\w*\s+(?:\w+\s+){{0,3}}(?:only\s+)?in\s+(?:the\s+)?{_ANY_LANG}"),
    (("exclusively",), r"exclusively\s+in"), (("language",), rf"in\s+(?:the\s+)?{_ANY_LANG}\s+language"),
))  # fmt: skip
# _FORB_M1 holds a negation, at most three words, then the verb (\b dropped: a weaker test; split
# by the negation's literal); it emits only with one of the first three branches above.
_M1_HEAD = Keyed({"no": "not?", "n't": "n't", "cannot": "cannot", "without": "without", "avoid": "avoid", "refrain": "refrain",
                  "never": "never", "free": r"free\s+of", "zero": "zero", "ban": "ban", "prohibit": "prohibit", "forbid": "forbid",
                  "don't": "don't", "do": r"do\s+not", "must": r"must\s+not", "should": r"should\s+not", "can't": "can't"},
                 rf"\s*(?:\w+\s+){{0,3}}?{_VERB}\s", (frozenset(_VERBS),))  # fmt: skip

LITERALS = frozenset([*_FREQ_T, *_EXIST_T, *(w for a in _FREQ_ALSO for w in a), *_FORB_T, *_NAMED_T, *_LIST_T, *_LANG_NAMES, *_TIMES_T, "letter", "least", "most",
                      *(w for needs, _ in _FREQ_PATS for w in needs),
                      *(k for g in (*_FORB_GATES, _M1_HEAD, _EXIST_GATE, _QUOTED_AFTER_MENTION) for k in g.keys.union(*g.needs)),
                      *(w for n, _ in _STRONG_GATES for w in n)])  # fmt: skip


_ANY_T = _NAMED_T | _LANG_NAMES | {"letter"}  # named (frequency, forbidden, existence), a language, letters


def _forb_gate(low: str, found: set[str]) -> bool:
    """False only when none of _forbidden's patterns can emit on `low` (the text or a sentence of it;
    `found`: the LITERALS of the whole text, a superset of a sentence's)."""
    g = _FORB_GATES
    return g[3].search(low, found) or g[4].search(low, found) or (
        (g[0].search(low, found) or g[1].search(low, found) or g[2].search(low, found)) and _M1_HEAD.search(low, found))


def rules(text: str, low: str | None = None, gated: bool = True, found: set[str] | None = None) -> Found:
    """The word rules; each runs only when one of its trigger substrings is in the lower-cased text.
    `found`: the LITERALS `low` holds (detect.py's one pass); found here when not given."""
    low = text.lower() if low is None else low
    if found is None:
        found = {w for w in LITERALS if w in low}
    if _ANY_T.isdisjoint(found):
        return []  # every rule below needs one of these
    named = not _NAMED_T.isdisjoint(found)
    gate = case_gate(text, low) if gated else None  # None: no tighter gate is exact for this text
    names = _LANG_NAMES.intersection(found)
    lang = _language(text, None if gate is None else names) if any(_LANG_WORD[n].search(low) for n in names) and (
        gate is None or any(not n.isdisjoint(found) and p.search(low) for n, p in _STRONG_GATES)) else []
    letters = _letters(text) if "letter" in found else []
    freq = _frequency(text, gate, found) if named and not _FREQ_T.isdisjoint(found) else []
    counted = {k["keyword"].lower() for _, k in freq}
    forb = _forbidden(text, None if gate is None else found) if named and not _FORB_T.isdisjoint(found) and (gate is None or _forb_gate(low, found)) else []
    banned = {w.lower() for _, k in forb for w in k["forbidden_words"]}
    exist = _existence(text, counted | banned, gate) if named and not _EXIST_T.isdisjoint(found) and (
        gate is None or (not _LIST_T.isdisjoint(found) and _EXIST_GATE.search(low, found)) or _QUOTED_AFTER_MENTION.search(low, found)) else []
    out: list[tuple[str, dict[str, Any]]] = [*forb, *freq, *exist, *letters, *lang]
    return out
