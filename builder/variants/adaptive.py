"""The `adaptive` variant's choice (the paper's open question 2): per row, the answer only or the
summary + answer, by the recipe's policy (config/variants.py AdaptivePolicy). Codes from other
checks are read generically from the reply's `info_codes` (fnmatch patterns in the policy), so a
check added later (think–answer consistency, summary faithfulness) steers it without an import."""

from __future__ import annotations

from fnmatch import fnmatch

from builder.config.variants import AdaptivePolicy
from builder.variants.registry import Candidate

ANSWER, SUMMARY = "answer", "summary"


def choose(c: Candidate, policy: AdaptivePolicy, summary_breaks: list[str]) -> tuple[str, str]:
    """(variant_choice, choice_reason) for one candidate with a reasoning reply."""
    r = c.reasoning or {}
    if c.summary is None:
        return ANSWER, f"no_summary:{c.summary_failure or 'none'}"
    shaped = [x.id for x in c.constraints if x.id in policy.answer_only_constraints]
    if shaped:
        return ANSWER, f"constraint:{shaped[0]}"
    if summary_breaks:
        return ANSWER, f"format:{summary_breaks[0]}"
    codes = list(r.get("info_codes") or []) + list(c.extra_codes)
    hit = next((code for code in codes for pat in policy.answer_only_codes if fnmatch(code, pat)), None)
    if hit:
        return ANSWER, f"code:{hit}"
    category = c.prompt.get("category") or ""
    if category in policy.answer_categories:
        return ANSWER, f"category:{category}"
    status = r.get("verify_status") or "unverifiable"
    if status not in policy.summary_verify:
        return ANSWER, f"verify:{status}"
    tokens = r.get("teacher_think_tokens") or 0
    if tokens < policy.min_think_tokens:
        return ANSWER, f"short_thinking:{tokens}"
    if policy.max_think_tokens is not None and tokens > policy.max_think_tokens:
        return ANSWER, f"long_thinking:{tokens}"
    return SUMMARY, f"summary:{category or 'any'}"
