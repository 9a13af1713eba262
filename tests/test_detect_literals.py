"""The detector's one-pass literal finder and the exact fast gates built on it (builder/constraints/literals.py)."""

from __future__ import annotations

import ast
import random
import re
import sys
from pathlib import Path

import pytest

from builder.constraints import detect_en, detect_en_gates, detect_words, detect_zh, gate_patterns
from builder.constraints.detect import LITERALS, detect
from builder.constraints.literals import Keyed, Literals, anchored_finditer, matches_at

ROOT = Path(__file__).resolve().parents[1]
# Characters the random strings draw from: the literals' own, look-alikes re.I folds, astral ones.
_ALPHABET = sorted({c for w in LITERALS for c in w} | set(" \n\t.,-'\"İıſKé😀𝔘") | set("0123456789"))


def _random_texts(n: int, seed: int, pieces: list[str]) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(pieces) if rng.random() < 0.3 else "".join(rng.choices(_ALPHABET, k=rng.randint(0, 6)))
                 for _ in range(rng.randint(0, 12))]  # fmt: skip
        out.append("".join(parts))
    return out


def test_literal_finder_agrees_with_in() -> None:
    words = sorted(LITERALS)
    texts = _random_texts(3000, 1, words) + ["", "p.p.s", "wordswords", "“‘", "no nothing", "😀word😀"]
    for t in texts:
        assert LITERALS.find(t) == {w for w in words if w in t}, t
    # overlapping and nested literals, on a set of its own
    lit = Literals(["ab", "b", "abc", "bca", "c", "😀a"])
    for t in _random_texts(500, 2, ["abca", "bcab", "😀a"]):
        assert lit.find(t) == {w for w in lit if w in t}, t
    with pytest.raises(ValueError):
        Literals(["", "a"])


def test_the_literal_test_can_fail() -> None:
    """A finder that drops one literal is caught by the same comparison."""
    words = sorted(LITERALS)
    short = Literals(words[1:])
    texts = _random_texts(2000, 3, words)
    assert any(short.find(t) != {w for w in words if w in t} for t in texts)


def test_anchored_finditer_is_finditer() -> None:
    sents = ["End your reply with 'ok'.", "finish it by saying Done", "The last line should be: bye", "very end of the answer must read OK",
             "closing sentence must be Thanks", "wrap up with this phrase: cheers", "Use the word cat at least 3 times.",
             "include the keyword 'sun' twice", "The word dog should appear 2 times", "the  \n keyword x is used once", "THE\tword 'a' must appear twice", "finalast word must be x"]  # fmt: skip
    texts = _random_texts(1500, 4, sents + sorted(detect_en_gates.LITERALS))
    pairs = [(detect_en._END_LOWER, detect_en._END_STARTS)]
    pairs += [(re.compile(p.pattern), starts) for (_, p), starts in zip(detect_words._FREQ_PATS, detect_words._FREQ_STARTS, strict=True)]
    for t in texts:
        low = t.lower()
        for pat, starts in pairs:
            assert [m.span() for m in anchored_finditer(pat, starts, low)] == [m.span() for m in pat.finditer(low)], (pat.pattern[:40], t)
        p0 = re.compile(detect_words._FREQ_PATS[0][1].pattern)
        assert [m.span() for m in matches_at(p0, low, detect_words._word_starts(low))] == [m.span() for m in p0.finditer(low)], t
    # non-ASCII text, anchors found on the lower-cased copy (same length, no look-alikes)
    for t in [s.upper() + " é “x”" for s in sents]:
        low = t.lower()
        got = [m.span() for m in anchored_finditer(detect_en._END, detect_en._END_STARTS, t, low)]
        assert got == [m.span() for m in detect_en._END.finditer(t)], t
    # _count_of's first match, tried at the number words and every digit (full-width and Arabic-Indic too)
    nums = ["３ paragraphs", "٣ sections", "exactly two parts", "only 12,000 words", "a couple of stanzas", "just 5 verses", "twenty-one chapters"]
    pat = re.compile(rf"(?:exactly\s+|only\s+|just\s+)?(?P<n>{detect_en.NUM})[\s-]+(?:\w+[\s-]+)?(?:paragraphs?|sections?|parts?)\b", re.I)
    for t in _random_texts(1500, 7, nums + sents):
        low = t.lower()
        if len(low) == len(t):
            first = next(anchored_finditer(pat, detect_en._COUNT_STARTS, t, low, digits=True), None)
            plain = pat.search(t)
            assert (first and first.span()) == (plain and plain.span()), t
    # a start set that misses where matches begin gives other matches: the comparison can fail
    assert [m.span() for m in anchored_finditer(detect_en._END_LOWER, ("finish",), sents[0].lower())] != \
        [m.span() for m in detect_en._END_LOWER.finditer(sents[0].lower())]  # fmt: skip


