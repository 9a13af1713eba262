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
|                            |                      | "and", "of", "的", "和", "এবং" …), an exponent to come       |
|                            |                      | ("5 × 10⁻"), a hyphen after a letter ("x²-x-"), "√", "×", "⊂",|
|                            |                      | an option with no text ("**Answer:** D)"), an open HTML tag, a|
|                            |                      | Bangla sentence ending "১." (a decimal point: Bangla ends     |
|                            |                      | sentences with "।")                                           |
| open_label                 | truncated_in_answer  | finish unknown; the last line is a label ("**Answer:**",      |
|                            |                      | "Given:") with nothing after it                               |
| open_bracket               | truncated_in_answer  | finish unknown; the last line opens more brackets than it     |
|                            |                      | closes (inline code and math set aside)                       |
| partial_option             | truncated_in_answer  | finish unknown; an answer line names an option whose text     |
|                            |                      | stops inside the prompt's wording of it ("C. বি", "B. 0." of 0.40)|
| unterminated_prose         | truncated_in_answer  | finish unknown; the last line is running prose (not a list    |
|                            |                      | item, heading, table row, labelled short result, the prompt's |
|                            |                      | own phrase or a one-line reply) and stops after a letter:     |
|                            |                      | words after its last finished sentence, or no finished        |
|                            |                      | sentence after lines that finish theirs (answer_end.py); also |
|                            |                      | prose cut just before a closing span ("যেখানে চাপ (P)", "When  |
|                            |                      | a matrix \\( A \\)", "Thus, **CaF₂**") and a number ending such |
|                            |                      | a line                                                        |
| no_final_result            | truncated_in_answer  | finish unknown; it stops unpunctuated and the prompt is       |
|                            |                      | multiple choice (no letter chosen) or asks for `\\boxed{}`   |
|                            |                      | (none given)                                                  |
| partial_word               | truncated_in_answer  | finish unknown; the last word is a piece of a word the reply  |
|                            |                      | or prompt uses whole ("ডায়াকাইনেসি"), never seen whole itself |
|                            |                      | (partial_word.py)                                             |
| missing_conclusion         | truncated_in_answer  | finish unknown; the thinking commits to a result (a letter, a |
|                            |                      | boxed or stated value) and the answer states no result at all:|
|                            |                      | no letter, not the option's wording, no `\\boxed{}`, not the  |
|                            |                      | value (conclusion.py) — catches cuts after a full sentence    |
| short_option, bodiless_item, | truncated_in_answer | finish unknown; the answer stops before what it set up: an |
| open_intro, dangling_word, … |                      | option's wording cut at a word break, a last list item with|
| (unfinished.EVIDENCE)        |                      | only its label or marker, "Here is the code" with nothing  |
|                              |                      | after, an explanation section that never finishes a        |
|                              |                      | sentence or never returns to the chosen option, … (the     |
|                              |                      | table in unfinished.py); then what the answer announced and|
|                              |                      | never delivered: a verdict line never closed, an option    |
|                              |                      | walk stopped early, a value never reached, the letter the  |
|                              |                      | thinking planned never named (promised.py)                 |

With the finish unknown, a reasoning whose tail reads as an answer but stops mid-way (the answer
rules or a piece of a word on its last paragraph) is a thinking cut while it weighed the
options (R1 quotes Bangla options in its thinking), not vLLM's misrouted answer.

`truncated_in_think` when the reply never reached an answer (think not closed, content null,
blank content beside a reasoning field, or an R1 reasoning reply with no delimiter at all),
else `truncated_in_answer`.

What text cannot do (measured in benchmarks/responses.py, reported apart as the
`after_sentence` class, and per tuned / held-out half in benchmarks/truncation_split.py): an
answer cut right after a complete sentence, list item or line looks finished unless the thinking
concluded something the answer never states (`missing_conclusion`); an answer that states its
result first ("The correct answer is **B: ফোটন**।") and is cut in its explanation after a full
sentence is not caught, nor one cut after a complete equation ("= 18") or after the last word
of a one-line reply. unfinished.py adds what a careful reader still sees after a full sentence
(an explanation of one sentence that never names the chosen option; an intro line with nothing
after it), and promised.py what the answer announced and never delivered (a verdict line never
closed, a walk through the options stopped early, a computation that never reaches the chosen
value, the letter the thinking planned never named); `after_sentence` recall is 0.65 and
text-only recall 0.9906 on the held-out seed (benchmarks/responses.py --only truncation).
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
from builder.responses.answer_end import answer_cut
from builder.responses.conclusion import missing_conclusion
from builder.responses.partial_word import partial_word
from builder.responses.shapes import ANSWER_ONLY, NULL_CONTENT, REASONING_FIELD, UNCLOSED_THINK, Parsed
from builder.responses.unfinished import EVIDENCE as UNFINISHED_EVIDENCE
from builder.responses.unfinished import unfinished

IN_THINK = "truncated_in_think"
IN_ANSWER = "truncated_in_answer"
MISROUTED = "answer_in_reasoning"
CODES = (IN_THINK, IN_ANSWER, MISROUTED)
EVIDENCE = (
    "finish_length", "token_budget", "final_answer_in_reasoning", "open_think", "null_content",
    "empty_content", "open_answer_tag", "open_fence", "open_math", "open_boxed", "open_bold",
    "dangling_end", "open_label", "open_bracket", "partial_option", "unterminated_prose", "no_final_result",
    "partial_word", "missing_conclusion", *UNFINISHED_EVIDENCE,
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


def _tail_cut(text: str, prompt: str) -> bool:
    """The text stops mid-way: thinking cut while it weighed the options (their Bangla wording
    makes its tail look like an answer), not an answer that vLLM filed as reasoning. Its last
    paragraph is cut by the answer rules, or ends on a piece of a word, or — when only the
    language change made it read as an answer (no answer markup, no "Answer:" lead) — ends on
    a letter. Used only when the finish reason is unknown."""
    last = _last_paragraph(text)
    if answer_cut(last) is not None or partial_word(text, prompt):
        return True
    if _ANSWER_MARKUP.search(text, max(0, len(text) - _TAIL_CHARS)) or _ANSWER_LEAD.search(last):
        return False
    return unicodedata.category(text.rstrip()[-1:] or ".")[0] in "LM"


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
    prompt: str = "",
) -> Cut | None:
    """The truncation (or misrouted answer) in one normalized reply, with its evidence.

    `infer`: judge from the text when `finish_reason` is None (unknown). `expects_thinking`:
    a reasoning teacher's reply (False for a control teacher, whose plain answers are whole
    replies, not prefilled thinking). `prompt`: the user turn, whose options and requested
    final form (`\\boxed{}`) the text rules use. Never raises."""
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
        if known or not _tail_cut(think, prompt):
            return Cut(MISROUTED, "final_answer_in_reasoning")
        return Cut(IN_THINK, "null_content" if parsed.shape == NULL_CONTENT else "empty_content")
    if known or not infer:
        return None
    if before:
        if parsed.shape == UNCLOSED_THINK:
            return Cut(IN_THINK, "open_think")
        if parsed.shape == ANSWER_ONLY:  # prefilled "<think>", no "</think>"
            text = parsed.answer or ""
            return None if ends_with_final_answer(text) and not _tail_cut(text, prompt) else Cut(IN_THINK, "open_think")
        if think is None:
            return None  # nothing at all: missing_think / empty_answer say it
        return Cut(IN_THINK, "null_content" if parsed.shape == NULL_CONTENT else "empty_content")
    if "unclosed_answer" in parsed.codes:
        return Cut(IN_ANSWER, "open_answer_tag")
    if isinstance(parsed.answer, str):
        evidence = answer_cut(parsed.answer, prompt)
        if evidence is not None:
            return Cut(IN_ANSWER, evidence)
        if partial_word(parsed.answer, f"{prompt}\n{think or ''}"):
            return Cut(IN_ANSWER, "partial_word")
        if missing_conclusion(think, parsed.answer, prompt):
            return Cut(IN_ANSWER, "missing_conclusion")
        evidence = unfinished(think, parsed.answer, prompt)
        if evidence is not None:
            return Cut(IN_ANSWER, evidence)
    return None
