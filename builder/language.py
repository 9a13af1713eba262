"""Language identification for prompt / think / answer consistency and the rows' ISO codes.

Two passes. `identify(text)` first counts letters per Unicode script (fast: one numpy lookup
per character). A script that one language owns in this data names it at once: Han -> "zh"
(kana beside it -> "ja"), Hangul -> "ko", Bengali -> "bn", Thai -> "th", Greek -> "el" …
(`LANGUAGE_OF_SCRIPT`). A script many languages share (Latin, Cyrillic, Arabic, Devanagari:
`SHARED_SCRIPTS`) then goes to py3langid (BSD-3, its naive-Bayes model ships in the wheel,
no download), asked to choose among that script's languages only; English Latin text takes a
cheaper path first (>= 12 % of its words are English function words, measured to pass 94 %
of English rows and none of 130 Vietnamese / Spanish / French / German … ones). When the
model is not sure (< 0.9 after restricting to the script, or < 20 letters of the script),
the script's default code stays ("en", "ru", "ar", "hi") and is listed in
`LanguageGuess.uncertain`: a consistency check treats it as "some language of that script".

It returns "mixed" when no script holds `DOMINANT_SHARE` of the weighted letters, and
"unknown" when there are too few letters to judge (numbers, formulas, code only). Codes are
ISO 639-1. Measured in benchmarks/responses.py (language_id_accuracy): row-level accuracy
on the corpus's labelled English, Chinese and Bangla rows, and the cost per reply.

Before counting, fenced and inline code, `$…$` / `$$…$$` / `\\(…\\)` / `\\[…\\]` math and
bare LaTeX commands are removed: a Chinese answer full of Python or `\\frac` is still
Chinese, and an answer that is only `\\boxed{42}` is "unknown", not English.

Why weights: one Han character carries about as much text as three Latin letters
("中国" / "China"), so CJK and Hangul letters count `CJK_WEIGHT` each. Calibrated on the
real corpus (see tests/test_response_grammar.py): Chinese reference answers with English
terms stay "zh", English answers stay "en".

Limits:
- Chinese vs. Japanese rests on kana (>= 20 % of CJK letters): kanji-only Japanese
  reads as "zh". Bengali script reads as "bn" (Assamese too).
- Long texts are judged on a head + tail sample (`SAMPLE_CHARS` each); the model sees the
  first `MODEL_CHARS` characters of the sample's prose.
- A short Latin answer ("Paris", "Yes") is below the model's floor: "en", uncertain.
- Translation prompts legitimately change language; callers detect them with
  `names_target_language` and skip the mismatch check. Foreign letters an answer quotes from
  its prompt are not foreign (`prompt_scripts`).
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
# Scripts several languages write: the script pass names the default code, the model picks
# among these (ISO 639-1 codes py3langid knows; Latin: widely used languages only, because
# rare ones (Latin, Volapük, Uzbek) are where it errs on short English text).
SHARED_SCRIPTS: dict[str, tuple[str, ...]] = {
    "Latin": (
        "en", "fr", "de", "es", "pt", "it", "nl", "vi", "id", "ms", "tr", "pl", "sv", "da", "no", "fi",
        "cs", "sk", "sl", "hr", "bs", "ro", "hu", "ca", "gl", "eu", "et", "lt", "lv", "sq", "af", "sw",
        "tl", "cy", "ga", "is", "mt", "az", "eo",
    ),
    "Cyrillic": ("ru", "uk", "bg", "sr", "mk", "be", "kk", "ky", "mn", "tg", "tt", "ba"),
    "Arabic": ("ar", "fa", "ur", "ps", "ug"),
    "Devanagari": ("hi", "mr", "ne"),
}  # fmt: skip
# Every code identify() can return -> the script it is written in (for consistency checks).
SCRIPT_OF: dict[str, str] = {
    **{code: script for script, code in LANGUAGE_OF_SCRIPT.items() if script not in ("Katakana",)},
    **{code: script for script, codes in SHARED_SCRIPTS.items() for code in codes},
}
SCRIPT_OF["ja"] = "Han"  # kana with kanji: compared with Chinese at the script level
MODEL_CONFIDENCE = 0.9  # the model's share after restricting to the script's languages
MODEL_MIN_LETTERS = 20.0  # letters of the script below which the model is not asked
MODEL_CHARS = 400  # characters of prose the model reads (accuracy is flat from ~200)
ENGLISH_SHARE = 0.12  # share of English function words that makes Latin text English
_ENGLISH_WORDS_TEXT = """the and of to is that it for with you this are be on as was have not can which an by or
    from will we if they there their what has would should one all more these also how when so"""
_ENGLISH_WORDS = frozenset(_ENGLISH_WORDS_TEXT.split())
_ASCII_WORD = re.compile(r"[a-z]+")
_ACCENTED_LATIN = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")  # é, ơ, ş …: not English-or-terms
TERMS_SHARE = 0.1  # English function words among Latin words below which they are terms
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


# Abugidas write vowels as combining signs (Bangla "নাম" = ন া ম): they count as letters, so a
# Bangla word weighs what its Latin transliteration does.
_VOWEL_SIGN_SCRIPTS = frozenset(
    {"Bengali", "Devanagari", "Tamil", "Telugu", "Gujarati", "Gurmukhi", "Thai", "Khmer", "Myanmar", "Sinhala"}
)


def _script_letters() -> str:
    """One group per script, group i+1 = `_SCRIPTS[i]`'s letters (a script is one Unicode
    property value, so no code point is in two groups)."""
    groups = []
    for script in _SCRIPTS:
        # \p{L} too: script Han includes CJK punctuation-like symbols we must not count.
        kinds = r"\p{L}\p{M}" if script in _VOWEL_SIGN_SCRIPTS else r"\p{L}"
        groups.append(rf"([\p{{{script}}}&&[{kinds}]]+)")
    return "|".join(groups)


def _build_table() -> np.ndarray:
    table = np.zeros(0x110000, dtype=np.uint8)
    everything = "".join(map(chr, range(_TABLE_SIZE)))
    # One pass over runs of one script's letters (a start-up cost of every process that loads
    # this module), not one pass per script.
    for m in regex.finditer(_script_letters(), everything, flags=regex.V1):
        table[m.start() : m.end()] = m.lastindex
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
    # Codes in `proportions` that are only their script's default ("en" for Latin text the
    # model was not asked about or was not sure of): "some language of that script".
    uncertain: frozenset[str] = frozenset()


# Plain-text formulas, symbols and acronyms inside non-Latin prose: ASCII runs holding a digit
# or an operator ("a+1/a=4", "x2", "dy/dx=", "Cu2+"), lone letters ("C এর মান", "(A)", "θ") and
# all-capital acronyms ("MSDS এর পূর্ণ নাম"). They are variables and names, not English words,
# so a Bangla or Chinese question full of them is not "mixed". Only applied when the text
# has non-ASCII characters.
_FORMULA = re.compile(
    r"(?<![A-Za-z0-9_^'.])[A-Za-z0-9_^'.]*[0-9=+*/^<>][A-Za-z0-9_^'.=+*/<>()\-]*"  # a+1/a=4, x2, dy/dx=, Cu2+
    r"|(?<![A-Za-z])(?:[A-Za-z]|[A-Z]{2,})(?![A-Za-z])"  # a lone letter (C, x) or an acronym (IUPAC, BC)
    r"|(?<![A-Za-z])(?:sin|cos|tan|cot|sec|cosec|csc|log|ln|lim|exp|int|arc|hat|d+[xyt])+[A-Za-z]?(?![A-Za-z])"
    r"|(?<![\u0370-\u03ff])[\u0370-\u03ff](?![\u0370-\u03ff])"  # a lone Greek letter: θ, α, π
)


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


# Script -> its default code, for the scripts the model refines; and back.
DEFAULT_OF_SCRIPT = {script: LANGUAGE_OF_SCRIPT[script] for script in SHARED_SCRIPTS}
_SHARED_DEFAULT = {code: script for script, code in DEFAULT_OF_SCRIPT.items()}


@functools.lru_cache(maxsize=1)
def _models() -> dict[str, object]:
    """One py3langid identifier per shared script, restricted to that script's languages.

    Loaded on first use (~0.5 CPU-s from the wheel's packed file, ~0.1 from the unpacked copy in
    the cache: builder/langid_model.py). The restricted copies share the full model's arrays
    until `set_languages` slices them (a few MB)."""
    import copy

    from builder.langid_model import identifier
    from builder.tokens import cache_root

    base = identifier(cache_root() / "langid", norm_probs=True)
    out: dict[str, object] = {}
    for script, codes in SHARED_SCRIPTS.items():
        model = copy.copy(base)
        model.set_languages([c for c in codes if c in base.labels])
        out[script] = model
    return out


def _without_terms(text: str, counts: dict[str, float]) -> dict[str, float]:
    """Unaccented Latin words beside another script that hold no English function word are
    terms and names ("scheduling policy", "Plasmodium", "snow"), not a second language: they
    leave the count. "因为 the function is linear" keeps its English (two function words)."""
    latin = counts.get("en", 0.0)
    if not latin or sum(counts.values()) - latin < MIN_LETTERS or _ACCENTED_LATIN.search(text):
        return counts
    words = [w for w in _ASCII_WORD.findall(text.lower()) if len(w) >= 2]
    if sum(w in _ENGLISH_WORDS for w in words) >= TERMS_SHARE * len(words):
        return counts
    return {k: v for k, v in counts.items() if k != "en"}


def preload_models() -> None:
    """Load the identifiers now: a process about to fork workers loads them once for all of them."""
    _models()


def _english(prose: str) -> bool:
    """Latin text whose words are >= ENGLISH_SHARE English function words (>= 8 words)."""
    words = prose[: 2 * MODEL_CHARS].lower().split()
    if len(words) < 8:
        return False
    hits = sum(map(_ENGLISH_WORDS.__contains__, words))  # "the," misses: a slight undercount
    return hits >= ENGLISH_SHARE * len(words)


def _refine(
    prose: str, counts: dict[str, float], total: float, english: bool
) -> tuple[dict[str, float], frozenset[str]]:
    """Replace a shared script's default code by the language the model names, when sure."""
    out: dict[str, float] = {}
    uncertain: set[str] = set()
    for code, n in counts.items():
        script = _SHARED_DEFAULT.get(code)
        pick = None
        if script is not None:
            if script == "Latin" and english:
                pick = "en"
            elif n >= MODEL_MIN_LETTERS and n >= 0.5 * total:  # the model reads the whole prose
                found, confidence = _models()[script].classify(prose[:MODEL_CHARS])  # type: ignore[attr-defined]
                if confidence >= MODEL_CONFIDENCE:
                    pick = found
        if pick is None:
            pick = code
            if script is not None:
                uncertain.add(code)
        out[pick] = out.get(pick, 0.0) + n
    return out, frozenset(uncertain)


