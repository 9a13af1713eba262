"""Did the answer finish what it set up? (text rules of `truncation.find_cut`, after answer_end's).

An answer cut by the token budget right after a finished sentence or line reads as complete:
there is no open bracket or half word to see. A careful reader still notices what the answer
itself promised and never delivered. `unfinished(think, answer, prompt)` returns the evidence
name or None:

| evidence            | the answer …                                                                    |
|---------------------|---------------------------------------------------------------------------------|
| short_option        | names an option on its last line and stops inside the prompt's wording of it   |
|                     | ("**Answer:** D) 1" of "1 F", "B. পাকস্থলির" of "পাকস্থলির এসিড", "A) 0" of "0.8 Hz")|
| bodiless_item       | ends on a list item that is only a label ("- **বিকল্প B**", "- Cross product")   |
|                     | where the item before it has a label and a body; or on the next marker alone     |
|                     | ("4" after "3. …", "D" after "C. …", "1" after a finished paragraph)             |
| open_intro          | ends on a line that announces what follows ("Here's how it works.", "The steps   |
|                     | are as follows.", "… shown below") and nothing follows                           |
| dangling_word       | ends a prose line of >= 5 words on a word that leaves its clause open ("in",     |
|                     | "which", "is", "would", "we" …)                                                  |
| dangling_equals     | ends on "=" (answer_end wants a space before an operator: "-5=" is not a charge) |
| dangling_dash       | ends on an em / en dash, or a hyphen after a letter or digit of any script       |
| clause_before_span  | ends on closed spans (a quotation, a gloss, bold, italics) after a finished      |
|                     | sentence, the words between them an unfinished clause ('এখানে "গোফ" এবং "খেজুর"')|
| unpunctuated_item   | ends on a list item without punctuation whose sibling item ends its sentence or  |
|                     | goes on with a comma ("- **C** ভুল, কারণ … নয়।" then "- **D** সঠিক, কারণ … = 101")|
| bangla_unterminated | ends on a Bangla prose line of >= 6 words without "।" right after a finished     |
|                     | Bangla sentence (R1 ends its Bangla sentences with "।")                           |
| open_section        | ends in an explanation section ("**Explanation:**", "Given:", "ব্যাখ্যা:",        |
|                     | "গণনা:") of one or two lines that never finish a sentence                         |
| open_connective     | ends on a line that opens with a connective and a comma ("Here, …", "এখানে, 2")  |
|                     | and never finishes                                                               |
| open_one_liner      | is one line that opens a solution ("To solve …, we start by …", "… A. To find")  |
|                     | or runs >= 8 words with a comma or a subordinate clause and no full stop         |
| unproven_choice     | states the thinking's option, then an explanation of one sentence at most that   |
|                     | never returns to it (not its letter, wording or number)                          |
| bangla_decimal      | ends a computation on "= 4." / "≈ 0." where its sentences end with "।": a      |
|                     | decimal point, the digits after it cut ("g' = 9.9 × (4/9) = 4." of 4.4)          |
| (promised.EVIDENCE) | opened a verdict it never closed, a walk through the options it never finished, |
|                     | a computation that never reached the chosen value, … (the table in promised.py) |

Precision first: on every complete real reply of ../shared/corpus (5,568 R1 / Sky-T1 / Marco-o1
thinking + answer + prompt triples) these rules flag none (tests/test_truncation_unfinished.py,
which also holds a cut and a clean look-alike per rule). They were developed on half A of the
traces (benchmarks/truncation_split.py) with cut seeds other than the benchmarks' 23; half B and
seed 23 / 41 are the held-out figures. Cost: a few tens of µs per reply (find_cut with and
without these rules, benchmarks/responses.py --only truncation); the thinking's letter, the
costly part, is read only for an answer ending in a one-sentence explanation.
"""

from __future__ import annotations

import re
import unicodedata

