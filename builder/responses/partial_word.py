"""Does the text stop inside a word? (a text rule of `truncation.find_cut`).

A token budget cuts between tokens, and a tokenizer splits rare and non-Latin words into
pieces, so a cut reply often ends on part of a word: "ডায়াকাইনেসি" for "ডায়াকাইনেসিস",
"approxim" for "approximately". Without a dictionary, the reply and its prompt are one: the
last word is a piece when it never occurs as a whole word in them, yet begins a longer word
that does (the reply names its terms more than once; a question's options and terms come
from the prompt). A finished last word ("বোঝায়", "Paris") is either seen whole elsewhere or
begins no other word there.

Chinese and Japanese have no word breaks: a text ending in those scripts is left alone, as is
a last word of one Latin letter ("A", an option) or two ("is"). An Indic last word ending on
a virama ("সম্") is a piece unless the reply or prompt has it whole ("শাহ্").
"""

from __future__ import annotations

import re
import unicodedata

# A word: letters plus the combining marks of Indic scripts (Bangla vowel signs are not \w).
_W = r"(?:[^\W\d_]|[\u0900-\u0dff\u0300-\u036f])"
_LAST_WORD = re.compile(rf"{_W}+$")
_W_CHAR = re.compile(_W)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_VIRAMAS = frozenset("\u094d\u09cd\u0a4d\u0acd\u0b4d\u0bcd\u0c4d\u0ccd\u0d4d")
_MIN_LATIN = 3  # letters of a Latin last word before it can be called a piece


def _is_word_char(ch: str) -> bool:
    return _W_CHAR.match(ch) is not None


def partial_word(text: str, context: str) -> bool:
    """The text ends on a piece of a word: not seen whole in `text` (before its end) or
    `context`, but the start of a longer word seen there."""
    tail = unicodedata.normalize("NFC", text[-120:].rstrip())
    last = _LAST_WORD.search(tail)
    if last is None:
        return False
    piece = last.group(0)
    if _CJK.search(piece) or (piece.isascii() and len(piece) < _MIN_LATIN):
        return False
    virama = piece[-1] in _VIRAMAS  # "সম্": Indic words almost never end on a virama
    corpus = unicodedata.normalize("NFC", context) + "\n" + unicodedata.normalize("NFC", text.rstrip())[: -len(piece)]
    longer = False
    at = corpus.find(piece)
    while at >= 0:  # str.find: a tenth of a regex's cost over a long thinking
        end = at + len(piece)
        if at == 0 or not _is_word_char(corpus[at - 1]):
            if end >= len(corpus) or not _is_word_char(corpus[end]):
                return False  # seen whole: a word of its own
            longer = True
        at = corpus.find(piece, at + 1)
    return longer or virama