# What is not the matrix language of a mixed text: quoted material (text to translate, a
# title), a parenthesised gloss ("বৃত্তটি … ? (For which value of c …?)"), a line of bare code
# and a Latin tail after a colon ("翻译以下句子：This book is very interesting.").
_QUOTED = regex.compile(r"[\"“「『«‘][^\"”」』»’\n]{2,}[\"”」』»’]|\([^()\n]{3,}\)|（[^（）\n]{3,}）")
_LATIN_TAIL = regex.compile(r"(?<=[^\p{Latin}\s])\s*[:：]\s*[\p{Latin}\p{N}\p{P}\p{S}\s]+$", regex.M)
_LATIN_LINE = regex.compile(r"^[\p{Latin}\p{N}\p{P}\p{S}\s]+$", regex.M)
OWNED_MIN_LETTERS = 2.0  # letters of a script one language owns that name it when nothing else does


def _matrix(prose: str) -> str:
    """`prose` without what a mixed text embeds (see `_QUOTED`): its frame's language is left."""
    return _LATIN_LINE.sub(" ", _LATIN_TAIL.sub(" ", _QUOTED.sub(" ", prose)))


def identify(text: object, *, sample_chars: int = SAMPLE_CHARS, frame: bool = True) -> LanguageGuess:
    """Guess the language of `text`: scripts first, the model for shared scripts (see the
    module docstring). A text that reads as mixed is judged again on its frame (`_matrix`):
    a Chinese request to translate an English sentence is Chinese; a Bangla question with an
    English gloss in brackets is Bangla (`frame=False` keeps "mixed" and its proportions: a
    prompt's allowed languages are all it holds). A formula with a few letters of a script only
    one language writes ("xy+x2y2=1 হলে dy/dx=?") is that language."""
    if not isinstance(text, str) or not text:
        return LanguageGuess(UNKNOWN, {}, 0.0)
    prose = strip_code_and_math(_sample(text, sample_chars))
    guess = _identify_prose(prose)
    if guess.language == MIXED and frame:
        framed = _identify_prose(_matrix(prose))
        if framed.language not in (MIXED, UNKNOWN):
            return framed
    elif guess.language == UNKNOWN:
        counts = _counts(_FORMULA.sub(" ", prose))
        owned = [k for k in counts if k not in _SHARED_DEFAULT]
        if len(owned) == 1 and counts[owned[0]] >= OWNED_MIN_LETTERS:
            return LanguageGuess(owned[0], {owned[0]: 1.0}, counts[owned[0]])
    return guess