from builder.responses.answer_end import _finished_at, option_letters
from builder.responses.conclusion import _fold, _names_letter, _states_wording, option_texts, thinking_letter
from builder.responses.promised import EVIDENCE as PROMISED_EVIDENCE
from builder.responses.promised import promised

EVIDENCE = (
    "short_option", "bodiless_item", "open_intro", "dangling_word", "dangling_equals", "clause_before_span",
    "dangling_dash", "unpunctuated_item", "bangla_unterminated", "open_section", "open_connective", "open_one_liner",
    "unproven_choice", "bangla_decimal", *PROMISED_EVIDENCE,
)  # fmt: skip
_MARKUP = re.compile(r"[*_`]+")
# "… is **C: text", "**Answer:** D) 1", "B. text": an option letter, its delimiter, its text.
_NAMED_OPTION = re.compile(r"(?:^|[\s:：(\[])\(?([A-J])\)?\s*[.):：]\s*(\S.*?)\s*[।.]?$")
_ITEM = re.compile(r"^(\s*)([-*+•]|\d+[.)])\s+(.*)$")
_BOLD_HEAD = re.compile(r"^\*\*[^*\n]+\*\*(.*)$")
_INTRO = re.compile(
    r"(?:\bhere(?:'s| is| are)\b[^.\n:：]*|\bas follows|\bfollowing(?: \w+){0,2}|\bbelow|\bthe steps are|"
    r"এরকম|নিচে(?:র)?|নিম্নরূপ|如下|以下)\s*[:：.]?\s*$",
    re.I,
)
_OPEN_WORDS_TEXT = """in on at by as that which who whom where when whose while if is are was were be been being will
    would can could should may might must not also both each this these those has have had does did but though we"""
