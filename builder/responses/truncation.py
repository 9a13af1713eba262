"""Where a reply stopped early, and the evidence for it.

A reply cut by the token budget must not reach `answer`, `think_summary` or `full`. The
server's finish reason says so when it is known; imported data sets (AM-DeepSeek-R1-Distilled,
OpenThoughts…) carry none, so the text is the only witness there. `find_cut` returns one
`Cut(code, evidence)` or None; the first rule that fires wins:

| evidence                   | code                 | rule                                                          |
|----------------------------|----------------------|---------------------------------------------------------------|
| finish_length              | truncated_in_*       | finish_reason == "length"                                     |
| token_budget               | truncated_in_*       | finish unknown; completion_tokens >= max_tokens (both known)  |
| final_answer_in_reasoning  | answer_in_reasoning  | no answer part (content null / blank, or think never closed   |
|                            |                      | with finish "stop") and the thinking's tail is plainly the    |
|                            |                      | final answer (vLLM #48645: parser filed the answer as         |
|                            |                      | reasoning). Finish "stop" or unknown; never on "length".      |
| open_think                 | truncated_in_think   | finish unknown; think opened inline and never closed, or (R1, |
|                            |                      | reasoning teacher) no delimiter at all: the template prefilled|
|                            |                      | `<think>` and `</think>` never came                           |
| null_content               | truncated_in_think   | finish unknown; content is null beside a reasoning field      |
| empty_content              | truncated_in_think   | finish unknown; content blank beside a reasoning field        |
| open_answer_tag            | truncated_in_answer  | finish unknown; the answer tag opened and never closed        |
| open_fence                 | truncated_in_answer  | finish unknown; an odd number of ``` / ~~~ fence lines        |
| open_math                  | truncated_in_answer  | finish unknown; `$$`, `\\[`, `\\(` or `\\begin{…}` left open  |
| open_boxed                 | truncated_in_answer  | finish unknown; `\\boxed{` whose braces never close           |
| open_bold                  | truncated_in_answer  | finish unknown; the last line opens `**` and never closes it  |
| dangling_end               | truncated_in_answer  | finish unknown; the answer ends on a comma, an operator, an   |
|                            |                      | opening bracket or a word that cannot end a sentence ("the",  |
|                            |                      | "and", "of", "的", "和", "এবং" …)                             |
| unterminated_prose         | truncated_in_answer  | finish unknown; the last line is running prose (not a list    |
|                            |                      | item, heading, table row or short label) and stops with no    |
|                            |                      | sentence-final punctuation (see `_unterminated`)              |

`truncated_in_think` when the reply never reached an answer (think not closed, content null,
blank content beside a reasoning field, or an R1 reasoning reply with no delimiter at all),
else `truncated_in_answer`.

What text cannot do (measured in benchmarks/responses.py): an answer cut right after a
complete sentence, list item or line looks finished, and nothing in the text says otherwise.
Replies whose finish reason is known ("stop", "eos"…) are trusted: the text rules run only when
it is unknown, so a model that chose to stop mid-list is not called truncated.

Precision first (tests/test_truncation.py, on ../shared/corpus): the text rules flag none of
the 413 deepseek-reasoner PCMB answers, 187 Sky-T1 solutions and 123 Marco-o1 outputs, and 13
of 4,846 R1 Bangla-MMLU answers (0.27 %; most of those end mid-word in the source data, i.e.
are real cuts). On DeepSeek-R1-Distill-Llama-8B replies generated under a ~1,000-token cap
they flag 53 of the 74 that closed their thinking and then hit the cap, and 0 of 174 shorter.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from builder.language import MIXED, UNKNOWN, identify
from builder.reasoning_format import R1
from builder.responses.shapes import ANSWER_ONLY, NULL_CONTENT, REASONING_FIELD, UNCLOSED_THINK, Parsed

IN_THINK = "truncated_in_think"
IN_ANSWER = "truncated_in_answer"
MISROUTED = "answer_in_reasoning"
CODES = (IN_THINK, IN_ANSWER, MISROUTED)
EVIDENCE = (
    "finish_length", "token_budget", "final_answer_in_reasoning", "open_think", "null_content",
    "empty_content", "open_answer_tag", "open_fence", "open_math", "open_boxed", "open_bold",
    "dangling_end", "unterminated_prose",
)  # fmt: skip
# The info code that carries the evidence beside the reject code (grammar.INFO_CODES).
EVIDENCE_PREFIX = "cut_"
_STOPPED = frozenset({"stop", "eos", "end_turn", "stop_sequence"})


@dataclass(frozen=True, slots=True)
class Cut:
    code: str  # truncated_in_think | truncated_in_answer | answer_in_reasoning
    evidence: str  # one of EVIDENCE

    @property
    def info_code(self) -> str:
        return EVIDENCE_PREFIX + self.evidence


# ---------- the thinking's tail: plainly a final answer? ----------

_TAIL_CHARS = 600
# Markdown / LaTeX that R1 writes in its answer and almost never in its thinking.
_ANSWER_MARKUP = re.compile(r"\\boxed\{|\*\*|^#{1,6}\s|\$\$|\\\[", re.M)
_ANSWER_LEAD = re.compile(
    r"^\W*(?:the (?:correct |final )?answer|answer\s*[:：]|final answer|答案|最终答案|উত্তর|সঠিক উত্তর)", re.I
)


def _last_paragraph(text: str) -> str:
    text = text.rstrip()
    i = text.rfind("\n\n")
    return text[i + 2 :] if i >= 0 else text


def ends_with_final_answer(think: str) -> bool:
    """The thinking's tail reads as the reply's final answer (vLLM misrouted it as reasoning).

    Any of: answer markup (`**`, `\\boxed{`, a heading, display math) in the last 600
    characters; the last paragraph opens like an answer ("The correct answer is", "Answer:",
    "答案", "উত্তর"); the last paragraph is in another language than the thinking's start
    (R1 thinks in English and answers in the prompt's language). Measured on 5,259 real R1
    traces: 99.8 % of (think + answer) concatenations fire, 0.3 % of thinkings alone."""
    if _ANSWER_MARKUP.search(think, max(0, len(think) - _TAIL_CHARS)):
        return True
    last = _last_paragraph(think)
    if _ANSWER_LEAD.search(last):
        return True
    if len(last) >= len(think) - 200:  # one paragraph: nothing to compare it with
        return False
    head, end = identify(think[:1000]).language, identify(last).language
    return end not in (head, MIXED, UNKNOWN) and head not in (MIXED, UNKNOWN)


# ---------- the answer's end: stopped mid-way? ----------

_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.M)
_BEGIN = re.compile(r"\\begin\{([A-Za-z*]+)\}")
# Characters after which nothing can end: separators, opening brackets and quotes.
_DANGLING_CHARS = frozenset(",;([{&“‘«，、；（【《「『：")
# Binary operators dangle only after a space ("2m =", "x +"); "Cu²+" and "PO₄³-" are charges.
_OPERATORS = frozenset("=+-*/×÷<≤≥→")
# Words that do not end a sentence (English function words; Chinese and Bangla connectives).
# Words that can end one ("it is", "as is", "log in", "like that", Chinese sentence-final 的 / 是)
# are left out; a single capital "A" is an option letter, not an article.
_DANGLING_WORDS_TEXT = """a an the and or nor of to than whose whereas because although via per versus vs e.g. i.e.
    between among into onto its their our your my with for from such very"""
_DANGLING_WORDS = frozenset(_DANGLING_WORDS_TEXT.split())
_DANGLING_CJK = ("和", "与", "及", "或", "对", "把", "被", "从", "向", "因为", "所以", "但是", "而且", "如果",
                 "并且", "以及", "其中", "例如", "由于", "通过")  # fmt: skip
_DANGLING_BN = frozenset({"এবং", "ও", "বা", "যে", "কিন্তু", "তবে", "যদি", "কারণ", "অথবা", "থেকে"})
_TERMINAL = frozenset(".!?。！？…।॥؟۔։።»›)]}\"'”’」』》）】*`$|>:%°")
_SENTENCE_END = re.compile(r"[.!?。！？।؟۔](?:[\s\"'”’」』）)*]|$)")
_WORD = re.compile(r"[\w'’\-.]+$")
_BOLD = re.compile(r"(?<!\*)\*\*(?!\*)")  # "**", not part of "***" or a "******" separator
_BARE_MARKER = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|\d+\.\s*\*\*)\s*$")
_BARE_NUMBER = re.compile(r":\s*\n\s*\d+\s*$")  # "Impacts:\n1": a numbered list announced, then cut
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|[A-Za-z][.)])\s")
_LABEL = re.compile(r"^\s*(?:[-*+]\s*)?\*\*[^*]+\*\*\s*:?\s*")  # "**Answer:** …" / "- **Step 1:** …"
# An answer line that restates a multiple-choice option: the option's text has no punctuation.
_ANSWER_OPTION = re.compile(r"^(?:\*\*[^*]*\*\*\s*:?\s*|[^\s:：*][^:：]{0,30}[:：]\s*)?\(?[A-Ea-e১-৪ক-ঘ][.):]\s")
_OPTION = re.compile(r"^\(?[A-Za-z0-9]\s?[.):]\s+")  # "C. …", "(b) …": an option label, not a sentence
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_UNTERMINATED_WORDS = 3  # words of an unfinished sentence after a finished one on the same line
_UNTERMINATED_ITEM = 4  # words of an unfinished last item among items that end with punctuation
_UNTERMINATED_LINE = 15  # words of a line that is one unfinished sentence (after finished lines)
_OPEN_SPAN = 1500  # chars: a math block left open further back than this is a typo, not a cut


def _words(text: str) -> int:
    """Words, with a run of CJK characters counted as one word per two characters."""
    cjk = len(_CJK.findall(text))
    return len(_CJK.sub(" ", text).split()) + cjk // 2


def _open_math(text: str) -> bool:
    """The text ends inside math: the last opener of a kind has no closer after it."""
    n = len(text)
    if text.count("$$") % 2 and n - text.rfind("$$") <= _OPEN_SPAN:
        return True
    i = text.rfind("\\[")
    if i >= 0 and text.find("\\]", i) < 0 and n - i <= _OPEN_SPAN:
        return True
    i = text.rfind("\\(")
    if i >= 0 and text.find("\\)", i) < 0 and "\n" not in text[i:]:  # inline math is one line
        return True
    i = text.rfind("\\begin{")
    if i >= 0:
        m = _BEGIN.match(text, i)
        if m and text.find(f"\\end{{{m.group(1)}}}", i) < 0 and n - i <= _OPEN_SPAN:
            return True
    return False


def _open_boxed(text: str) -> bool:
    i = text.rfind("\\boxed{")
    if i < 0:
        return False
    depth = 0
    for ch in text[i + 6 :]:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return False
    return True


def _without_code(text: str) -> str:
    """The answer with closed fenced blocks removed (their insides prove nothing about prose)."""
    if "```" not in text and "~~~" not in text:
        return text
    return re.sub(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", " ", text, flags=re.M | re.S)


def _open_bold(line: str) -> bool:
    """The line opens more `**` than it closes, and its last one opens (it follows a space, an
    opening bracket or nothing; a closing `**` follows text, as in "মালো**।")."""
    marks = list(_BOLD.finditer(line))
    if len(marks) % 2 == 0:
        return False
    i, j = marks[-1].start(), marks[-1].end()
    after = line[j : j + 1]
    if after and not (after.isalnum() or after in "([{“‘«（'\"$\\_`"):
        return False  # "**।": a closing mark whose opener the data lost
    return i == 0 or line[i - 1].isspace() or line[i - 1] in "([{“‘«（"


def _ends_terminated(line: str) -> bool:
    end = line[-1]
    return end in _TERMINAL or end.isdigit() or line.endswith("**")


def _unterminated(text: str, last_line: str) -> bool:
    """The last line is running prose that stops without finishing its sentence.

    Three ways to tell, each needing a writer who does finish sentences: a finished sentence
    then >= 3 words of an unfinished one on the same line; a one-sentence line of >= 15 words
    after a finished line; or >= 4 words when the lines before it (>= 3 of the last 12 prose
    lines or list items) nearly all end with punctuation (a list of sentences cut mid-item)."""
    line = last_line.strip()
    if not line or line.startswith(("#", "|", ">")):
        return False  # headings, tables and quotes end without punctuation
    if _ANSWER_OPTION.match(line) or not any(ch.islower() or ch.isalpha() and not ch.isascii() for ch in line):
        return False  # an option's text ("**Answer:** C. …", "B. …") or an all-caps title
    item = _LIST_ITEM.match(line) is not None
    body = _OPTION.sub("", _LABEL.sub("", _LIST_ITEM.sub("", line, count=1), count=1), count=1)
    before = [ln.strip() for ln in text[: len(text) - len(last_line)].splitlines()[-12:]]
    before = [ln for ln in before if ln and not ln.startswith(("#", "|", "```", "~~~", "\\", "$$"))]
    styled = len(before) >= 3 and sum(map(_ends_terminated, before)) >= 0.8 * len(before)
    if styled and _words(body) >= _UNTERMINATED_ITEM:
        return True
    if item:
        return False  # a list of phrases ends without punctuation
    ends = list(_SENTENCE_END.finditer(body))
    if ends:  # a finished sentence, then an unfinished one on the same line
        fragment = body[ends[-1].end() :].strip()
        if fragment.startswith(("-", "—", "–", "#", "~")) or all(w.startswith("#") for w in fragment.split()):
            return False  # a quote's attribution ("… - Paul Rand") or hashtags
        return _words(fragment) >= _UNTERMINATED_WORDS
    if _words(body) < _UNTERMINATED_LINE:
        return False  # titles, signatures, labels, poem lines, terse answers
    return bool(before) and _ends_terminated(before[-1])  # the text around it does end sentences


def answer_cut(answer: str) -> str | None:
    """The evidence that this answer stops mid-way, or None (see the module table)."""
    text = answer.rstrip()
    if not text:
        return None
    if len(_FENCE.findall(text)) % 2:
        return "open_fence"
    prose = _without_code(text)
    if _open_boxed(prose):
        return "open_boxed"
    if _open_math(prose):
        return "open_math"
    last_line = text[text.rfind("\n") + 1 :]
    if _open_bold(last_line):
        return "open_bold"
    end = text[-1]
    if end in _DANGLING_CHARS or (end in _OPERATORS and len(text) > 1 and text[-2] in " \t\n"):
        return "dangling_end"
    if _BARE_MARKER.match(last_line) or _BARE_NUMBER.search(text):
        return "dangling_end"  # a list item or step that has only its marker
    word = _WORD.search(text)
    if word is not None and word.group(0) != "A" and word.group(0).lower() in _DANGLING_WORDS:
        return "dangling_end"
    if text.endswith(_DANGLING_CJK) or text.rsplit(None, 1)[-1] in _DANGLING_BN:
        return "dangling_end"
    if unicodedata.category(end)[0] not in "LM":  # digits, symbols, emoji, closing punctuation
        return None
    return "unterminated_prose" if _unterminated(text, last_line) else None


# ---------- the one entry point ----------


def _prefilled_think(parsed: Parsed, expects_thinking: bool) -> bool:
    """R1's chat template prefills "<think>", so a reasoning reply with no delimiter at all is
    thinking that never reached its `</think>`."""
    return expects_thinking and parsed.shape == ANSWER_ONLY and parsed.delimiters.think_open == R1.think_open


def _stopped_before_answer(parsed: Parsed, expects_thinking: bool) -> bool:
    if parsed.shape in (UNCLOSED_THINK, NULL_CONTENT) or _prefilled_think(parsed, expects_thinking):
        return True
    return parsed.shape == REASONING_FIELD and not parsed.answer


def _budget_used(completion_tokens: object, max_tokens: object) -> bool:
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (completion_tokens, max_tokens))
    return ok and max_tokens > 0 and completion_tokens >= max_tokens  # type: ignore[operator]


def find_cut(
    parsed: Parsed,
    finish_reason: object,
    completion_tokens: object = None,
    max_tokens: object = None,
    *,
    infer: bool = True,
    expects_thinking: bool = True,
) -> Cut | None:
    """The truncation (or misrouted answer) in one normalized reply, with its evidence.

    `infer`: judge from the text when `finish_reason` is None (unknown). `expects_thinking`:
    a reasoning teacher's reply (False for a control teacher, whose plain answers are whole
    replies, not prefilled thinking). Never raises."""
    before = _stopped_before_answer(parsed, expects_thinking)
    where = IN_THINK if before else IN_ANSWER
    if finish_reason == "length":
        return Cut(where, "finish_length")
    known = finish_reason is not None
    if not known and _budget_used(completion_tokens, max_tokens):
        return Cut(where, "token_budget")  # a known "stop" wins: EOS can be the budget's last token
    if known and finish_reason not in _STOPPED:
        return None  # content_filter, tool_calls, …: grammar has its own codes
    think = parsed.think
    field_shape = parsed.shape in (NULL_CONTENT, REASONING_FIELD)
    if before and think and (field_shape or known) and ends_with_final_answer(think):
        return Cut(MISROUTED, "final_answer_in_reasoning")
    if known or not infer:
        return None
    if before:
        if parsed.shape == UNCLOSED_THINK:
            return Cut(IN_THINK, "open_think")
        if parsed.shape == ANSWER_ONLY:  # prefilled "<think>", no "</think>"
            text = parsed.answer or ""
            return None if ends_with_final_answer(text) else Cut(IN_THINK, "open_think")
        if think is None:
            return None  # nothing at all: missing_think / empty_answer say it
        return Cut(IN_THINK, "null_content" if parsed.shape == NULL_CONTENT else "empty_content")
    if "unclosed_answer" in parsed.codes:
        return Cut(IN_ANSWER, "open_answer_tag")
    if isinstance(parsed.answer, str):
        evidence = answer_cut(parsed.answer)
        if evidence is not None:
            return Cut(IN_ANSWER, evidence)
    return None
