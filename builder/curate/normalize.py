"""Text normalization that never changes meaning; its output drives prompt_id and dedupe.

Kept: every visible character, inner whitespace and indentation (code), line structure.
Changed: Unicode composition (NFC by default), CRLF/CR → LF, invisible format characters
(zero-width spaces, BOM, soft hyphen), C0/C1 control characters other than tab and newline,
no-break and other exotic spaces → plain space, and whitespace at the very start and end.
"""

from __future__ import annotations

import unicodedata

import regex

# Cf characters that carry no meaning in prompts. ZWJ/ZWNJ (U+200C/D) are kept: they change
# rendering in Indic and Persian scripts and inside emoji sequences.
_INVISIBLE = regex.compile(r"[\u00AD\u180E\u200B\u2060\uFEFF]")
_CONTROL = regex.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]")
_SPACES = regex.compile(r"[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]")
_ASCII_CONTROLS = {c: None for c in (*range(0, 9), 11, 12, *range(14, 32), 127)}


def normalize_text(text: str, form: str = "NFC") -> str:
    if text.isascii():
        # Fast path: most prompts are ASCII; only line endings and controls can change.
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        # str.translate is C-speed; a regex sub on every prompt was the read step's hot spot.
        return text.translate(_ASCII_CONTROLS).strip()
    text = unicodedata.normalize(form, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub("", text)
    # U+3000 (ideographic space) is deliberately mapped too: it is a space in CJK text.
    text = _SPACES.sub(" ", text)
    return text.strip()


def dedupe_key(messages: list[dict[str, str]]) -> str:
    """Canonical conversation for exact dedupe: case- and whitespace-insensitive, roles kept."""
    return "\x1e".join(m["role"] + "\x1f" + " ".join(m["content"].casefold().split()) for m in messages)
