"""Decontamination tokens: folded, casefolded words; CJK one character each; digits apart.

- Text is folded first (``normalize.fold_text``: NFKC, curly quotes, dashes, full-width
  forms, non-ASCII digits), then casefolded; the stored prompt is never changed.
- A word is a run of letters (``_`` included, so code identifiers stay whole) or a run of
  digits: "201斤等于多少千克" is 201 / 斤 / 等 / 于 / …, "5km" is 5 / km, "x2" is x / 2.
- Each Han, Hiragana, Katakana or Hangul character is its own word, so Chinese text gets
  character n-grams.
- Multiple-choice labels ("A. ", "(B)") are not words: choices match however they are labelled.
- Digit groups "40,000", "40{,}000", "40\\,000" and "40 000" with a no-break or thin space
  read as "40000", so a reformatted number still matches; with a plain space only where the
  groups cannot be a list ("400 000", "2 500"; not "60 80 140" nor "110 120 230").
- Chinese numerals that are numbers read as digits ("三十九个" is 39 / 个, as in near dedupe's
  keys), so an AlignBench-style item and a prompt agree however each writes its numbers, and
  the number check sees them: the same template with other Chinese numerals is another problem.

Hashes: a word is hashed with xxh3 (64 bits) of its UTF-8 bytes, the same in every process, so
an index built in one process matches prompts in another (curate builds it once and ships it to
its workers); an n-gram by a polynomial of its word hashes (wraps mod 2**64). A batch's words are
hashed once (WordBatch) and every rule's windows are cut from those hashes.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import xxhash

from builder.curate.normalize import fold_text
from builder.curate.shingles import zh_numerals_as_digits

# Han (with radicals, 々 and 〇), Hiragana, Katakana, Hangul as code point ranges: stdlib re
# runs this pattern about twice as fast as `regex` with \p{Han}… classes.
_CJK = (
    "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af"
    "\ud7b0-\ud7ff\U00020000-\U0003134f"
)
_WORD = re.compile(f"[{_CJK}]|\\d+|[^\\W\\d{_CJK}]+")
# ASCII fast path: every non-word character becomes a space, then split (C speed). Only a
# text with a digit glued to a letter ("5km", "x2") needs the regex to split it.
_ASCII_NONWORD = bytes(i if (chr(i).isalnum() or chr(i) == "_") else ord(" ") for i in range(128)) + bytes(128)
_GLUED = re.compile(r"[0-9][A-Za-z_]|[A-Za-z_][0-9]")
_ASCII_WORD = re.compile(r"\d+|[^\W\d]+", re.ASCII)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DIGIT = re.compile(r"\d")
_DIGIT_SPACE = re.compile(r"\d \d\d\d")
# Other thousands separators: LaTeX "1{,}000" and "1\\,000", and the no-break and thin spaces
# of SI typesetting (fold_text would make those plain spaces, which are too ambiguous to join).
_THOUSANDS_OTHER = re.compile(r"(?<=\d)(?:\{,\}|\\,|[\u00a0\u2009\u202f])(?=\d{3}(?!\d))")
# A plain space between digit groups ("400 000", "2 500"): joined only in a run that no other
# number touches ("60 80 140", "1 000 2 000" stay apart), and only when a group is 000 or the run
# is one group after 1-2 digits; "110 120 230" and "sizes 12 345 678" read as lists, so stay apart.
_SPACED = re.compile(r"(?<![\d.,])(?<!\d )(\d{1,3})((?: \d{3})+)(?!\d|[.,]\d| \d)")


def _join_spaced(m: re.Match[str]) -> str:
    head, groups = m.group(1), m.group(2).split()
    return head + "".join(groups) if "000" in groups or (len(groups) == 1 and len(head) < 3) else m.group(0)


# Multiple-choice labels ("A. ", "(B) ", "C) " at a line's start; "(D)" anywhere): a benchmark
# stores the choices bare, and a copy in the usual "A. choice" layout put a label word between
# every choice and broke the n-grams of short choices.
_LINE_LABEL = re.compile(r"(?m)^[ \t]*(?:\([A-Ja-j]\)|[A-Ja-j][.)])(?=[ \t])")
_INLINE_LABEL = re.compile(r"\([A-J]\)(?=[ \t])")


def words(text: str) -> list[str]:
    """Decontamination words of a text (see the module docstring)."""
    if "\n" in text or text[1:2] in (".", ")") or text[:1] == "(":  # a label starts a line
        text = _LINE_LABEL.sub(" ", text)
    if "(" in text:
        text = _INLINE_LABEL.sub(" ", text)
    if ("{,}" in text or "\\," in text or not text.isascii()) and _DIGIT.search(text):
        text = _THOUSANDS_OTHER.sub("", text)
    if " " in text and _DIGIT_SPACE.search(text):
        text = _SPACED.sub(_join_spaced, text)
    if not text.isascii():
        text = zh_numerals_as_digits(fold_text(text))
    if "," in text and _DIGIT.search(text):
        text = _THOUSANDS.sub("", text)
    if text.isascii():
        low = text.lower()
        if _GLUED.search(low):
            return _ASCII_WORD.findall(low)
        return low.encode("ascii").translate(_ASCII_NONWORD).decode("ascii").split()
    return _WORD.findall(text.casefold())


def is_number(token: str) -> bool:
    return token[:1].isdigit()


_EN_NUMBERS = {w: str(i) for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}  # fmt: skip
_EN_NUMBERS.update({w: str(10 * i) for i, w in enumerate(["thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 3)})


def is_number_word(token: str) -> bool:
    """An English number word ("two", "twenty")."""
    return token in _EN_NUMBERS


def number_words(tokens: list[str]) -> Counter[str]:
    """The English number words of a text, counted."""
    return Counter(t for t in tokens if t in _EN_NUMBERS)


def numbers_held(want: Counter[str], digits: Counter[str], words: Counter[str], item_words: Counter[str]) -> int:
    """How many of an item's numbers (`want`) a prompt holds: its digits, and its number words
    the item does not write itself as digits, so an item's "2" is held by a leak that writes
    "two", while "four of which" shared by both never stands in for the item's changed "1"."""
    spare = words - item_words
    have = digits + Counter({_EN_NUMBERS[w]: n for w, n in spare.items()}) if spare else digits
    return sum((want & have).values())


