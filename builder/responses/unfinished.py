"""Did the answer finish what it set up? (text rules of `truncation.find_cut`, after answer_end's).

An answer cut by the token budget right after a finished sentence or line reads as complete:
there is no open bracket or half word to see. A careful reader still notices what the answer
itself promised and never delivered. `unfinished(think, answer, prompt)` returns the evidence
name or None:

| evidence          | the answer …                                                                      |
|-------------------|-----------------------------------------------------------------------------------|
| short_option      | names an option on its last line and stops inside the prompt's wording of it,    |
|                   | at a word break ("**Answer:** D) 1" of "1 F", "B. পাকস্থলির" of "পাকস্থলির এসিড")    |
| bodiless_item     | ends on a list item that is only a label ("- **বিকল্প B**", "- Cross product")     |
|                   | where the item before it at the same marker has a label and a body                 |
| open_intro        | ends on a line that announces what follows ("Here is the code", "The steps are as  |
|                   | follows.", "… as shown below.") and nothing follows                               |
| dangling_word     | ends a prose line of >= 5 words on a word that leaves its clause open ("in",      |
|                   | "which", "is", "would" …), with no punctuation                                      |
| unstated_choice   | the prompt lists options, the thinking chose one, and the answer names no option   |
|                   | letter at all, while it stops after a sentence (conclusion.py's rule lets the     |
|                   | option's wording count as stated; R1 names the letter when it answers)              |
| unproven_choice   | opens with the chosen option, then an explanation section ("**Explanation:**",     |
|                   | "ব্যাখ্যা:") that never returns to it: not its letter, wording or number             |

Precision first: each rule is measured on every real clean reply of ../shared/corpus
(benchmarks/truncation_split.py, both halves; tests/test_truncation_unfinished.py) and on
hand-made clean look-alikes.
"""

from __future__ import annotations

import re
import unicodedata

from builder.responses.answer_end import option_letters
from builder.responses.conclusion import _fold, _names_letter, _states_wording, option_texts, thinking_letter
from builder.responses.consistency import _answer_letter

_MARKUP = re.compile(r"[*_`]+")
# "… is **C: text", "**Answer:** D) 1", "B. text": an option letter, its delimiter, its text.
_NAMED_OPTION = re.compile(r"(?:^|[\s:：(\[])\(?([A-J])\)?\s*[.):：]\s*(\S.*?)\s*[।.]?$")
_ITEM = re.compile(r"^(\s*)([-*+•]|\d+[.)])\s+(.*)$")
_BOLD_HEAD = re.compile(r"^\*\*[^*\n]+\*\*(.*)$")
_INTRO = re.compile(
    r"(?:\bhere(?:'s| is| are)\b[^.\n]*|\bas follows|\bfollowing(?: \w+){0,2}|\bbelow|\bthe steps are|"
    r"এরকম|নিচে(?:র)?|নিম্নরূপ|如下|以下)\s*[:：.]?\s*$",
    re.I,
)
_OPEN_WORDS = frozenset(
    """in on at by as that which who whom where when whose while if is are was were be been being will would can
    could should may might must not also both each this these those has have had does did but though""".split()
)
_DANGLING_LINE_WORDS = 5
_HEADING = re.compile(r"^\s*(?:#{1,6}\s|\|)")
# An explanation section's header line: "**Explanation:**", "Explanation:", "**ব্যাখ্যা:**", "解释：".
_EXPLAIN = re.compile(
    r"^\W{0,4}(?:explanation|reasoning|reason|why|ব্যাখ্যা|কারণ|বিশ্লেষণ|解释|解析|理由)\W{0,6}$", re.I | re.M
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _last_line(text: str) -> str:
    return text[text.rfind("\n") + 1 :].strip()


def _short_option(line: str, prompt: str) -> bool:
    """The last line names option X and its text is the first words, not all, of X's wording."""
    options = option_texts(prompt)
    if not options:
        return False
    m = _NAMED_OPTION.search(_MARKUP.sub("", line))
    if m is None or m.group(1) not in options:
        return False
    said = unicodedata.normalize("NFKC", m.group(2)).casefold().strip(" '\"‘’“”")
    full = unicodedata.normalize("NFKC", options[m.group(1)]).casefold().strip(" '\"")
    words, whole = said.split(), full.split()
    return 0 < len(words) < len(whole) and whole[: len(words)] == words


def _item_body(content: str) -> bool:
    """The item has a label and a body: "**Label** text…", "Label: text…"."""
    b = _BOLD_HEAD.match(content)
    if b is not None:
        return len(b.group(1).strip(" :：-—")) > 0
    head, sep, rest = content.partition(":")
    return bool(sep) and bool(rest.strip()) and len(head.split()) <= 6


def _bodiless_item(text: str) -> bool:
    lines = [ln for ln in text.rstrip().splitlines() if ln.strip()]
    if len(lines) < 2:
        return False
    last = _ITEM.match(lines[-1])
    if last is None:
        return False
    content = last.group(3).strip()
    bare = _BOLD_HEAD.match(content)
    if bare is not None:
        if bare.group(1).strip():
            return False
    elif ":" in content or "：" in content or len(content.split()) > 3 or content[-1:] in ".!?।。)":
        return False
    for ln in reversed(lines[:-1]):
        prev = _ITEM.match(ln)
        if prev is None:
            continue  # a continuation line of the item before
        if prev.group(1) != last.group(1) or prev.group(2)[-1] != last.group(2)[-1]:
            return False  # another list level or marker
        return _item_body(prev.group(3).strip())
    return False


def _dangling_word(line: str) -> bool:
    if _HEADING.match(line) or _ITEM.match(line) and len(line.split()) < 8:
        return False
    words = line.split()
    return len(words) >= _DANGLING_LINE_WORDS and words[-1].casefold() in _OPEN_WORDS


def _choice_stated(answer: str, letter: str, prompt: str) -> bool:
    """The answer text returns to the chosen option: its letter, its wording, or its number."""
    if _names_letter(answer, letter):
        return True
    wording = option_texts(prompt).get(letter, "")
    if wording.strip() and _states_wording(wording, answer):
        return True
    nums = _NUMBER.findall(_fold(wording).replace(",", ""))
    text = _fold(answer).replace(",", "")
    return bool(nums) and all(n in text for n in nums)


def _unproven_choice(answer: str, letter: str, prompt: str) -> bool:
    m = None
    for m in _EXPLAIN.finditer(answer):
        pass
    if m is None:
        # "**ব্যাখ্যা:** text" on one line: a header with its body after it.
        inline = list(re.finditer(r"^\W{0,4}(?:explanation|ব্যাখ্যা)\W{0,4}[:：]\W{0,4}", answer, re.I | re.M))
        if not inline:
            return False
        start = inline[-1].end()
    else:
        start = m.end()
    head, body = answer[:start], answer[start:]
    if not body.strip() or not _choice_stated(head, letter, prompt):
        return False
    return not _choice_stated(body, letter, prompt)


def unfinished(think: str | None, answer: str, prompt: str = "") -> str | None:
    """The evidence that this answer stopped before what it set up (module table), or None."""
    text = answer.rstrip()
    if not text:
        return None
    last = _last_line(text)
    if prompt and _short_option(last, prompt):
        return "short_option"
    if _bodiless_item(text):
        return "bodiless_item"
    if _INTRO.search(last) and len(last.split()) >= 2:
        return "open_intro"
    if _dangling_word(last):
        return "dangling_word"
    if not think or not prompt or not option_letters(prompt):
        return None
    letter = thinking_letter(think, prompt)
    if letter is None:
        return None
    return None
