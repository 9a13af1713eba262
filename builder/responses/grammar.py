"""Validate a normalized reply: reject codes plus quality scores kept as columns.

Codes are machine-readable and stable (they end up in the quarantine shard and the
ledger). `severity` is "reject" (the row leaves the `answer` / `think_summary` / `full`
variants) or "info" (kept; recorded so users can re-filter).

| code                       | severity | meaning                                                              |
|----------------------------|----------|----------------------------------------------------------------------|
| not_a_string               | reject   | content / reasoning is not a str (int, bytes, dict, …)               |
| reply_too_large            | reject   | more than MAX_REPLY_CHARS (1M) characters; checked before any scan   |
| binary_garbage             | reject   | contains NUL, or > 30 % U+FFFD / control characters                  |
| content_null               | reject   | content is None (a `length` finish can return only reasoning)        |
| content_filter             | reject   | finish_reason == "content_filter"                                    |
| abnormal_finish            | reject   | finish_reason other than stop / eos / length / content_filter / None |
| missing_think              | reject   | no thinking found (no reasoning field, no think delimiters)          |
| unclosed_think             | reject   | think opened but never closed, so there is no answer                 |
| duplicate_think            | reject   | a second or nested think block, or a reasoning field plus inline tags|
| text_before_think          | reject   | non-blank text before the opening think tag                          |
| unclosed_answer            | reject   | answer tag opened but never closed                                   |
| text_outside_answer        | reject   | answer tags present and non-blank text after think sits outside them |
| empty_think                | reject   | the thinking is blank                                                |
| empty_answer               | reject   | the answer is blank (including content "" / Unicode-only whitespace) |
| think_tag_in_answer        | reject   | a think or answer delimiter (configured style, or R1's <think> tags) |
|                            |          | is left inside the answer, even inside a code block (see note)       |
| truncated_in_think         | reject   | the reply was cut before its answer: finish_reason length, tokens at |
|                            |          | max_tokens, or (finish unknown) think never closed / content null or |
|                            |          | blank beside a reasoning field; evidence in a cut_* info code        |
| truncated_in_answer        | reject   | the reply was cut inside its answer: finish_reason length, tokens at |
|                            |          | max_tokens, or (finish unknown) the answer's text stops mid-way (see |
|                            |          | truncation.py); evidence in a cut_* info code                        |
| answer_in_reasoning        | reject   | no answer part, and the reasoning ends with the final answer (vLLM   |
|                            |          | #48645: a reply without </think> filed whole as reasoning)           |
| repetition_loop            | reject   | repetition_score of think or answer tail >= repetition threshold     |
| language_mismatch_think    | reject   | thinking's language is definite and not one the prompt allows        |
| language_mismatch_answer   | reject   | answer's language is definite and not one the prompt allows          |
| mixed_language_answer      | reject   | answer has no dominant script and >= 40 % of it is in languages the  |
|                            |          | prompt does not allow                                                |
| too_long_for_student       | reject   | student_tokens > max_student_tokens (paper: 16,384)                  |
| secret_in_reply            | reject   | the reply echoed an API key (redacted before it was stored)          |
| teacher_tool_calls         | reject   | the teacher called tools (message.tool_calls): the variants' turns   |
|                            |          | are text, so a row would drop the calls (they stay in the store)     |
| answer_tags_absent         | info     | no answer tags: answer = text after the think block (R1 often omits) |
| two_reasoning_fields       | info     | reasoning_content and reasoning both set and different               |
| replacement_chars          | info     | some U+FFFD in the reply (broken multi-byte characters upstream)     |
| think_answer_mismatch      | info     | the thinking's final result differs from the answer's (consistency.py)|
| cut_finish_length          | info     | truncation evidence: finish_reason "length"                          |
| cut_token_budget           | info     | truncation evidence: completion_tokens >= max_tokens, finish unknown |
| cut_final_answer_in_reasoning | info  | evidence for answer_in_reasoning                                     |
| cut_open_think             | info     | truncation evidence: think never closed, finish unknown              |
| cut_null_content           | info     | truncation evidence: content null beside reasoning, finish unknown   |
| cut_empty_content          | info     | truncation evidence: content blank beside reasoning, finish unknown  |
| cut_open_answer_tag        | info     | truncation evidence: answer tag never closed, finish unknown         |
| cut_open_fence             | info     | truncation evidence: a code fence left open                          |
| cut_open_math              | info     | truncation evidence: $$, \\[, \\( or \\begin left open at the end    |
| cut_open_boxed             | info     | truncation evidence: \\boxed{ never closed                           |
| cut_open_bold              | info     | truncation evidence: the last line opens ** and never closes it      |
| cut_dangling_end           | info     | truncation evidence: ends on a comma, operator, "the", "and", "的"…  |
| cut_open_label             | info     | truncation evidence: ends on a label ("**Answer:**") with nothing after|
| cut_open_bracket           | info     | truncation evidence: the last line leaves a bracket open             |
| cut_partial_option         | info     | truncation evidence: a named option's text stops mid-way             |
| cut_unterminated_prose     | info     | truncation evidence: running prose stops without finishing a sentence|
| cut_no_final_result        | info     | truncation evidence: MCQ / \\boxed{} prompt, no final result, unpunctuated |
| cut_partial_word           | info     | truncation evidence: the answer ends on a piece of a word seen whole in the reply |
| cut_missing_conclusion     | info     | truncation evidence: the thinking's result (letter, value) never stated in the answer |
| cut_short_option           | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_bodiless_item          | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_open_intro             | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_dangling_word          | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_dangling_equals        | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_dangling_dash          | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_clause_before_span     | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_unpunctuated_item      | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_bangla_unterminated    | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_open_section           | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_open_connective        | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_open_one_liner         | info     | truncation evidence: stops before what it set up (unfinished.py)     |
| cut_unproven_choice        | info     | truncation evidence: stops before what it set up (unfinished.py)     |

Truncation (`truncation.find_cut`): a known finish reason is trusted ("stop" means the
model chose to stop); the text and token rules judge a reply whose finish reason is unknown
(imports) only when the caller passes `infer_truncation=True` (the responses stage does).

Language (`language.identify`): codes are ISO 639-1. A shared-script code the model was not
sure of counts as "some language of that script" (`language.compatible`), and letters of a
script that also appears in the prompt (`prompt_scripts`) are quotations, not a foreign
language, when judging a mixed answer.

Notes. A think tag inside the answer is rejected even within a code fence: from the text
alone "R1 closed its thinking twice" and "the answer quotes the tag" look the same, and
losing a rare row costs less than leaking reasoning into the `answer` variant. Language
checks skip "mixed" / "unknown" prompts and prompts that ask for a language change
(`language_switch_ok`, see `language.names_target_language`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from builder import language as lang
from builder.reasoning_format import R1
from builder.responses import truncation
from builder.responses.repetition import THRESHOLD as REPETITION_THRESHOLD
from builder.responses.repetition import repetition_score
from builder.responses.shapes import (
    BINARY,
    NOT_A_STRING,
    TOO_LARGE,
    Parsed,
)

REJECT_CODES = frozenset(
    {
        "not_a_string", "reply_too_large", "binary_garbage", "content_null",
        "content_filter", "abnormal_finish", "missing_think", "unclosed_think",
        "duplicate_think", "text_before_think", "unclosed_answer", "text_outside_answer",
        "empty_think", "empty_answer", "think_tag_in_answer", "truncated_in_think",
        "truncated_in_answer", "repetition_loop", "language_mismatch_think",
        "language_mismatch_answer", "mixed_language_answer", "too_long_for_student", "secret_in_reply",
        "answer_in_reasoning", "teacher_tool_calls",
    }
)  # fmt: skip
INFO_CODES = frozenset(
    {"answer_tags_absent", "two_reasoning_fields", "replacement_chars", "think_answer_mismatch"}
    | {truncation.EVIDENCE_PREFIX + e for e in truncation.EVIDENCE}
)
CODES = REJECT_CODES | INFO_CODES

MAX_STUDENT_TOKENS = 16_384
_NORMAL_FINISH = frozenset({"stop", "eos", "end_turn", "stop_sequence"})
_DEFINITE_EXCLUDED = frozenset({lang.MIXED, lang.UNKNOWN})
_UNPARSED = frozenset({NOT_A_STRING, TOO_LARGE, BINARY})
# A mixed answer is rejected when languages the prompt does not allow hold this share.
# Calibrated on real Chinese answers (alpaca_zh / dpo_zh / alignbench references):
# names, song titles and unfenced code put 20-40 % Latin into fine Chinese answers.
MIXED_FOREIGN_SHARE = 0.4


@dataclass(slots=True)
class Validation:
    codes: list[str]  # reject codes in the order found; empty -> keep the row
    info: list[str] = field(default_factory=list)
    repetition_score: float = 0.0
    think_language: str = lang.UNKNOWN
    answer_language: str = lang.UNKNOWN

    @property
    def ok(self) -> bool:
        return not self.codes


def _allowed_languages(prompt_language: object) -> frozenset[str]:
    """A language code, or a set of them (see `language.prompt_languages`)."""
    if isinstance(prompt_language, str):
        return frozenset() if prompt_language in _DEFINITE_EXCLUDED else frozenset({prompt_language})
    if isinstance(prompt_language, (set, frozenset, list, tuple)):
        return frozenset(p for p in prompt_language if isinstance(p, str)) - _DEFINITE_EXCLUDED
    return frozenset()


def _leaks(answer: str, parsed: Parsed) -> bool:
    markers = (*parsed.delimiters.all(), R1.think_open, R1.think_close)
    return any(m in answer for m in markers)


def validate(
    parsed: Parsed,
    finish_reason: object,
    prompt_language: str | frozenset[str] | None,
    student_tokens: int | None,
    max_student_tokens: int = MAX_STUDENT_TOKENS,
    *,
    repetition_threshold: float = REPETITION_THRESHOLD,
    language_switch_ok: bool = False,
    completion_tokens: object = None,
    max_tokens: object = None,
    infer_truncation: bool = False,
    prompt_scripts: frozenset[str] = frozenset(),
    expects_thinking: bool = True,
    prompt: str = "",
) -> Validation:
    """Reject codes and scores for one normalized reply. Never raises on bad input.

    `completion_tokens` / `max_tokens`: the reply's usage and the teacher's budget, when the
    row carries them. `infer_truncation`: judge truncation from the text and token counts
    when `finish_reason` is None (unknown). `prompt_scripts`: scripts present in the prompt
    (`language.prompt_scripts`), whose letters an answer may quote. `expects_thinking`: False
    for a control (non-reasoning) teacher, whose plain answer is not prefilled thinking.
    `prompt`: the user turn, for the truncation rules that read its options."""
    codes = [c for c in parsed.codes if c in REJECT_CODES]
    info = [c for c in parsed.codes if c not in REJECT_CODES]
    if parsed.shape in _UNPARSED:
        return Validation(codes, info)

    if finish_reason is not None and not isinstance(finish_reason, str):
        codes.append("abnormal_finish")
    elif finish_reason == "content_filter":
        codes.append("content_filter")
    elif finish_reason is not None and finish_reason != "length" and finish_reason not in _NORMAL_FINISH:
        codes.append("abnormal_finish")
    else:
        cut = truncation.find_cut(
            parsed, finish_reason, completion_tokens, max_tokens, infer=infer_truncation, expects_thinking=expects_thinking,
            prompt=prompt if isinstance(prompt, str) else "",
        )
        if cut is not None:
            codes.append(cut.code)
            info.append(cut.info_code)

    think, answer = parsed.think, parsed.answer
    if think is None:
        codes.append("missing_think")
    elif not think:
        codes.append("empty_think")
    if answer is not None:
        if not answer:
            codes.append("empty_answer")
        elif _leaks(answer, parsed):
            codes.append("think_tag_in_answer")

    # Code is legitimately repetitive (SQL, R, tables of asserts); answers are scored on their
    # prose. A loop inside the thinking is still caught, and code answers are run by verify.
    prose = lang.strip_code_and_math(answer) if isinstance(answer, str) else answer
    score = max(repetition_score(think), repetition_score(prose))
    if score >= repetition_threshold:
        codes.append("repetition_loop")

    think_guess, answer_guess = lang.identify(think), lang.identify(answer)
    think_language, answer_language = think_guess.language, answer_guess.language
    allowed = _allowed_languages(prompt_language)
    if allowed and not language_switch_ok:
        if think_language not in _DEFINITE_EXCLUDED and not lang.compatible(
            think_language, allowed, think_guess.uncertain
        ):
            codes.append("language_mismatch_think")
        if answer_language == lang.MIXED:
            quoted = prompt_scripts if isinstance(prompt_scripts, frozenset) else frozenset()
            foreign = sum(
                v
                for k, v in answer_guess.proportions.items()
                if not lang.compatible(k, allowed, answer_guess.uncertain) and lang.SCRIPT_OF.get(k) not in quoted
            )
            if foreign >= MIXED_FOREIGN_SHARE:
                codes.append("mixed_language_answer")
        elif answer_language != lang.UNKNOWN and not lang.compatible(answer_language, allowed, answer_guess.uncertain):
            codes.append("language_mismatch_answer")

    if isinstance(student_tokens, int) and student_tokens > max_student_tokens:
        codes.append("too_long_for_student")
    return Validation(list(dict.fromkeys(codes)), info, score, think_language, answer_language)
