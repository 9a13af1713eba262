"""Text normalization that never changes meaning; its output drives prompt_id and dedupe.

Kept: every visible character, inner whitespace and indentation (code), line structure.
Changed: Unicode composition (NFC by default), CRLF/CR → LF, invisible format characters
(zero-width spaces, BOM, soft hyphen), C0/C1 control characters other than tab and newline,
no-break and other exotic spaces → plain space, and whitespace at the very start and end.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import orjson

# Cf characters that carry no meaning in prompts. ZWJ/ZWNJ (U+200C/D) are kept: they change
# rendering in Indic and Persian scripts and inside emoji sequences. Stdlib `re`: several times
# faster than `regex` on these character classes.
_INVISIBLE = r"\u00AD\u180E\u200B\u2060\uFEFF"
_CONTROL = r"\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F"
_SPACES = r"\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000"
_INVISIBLE_RE, _CONTROL_RE, _SPACES_RE = (re.compile(f"[{c}]") for c in (_INVISIBLE, _CONTROL, _SPACES))
# Any of them: most prompts have none, and one search costs less than three substitutions.
_STRAY_RE = re.compile(f"[{_INVISIBLE}{_CONTROL}{_SPACES}]")
_ASCII_CONTROLS = {c: None for c in (*range(0, 9), 11, 12, *range(14, 32), 127)}
_ASCII_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_text(text: str, form: str = "NFC") -> str:
    if text.isascii():
        # Fast path: most prompts are ASCII; only line endings and controls can change.
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        # str.translate is C-speed, but a search finds the (usual) none several times faster still.
        if _ASCII_CONTROL_RE.search(text) is not None:
            text = text.translate(_ASCII_CONTROLS)
        return text.strip()
    text = unicodedata.normalize(form, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    if _STRAY_RE.search(text) is not None:
        text = _INVISIBLE_RE.sub("", text)
        text = _CONTROL_RE.sub("", text)
        # U+3000 (ideographic space) is deliberately mapped too: it is a space in CJK text.
        text = _SPACES_RE.sub(" ", text)
    return text.strip()


def visible_chars(text: str) -> int:
    """len("".join(text.split())) of a normalize_text result, without building the joined string:
    the only ASCII whitespace such a text keeps is space, tab and newline (CR became LF; the other
    ASCII controls went), so an ASCII text needs three counts."""
    if text.isascii():
        return len(text) - text.count(" ") - text.count("\n") - text.count("\t")
    return len("".join(text.split()))


def tools_signature(tools_json: str | None) -> str:
    """The prompt's tool definitions, key order ignored ("" when it has none)."""
    if not tools_json:
        return ""
    try:
        return orjson.dumps(orjson.loads(tools_json), option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return tools_json


def _folded_words(text: str) -> str:
    """" ".join(text.casefold().split()). Most prompts are printable ASCII with single spaces
    between words and none at the ends, which split-and-join leaves as they are: lowered only
    (casefold is lower on ASCII), without a list of words."""
    if text.isascii() and text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text.lower()
    return " ".join(text.casefold().split())


def dedupe_key(messages: list[dict[str, Any]], tools_json: str | None = None) -> str:
    """Canonical conversation for exact dedupe: case- and whitespace-insensitive, roles kept. A
    turn's tool calls and the prompt's tool definitions count too (the same question offered
    other tools is another prompt); appended only where present, so plain keys are unchanged."""
    turns = []
    for m in messages:  # a loop, not a generator: called once a row
        turn = m["role"] + "\x1f" + _folded_words(m["content"])
        if m.get("tool_calls"):
            turn += "\x1d" + orjson.dumps(m["tool_calls"], option=orjson.OPT_SORT_KEYS).decode()
        turns.append(turn)
    key = "\x1e".join(turns)
    return key + "\x1c" + tools_signature(tools_json) if tools_json else key


# ---- matching keys: folding that only ever feeds comparisons, never the stored text ----

# Look-alikes NFKC leaves apart (curly quotes, primes, dashes and minus signs, CJK full stop
# and comma), the full-width ASCII block and non-ASCII decimal digits (Arabic-Indic,
# Devanagari, …), mapped one character at a time. A regex finds them first: most prompts
# have none or a few, and str.translate with a dict costs ~0.2 us per character.
_FOLD_MAP: dict[str, str] = {
    **{c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u2035\u00b4\u02bc\u02bb"},
    **{c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\u300c\u300d\u300e\u300f"},
    **{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\u2053"},
    **{c: "." for c in "\u3002\uff61\u2027"},
    **{c: "," for c in "\u3001\uff64"},
    **{
        c: " "
        for c in "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
        "\u2028\u2029\u202f\u205f\u3000\u00b7"
    },
    # Every invisible format character, ZWJ/ZWNJ, bidi marks and invisible operators included:
    # one inside a word splits it, so "tri<ZWJ>angle" would hide a leak (stored text keeps them).
    **{c: "" for c in "\u00ad\u034f\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"},
    **{chr(c): "" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x2070), *range(0xFE00, 0xFE10))},
    "\u00d7": "*",
    "\u00f7": "/",
    **{chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)},  # full-width ASCII
}
# stdlib re: ~15x faster than `regex` on this character class; [^\D0-9] is a non-ASCII digit
_FOLD_RE = re.compile("[" + re.escape("".join(_FOLD_MAP)) + "]|[^\\D0-9]")


def _fold_char(m: re.Match[str]) -> str:
    c = m.group()
    got = _FOLD_MAP.get(c)
    return got if got is not None else str(unicodedata.digit(c))


# Cyrillic and Greek letters drawn like Latin ones. Folded only inside a word that mixes them
# with Latin letters or is made of them alone, in a text that has Latin letters: "thе" with a
# Cyrillic е is "the", while a Russian or Greek word with other letters stays as it is.
_CONFUSABLE: dict[str, str] = dict(
    zip(
        "аеорсухіјѕԁһԛԝАВЕКМНОРСТХІЈЅοαιντκυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
        "aeopcyxijsdhqwABEKMHOPCTXIJSoaivtkuxABEZHIKMNOPTYX",
        strict=True,
    )
)
_CONF = "".join(_CONFUSABLE)
_CONF_RE = re.compile(f"[{_CONF}]")
_CONF_WORD_RE = re.compile(f"(?<![^\\W\\d_])[A-Za-z{_CONF}]*[{_CONF}][A-Za-z{_CONF}]*(?![^\\W\\d_])")
_LATIN_RE = re.compile("[A-Za-z]")
# Latin letters with diacritics and combining diacritical marks (U+0300-036F only: the marks of
# Indic and other scripts are letters' parts there, and stay).
_ACCENTED_RE = re.compile("[\u00c0-\u00ff\u0100-\u024f\u0300-\u036f\u1e00-\u1eff]")
_MARKS_RE = re.compile("[\u0300-\u036f]")


def _unconfuse(m: re.Match[str]) -> str:
    return "".join(_CONFUSABLE.get(c, c) for c in m.group())


def fold_text(text: str) -> str:
    """Matching key of a text: NFKC (full-width forms, NBSP and other spaces, ligatures,
    circled and super/subscript digits) plus the look-alikes NFKC keeps apart (curly quotes,
    dashes, minus, CJK full stop and comma, non-ASCII decimal digits), with every invisible
    format character dropped, combining accents dropped ("é" is "e") and Cyrillic/Greek
    look-alikes of Latin letters folded inside Latin-looking words. Feeds dedupe shingles,
    the number check and decontamination tokens only: stored text stays byte-exact."""
    if text.isascii():
        return text
    if _FOLD_RE.search(text):
        text = _FOLD_RE.sub(_fold_char, text)
    if not unicodedata.is_normalized("NFKC", text):
        text = _FOLD_RE.sub(_fold_char, unicodedata.normalize("NFKC", text))
    if _ACCENTED_RE.search(text) is not None:
        # accents strewn over letters ("tŕiángle") made other words; both sides lose them alike
        text = unicodedata.normalize("NFC", _MARKS_RE.sub("", unicodedata.normalize("NFD", text)))
    if _CONF_RE.search(text) is not None and _LATIN_RE.search(text) is not None:
        text = _CONF_WORD_RE.sub(_unconfuse, text)
    return text