def _identify_prose(prose: str) -> LanguageGuess:
    counts = _counts(prose)
    english = "en" in counts and _english(prose)
    if len(counts) > 1 and not english:  # formulas, acronyms and terms are not a second language
        words = _FORMULA.sub(" ", prose)
        counts = _without_terms(words, _counts(words))
    total = sum(counts.values())
    if total < MIN_LETTERS:
        return LanguageGuess(UNKNOWN, {}, float(total))
    counts, uncertain = _refine(prose, counts, total, english)
    proportions = {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}
    top, share = next(iter(proportions.items()))
    return LanguageGuess(top if share >= DOMINANT_SHARE else MIXED, proportions, total, uncertain)


def compatible(code: str, allowed: frozenset[str], uncertain: frozenset[str] = frozenset()) -> bool:
    """May a text in `code` answer a prompt that allows `allowed`?

    Yes when listed; or when it shares a script with an allowed code and either side may be
    any language of that script: the text's code is `uncertain`, or the allowed code is the
    script's default (an English prompt's "en" can be a guess too). So a confident French
    answer to a confident Vietnamese prompt is a mismatch; a French answer to "en" is not."""
    if code in allowed:
        return True
    script = SCRIPT_OF.get(code)
    if script is None:
        return False
    default = DEFAULT_OF_SCRIPT.get(script)
    return any(SCRIPT_OF.get(a) == script and (code in uncertain or a == default) for a in allowed)


