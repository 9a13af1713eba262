"""Make a summary obey the mechanical constraints (case, commas, forbidden words, length, language)
of the whole turn it will open; name the ones it cannot apply (declined, recorded by the caller).

The summary is followed by the exact answer, so a length limit is the turn's: the summary gets
what the answer leaves. Anything about the reply's shape (JSON, quotation, sections, an end
phrase …) cannot be met by text *in front of* the answer: declined, and the gate decides.
"""

from __future__ import annotations

import re

from builder.constraints.checks import _dominant_script, _sentences, _words
from builder.constraints.spec import Constraint

# Constraints a summary in front of the answer cannot break, or breaks only through counts the
# answer already meets: nothing to apply.
NEUTRAL = {"keywords:existence", "detectable_content:number_placeholders", "detectable_format:number_highlighted_sections",
           "detectable_format:title", "detectable_content:postscript", "change_case:capital_word_frequency"}  # fmt: skip


def _sent_split(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?。！？])\s+", text) if s.strip()]


def constrain_summary(summary: str, answer: str, items: list[Constraint]) -> tuple[str, list[str]]:
    """(the summary with the mechanical constraints applied — "" when none of it can stay, declined ids)."""
    declined: list[str] = []
    out = summary
    for c in items:
        kw = c.kwargs
        if c.id in NEUTRAL:
            continue
        if c.id == "change_case:english_lowercase":
            out = out.lower()
        elif c.id == "change_case:english_capital":
            out = out.upper()
        elif c.id == "punctuation:no_comma":
            out = re.sub(r"\s*[,，]\s*", " ", out)
        elif c.id == "keywords:forbidden_words":
            bad = [w for w in kw["forbidden_words"]]
            out = " ".join(s for s in _sent_split(out)
                           if not any(re.search(rf"\b{re.escape(w)}\b", s, re.I) for w in bad))  # fmt: skip
        elif c.id == "keywords:frequency" and kw["relation"] == "less than":
            w = kw["keyword"]
            out = " ".join(s for s in _sent_split(out) if not re.search(re.escape(w), s, re.I))
        elif c.id == "keywords:letter_frequency" and kw["let_relation"] == "less than":
            out = " ".join(s for s in _sent_split(out) if kw["letter"].lower() not in s.lower())
        elif c.id == "length_constraints:number_words" and kw["relation"] == "less than":
            out = _fit(out, kw["num_words"] - 1 - len(_words(answer)), lambda t: len(_words(t)))
        elif c.id == "length_constraints:number_sentences" and kw["relation"] == "less than":
            out = _fit(out, kw["num_sentences"] - 1 - len(_sentences(answer)), lambda t: len(_sentences(t)))
        elif c.id in ("length_constraints:number_words", "length_constraints:number_sentences"):
            continue  # "at least": a summary only adds
        elif c.id == "language:response_language":
            if _dominant_script(out) != _dominant_script(answer):
                out = ""  # a summary in another script cannot be translated here
                declined.append(c.id)
        else:
            declined.append(c.id)
    return out.strip(), declined


def _fit(text: str, budget: int, size: object) -> str:
    """The leading sentences of `text` whose size stays within `budget` (a count)."""
    if budget <= 0:
        return ""
    kept: list[str] = []
    for s in _sent_split(text):
        if size(" ".join([*kept, s])) > budget:  # type: ignore[operator]
            break
        kept.append(s)
    return " ".join(kept)
