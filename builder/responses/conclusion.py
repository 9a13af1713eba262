"""Did the answer reach the conclusion its thinking reached? (a text rule of `truncation.find_cut`).

A reply cut in its answer after a finished sentence looks complete as text. What gives it
away is what is missing: R1 ends its thinking on a result (a letter, a `\\boxed{}` value, "the
answer is 42") and then writes an answer that states it. `missing_conclusion(think, answer,
prompt)` is True when the thinking committed to a result and the answer states no result at
all: no letter (any letter: a different one is consistency's `think_answer_mismatch`, not a
cut), not the chosen option's text, no `\\boxed{}`, not the value.

Precision first: the rule speaks only where the thinking's result is explicit
(consistency.py's extractors) and counts anything resembling the result as stated (a bare
letter token, the option's wording, the number anywhere). Measured in
benchmarks/truncation_split.py on the corpus's clean replies, tuned on one half of the traces
and reported on the other.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from builder.responses.answer_end import is_multiple_choice, option_letters
from builder.responses.consistency import _answer_letter, _fold_math, _math_value, _think_letter
from builder.responses.verify.mcq import LETTERS

_UNLISTED = LETTERS.replace("I", "")  # "So I end up with x = 6": a pronoun, not option I
_TAIL = 1500  # as consistency: the thinking's conclusion is in its last characters
_CONCLUSION = 500
# Option wordings in a prompt: a dict {'A': 'text', …} or lines "A. text" / "(B) text".
_DICT_OPTION = re.compile(r"""['"]([A-J])['"]\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")
_LINE_OPTION = re.compile(r"^\s*\(?([A-J])[.):]\s+(\S[^\n]*)$", re.M)
_MARKUP = re.compile(r"[*_`$\\{}\s]+")


_DIGITS = {cp: str(unicodedata.digit(chr(cp))) for cp in range(0x660, 0x1100) if unicodedata.digit(chr(cp), None) is not None}
_PARTS = re.compile(r"[()（）,，;/]")
_NUMBERS = re.compile(r"\d+(?:[.,/]\d+)*")


def _fold(text: str) -> str:
    """Width, markup, blanks and case folded away; Bangla / Devanagari / Arabic digits as ASCII."""
    return _MARKUP.sub("", unicodedata.normalize("NFKC", text).translate(_DIGITS)).casefold()


def _trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


def _states_wording(wording: str, answer: str) -> bool:
    """The answer holds the option's wording: any part of it ("মহেশখালি (Moheshkhali)" has two),
    or most of its character trigrams (a misspelt option: "fenstra" for "fenestra")."""
    text = _fold(answer)
    parts = [_fold(p) for p in _PARTS.split(wording)]
    if any(p and p in text for p in parts):
        return True
    grams = _trigrams(_fold(wording))
    return len(grams) >= 3 and len(grams & _trigrams(text)) >= 0.5 * len(grams)


@functools.lru_cache(maxsize=4096)  # a prompt's replies (teachers, samples, rules) ask again
def option_texts(prompt: str) -> dict[str, str]:
    """The wording of each option the prompt lists, by letter (first wording wins)."""
    out: dict[str, str] = {}
    for m in _DICT_OPTION.finditer(prompt):
        out.setdefault(m.group(1), m.group(2) if m.group(2) is not None else m.group(3) or "")
    for m in _LINE_OPTION.finditer(prompt):
        out.setdefault(m.group(1), m.group(2))
    return out


def _names_letter(answer: str, letter: str) -> bool:
    """The letter stands alone somewhere in the answer ("(C)", "C.", "option C", "**C**"); an
    "A" opening an English phrase ("A cat") is an article, not the option."""
    pat = rf"(?<![A-Za-z0-9'’]){letter}(?![A-Za-z0-9'’])"
    for m in re.finditer(pat, answer):
        if letter == "A" and re.match(r"\s+[a-z]", answer[m.end() : m.end() + 2]):
            continue
        return True
    return False


def _mcq_missing(think: str, answer: str, prompt: str) -> bool:
    if _names_letter(answer, think):
        return False
    wording = option_texts(prompt).get(think, "")
    return not (wording.strip() and _states_wording(wording, answer))


def _math_missing(tail: str, answer: str) -> bool:
    value = _math_value(tail)
    if value is None:
        return False
    folded, text = _fold_math(value), _fold_math(answer.translate(_DIGITS))
    if not folded or folded in text:
        return False
    # The answer's last number is one the thinking concluded with: it states a result.
    last = _NUMBERS.findall(answer.rstrip().rsplit("\n", 1)[-1].translate(_DIGITS))
    return not (last and re.search(rf"(?<![\d.]){re.escape(last[-1])}(?![\d])", tail[-_CONCLUSION:]))


def thinking_letter(think: str, prompt: str) -> str | None:
    """The option letter the thinking's tail commits to (the prompt's letters, else A–J but "I")."""
    tail = think[-_TAIL:]
    letters = option_letters(unicodedata.normalize("NFC", prompt)) or _UNLISTED  # MMLU-Pro's A–J unlisted
    return _think_letter(tail[-_CONCLUSION:], False, letters) or _think_letter(tail, False, letters)


def missing_conclusion(think: str | None, answer: str, prompt: str = "") -> bool:
    """The thinking commits to a result (a letter, a boxed or stated value) that the answer
    never states, nor states any other result in its place."""
    if not think or not answer.strip() or "\\boxed" in answer or "\\fbox" in answer:
        return False  # a boxed result is a conclusion (consistency compares it)
    end = answer.rstrip()
    if end.endswith("```") and end.count("```") % 2 == 0:
        return False  # a finished code block is its own result: a thinking about something else is a mismatch
    tail = think[-_TAIL:]
    prompt = unicodedata.normalize("NFC", prompt)
    if _answer_letter(answer)[1] != "no_choice":
        return False  # it commits to a letter (another one is a mismatch, not a cut)
    letter = thinking_letter(think, prompt)
    if letter is not None:
        return _mcq_missing(letter, answer, prompt)
    return not is_multiple_choice(prompt) and _math_missing(tail, answer)