_P = np.uint64(0x100000001B3)  # odd multiplier: window hashes wrap mod 2**64 by design


_XXH3 = xxhash.xxh3_64_intdigest


def _xxh3_any(token: str) -> int:
    return _XXH3(token.encode("utf-8", "surrogatepass"))  # a lone surrogate has no strict UTF-8


def word_hashes(tokens: list[str]) -> np.ndarray:
    """xxh3 of each word: stable across processes (unlike Python's per-process str hash)."""
    try:
        return np.fromiter(map(_XXH3, tokens), dtype=np.uint64, count=len(tokens))
    except UnicodeEncodeError:
        return np.fromiter(map(_xxh3_any, tokens), dtype=np.uint64, count=len(tokens))


def window_hashes(flat: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash of every n-word window of a word-hash array (vectorized)."""
    m = len(flat) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _P + flat[k : k + m]
    return h


class WordBatch:
    """A batch of token lists with every word hashed once; each rule cuts its windows from it."""

    def __init__(self, token_lists: list[list[str]]) -> None:
        self.tokens = token_lists
        self.lens = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        self.starts = np.concatenate(([0], np.cumsum(self.lens)))
        self.flat = word_hashes([w for t in token_lists for w in t])

    def __len__(self) -> int:
        return len(self.tokens)

    def windows(self, n: int, rows: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(window hashes, prompt of each window, word offset of each window in its prompt) of every
        n-word window inside one prompt; with `rows`, of those prompts only, numbered 0.. in that order."""
        flat, lens = (self.flat, self.lens) if rows is None else self.of_rows(rows)
        return _windows(flat, lens, n)

    def of_rows(self, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(the word hashes of prompts `rows`, end to end in that order; their lengths)."""
        r = np.asarray(rows, dtype=np.int64)
        lens = self.lens[r]
        run_start = np.repeat(np.cumsum(lens) - lens, lens)
        return self.flat[np.repeat(self.starts[r], lens) + (np.arange(len(run_start), dtype=np.int64) - run_start)], lens


def _windows(flat: np.ndarray, lens: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    starts = np.concatenate(([0], np.cumsum(lens)))
    h = window_hashes(flat, n)
    if not len(h):
        empty = np.empty(0, np.int64)
        return h, empty, empty
    prompt = np.repeat(np.arange(len(lens), dtype=np.int64), lens)[: len(h)]
    offset = np.arange(len(h), dtype=np.int64) - starts[prompt]
    inside = offset + n <= lens[prompt]  # windows spanning two prompts are not n-grams
    return h[inside], prompt[inside], offset[inside]


class HashIndex:
    """Sorted hashes plus a bitmap of their low bits: most lookups of a window that is not in the
    index end at one bitmap probe instead of a binary search."""

    BITS = 24

    def __init__(self, sorted_hashes: np.ndarray) -> None:
        self.hashes = sorted_hashes
        self.bitmap = np.zeros(1 << self.BITS, dtype=bool)
        self.bitmap[(sorted_hashes & np.uint64((1 << self.BITS) - 1)).astype(np.int64)] = True

    def __getstate__(self) -> dict:
        return {"hashes": self.hashes}  # the 16 MB bitmap is rebuilt on load, not pickled

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["hashes"])  # type: ignore[misc]

    def candidates(self, h: np.ndarray) -> np.ndarray:
        """Indices into h of the windows that may be in the index (all that are, a few that are not)."""
        if not len(self.hashes):
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(self.bitmap[(h & np.uint64((1 << self.BITS) - 1)).astype(np.int64)])

    def find(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices into h found in the index, their positions in the sorted hashes)."""
        sel = self.candidates(h)
        pos = np.searchsorted(self.hashes, h[sel])
        pos[pos == len(self.hashes)] = 0
        hit = self.hashes[pos] == h[sel]
        return sel[hit], pos[hit]
