"""Cheap proofs that a phrase search cannot match, so its pattern need not be compiled.

`answer_end._quotes_prompt` looks for an answer's last line (its words joined by `\\s+`) in
the prompt, case-insensitively. Every line is a new pattern: `re` compiles it in Python
(~0.4 ms; the cache of 512 patterns does not hold a corpus of distinct lines), and on real
replies that compile was most of the truncation rules' time. A match needs each word's
characters, one after another, in the prompt; `may_hold` checks that with `str.__contains__`
on the parts of each word whose case-insensitive matches are known exactly:

- an ASCII letter matches its two cases and four more letters (Python's `re` docs, re.I:
  "İ", "ı", "ſ", "K"), which `_fold` maps to it; other ASCII characters match themselves;
- Bangla and CJK characters have no case: they match themselves.

Any other character (accented, Greek, Cyrillic, punctuation beyond ASCII) may match a letter
of another case or a folding variant, so the word is split there and that character is not
checked. A False is therefore exact (the search would fail); a True proves nothing, and the
caller runs the search. tests/test_phrase_filter.py checks the case facts on every code point.
"""

from __future__ import annotations

import functools
import re

# The non-ASCII letters re.I lets match an ASCII letter, mapped to it (lower() then folds the rest).
_TO_ASCII = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
# Characters whose re.I matches are not pinned down above: the word is split on them.
UNCHECKED = re.compile(r"[^\x00-\x7f\u0980-\u09ff\u3400-\u9fff]+")


@functools.lru_cache(maxsize=256)  # one prompt per reply, asked again by its other rules
def _fold(text: str) -> str:
    # Per character (translate, then lower(): "İ" is gone before it could become two), so a
    # run of characters matching a word's part folds to that part, in place.
    return text.translate(_TO_ASCII).lower()


def may_hold(text: str, words: list[str]) -> bool:
    """False when `re.search(r"\\s+".join(map(re.escape, words)), text, re.I)` cannot match
    (however it is anchored or looked around); True when it may."""
    hay = _fold(text)
    return all(part.lower() in hay for word in words for part in UNCHECKED.split(word) if part)
