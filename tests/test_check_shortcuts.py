"""The responses checks' shortcuts find what the plain searches they replace find.

Each shortcut (issue 16: per-reply CPU) is held to its reference, the obvious `re` call, on
seeded fuzz text built from the tokens that matter (keywords in odd cases, re.I's folding
letters, blanks of several kinds, Bangla, CJK, Greek, formulas), and on the sample's real
replies. benchmarks/responses_checks_speed.py compares whole `process_batch` outputs.
"""

from __future__ import annotations

import random
import re

import pytest

from builder.language_formulas import FORMULA, strip_formulas
from builder.responses import answer_end
from builder.responses.phrase_filter import _TO_ASCII, UNCHECKED, may_hold
from builder.responses.verify import mcq

TOKENS = [
    "answer", "ANSWER", "Answer", "anſwer", "final", "FINAL", "most", "appropriate", "accurate", "suitable", "correct",
    "right", "best", "true", "option", "Option", "choice", "CHOICE", "答案", "选项", "正确", "উত্তর", "উত্তরঃ", "সঠিক",
    "is", "would be", ":", "：", "(", ")", "A", "B", "J", "b", "**", " ", "  ", "\n", "\t", "\u00a0", "\u2003", "\\boxed{",
    "}", "K", "\u212a", "İ", "ı", "ſ", "x2", "a+1/a=4", "dy/dx=", "θ", "αβ", "sin", "IUPAC", "C", "not", ".", ",", "-",
    "the", "so", "বিদ্যুৎ", "চুম্বকীয়", "中文", "é", "Ω", "ω", "µ", "μ", "0.5", "42", "'", '"', "।",
]  # fmt: skip


def fuzz(n: int, seed: int, most: int = 14) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(TOKENS) for _ in range(rng.randint(1, most))) for _ in range(n)]


def _real_texts() -> list[str]:
    from tests.fixtures.adversarial_replies import real_triples

    return [x for t in real_triples()[:400] for x in (t.think, t.answer, t.prompt)]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return fuzz(6000, 1) + _real_texts()


def test_tier1_matches_are_finditer(corpus: list[str]) -> None:
    for text in corpus:
        for i, pat in enumerate(mcq._TIER1):
            want = [(m.span(), m.group(1)) for m in pat.finditer(text)]
            assert [(m.span(), m.group(1)) for m in mcq.tier1_matches(i, text)] == want, (i, text)



def test_lower_case_statements_are_finditer(corpus: list[str]) -> None:
    # _lower_letters tries _LOWER_STATEMENT only at tier-1 "answer" starts, as tier1_matches does.
    for text in corpus + [f"so the Final answer is {c}" for c in ("(c).", "c", "**d**", "a\n")]:
        want = [m.span() for m in mcq._LOWER_STATEMENT.finditer(text)]
        got = mcq._matches_from(mcq._LOWER_STATEMENT, mcq._TIER1_NEEDS[1], mcq._qualified, text)
        assert [m.span() for m in got] == want, text


def test_tier1_qualifier_starts() -> None:
    # Each qualifier of _Q before its keyword, with blanks of several kinds and lengths.
    for q in ("final", "correct", "right", "best", "true", "most appropriate", "most  accurate", "MOST\tsuitable"):
        for blank in (" ", "  \n ", "\u00a0"):
            for key, i in (("answer", 1), ("option", 2)):
                text = f"so the {q}{blank}{key} is (B)."
                want = [m.span() for m in mcq._TIER1[i].finditer(text)]
                assert want and [m.span() for m in mcq.tier1_matches(i, text)] == want, text


def test_strip_formulas_is_the_substitution(corpus: list[str]) -> None:
    for text in corpus:
        assert strip_formulas(text) == FORMULA.sub(" ", text)


def test_phrase_filter_never_rules_out_a_match(corpus: list[str]) -> None:
    rng = random.Random(2)
    for text in corpus[:3000]:
        words = text.split()
        if not words:
            continue
        lo = rng.randrange(len(words))
        line = " ".join(words[lo : lo + rng.randint(1, 4)])
        for phrase in (line, line.casefold(), line.upper()):
            body = phrase.split()
            prompt = rng.choice(corpus[:3000]) + " " + rng.choice([line, line.upper(), line.swapcase(), ""])
            if re.search(r"\s+".join(map(re.escape, body)), prompt, re.I):
                assert may_hold(prompt, body), (body, prompt)


