"""The variants stage's summaries (S_think), computed once per bucket of candidates: the
extractive summarizer in forked workers over chunks (pure Python over long texts), the LLM
summarizer through the teacher service, each summary scored against the recipe's thresholds,
and the prompt's mechanical constraints applied (the rest declined, recorded as codes)."""

from __future__ import annotations

from typing import Any

from builder.config.variants import VariantsConfig
from builder.constraints.apply import constrain_summary
from builder.cpus import usable_cores
from builder.language import preload_models
from builder.progress import Progress, counted
from builder.variants.llm_summary import LlmSummarizer
from builder.variants.registry import Candidate
from builder.variants.summarizer import SummaryGate, assess_summary, extractive_summary


def user_text(prompt: dict[str, Any]) -> str:
    return next((m["content"] or "" for m in reversed(prompt["messages"] or []) if m["role"] == "user"), "")


# Set just before forking summary workers: they read the candidates copy-on-write.
_SUMMARY_JOB: tuple[list[Candidate], SummaryGate, int, int] | None = None
Scores = tuple[float, float, float, "bool | None", float]


def assess(c: Candidate, summary: str, gate: SummaryGate) -> tuple[str | None, Scores | None]:
    """(failure, scores) of a candidate's summary against the recipe's thresholds."""
    r = c.reasoning or {}
    failure, sc, faith = assess_summary(summary, r.get("think") or "", r.get("answer") or "", user_text(c.prompt), gate)
    if sc is None or faith is None:
        return failure, None
    return failure, (sc.fragment_rate, sc.filler_rate, sc.repetition, sc.final_covered, faith)


def _extractive_range(bounds: tuple[int, int]) -> list[tuple[str | None, str | None, Scores | None, list[str]]]:
    """(summary, failure, scores, notes) for candidates[lo:hi]; Nones where there is no reply."""
    assert _SUMMARY_JOB is not None
    cands, gate, max_chars, max_sents = _SUMMARY_JOB
    out: list[tuple[str | None, str | None, Scores | None, list[str]]] = []
    for c in cands[bounds[0] : bounds[1]]:
        if c.reasoning is None:
            out.append((None, None, None, []))
            continue
        think, answer = c.reasoning["think"] or "", c.reasoning["answer"] or ""
        summary = extractive_summary(think, answer, gate.max_ratio, max_chars, user_text(c.prompt), max_sents)
        notes: list[str] = []
        if c.constraints:  # the mechanical constraints applied; the rest declined (recorded)
            summary, declined = constrain_summary(summary, answer, c.constraints)
            notes = [f"summary_declined:{d}" for d in declined]
        failure, scores = assess(c, summary, gate)
        out.append((None if failure else summary, failure, scores, notes))
    return out


def summaries(cands: list[Candidate], cfg: VariantsConfig, llm: LlmSummarizer | None = None,
              progress: Progress | None = None, workers: int = 2) -> None:  # fmt: skip
    """Summaries onto the candidates; extractive ones in up to `workers` forked processes (1 in a
    datatrove task on the local executor: its pool's processes may not fork children)."""
    global _SUMMARY_JOB
    s = cfg.summarizer
    gate = SummaryGate.of(s)
    if llm is not None:
        llm.summarize(cands, [user_text(c.prompt) for c in cands], progress)
        for c in cands:  # the LLM path checked them already; the scores become columns
            if c.summary is not None:
                c.summary_scores = assess(c, c.summary, gate)[1]
        return
    step = "summarizing thinking (extractive)"
    preload_models()  # the summary's language check: loaded here once, not in every forked worker
    _SUMMARY_JOB = (cands, gate, s.max_chars, s.max_sentences)
    try:
        workers = min(workers, usable_cores())
        chunk = 2_048
        bounds = [(i, min(i + chunk, len(cands))) for i in range(0, len(cands), chunk)]
        if workers > 1 and len(bounds) > 1:
            import multiprocessing

            # The summary is pure Python over long texts: two forked workers halve it.
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = list(counted(pool.imap(_extractive_range, bounds), progress, step, len(cands), weight=chunk))
        else:
            parts = [_extractive_range(b) for b in counted(bounds, progress, step, len(cands), weight=chunk)]
    finally:
        _SUMMARY_JOB = None
    for c, (summary, failure, scores, notes) in zip(cands, (r for part in parts for r in part)):
        c.summary_scores = scores
        c.extra_codes += notes
        if failure:
            c.summary_failure = failure
        elif summary is not None:
            c.summary = summary


_SUMMARY_COLS = ("summary_fragment_rate", "summary_filler_rate", "summary_repetition", "summary_final_covered",
                 "faithfulness_score")  # fmt: skip


def summary_columns(scores: Scores | None) -> dict[str, Any]:
    return dict(zip(_SUMMARY_COLS, scores)) if scores is not None else dict.fromkeys(_SUMMARY_COLS)