def test_keyed_gates_are_their_alternations() -> None:
    """Each Keyed gate matches exactly when its whole alternation (one pattern) does."""
    w = detect_words
    whole = [
        (w._FORB_GATES[0], rf"(?:word|term|phrase|following)\w*\s+(?:\w+\s+){{0,2}}{w._VERB}"),
        (w._FORB_GATES[1], rf"{w._VERB}\s+(?:any\s+of\s+|any\s+)?(?:the\s+)?(?:following|key|word|term|phrase)"),
        (w._FORB_GATES[2], rf"{w._VERB}\s+[\w\s:\-]*?[\"“'‘]"),
        (w._FORB_GATES[3], r"(?:avoid|without|exclude|excluding|ban|never\s+use)\s+[\w\s]*?(?:word|term|phrase)"),
        (w._FORB_GATES[4], r"(?:should|must|may|can)\s*(?:not|n't|never)\s+(?:appear|be\s+(?:used|mentioned|included)|occur)"),
        (w._EXIST_GATE, r"(?:includ(?:e|es|ing)|contain(?:s|ing)?|us(?:e|es|ing)|mention(?:s|ing)?|hav(?:e|ing)|has|featur(?:e|ing)|"
                        r"incorporat(?:e|ing))\s+(?:all\s+)?(?:of\s+)?(?:the\s+|these\s+)?(?:following\s+)?"
                        r"(?:key\s*words?|keywords?|words?|terms?|items?|line)\b"),
        (w._QUOTED_AFTER_MENTION, r"(?:mention|include)\s+[\"“'‘]"),
        (w._M1_HEAD, rf"(?:no|not|n't|cannot|without|avoid|refrain|never|free\s+of|zero|ban|prohibit|forbid|don't|do\s+not|"
                     rf"must\s+not|should\s+not|can't)\s*(?:\w+\s+){{0,3}}?{w._VERB}\s"),
    ]  # fmt: skip
    pieces = ["do not use the words", "avoid these terms", "must not appear", "include the keywords", "mention 'x'", "uses key words",
              "phrases like writing", "never use any phrase", "having \"a\"", "can't be used", "following: using", "do not ever use ",
              "nouse ", "free of  writing\n"]  # fmt: skip
    texts = [t.lower() for t in _random_texts(2500, 5, pieces + sorted(LITERALS))]
    hits = 0
    for keyed, pattern in whole:
        full = re.compile(pattern)
        for t in texts:
            got = keyed.search(t, LITERALS.find(t))
            assert got == (full.search(t) is not None), (pattern[:40], t)
            hits += got
    assert hits > 100  # the random texts do reach the patterns
    with pytest.raises(ValueError):
        Keyed({"use": "using|x"})


def test_length_gate_mirror_search() -> None:
    """The mirrored count-before-unit search matches exactly when the forward pattern does."""
    from builder.constraints.numbers import NUM_WORDS

    mid = r"\+?[\s-]*(?:or\s+(?:more|less|fewer)\s+)?(?:\w+[\s-]+)?"
    pieces = ["at least 300 words", "5 or more sentences", "one hundred - words", "a couple of short sentences", "12,000+ words", "twenty words"]
    texts = [t.lower() for t in _random_texts(2000, 6, pieces)]
    for unit in ("word", "sentence"):
        fwd = re.compile(rf"(?:\d[\d,]*|{NUM_WORDS}){mid}{unit}")
        hits = 0
        for t in texts:
            got = gate_patterns.COUNT_BEFORE_REVERSED[unit].search(t[::-1]) is not None
            assert got == (fwd.search(t) is not None), (unit, t)
            hits += got
        assert hits > 50


def test_sentence_split_is_the_former_one() -> None:
    former = re.compile(r"(?<=[.!?;])\s+(?=[A-Z0-9\"'“(*-])|\n+")
    rng = random.Random(8)
    chars = list(" \n\t\r\u3000\u00a0.!?;AZaz09\"'“(*-x")
    texts = ["".join(rng.choices(chars, k=rng.randint(0, 40))) for _ in range(20000)] + ["A. B", "a.\n\nB", "x;  (y", "end.  \n Z"]
    assert all(detect_en._SPLIT.split(t) == former.split(t) for t in texts)
    assert detect_en._SPLIT.split("a. B") != re.compile(r"\n+").split("a. B")  # the comparison can fail


def test_zh_words_cover_every_has_test() -> None:
    """detect_zh's `has` reads the WORDS found by the one pass: a literal missing there would never be seen."""
    tree = ast.parse((ROOT / "builder" / "constraints" / "detect_zh.py").read_text(encoding="utf-8"))
    consts = {n.id: n for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "has":
            arg = node.args[0]
            if isinstance(arg, ast.Tuple):
                used |= {e.value for e in arg.elts if isinstance(e, ast.Constant)}
            else:
                assert isinstance(arg, ast.Name) and arg.id in consts
                used |= set(getattr(detect_zh, arg.id))
    assert used and used <= set(detect_zh.WORDS), used - set(detect_zh.WORDS)
    assert {w.lower() for w in detect_zh.WORDS} <= LITERALS.words


@pytest.mark.skipif(sys.maxunicode < 0x10FFFF, reason="needs every code point")
def test_case_gate_premise_holds_for_every_character() -> None:
    """Gates run plain patterns on the lower-cased text in place of `re.I` ones on the text when it
    holds no _ODD_CASE character: then each character lower-cases to one character, keeps its \\w
    and \\s class, and matches an ASCII letter under re.I exactly when its lower case is that letter."""
    chars = "".join(chr(i) for i in range(0x110000) if not 0xD800 <= i < 0xE000)
    odd = set("\u0130\u0131\u017f\u212a")
    for a in "abcdefghijklmnopqrstuvwxyz":
        folded = set(re.findall(a, chars, re.I))
        assert folded - odd == {a, a.upper()}, (a, folded)
    assert {c for c in chars if len(c.lower()) != 1} == {"\u0130"}
    w, s = re.compile(r"\w"), re.compile(r"\s")
    assert all(bool(w.match(c)) == bool(w.match(c.lower())) and bool(s.match(c)) == bool(s.match(c.lower())) for c in chars)


def test_look_alike_language_name_does_not_raise() -> None:
    """re.I matched "İndonesian" to a language name that str.lower() could not look up (KeyError before)."""
    got = detect("Answer only in Indonesİan. English words are fine.")  # "english" lets the language rule run
    assert [c.kwargs for c in got if c.id == "language:response_language"] == [{"language": "id"}]
    assert detect("Reply only in hungarıan; english is not allowed.")[0].kwargs == {"language": "hu"}
