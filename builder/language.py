"""Placeholder until the script-based detector lands (see builder/responses/language.py)."""

from __future__ import annotations

import regex

_HAN = regex.compile(r"\p{Han}")
_LATIN = regex.compile(r"\p{Latin}")


def detect_language(text: str) -> str:
    han = len(_HAN.findall(text[:4000]))
    latin = len(_LATIN.findall(text[:4000]))
    if han and han * 3 >= latin:
        return "zh"
    return "en" if latin else "unknown"
