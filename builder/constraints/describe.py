"""Constraints as instructions for the LLM summarizer's prompt (recipes/prompts/summarize_think.yaml)."""

from __future__ import annotations

from builder.constraints.spec import Constraint

_TEXT = {
    "punctuation:no_comma": "Use no commas.",
    "change_case:english_lowercase": "Write only lowercase letters.",
    "change_case:english_capital": "Write only capital letters.",
    "keywords:forbidden_words": "Never use these words: {forbidden_words}.",
    "language:response_language": "Write in the language with code {language}.",
    "length_constraints:number_words": "The whole reply (your summary plus the answer) must have {relation} {num_words} words.",
    "length_constraints:number_sentences": "The whole reply must have {relation} {num_sentences} sentences.",
    "keywords:letter_frequency": "The letter {letter} must appear {let_relation} {let_frequency} times in the whole reply.",
    "keywords:frequency": "The word {keyword} must appear {relation} {frequency} times in the whole reply.",
}


def describe(items: list[Constraint]) -> str:
    """One line per constraint the summary can obey; shape constraints (JSON, quotation …) are the
    answer's and are not asked of a summary that precedes it. "(none)" when nothing applies."""
    lines = []
    for c in items:
        tpl = _TEXT.get(c.id)
        if tpl:
            kw = {k: ", ".join(v) if isinstance(v, list) else v for k, v in c.kwargs.items()}
            lines.append("- " + tpl.format(**kw))
    if any(c.id.startswith("detectable_format") for c in items):
        lines.append("- Use no markdown (no headings, bullets, bold or code blocks).")
    return "\n".join(lines) or "(none)"
