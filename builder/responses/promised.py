"""Did the answer deliver what it announced? (text rules of `truncation.find_cut`, run last by
`unfinished.unfinished`).

An answer cut after a finished line can still be told from a finished one by what its own
opening, or its thinking, announced and the text never delivered. `promised(think, answer,
prompt)` returns the evidence name or None:

| evidence            | the answer …                                                                    |
|---------------------|---------------------------------------------------------------------------------|
| unclosed_statement  | (multiple choice) is one line that opens "The correct answer is …" and never    |
|                     | closes it ("The correct answer is C", "… option C: y=2x+1"; R1 ends it with . । **)|
|                     | or opens "The correct answer is:" and gives only the choice ("… is: **D: X**")  |
| statement_fragment  | opens with that statement line and then has one line of prose that never ends  |
|                     | ("The correct answer is **A: 4900 J**.\\nWhen a 500g bomb is dropped from 1")    |
| unfinished_walk     | ends on a list that goes through the options in order ("- **A: …**", "- **B: …**")|
|                     | and stops before the prompt's last option, some option never discussed           |
| unreached_value     | opens by choosing an option whose wording is a value ("**C: 52**"), then works   |
|                     | toward it, and its last sentence is a step ("… = 14.") that never reaches it     |
| unstated_letter     | the prompt lists no options (MMLU-Pro), the thinking's last words plan the reply's|
|                     | verdict ('The answer is (I)'), and the answer names no letter at all (not in     |
|                     | "(I)", "option I", "answer is I", "**I**")                                       |

Precision first: none of these flags a complete real reply of ../shared/corpus (5,568 R1 /
Sky-T1 / Marco-o1 triples; tests/test_truncation_unfinished.py). The corpus's witnesses: every
one of its 762 one-line R1 answers that open with the statement closes it; of the 583 answers
opening "The correct answer is:" 581 go on past the choice and 2 close it with "।"; each of the 413 MMLU-Pro answers names
its letter in one of those forms. Developed on cuts of half A of the traces
(benchmarks/truncation_split.py) with seeds 7, 13, 17 and 29, never 23 or 41; on seed 23,
held-out half B, text-only recall went 0.9875 -> 0.9895 (half A 0.9897 -> 0.9923).
"""

from __future__ import annotations

import re
import unicodedata

from builder.responses.answer_end import _finished_at, option_letters
from builder.responses.conclusion import _DIGITS, _names_letter, option_texts, thinking_letter
from builder.responses.consistency import _answer_letter, _fold_math

EVIDENCE = ("unclosed_statement", "statement_fragment", "unfinished_walk", "unreached_value", "unstated_letter")
# R1's opening verdict sentence: "The correct answer is …", "The answer is: …".
_STATEMENT = re.compile(r"^\W{0,4}the\s+(?:correct\s+|right\s+|final\s+)?(?:answer|option|choice)\s+is\b", re.I)
_COLON = re.compile(r"\s*[:：]")
_CLOSERS = re.compile(r"(?:[*_)\]}\"'”’»」』）`$\s])+$")
_ENDS = (".", "!", "?", "।", "。", "！", "？", "…")
_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s|\|)")
_LABELLED = re.compile(r"^\W{0,4}[^:：\n]{1,30}[:：]")
# An item that discusses an option: "- **A: 3/26** …", "- Option C …", "- (B) …", "- C ("বেদনা")".
_OPTION_ITEM = re.compile(r"^\s*[-*+•]\s+\W{0,4}(?:option\s+)?\(?([A-J])\b", re.I)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_TAIL = 500  # characters of the thinking where it plans its reply
# The thinking's plan of the reply's verdict: 'The answer is (I).', 'final answer: The answer is I'.
_PLANNED = re.compile(r"answer\s*(?:is|:)\s*\(?([A-J])\)?(?=\s*[.\"”'*]*\s*$)", re.I | re.M)


def _closed(line: str) -> bool:
    """The line ends a sentence (. ! ? । 。 … before closing brackets, quotes, bold) or ends
    on bold ("The correct answer is **C: X**", R1's terse form)."""
    line = line.rstrip()
    return line.endswith(("**", ")", "]")) or _CLOSERS.sub("", line).endswith(_ENDS)  # "The answer is (A)"


def _lines(answer: str) -> list[str]:
    return [ln.strip() for ln in answer.strip().splitlines() if ln.strip()]


def _unclosed_statement(lines: list[str]) -> bool:
    """One line that opens the verdict and never closes it; or "The correct answer is:" (which
    announces the choice and what follows) with only the choice after it, not even a full stop."""
    m = _STATEMENT.match(lines[0])
    if m is None or len(lines) > 2:
        return False
    if _COLON.match(lines[0], m.end()):  # "**D: দ্বাদশ**" does not close it, "(D)" does
        return not (lines[-1].endswith((")", "]")) or _CLOSERS.sub("", lines[-1]).endswith(_ENDS))
    return len(lines) == 1 and not _closed(lines[0])


