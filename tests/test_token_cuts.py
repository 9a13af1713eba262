"""builder/token_cuts.py: counts with the look-around-free pattern (cut at each trigger) equal `tokenizers`
on adversarial whitespace/Unicode texts and the proven pattern's on real traces; the Python classes equal
the regex crate's; and without the cuts or the gap rule the same texts count wrong (the tests can fail)."""

from __future__ import annotations

import itertools
import random

import pytest
import tiktoken

from builder import token_cuts, tokens
from tests.test_tokens import EDGES, corpus_sample, needs_corpus

NAMES = sorted(token_cuts._LOOKAHEAD)
ALL_CHARS = "".join(map(chr, itertools.chain(range(0xD800), range(0xE000, 0x110000))))


def _rust_matches(pat: str, text: str) -> str:
    """The characters of `text` that the regex crate (tiktoken's) matches with `pat`, in order."""
    enc = tiktoken.Encoding(name="probe", pat_str=pat, mergeable_ranks={bytes([b]): b for b in range(256)}, special_tokens={})
    return enc.decode(enc.encode_ordinary(text))


# Inline whitespace of every kind (and \x1c, which Python's `\s` holds and Unicode's does not), line breaks,
# digits of several kinds (ASCII, Arabic-Indic, superscript, fullwidth, Roman), CJK and kana, combining marks,
# contractions, punctuation, emoji with joiners, zero-width and control characters, Bangla.
_PIECES = [" ", "  ", "   ", "\t", "\t\t", "\xa0", "\u3000", "\u2009", "\u202f", "\x0b", "\x0c", "\x85", "\u2028",
           "\u1680", "\x1c", "\n", "\r\n", "\n\n", "\r", "a", "Zx", "word", "1", "42", "12345", "٣", "²", "１", "Ⅻ",
           "中", "中文", "か", "ア", "・", "e\u0301", "\u0301", "'s", "'LL", "'ve", ".", "!!", "(", "\\[", "$x$",
           "😀", "👍🏽", "\u200d", "\u200c", "\u200b", "\x00", "\x7f", "ক্ষ", "১২", "é", "\ufeff", "-", "**"]  # fmt: skip


# Miscounted by the look-around-free pattern alone: a cut is needed (a run before a digit: Qwen's look-ahead
# keeps its last space apart) or, for DeepSeek, a tab/space run before a letter and gap characters.
MISCOUNTED_UNCUT = {"qwen2.5": ["a   1"], "deepseek-r1": ["a \t x", "x\x7f", "\u200d\u200d"]}


def adversarial_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = ["".join(rng.choices(_PIECES, k=rng.randint(1, 30))) for _ in range(n)]
    runs = [" " * k for k in (2, 3, 17, 200)] + ["\t \xa0 ", " \u3000", "  \n  ", " \n\t\t"]
    for run, nxt in itertools.product(runs, ["x", "1", "٣", "中", "か", "'s", ".", "\u0301", "\u200d", "😀", "\n", ""]):
        out += [f"a{run}{nxt}", f"{run}{nxt}b", f"1.{run}{nxt}{run}"]
    return out + EDGES + [t for ts in MISCOUNTED_UNCUT.values() for t in ts] + ["    return x\n\tif y:\n\t\tpass", "Question.\n    Option A\n    Option B", "x" + " " * 5000 + "\n"]


def _hf(name: str, texts: list[str]) -> list[int]:
    return [len(e.ids) for e in tokens.load_tokenizer(name).encode_batch_fast(texts, add_special_tokens=False)]


def _normed(name: str, texts: list[str]) -> list[str]:
    return [tokens.tiktoken_normalize(name, t) for t in texts]


def _fast_only(name: str) -> tiktoken.Encoding:
    enc = tokens.tiktoken_encoding(name)
    pat = token_cuts.fast_pattern(name, enc._pat_str)
    return tiktoken.Encoding(name="fast-only", pat_str=pat, mergeable_ranks=enc._mergeable_ranks, special_tokens={})


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_tokenizers_on_adversarial_texts(name: str) -> None:
    texts = [t for t in adversarial_texts(3000, seed=len(name)) if not tokens._special_finder(name)(t)]
    want = _hf(name, texts)
    count = tokens._ordinary_counter(name)
    got = [count(t) for t in _normed(name, texts)]
    bad = [t[:40] for t, a, b in zip(texts, want, got) if a != b]
    assert not bad, f"{name}: {len(bad)} of {len(texts)} differ, e.g. {bad[:3]}"
    assert tokens.count_tokens(name, texts) == want
    # The texts reach what the cuts (and DeepSeek's gap rule) are for: the look-around-free pattern
    # alone miscounts them, at whitespace runs and, for DeepSeek, at the gap characters.
    fast = _fast_only(name)
    wrong = {t for t, a in zip(_normed(name, texts), want) if len(fast.encode_ordinary(t)) != a}
    assert len(wrong) > len(texts) // 10 and set(MISCOUNTED_UNCUT[name]) <= wrong