# Latin letters turn up incidentally in non-Latin prompts (names, code identifiers,
# units, variables), so "en" joins a prompt's set beside another script only from this
# share. Another script inside a Latin prompt is deliberate (a question in that language,
# text to translate), so a few letters of it are enough.
PROMPT_LATIN_SHARE = 0.4
PROMPT_LATIN_LETTERS = 40.0  # or this many Latin letters of sentences (terms are not counted)


def prompt_languages(text: object, *, cached: bool = True) -> frozenset[str]:
    """The languages a reply to this prompt may use (empty: no opinion).

    A Chinese prompt with a few English names is {"zh"}; an English instruction around a
    Bangla question (r1-bangla-mmlu-reasoning) is {"en", "bn"}.
    """
    if not isinstance(text, str):
        return frozenset()
    return _prompt_languages(text) if cached else _prompt_languages.__wrapped__(text)


# Greek letters standing alone or in pairs are math symbols (α, β, γ; αβ), not Greek words.
_GREEK_SYMBOLS = regex.compile(r"(?<!\p{Greek})\p{Greek}{1,2}(?!\p{Greek})")


@functools.lru_cache(maxsize=65_536)  # several replies (teachers, samples) share a prompt
def _prompt_languages(text: str) -> frozenset[str]:
    guess = identify(_GREEK_SYMBOLS.sub(" ", text), frame=False)
    if guess.language == UNKNOWN:
        return frozenset()
    if guess.letters < MIN_LETTERS:  # a formula around a word of a script one language owns
        return frozenset({guess.language})
    latin = {k for k in guess.proportions if SCRIPT_OF.get(k) == "Latin"}
    allowed = {k for k, v in guess.proportions.items() if k not in latin and v * guess.letters >= MIN_LETTERS}
    latin_share = sum(guess.proportions[k] for k in latin)
    # Latin words left after formulas and terms are gone (`_without_terms`) are sentences: an
    # English instruction around a Bangla question, however long the question.
    if latin_share and (not allowed or latin_share >= PROMPT_LATIN_SHARE or latin_share * guess.letters >= PROMPT_LATIN_LETTERS):
        allowed |= latin
    return frozenset(allowed)


def prompt_scripts(text: object) -> frozenset[str]:
    """Every script with at least one letter in the prompt. An answer that quotes the
    prompt's two Bengali letters is not writing Bengali (see grammar's mixed check)."""
    if not isinstance(text, str) or not text:
        return frozenset()
    return _prompt_scripts(text)


@functools.lru_cache(maxsize=65_536)
def _prompt_scripts(text: str) -> frozenset[str]:
    counts = _counts(strip_code_and_math(_sample(text, SAMPLE_CHARS)))
    out = {SCRIPT_OF.get(code, "") for code in counts}
    if "ja" in counts:
        out |= {"Hiragana", "Katakana"}
    return frozenset(out - {""})


def iso_codes(labels: object) -> list[str]:
    """The ISO 639 codes in `language` labels ("en", "en+bn", "mixed", "unknown"…), sorted
    and unique: what a dataset card's `language:` list holds (`en+bn` counts for both)."""
    out: set[str] = set()
    for label in labels if isinstance(labels, (list, tuple, set, frozenset, dict)) else []:
        for code in str(label).split("+"):
            code = code.strip().lower()
            if 2 <= len(code) <= 3 and code.isalpha() and code not in ("und", "mul", "zxx"):
                out.add(code)
    return sorted(out)


def prompt_language_label(text: object) -> str:
    """The prompt's `language` column: one ISO 639-1 code, or several joined by "+" ("bn+en")
    when a reply may use any of them; "unknown" when the text makes no claim."""
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