_OPEN_WORDS = frozenset(_OPEN_WORDS_TEXT.split())
_DANGLING_LINE_WORDS = 5
_HEADING = re.compile(r"^\s*(?:#{1,6}\s|\|)")
# An explanation section's header line: "**Explanation:**", "Explanation:", "**ব্যাখ্যা:**", "解释：".
_EXPLAIN = re.compile(
    r"^\W{0,4}(?:explanation|reasoning|reason|why|ব্যাখ্যা|কারণ|বিশ্লেষণ|解释|解析|理由)\W{0,6}$", re.I | re.M
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TAIL_CHARS = 4000
_SECTION_CHARS = 1500  # a cut explanation (one sentence, two lines at most) lies in the answer's end
_SENTENCE_ANY = re.compile(r"[.!?।。！？](?:\s|$)")


def _last_line(text: str) -> str:
    return text[text.rfind("\n") + 1 :].strip()


_FORMAT_CHARS = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")  # soft hyphen, ZWSP/ZWNJ/ZWJ, marks, BOM
_DASHES = str.maketrans("−–—", "---")  # NFKC reads "⁻¹" as "−1"; prompts write "-1"
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _option_fold(text: str) -> str:
    """Width, case, quotes, a final full stop and format characters (ZWNJ, also as a dict's
    "\\u200c" escape) folded away."""
    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = _FORMAT_CHARS.sub("", unicodedata.normalize("NFKC", text))
    return text.translate(_DASHES).casefold().strip(" '\"‘’“”").rstrip(" .।")


def _short_option(line: str, prompt: str) -> bool:
    """The last line names option X and its text is the first words, not all, of X's wording."""
    options = option_texts(prompt)
    if not options:
        return False
    m = _NAMED_OPTION.search(_MARKUP.sub("", line))
    if m is None or m.group(1) not in options:
        return False
    said, full = _option_fold(m.group(2)), _option_fold(options[m.group(1)])
    if not said or len(said) >= len(full) or not full.startswith(said):
        return False
    words, whole = said.split(), full.split()
    # Stops at a word break ("1" of "1 F") or inside a token ("0" of "0.8 Hz", "(CH₃)" of "(CH₃)₃C⁺").
    return whole[: len(words)] == words or not full[len(said)].isspace()


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


_MARKER = re.compile(r"^(?:\*\*)?\(?(\d+|[A-J])[.)]\s+\S")


def _next_number_only(text: str) -> bool:
    """The last line is only the next marker of a list: a bare "4" after item "3.", a bare "D"
    after options "A. …", "B. …", "C. …", a bare "1" after a finished paragraph."""
    lines = [ln.strip() for ln in text.rstrip().splitlines() if ln.strip()]
    if len(lines) < 2 or len(lines[-1]) > 3:
        return False
    last = lines[-1]
    if last == "1" and lines[-2].endswith((".", "।", "。")):
        return True  # a numbered list begun after a finished paragraph
    if last.isdecimal():
        before = str(int(last) - 1)
    elif len(last) == 1 and "B" <= last <= "J":
        before = chr(ord(last) - 1)
    else:
        return False
    markers = [m.group(1) for ln in lines[-12:-1] if (m := _MARKER.match(ln))]
    return bool(markers) and markers[-1] == before  # the list's last item is the one before


def _dangling_word(line: str) -> bool:
    if _HEADING.match(line) or _ITEM.match(line) and len(line.split()) < 4:
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


_EXPLAIN_INLINE = re.compile(r"^[^\w(]{0,4}(?:explanation|ব্যাখ্যা)\W{0,4}[:：]\W{0,4}", re.I | re.M)


def _unproven_choice(answer: str, think: str, prompt: str) -> bool:
    """The answer states the chosen option, then explains in one sentence at most without
    returning to it (its letter, wording or number): the explanation was cut."""
    at = max(0, len(answer) - _SECTION_CHARS)
    heads = list(_EXPLAIN.finditer(answer, at)) or list(_EXPLAIN_INLINE.finditer(answer, at))  # "**ব্যাখ্যা:** …"
    if not heads:
        return False
    start = heads[-1].end()
    head, body = answer[:start], answer[start:]
    if not body.strip() or len(_SENTENCE_ANY.findall(body)) > 1:
        return False  # a longer explanation may argue by elimination without naming the choice again
    letter = thinking_letter(think, prompt)  # the costly part: last
    return letter is not None and _choice_stated(head, letter, prompt) and not _choice_stated(body, letter, prompt)


_BN = re.compile(r"[\u0980-\u09ff]")
_TERMINAL = tuple(".!?।॥。！？…:;)]}\"'”’*`$|>")
# Closing spans at a line's end: a quotation, a gloss in brackets, italics, bold, inline code or math.
_SPAN_END = re.compile(
    r"""\s*(?:"[^"\n]+"|'[^'\n]+'|“[^”\n]+”|‘[^’\n]+’|\([^()\n]*\)|\*\*[^*\n]+\*\*|\*[^*\n]+\*|`[^`\n]+`|\$[^$\n]+\$|\\\(.*?\\\))$"""
)
_ANSWER_CUE = re.compile(r"answer|correct|উত্তর|সঠিক|答案", re.I)
_OPTION_WORD = re.compile(r"option|choice|বিকল্প|অপশন|选项", re.I)


def _terminated(line: str) -> bool:
    return line.rstrip().endswith(_TERMINAL)


def _clause_before_span(line: str) -> bool:
    """The line ends on closed spans ("… এবং "খেজুর"", "Other options like Lucas reagent (B)") after
    a finished sentence, and the words between are a clause that never finished."""
    if _ends_sentence(line.rstrip().rstrip("\"”'’*_)")):
        return False  # the sentence ends inside the span: '… the meaning of "subconscious."'
    head, n = line, 0
    while (m := _SPAN_END.search(head)) is not None and m.start() > 0:
        head, n = head[: m.start()], n + 1
    if n == 0 or not head.strip():
        return False
    ends = _finished_at(head)
    if not ends:
        return False
    fragment = head[ends[-1] :].strip()
    words = fragment.split()
    if not words:  # a new sentence that is only a quotation so far ("… বোঝায়। "তরতর"")
        return line.rstrip()[-1:] in "\"”'’" and n == 1
    if _OPTION_WORD.search(fragment) and len(words) <= 3:
        return False  # "… . So option (B)": a terse answer statement
    return (len(words) >= 2 or fragment.endswith((",", "，"))) and _ANSWER_CUE.search(fragment) is None and fragment[-1:] not in ":：—–-="


def _sibling_punctuated(text: str) -> bool:
    """The last list item stops unpunctuated where the item before it at its level (same marker,
    same indent; up to 12 lines back) ends its sentence: "- **C** ভুল, কারণ … নয়।" then
    "- **D** সঠিক, কারণ 1 atm = 101"."""
    lines = [ln for ln in text.rstrip().splitlines() if ln.strip()]
    last = _ITEM.match(lines[-1]) if lines else None
    if last is None or _terminated(lines[-1]):
        return False
    for ln in reversed(lines[-13:-1]):
        prev = _ITEM.match(ln)
        if prev is None or prev.group(1) != last.group(1):
            continue  # a continuation line, or another level of the list
        if prev.group(2)[-1] != last.group(2)[-1]:
            return False  # another list
        body = prev.group(3).strip()
        # A sibling that ends its sentence, or goes on with a comma ("- "হাসি হাসি" (B) ভাব প্রকাশ করে,").
        return len(body.split()) >= 4 and body.endswith((".", "।", "。", ",", "，", ";"))
    return False


# A section that explains (its body must finish a sentence): "**Explanation:**", "Given:", "ব্যাখ্যা:".
_PROSE_HEADER = re.compile(
    r"^\W{0,4}(?:explanation|reasoning|reason|given|solution|calculation|analysis|ব্যাখ্যা|কারণ|বিশ্লেষণ|সমাধান|গণনা|"
    r"解释|解析|分析)\W{0,4}[:：]\W{0,4}",
    re.I | re.M,
)
# A line that opens with a connective and a comma: "Thus, …", "Here, …", "এখানে, …", "সুতরাং, …".
_CONNECTIVE = re.compile(
    r"^\W{0,4}(?:thus|hence|therefore|so|here|now|then|finally|এখানে|সুতরাং|অতএব|তাই|অর্থাৎ|ফলে|因此|所以)\s*[,，]\s*\S",
    re.I,
)


_CLOSERS = re.compile(r"(?:\\\)|\\\]|[*_)\]}\"'”’」』》）$`\s])+$")


def _ends_sentence(line: str) -> bool:
    """The line ends a sentence: . ! ? । 。 … before any closing brackets, quotes, bold or math
    ("(e.g., mercury)", "\\( x = 5 \\)", '"Look up"' end none)."""
    return _CLOSERS.sub("", line.rstrip()).endswith((".", "!", "?", "।", "。", "！", "？", "…"))


def _open_section(text: str) -> bool:
    """The answer's last section is an explanation whose body never finishes a sentence."""
    heads = list(_PROSE_HEADER.finditer(text, max(0, len(text) - _SECTION_CHARS)))
    if not heads:
        return False
    body = text[heads[-1].end() :].strip()
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    if not lines or len(lines) > 2 or any(_ends_sentence(ln) for ln in lines):
        return False
    if _LABELLED.match(lines[-1]) or _ANSWER_CUE.search(lines[-1]):
        return False  # "**Answer:** A. 14 Mpc": the section ended, the answer line follows
    return not any(_ITEM.match(ln) and len(ln.split()) < 6 for ln in lines[:-1])


def _open_connective(line: str) -> bool:
    return _CONNECTIVE.match(line) is not None and not _ends_sentence(line) and not _LABELLED.match(line)


def _open_one_liner(text: str) -> bool:
    """A one-line answer that opens a sentence it never finishes: "To solve …, we start by …",
    or >= 10 words with a comma and no full stop."""
    if "\n" in text or _ends_sentence(text) or text.endswith(("**", ":", "：")):
        return False
    ends = [m.end() for m in _SENTENCE_ANY.finditer(text)]
    opener = text[ends[-1] :].strip() if ends else text  # "The correct answer is option A. To find"
    if re.match(r"^To [a-z]+\b", opener) and len(opener.split()) >= 2:
        return True  # "To solve …, we start by …", "To find": R1 / Sky-T1 open a solution so
    clause = "," in text or re.search(r"\b(?:because|since|as|so that|which|where)\b", text) is not None
    return len(text.split()) >= 8 and clause and _SENTENCE_ANY.search(text) is None


_LABELLED = re.compile(r"^\W{0,4}[^:：\n]{1,30}[:：]")


def _bangla_prose(line: str, text: str) -> bool:
    """A Bangla prose line of >= 6 words, not a labelled answer line, ends without "।" right after
    a finished Bangla sentence (on the same line or the line before)."""
    if _terminated(line) or _HEADING.match(line) or _LABELLED.match(line) or _ANSWER_CUE.search(line):
        return False
    bangla = len(_BN.findall(line))
    if bangla < 6 or bangla < 0.5 * sum(ch.isalpha() for ch in line):
        return False
    words = [w for w in line.split() if any(ch.isalpha() for ch in w)]  # "অনুপাত = C/d = π ≈ ৩" has 3
    if len(words) < 6:
        return False
    if "।" in line:
        return True
    before = text[: len(text) - len(line)].rstrip()
    return before.endswith("।")


_DECIMAL_END = re.compile(r"[=≈]\s*[-+−]?\d+\.$")
_LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


def _bangla_decimal(text: str, last: str) -> bool:
    """A computation line ends "= 4." / "≈ 0." in an answer that ends its sentences with "।":
    the "." is a decimal point (answer_end catches it on a Bangla prose line, not on math)."""
    if _DECIMAL_END.search(last) is None:
        return False
    ends = _finished_at(last)
    step = last[ends[-2] :] if len(ends) > 1 else last  # the last sentence: "… করে। g = 9.9 × 4/9 = 4."
    if _LATIN_WORD.search(step):
        return False  # an English sentence ("… LCM(10,72)=360.") ends with "."
    head = text[: len(text) - len(step)]
    marks = [ch for ch in head if ch in ".!?।"]
    return bool(marks) and marks[-1] == "।"


def unfinished(think: str | None, answer: str, prompt: str = "") -> str | None:
    """The evidence that this answer stopped before what it set up (module table), or None."""
    text = answer.rstrip()
    if not text:
        return None
    text = text[-_TAIL_CHARS:] if len(text) > _TAIL_CHARS else text  # the rules read the answer's end
    last = _last_line(text)
    if prompt and _short_option(last, prompt):
        return "short_option"
    if _bodiless_item(text):
        return "bodiless_item"
    if _INTRO.search(last) and len(last.split()) >= 2:
        return "open_intro"
    if _dangling_word(last):
        return "dangling_word"
    if text.endswith("="):
        return "dangling_equals"
    if text.endswith(("—", "–")) or text[-1] == "-" and len(text) > 1 and (text[-2].isalpha() or text[-2].isdecimal()):
        return "dangling_dash"  # "… গিলে খায়—", "নিম্ন-", "১৯৫২-" (answer_end: ASCII only)
    if _next_number_only(text):
        return "bodiless_item"
    if _clause_before_span(last):
        return "clause_before_span"
    if _sibling_punctuated(text):
        return "unpunctuated_item"
    if _bangla_prose(last, text):
        return "bangla_unterminated"
    if _open_section(text):
        return "open_section"
    if _open_connective(last):
        return "open_connective"
    if _open_one_liner(text):
        return "open_one_liner"
    if _bangla_decimal(text, last):
        return "bangla_decimal"
    if think and prompt and option_letters(prompt) and _unproven_choice(text, think, prompt):
        return "unproven_choice"
    return promised(think, answer, prompt)  # what the answer's opening or its thinking announced