@needs_corpus
@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_the_proven_pattern_on_real_texts(name: str) -> None:
    texts = _normed(name, [t for t in corpus_sample(stride=4) if not tokens._special_finder(name)(t)])
    enc = tokens.tiktoken_encoding(name)
    count = tokens._ordinary_counter(name)
    got = [count(t) for t in texts]
    assert got == [len(enc.encode_ordinary(t)) for t in texts]
    assert sum("  " in t for t in texts) > 100  # the corpus holds indented lines: cuts are taken


def test_white_space_is_the_regex_crates() -> None:
    import re

    rust = _rust_matches(r"\s", ALL_CHARS)
    assert rust == "".join(re.findall(f"[{token_cuts.WHITE_SPACE}]", ALL_CHARS))
    assert "\x1c" not in rust and "\x1c".isspace()  # why the class is spelled out
    assert _rust_matches(f"[{token_cuts._OTHER_SPACE}]", ALL_CHARS) == rust.replace(" ", "").replace("\n", "").replace("\r", "")
    # DeepSeek: an ASCII character after a trigger is a digit or matches the look-ahead's class.
    ascii_other = "".join(c for c in map(chr, range(128)) if not c.isspace() and c not in "\x1c\x1d\x1e\x1f")
    follows = token_cuts._LOOKAHEAD["deepseek-r1"][1]
    assert _rust_matches(follows, ascii_other) == "".join(c for c in ascii_other if c not in "0123456789")


def test_fast_pattern_has_no_look_around_and_refuses_others() -> None:
    for name in NAMES:
        fast = token_cuts.fast_pattern(name, tokens.tiktoken_encoding(name)._pat_str)
        assert "(?!" not in fast and "(?=" not in fast
    with pytest.raises(ValueError, match="look-ahead"):
        token_cuts.fast_pattern("qwen2.5", r"\s+(?!\S)|\s+(?!\S)|\s+")
    with pytest.raises(ValueError, match="gap alternative"):
        token_cuts.fast_pattern("deepseek-r1", r"\p{N}|\s+")


@pytest.mark.parametrize("name", NAMES)
def test_added_tokens_cut_alike(name: str) -> None:
    enc = tokens.tiktoken_encoding(name)
    added = sorted(enc.special_tokens_set)
    # count_around's premise: no added token starts or ends inside another
    assert not [(a, b) for a in added for b in added if a != b and any(a.endswith(b[:k]) for k in range(1, len(b) + 1))]
    rng = random.Random(5)
    bodies = adversarial_texts(400, seed=9)
    texts = [rng.choice(added).join(rng.sample(bodies, rng.randint(2, 4))) for _ in range(600)]
    a, b = added[0], added[-1]
    texts += [f"{a}{b}", f"  {a}  x", f"{a}\n\n  1{b}", a]
    normed = _normed(name, texts)
    want = [len(enc.encode(t, allowed_special="all")) for t in normed]
    assert tokens.count_tokens(name, texts) == want
    assert tokens.count_tokens(name, texts) == _hf(name, texts)


def test_counting_builds_the_proven_encoding_only_for_gap_characters() -> None:
    # (its Rust maps cost ~32 MB a process; the stage's workers count with the fast one alone)
    import subprocess
    import sys

    code = ("from builder import tokens\n"
            "for n in ('qwen2.5', 'deepseek-r1'): tokens.count_tokens(n, ['a  x', '\\t\\tb 1', '<think>y  z'])\n"
            "print(tokens.tiktoken_encoding.cache_info().currsize)\n"
            "tokens.count_tokens('deepseek-r1', ['a\\u200db'])\n"
            "print(tokens.tiktoken_encoding.cache_info().currsize)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "1"]
