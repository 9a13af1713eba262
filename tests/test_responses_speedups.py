"""The responses stage's speed-ups give exactly what the code they replaced gave.

Each replaced piece is checked against a reference written the old way (kept here, not in the
package), on the real traces (tests/fixtures/adversarial_replies.real_triples: the shared corpus,
else data/sample) and on inputs built to tell the two apart.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import regex

from builder import language, tokens
from builder.responses import consistency
from tests.fixtures.adversarial_replies import real_triples


@pytest.fixture(scope="module")
def triples():
    return real_triples()


def _per_script_table() -> np.ndarray:
    """language._build_table as it was: one findall per script over every code point."""
    everything = "".join(map(chr, range(language._TABLE_SIZE)))
    ref = np.zeros(0x110000, dtype=np.uint8)
    for index, script in enumerate(language._SCRIPTS, start=1):
        kinds = r"\p{L}\p{M}" if script in language._VOWEL_SIGN_SCRIPTS else r"\p{L}"
        letters = "".join(regex.findall(rf"[\p{{{script}}}&&[{kinds}]]", everything, flags=regex.V1))
        ref[np.frombuffer(letters.encode("utf-32-le"), dtype=np.uint32)] = index
    return ref


def test_script_table_is_the_per_script_one() -> None:
    """One pass over runs of letters builds the table one findall per script built."""
    ref = _per_script_table()
    assert len(np.unique(ref)) == len(language._SCRIPTS) + 1  # every script has letters
    assert np.array_equal(language._TABLE, ref)


def _concluded_ref(value: str, tail: str) -> bool:
    """consistency._concluded as it was: one regex compiled per value."""
    v, t = consistency._fold_math(value), consistency._fold_math(tail[-consistency._CONCLUSION :])
    if not v:
        return False
    if consistency._as_number(value) is None:
        return v in t
    lead = r"(?:(?:=|is|be|are|:)(?:indeed|clearly|exactly|just|still)?|\\\(|\{)\\?\(?"
    return re.search(rf"{lead}{re.escape(v)}(?![\d.]\d|\d)", t) is not None


_CRAFTED = [
    ("17", "so x = 17"), ("17", "x = 170"), ("17", "x = 17.5"), ("17", "x = 17."), ("17", "it is17"),
    ("17", "is clearly 17 and"), ("17", "is clearly(17)"), ("17", "\\(17\\)"), ("17", "{17}"), ("17", "\\{17"),
    ("17", "= \\(17"), ("17", "17 = 17"), ("17", "1717 = 17"), ("17", "x=17x=171"), ("17", "x=171x=17"),
    ("(3)", "is (3) done"), ("3.5", "= 3.5"), ("3.5", "= 3.51"), ("3.5", "= 3.5.1"), ("-2", "x is -2"),
    ("1/2", "is \\frac{1}{2}"), ("1,000", "total is 1,000"), ("2", "are exactly 2"), ("2", "be still2"),
    ("2", "re 2"), ("2", "sexactly 2"), ("x+1", "= x+1"), ("0", ":0"), ("0", "0"), ("", "= 1"),
]  # fmt: skip


def test_concluded_as_the_compiled_regex(triples) -> None:
    cases = list(_CRAFTED)
    for t in triples:
        tail = t.think[-consistency._TAIL :]
        # The answer's value, and numbers that occur in the tail (the hard cases: near misses).
        a = consistency._math_value(t.answer)
        if a:
            cases.append((a, tail))
        for n in re.findall(r"\d[\d.,]*", tail[-consistency._CONCLUSION :])[-4:]:
            cases.append((n, tail))
    assert len(cases) > 100
    decided = [(v, tail) for v, tail in cases if consistency._as_number(v) is not None]
    assert sum(_concluded_ref(v, tail) for v, tail in decided) > 10  # both outcomes are exercised
    assert sum(not _concluded_ref(v, tail) for v, tail in decided) > 10
    for v, tail in cases:
        assert consistency._concluded(v, tail) == _concluded_ref(v, tail), (v, tail[-200:])


@pytest.mark.parametrize("name", ["deepseek-r1", "qwen2.5"])
def test_token_counts_as_encode_ordinary(name: str, triples) -> None:
    """Counts read off tiktoken's buffer are the lengths of encode / encode_ordinary's lists,
    texts holding an added token included (those go through encode with every special allowed)."""
    enc = tokens.tiktoken_encoding(name)
    texts = [x for t in triples[:120] for x in (t.think, t.answer, t.prompt)]
    texts += ["", " ", "<|endoftext|> hi", "a<｜end▁of▁sentence｜>b", "<think>x</think>", "é\u0301 ﬁ 中文 ১২৩"]
    normed = [tokens.tiktoken_normalize(name, t) for t in texts]
    special = tokens._special_finder(name)
    ref = [len(enc.encode(t, allowed_special="all")) if special(t) else len(enc.encode_ordinary(t)) for t in normed]
    assert tokens.count_tokens_tiktoken(name, texts) == ref
    many = texts * (1 + 1100 // len(texts))  # over 1024 texts: the threaded path
    assert tokens.count_tokens_tiktoken(name, many) == ref * (1 + 1100 // len(texts))