def test_phrase_filter_case_facts() -> None:
    """What may_hold relies on, on every code point: an ASCII letter matches (re.I) only its
    cases and the four letters folded to it; Bangla and CJK letters match only themselves."""
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for letter in "abcdefghijklmnopqrstuvwxyz":
        others = set(re.findall(letter, everything, re.I)) - {letter, letter.upper()}
        assert all(o.translate(_TO_ASCII) == letter for o in others), (letter, others)
    safe = re.compile(r"[\u0980-\u09ff\u3400-\u9fff]", re.I)
    assert all("\u0980" <= c <= "\u09ff" or "\u3400" <= c <= "\u9fff" for c in safe.findall(everything))
    assert UNCHECKED.split("ab\u0995中é x") == ["ab\u0995中", " x"]  # a cased non-ASCII letter splits a word


def _quotes_prompt_ref(last_line: str, prompt: str) -> bool:
    """answer_end._quotes_prompt as it was: one pattern compiled per line, no filter."""
    ae = answer_end
    line = last_line.strip()
    m = ae._OPTION_LETTER_END.search(line)
    if m and ae.extract_choice(line)[0] == m.group(0).strip(" (*:)"):
        return True
    if not prompt:
        return False
    body = ae._casefold_ws(ae._OPTION.sub("", ae._LABEL.sub("", ae._LIST_ITEM.sub("", line, count=1), count=1), count=1))
    if len(body) < 2:
        return False
    phrase = r"\s+".join(map(re.escape, body.split()))
    return re.search(rf"(?<![\w\u0980-\u09ff]){phrase}(?=\s*(?:$|[\n'\"”’,;)}}\]。？?!.\\]))", prompt, re.I) is not None


def test_quotes_prompt_as_a_plain_search(corpus: list[str]) -> None:
    prompt = "Which is it?\nA. বিদ্যুৎ চুম্বকীয় আবেশ\nB. The KELVIN scale\nC. it is not possible to tell"
    lines = ["**Answer:** B. the \u212aelvin scale", "It is not possible to tell", "বিদ্যুৎ চুম্বকীয় আবেশ",
             "বিদ্যুৎ চুম্বকীয়", "the kelvin scales", "tell me more", "C. İt is not possible to tell"]  # fmt: skip
    got = [answer_end._quotes_prompt(x, prompt) for x in lines]
    assert got == [_quotes_prompt_ref(x, prompt) for x in lines] and got[:5] == [True, True, True, False, False]
    rng = random.Random(3)
    for text in corpus[:4000]:
        lines = [x for x in text.splitlines() if x.strip()] or [text]
        line = rng.choice(lines)
        words = line.split()
        for prompt in (rng.choice(corpus), rng.choice(corpus) + "\n" + " ".join(words[-3:]).upper() + "\n", line.swapcase()):
            assert answer_end._quotes_prompt(line, prompt) == _quotes_prompt_ref(line, prompt), (line, prompt)


def test_ends_of_is_finditer(corpus: list[str]) -> None:
    for text in corpus[:2000]:
        for part in {text[:2], text[-3:], "a", "aa", " "} - {""}:
            want = [m.end() for m in re.finditer(re.escape(part), text + text)]
            assert answer_end._ends_of(part, text + text) == want


def test_dangling_word_as_the_full_search(corpus: list[str]) -> None:
    long = ["it is because", "x = 3, although", "x" * 40 + "the", "é" * 33 + "and", "a" * 31 + " of", "-" * 50 + "with"]
    for text in [t.rstrip() for t in corpus + long] + long:
        if not text:
            continue
        word = answer_end._WORD.search(text)  # the reference: one search over the whole text
        want = word is not None and word.group(0) != "A" and word.group(0).lower() in answer_end._DANGLING_WORDS
        assert answer_end._dangling_word(text) == want, text


def test_bangla_decimal_needs_its_end(corpus: list[str]) -> None:
    for text in corpus + ["মোল ভগ্নাংশ = 0.", "তাপমাত্রা হবে ১০."]:
        line = text.rstrip()
        if answer_end._BANGLA_DECIMAL_END.search(line):
            assert line.endswith(".") and line[-2:-1].isdecimal(), line
