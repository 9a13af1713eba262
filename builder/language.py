"""Fast script-based language identification for prompt / think / answer consistency.

`identify(text)` counts letters per Unicode script and names the language that script
implies: Han -> "zh", Latin -> "en", Bengali -> "bn", Cyrillic -> "ru", Hangul -> "ko",
Han with kana -> "ja", and so on (`LANGUAGE_OF_SCRIPT`). It returns "mixed" when no
script holds `DOMINANT_SHARE` of the weighted letters, and "unknown" when there are too
few letters to judge (numbers, formulas, code only).

Before counting, fenced and inline code, `$…$` / `$$…$$` / `\\(…\\)` / `\\[…\\]` math and
bare LaTeX commands are removed: a Chinese answer full of Python or `\\frac` is still
Chinese, and an answer that is only `\\boxed{42}` is "unknown", not English.

Why weights: one Han character carries about as much text as three Latin letters
("中国" / "China"), so CJK and Hangul letters count `CJK_WEIGHT` each. Calibrated on the
real corpus (see tests/test_response_grammar.py): Chinese reference answers with English
terms stay "zh", English answers stay "en".

Limits (by design; this is a consistency check, not a language identifier):
- Script, not language: every Latin-script language reads as "en" (French, Vietnamese,
  pinyin), every Cyrillic one as "ru", Arabic-script Persian / Urdu as "ar".
- Chinese vs. Japanese rests on kana (>= 20 % of CJK letters): kanji-only Japanese
  reads as "zh".
- Long texts are judged on a head + tail sample (`SAMPLE_CHARS` each).
- Translation prompts legitimately change language; callers detect them with
  `names_target_language` and skip the mismatch check.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import regex

# Script name (as `regex` spells it in \p{...}) -> language code it implies.
LANGUAGE_OF_SCRIPT: dict[str, str] = {
    "Han": "zh",
    "Hiragana": "ja",
    "Katakana": "ja",
    "Hangul": "ko",
    "Latin": "en",
    "Cyrillic": "ru",
    "Greek": "el",
    "Arabic": "ar",
    "Hebrew": "he",
    "Devanagari": "hi",
    "Bengali": "bn",
    "Tamil": "ta",
    "Telugu": "te",
    "Gujarati": "gu",
    "Gurmukhi": "pa",
    "Thai": "th",
    "Armenian": "hy",
    "Georgian": "ka",
    "Ethiopic": "am",
    "Khmer": "km",
    "Myanmar": "my",
    "Sinhala": "si",
}
_SCRIPTS = tuple(LANGUAGE_OF_SCRIPT)
_CJK = frozenset({"Han", "Hiragana", "Katakana", "Hangul"})
CJK_WEIGHT = 3.0
DOMINANT_SHARE = 0.75
KANA_SHARE = 0.2
MIN_LETTERS = 4.0  # weighted letters below this -> "unknown"
SAMPLE_CHARS = 1024
MIXED = "mixed"
UNKNOWN = "unknown"

# Code point -> script index (0 = not a letter of a listed script), for every code point
# (1.1 MB) so lookups need no clamping; listed scripts end below 0x32000 (CJK Ext. H).
_TABLE_SIZE = 0x32000
_WEIGHTS = np.array([0.0] + [CJK_WEIGHT if s in _CJK else 1.0 for s in _SCRIPTS])


def _build_table() -> np.ndarray:
    table = np.zeros(0x110000, dtype=np.uint8)
    everything = "".join(map(chr, range(_TABLE_SIZE)))
    for index, script in enumerate(_SCRIPTS, start=1):
        # \p{L} too: script Han includes CJK punctuation-like symbols we must not count.
        letters = "".join(regex.findall(rf"[\p{{{script}}}&&\p{{L}}]", everything, flags=regex.V1))
        points = np.frombuffer(letters.encode("utf-32-le"), dtype=np.uint32)
        table[points] = index
    return table


_TABLE = _build_table()
_ASCII_NON_LETTERS = bytes(b for b in range(128) if not chr(b).isalpha())

# Code and math spans, then LaTeX commands outside math. Unclosed spans run to the end.
_CODE_MATH = re.compile(
    r"```.*?(?:```|\Z)"
    r"|`[^`\n]+`"
    r"|\$\$.*?(?:\$\$|\Z)"
    r"|\$[^$\n]+\$"
    r"|\\\[.*?(?:\\\]|\Z)"
    r"|\\\(.*?(?:\\\)|\Z)"
    r"|\\[A-Za-z]+",
    re.S,
)


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    language: str
    proportions: dict[str, float]  # language code -> share of weighted letters
    letters: float  # weighted letter count the guess rests on


def strip_code_and_math(text: str) -> str:
    """Remove code blocks, inline code, math and LaTeX commands (they are not prose)."""
    if "`" not in text and "$" not in text and "\\" not in text:
        return text
    return _CODE_MATH.sub(" ", text)


def _sample(text: str, sample_chars: int) -> str:
    if len(text) <= 2 * sample_chars:
        return text
    return text[:sample_chars] + "\n" + text[-sample_chars:]


def _counts(text: str) -> dict[str, float]:
    if text.isascii():
        latin = len(text.encode("ascii").translate(None, _ASCII_NON_LETTERS))
        return {"en": float(latin)} if latin else {}
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    classes = _TABLE[points]
    bins = np.bincount(classes, minlength=len(_SCRIPTS) + 1) * _WEIGHTS
    counts: dict[str, float] = {}
    for index in np.flatnonzero(bins):
        language = LANGUAGE_OF_SCRIPT[_SCRIPTS[index - 1]]
        counts[language] = counts.get(language, 0.0) + float(bins[index])
    if "ja" in counts and "zh" in counts and counts["ja"] >= KANA_SHARE * (counts["ja"] + counts["zh"]):
        # Han alongside plenty of kana is Japanese kanji (running Japanese is ~40-60 % kana).
        counts["ja"] += counts.pop("zh")
    return counts


def identify(text: object, *, sample_chars: int = SAMPLE_CHARS) -> LanguageGuess:
    """Guess the language of `text` from its scripts (see the module docstring)."""
    if not isinstance(text, str) or not text:
        return LanguageGuess(UNKNOWN, {}, 0.0)
    counts = _counts(strip_code_and_math(_sample(text, sample_chars)))
    total = sum(counts.values())
    if total < MIN_LETTERS:
        return LanguageGuess(UNKNOWN, {}, float(total))
    proportions = {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}
    top, share = next(iter(proportions.items()))
    return LanguageGuess(top if share >= DOMINANT_SHARE else MIXED, proportions, total)


# Latin letters turn up incidentally in non-Latin prompts (names, code identifiers,
# units, variables), so "en" joins a prompt's set beside another script only from this
# share. Another script inside a Latin prompt is deliberate (a question in that language,
# text to translate), so a few letters of it are enough.
PROMPT_LATIN_SHARE = 0.4


def prompt_languages(text: object, *, cached: bool = True) -> frozenset[str]:
    """The languages a reply to this prompt may use (empty: no opinion).

    A Chinese prompt with a few English names is {"zh"}; an English instruction around a
    Bangla question (r1-bangla-mmlu-reasoning) is {"en", "bn"}.
    """
    if not isinstance(text, str):
        return frozenset()
    return _prompt_languages(text) if cached else _prompt_languages.__wrapped__(text)


@functools.lru_cache(maxsize=65_536)  # several replies (teachers, samples) share a prompt
def _prompt_languages(text: str) -> frozenset[str]:
    guess = identify(text)
    if guess.language == UNKNOWN:
        return frozenset()
    allowed = {k for k, v in guess.proportions.items() if k != "en" and v * guess.letters >= MIN_LETTERS}
    latin = guess.proportions.get("en", 0.0)
    if latin and (not allowed or latin >= PROMPT_LATIN_SHARE):
        allowed.add("en")
    return frozenset(allowed)


def prompt_language_label(text: object) -> str:
    """The prompt's `language` column: one code, or several joined by "+" ("en+bn") when a
    reply may use any of them; "unknown" when the text makes no claim."""
    langs = prompt_languages(text, cached=False)
    return "+".join(sorted(langs)) if langs else UNKNOWN


# Prompts that ask for another language (translation, "answer in English") make a
# language change expected rather than a defect.
_TARGET_LANGUAGE = regex.compile(
    r"translat|翻译|翻譯|译成|譯成|译为|in english|in chinese|into english|into chinese"
    r"|用英文|用英语|用中文|用汉语|英文回答|中文回答|英译|中译",
    regex.I,
)


def names_target_language(prompt: object) -> bool:
    """True when the prompt asks for a translation or names the reply's language."""
    return isinstance(prompt, str) and _TARGET_LANGUAGE.search(prompt) is not None