def _statement_fragment(lines: list[str]) -> bool:
    """The statement line, then the first line of what would explain it, never finished."""
    if len(lines) < 2 or not _STATEMENT.match(lines[0]) or (len(lines) > 2 and not _STATEMENT.match(lines[-2])):
        return False
    last = lines[-1]
    if _STATEMENT.match(last) or _answer_letter(last)[0] is not None:
        return False  # "The answer is (B)": a verdict line of its own, not an explanation
    if (
        _closed(last)
        or last.endswith((":", "："))
        or _ITEM.match(last)
        or _HEADING.match(last)
        or _LABELLED.match(last)
    ):
        return False  # a list, a heading, a label ("**Answer:** C"): not running prose
    return any(ch.isalpha() for ch in last)


def _unfinished_walk(lines: list[str], think: str, prompt: str, letters: str) -> bool:
    """The answer's last list goes through the options (its items open on letters in order)
    and stops before the last one, leaving an option neither discussed nor chosen."""
    heads: list[str] = []
    covered: set[str] = set()
    for ln in reversed(lines):
        m = _OPTION_ITEM.match(ln)
        if m is None:
            if _ITEM.match(ln):
                return False  # the list's items are not all options
            break
        heads.append(m.group(1).upper())
        covered |= {x for x in letters if _names_letter(ln, x)}  # "- **C** and **D** …" covers both
    heads.reverse()
    if not heads or heads != sorted(set(heads)) or heads[-1] >= letters[-1]:
        return False
    chosen = thinking_letter(think, prompt)  # the costly part: last
    return not set(letters) <= covered | ({chosen} if chosen else set())


def _numbers(text: str) -> str:
    return _THOUSANDS.sub("", _fold_math(text.translate(_DIGITS)))


def _unreached_value(answer: str, lines: list[str], think: str, prompt: str) -> bool:
    """It opens by choosing an option whose wording is a value, then works toward that value
    (its last sentence a step with "=" or "≈") and never reaches it, nor names the letter again."""
    text = answer.strip()
    if "\n" in text:
        head, body = text.split("\n", 1)
    else:
        ends = _finished_at(text)
        head, body = (text[: ends[0]], text[ends[0] :]) if ends else (text, "")
    last = lines[-1]
    ends = [e for e in _finished_at(last) if e < len(last)]
    if not body.strip() or not re.search(r"[=≈]", last[ends[-1] :] if ends else last):
        return False
    letter = thinking_letter(think, prompt)  # the costly part: after the cheap checks
    if letter is None or not _names_letter(head, letter) or _names_letter(body, letter):
        return False
    wording = _numbers(option_texts(prompt).get(letter, ""))
    if not re.match(r"^[-+±√]?\d", re.sub(r"[\s*_`'\"\[\](){}$\\]", "", wording)):
        return False  # a formula ("E0=m0c2"), a name: only a value is computed toward
    nums = _NUMBER.findall(wording)
    work = _numbers(body)
    return not any(re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", work) for n in nums)


def _strongly_names(answer: str, letter: str) -> bool:
    """Names the letter as a verdict: "(I)", "option I", "answer is I", "**I**", a line "I. …"."""
    return (
        re.search(
            rf"\({letter}\)|(?:option|choice)\s+\(?{letter}\b|answer\s*(?:is|:)\s*\**\s*\(?{letter}\b|\*\*\(?{letter}\b"
            rf"|^\W*{letter}[.):]\s",
            answer,
            re.I | re.M,
        )
        is not None
    )


def _unstated_letter(think: str, answer: str) -> bool:
    """No options listed, yet the thinking plans the reply's verdict ("The answer is (I)") and
    the answer names no letter as one. (conclusion.missing_conclusion counts any lone capital as
    the letter, and formulas are full of them: "∆H°", "\\mathbf{A}".)"""
    planned = list(_PLANNED.finditer(think[-_TAIL:]))
    if not planned or "\\boxed" in answer:
        return False
    letter = planned[-1].group(1).upper()
    return not _strongly_names(answer, letter) and _answer_letter(answer)[1] == "no_choice"


def promised(think: str | None, answer: str, prompt: str = "") -> str | None:
    """The evidence that this answer stopped before what it announced (module table), or None."""
    lines = _lines(answer)
    if not lines or not think or not prompt:
        return None
    letters = option_letters(unicodedata.normalize("NFC", prompt))
    if not letters:
        return "unstated_letter" if _unstated_letter(think, answer) else None
    if _unclosed_statement(lines):
        return "unclosed_statement"
    if _statement_fragment(lines):
        return "statement_fragment"
    if _unfinished_walk(lines, think, prompt, letters):
        return "unfinished_walk"
    return "unreached_value" if _unreached_value(answer, lines, think, prompt) else None
