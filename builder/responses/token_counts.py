"""Token counts of a batch of parsed replies: each text counted once, by the tokenizer that owns it.

The teacher's own usage report gives its think and answer counts where the reply's shape lets
them be read off it (`reported`); only the other replies' texts are counted (builder/tokens.py).
"""

from __future__ import annotations

from typing import Any

from builder.responses.shapes import REASONING_FIELD

_SLACK = 8  # tokens a report may hold beyond one per character: markers, answer tags


def reported(r: dict[str, Any], p: Any) -> tuple[int, int] | None:
    """(think, answer) tokens from the teacher's usage report, when the reply's shape lets them be
    read off it: the thinking is the reasoning field alone (what `reasoning_tokens` counts) and
    the answer the rest of the completion, end-of-thinking marker and answer tags included (on
    the DeepSeek API our counts sit 1-2 below its total, tests/test_tokens.py). None when the
    report is absent or cannot be the texts' (a token is at least one character, but for a few
    markers and tags): those texts are counted."""
    rt, ct = r.get("reasoning_tokens"), r.get("completion_tokens")
    if rt is None or ct is None or p.shape != REASONING_FIELD or "duplicate_think" in p.codes:
        return None
    think, answer = p.think, p.answer if isinstance(p.answer, str) else ""
    if not isinstance(think, str) or not 0 < rt <= min(ct, len(think) + _SLACK):
        return None
    if ct - rt > len(answer) + 2 * _SLACK:
        return None
    return rt, ct - rt


def teacher_counts(
    replies: list[dict[str, Any]], parsed: list[Any], thinks: list[str], answers: list[str], tokenizer: str
) -> tuple[list[int], list[int]]:
    """Teacher think and answer tokens: the teacher's own report where it has one (no text
    counted twice: the teacher counted it while generating), else counted with `tokenizer`."""
    from builder.tokens import count_tokens

    reported_ = [reported(r, p) for r, p in zip(replies, parsed)]
    todo = [i for i, rep in enumerate(reported_) if rep is None]
    think_n = count_tokens(tokenizer, [thinks[i] for i in todo])
    ans_n = count_tokens(tokenizer, [answers[i] for i in todo])
    t_think = [rep[0] if rep else 0 for rep in reported_]
    t_ans = [rep[1] if rep else 0 for rep in reported_]
    for i, a, b in zip(todo, think_n, ans_n):
        t_think[i], t_ans[i] = a, b
    return t_think, t_ans
