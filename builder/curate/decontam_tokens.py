"""Decontamination tokens: folded, casefolded words; CJK one character each; digits apart.

- Text is folded first (``normalize.fold_text``: NFKC, curly quotes, dashes, full-width
  forms, non-ASCII digits), then casefolded; the stored prompt is never changed.
- A word is a run of letters (``_`` included, so code identifiers stay whole) or a run of
  digits: "201斤等于多少千克" is 201 / 斤 / 等 / 于 / …, "5km" is 5 / km, "x2" is x / 2.
- Each Han, Hiragana, Katakana or Hangul character is its own word, so Chinese text gets
  character n-grams.
- Digit groups "40,000" read as "40000", so a reformatted number still matches.

Hashes: a word is hashed with Python's str hash (randomized per process, stable within it
and in forked children), an n-gram by a polynomial of its word hashes (wraps mod 2**64).
"""

from __future__ import annotations

import re

import numpy as np
import regex

from builder.curate.normalize import fold_text

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
_WORD = regex.compile(rf"[{_CJK}]|\d+|[^\W\d{_CJK}]+")
# ASCII fast path: every non-word character becomes a space, then split (C speed). Only a
# text with a digit glued to a letter ("5km", "x2") needs the regex to split it.
_ASCII_NONWORD = bytes(i if (chr(i).isalnum() or chr(i) == "_") else ord(" ") for i in range(128)) + bytes(128)
_GLUED = re.compile(r"[0-9][A-Za-z_]|[A-Za-z_][0-9]")
_ASCII_WORD = re.compile(r"\d+|[^\W\d]+", re.ASCII)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DIGIT = re.compile(r"\d")


def words(text: str) -> list[str]:
    """Decontamination words of a text (see the module docstring)."""
    if not text.isascii():
        text = fold_text(text)
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


_P = np.uint64(0x100000001B3)  # odd multiplier: window hashes wrap mod 2**64 by design


def word_hashes(tokens: list[str]) -> np.ndarray:
    # Python's str hash is randomized per process but stable within it: index and prompts
    # are hashed in the same process (or forked children), which is all the comparison needs.
    return np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens)).view(np.uint64)


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


def batch_windows(token_lists: list[list[str]], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(window hashes, prompt of each window, word offset of each window in its prompt) of every
    n-word window that lies inside one prompt, over a batch of token lists."""
    lens = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    flat = word_hashes([w for t in token_lists for w in t])
    starts = np.concatenate(([0], np.cumsum(lens)))
    h = window_hashes(flat, n)
    if not len(h):
        empty = np.empty(0, np.int64)
        return h, empty, empty
    prompt = np.repeat(np.arange(len(token_lists), dtype=np.int64), lens)[: len(h)]
    offset = np.arange(len(h), dtype=np.int64) - starts[prompt]
    inside = offset + n <= lens[prompt]  # windows spanning two prompts are not n-grams
    return h[inside], prompt[inside], offset[inside]
