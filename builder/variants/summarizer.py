"""S_think: a summary of the teacher's thinking, and the checks every summary must pass.

The extractive summarizer is deterministic and offline (rows say `summarizer=extractive`):
it keeps the thinking's sentences that carry the most of the answer's vocabulary plus its
opening (the plan) and closing (the conclusion), in their original order, within a budget.
"""

from __future__ import annotations

import regex

from builder.responses.language import identify, prompt_languages

_SENT = regex.compile(r"(?<=[.!?。！？])\s+|\n{2,}")
_WORD = regex.compile(r"[\p{Han}]|\w{3,}")
_BOXED = regex.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_LETTER = regex.compile(r"(?i)\banswer(?: is|:)\s*\(?([A-J])\)?\b")


def extractive_summary(think: str, answer: str, max_ratio: float, max_chars: int) -> str:
    sents = [s.strip() for s in _SENT.split(think) if s and s.strip()]
    if not sents:
        return ""
    budget = min(max_chars, int(len(think) * max_ratio))
    answer_vocab = {w.casefold() for w in _WORD.findall(answer)}
    scored = []
    for i, s in enumerate(sents):
        words = [w.casefold() for w in _WORD.findall(s)]
        overlap = sum(w in answer_vocab for w in words) / (len(words) or 1)
        position = 1.0 if i == 0 or i == len(sents) - 1 else 0.0
        scored.append((overlap + position, -i, i))
    chosen: list[int] = []
    used = 0
    for _, _, i in sorted(scored, reverse=True):
        cost = len(sents[i]) + 1
        if used + cost > budget:
            continue
        chosen.append(i)
        used += cost
    return " ".join(sents[i] for i in sorted(chosen))


def final_answers(text: str) -> set[str]:
    """The final answers a text states: boxed values and 'answer is X' letters."""
    found = {b.replace(" ", "") for b in _BOXED.findall(text)}
    found |= {m.upper() for m in _LETTER.findall(text)}
    return found


def check_summary(summary: str, think: str, answer: str, prompt_text: str, max_ratio: float) -> str | None:
    """None when the summary is usable, else a machine-readable failure code."""
    if not summary.strip():
        return "summary_empty"
    if len(summary) > max_ratio * len(think):
        return "summary_too_long"
    stated, final = final_answers(summary), final_answers(answer)
    if stated and final and not (stated & final):
        return "summary_contradicts_answer"
    allowed = prompt_languages(prompt_text)
    lang = identify(summary).language
    if allowed and lang not in ("mixed", "unknown") and lang not in allowed:
        return "summary_language_mismatch"
    return None
