"""What issue 14's self-checks add to responses + variants (target ≤ 30%), one JSON last line.

Workload: benchmarks/responses.py's (the sample's real replies, code left out, replicated to
--rows with unique ids; recipes/sample.yaml's variants). In this one process `run_responses`
runs once, then `run_variants` on its output, alternately in three modes, --repeats times each;
the best CPU time of each mode is kept (CPU: this process + its reaped workers; the machine is
shared, wall time is printed with the load but not used):

    on          as shipped: every summary scored (fragment / filler / repetition / final result)
                and checked for faithfulness, the prompt's constraints parsed, applied to the
                summary and gated, thinking-length z-scores (overthinking)
    checks_off  the same summarizer with those checks patched out (no scores, no faithfulness,
                no constraints, no z-scores)
    legacy      the variants stage before issue 14: its extractive summarizer (the sentences with
                most of the answer's vocabulary, plus the first and last, within the budget) and
                its one summary check (empty, length, tags, a contradicting letter, language)

Think–answer consistency runs inside responses, in forkserver workers where it cannot be
patched out; it is timed on its own over the same kept replies with the same function and
counted as added cost.

    selfcheck_added_pct   = 100 × ((responses + variants_on) / (responses − consistency + variants_legacy) − 1)
    checks_only_added_pct = the same with variants_checks_off for variants_legacy (the summarizer's
                            rewrite counted as a feature, not a check)

    python benchmarks/selfcheck_cost.py [--rows 10000] [--repeats 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import responses as rb  # noqa: E402

from builder import tables  # noqa: E402
from builder.language import identify, prompt_languages  # noqa: E402
from builder.tokens import count_tokens  # noqa: E402
from builder.workdir import WorkDir, read_table  # noqa: E402

TARGET_PCT = 30.0


# ---------- legacy: the summarizer and summary check before issue 14 (git 3b2b61a^) ----------

_L_SENT = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])\s*|\s*\n\s*")
_L_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_L_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|\w{3,}")
_L_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_L_LETTER = re.compile(
    r"\banswer(?:\s+is|:)\s*\**\s*\(?([A-J])\)?(?!\w)|(?:答案|选项)\s*(?:是|为|：|:)\s*\(?([A-J])\)?", re.I
)
_L_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def _l_sentences(text: str) -> list[str]:
    if "```" in text:
        text = _L_FENCE.sub("\n", text)
    return [s.strip() for s in _L_SENT.split(text) if s and s.strip()]


def legacy_summary(think: str, answer: str, max_ratio: float, max_chars: int, *_: Any) -> str:
    sents = _l_sentences(think or "")
    if not sents:
        return ""
    budget = min(max_chars, int(len(think) * max_ratio))
    vocab = {w.casefold() for w in _L_WORD.findall(answer or "")}
    scored = []
    for i, s in enumerate(sents):
        ws = [w.casefold() for w in _L_WORD.findall(s)]
        overlap = sum(w in vocab for w in ws) / (len(ws) or 1)
        scored.append((-(overlap + (1.0 if i in (0, len(sents) - 1) else 0.0)), i))
    chosen, used = [], 0
    for _, i in sorted(scored):
        if used + len(sents[i]) + 1 <= budget:
            chosen.append(i)
            used += len(sents[i]) + 1
    out = ""
    for i in sorted(chosen):
        out = sents[i] if not out else out + ("" if out.endswith(("。", "！", "？", "；")) else " ") + sents[i]
    return out


def _l_answers(text: str) -> set[str]:
    return {b.replace(" ", "") for b in _L_BOXED.findall(text)} | {(a or b).upper() for a, b in _L_LETTER.findall(text)}


def legacy_check(summary: str, think: str, answer: str, prompt: str, max_ratio: float) -> str | None:
    if not summary.strip():
        return "summary_empty"
    if len(summary) > max_ratio * len(think or ""):
        return "summary_too_long"
    if any(t in summary for t in _L_TAGS):
        return "summary_has_tags"
    stated, final = _l_answers(summary), _l_answers(answer or "")
    if stated and final and not (stated & final):
        return "summary_contradicts_answer"
    allowed, lang = prompt_languages(prompt), identify(summary).language
    if allowed and lang not in ("mixed", "unknown") and lang not in allowed:
        return "summary_language_mismatch"
    return None


# ---------- the modes, as patches of the stage's collaborators ----------


def _patch(obj: Any, name: str, value: Any, saved: list[tuple[Any, str, Any]]) -> None:
    # A renamed collaborator must fail here, not silently leave the checks on.
    if not hasattr(obj, name):
        raise SystemExit(f"benchmarks/selfcheck_cost.py: {obj.__name__}.{name} is gone; update the patch points")
    saved.append((obj, name, getattr(obj, name)))
    setattr(obj, name, value)


@contextmanager
def mode(name: str) -> Iterator[None]:
    from builder.variants import overthinking, stage, summary_job

    saved: list[tuple[Any, str, Any]] = []
    try:
        if name != "on":
            _patch(stage, "_constraints_of", lambda c: None, saved)
            _patch(stage, "_length_stats", lambda *a: overthinking.LengthStats(), saved)
            _patch(stage, "pass_rates", lambda files: {}, saved)
            _patch(summary_job, "assess", lambda c, summary, gate: (None if summary else "summary_empty", None), saved)
        if name == "legacy":

            def check(c: Any, summary: str, gate: Any) -> tuple[str | None, None]:
                r = c.reasoning or {}
                return legacy_check(summary, r.get("think") or "", r.get("answer") or "",
                                    summary_job.user_text(c.prompt), gate.max_ratio), None  # fmt: skip

            _patch(summary_job, "extractive_summary", legacy_summary, saved)
            _patch(summary_job, "assess", check, saved)
        yield
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    c, t = _cpu(), time.perf_counter()
    out = fn()
    return out, _cpu() - c, time.perf_counter() - t


def consistency_cpu_s(work: WorkDir) -> float:
    """CPU seconds of the think–answer check over the kept reasoning replies (as responses runs it)."""
    from builder.responses.consistency import check

    parsed = read_table(work.require(tables.PARSED), columns=["prompt_id", "teacher_role", "think", "answer"])
    parsed = parsed.filter(pc.equal(parsed["teacher_role"], "reasoning"))
    prompts = read_table(work.require(tables.PROMPTS), columns=["prompt_id", "messages", "category"])
    by_id = {p: (m, c) for p, m, c in zip(*(prompts[k].to_pylist() for k in ("prompt_id", "messages", "category")))}
    rows = []
    for pid, think, answer in zip(*(parsed[k].to_pylist() for k in ("prompt_id", "think", "answer"))):
        msgs, cat = by_id.get(pid, ([], ""))
        rows.append(
            (
                think,
                answer,
                next((m["content"] or "" for m in reversed(msgs or []) if m["role"] == "user"), ""),
                cat or "",
            )
        )
    c = time.process_time()
    for think, answer, prompt, cat in rows:
        check(think, answer, prompt, cat)
    return time.process_time() - c


def measure(rows: int, repeats: int) -> dict[str, Any]:
    """The figures of the module docstring, for `rows` replies, each mode run `repeats` times."""
    from builder.recipe import load_recipe
    from builder.responses.stage import run_responses
    from builder.variants.stage import run_variants

    recipe = load_recipe(ROOT / "recipes" / "sample.yaml")
    root = Path(tempfile.mkdtemp(prefix="bench-selfcheck-cost-"))
    try:
        prompts, replies = rb.build_base(root / "base")
        rb.write_replicated(root / "work", prompts, replies, rows, 100_000)
        work = WorkDir(root / "work")
        with rb._TreeRss() as tree:  # forkserver workers are not reaped by us: sampled
            c0, t0 = rb._own_cpu_s(), time.perf_counter()
            run_responses(recipe, work)
            resp_cpu, resp_wall = rb._own_cpu_s() - c0 + sum(tree.child_cpu.values()), time.perf_counter() - t0
        cons = consistency_cpu_s(work)
        count_tokens(recipe.student.tokenizer, ["warm-up"])  # the tokenizer loads once, outside the timings
        runs: dict[str, list[tuple[float, float]]] = {"on": [], "checks_off": [], "legacy": []}
        counts: dict[str, dict[str, int]] = {}
        for i in range(repeats):
            for m in ["legacy", "checks_off", "on"] if i % 2 == 0 else ["on", "checks_off", "legacy"]:
                with mode(m):
                    res, cpu, wall = _timed(lambda: run_variants(recipe, work))
                runs[m].append((cpu, wall))
                counts[m] = res.counts
                print(
                    f"variants {m:10s} {cpu:7.2f} CPU s {wall:7.2f} s wall  {res.counts}  load {os.getloadavg()[0]:.1f}"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    best = {m: min(r[0] for r in v) for m, v in runs.items()}
    on, off, legacy = best["on"], best["checks_off"], best["legacy"]
    out = {
        "rows": rows,
        "repeats": repeats,
        "responses_cpu_s": round(resp_cpu, 2),
        "responses_wall_s": round(resp_wall, 2),
        "consistency_cpu_s": round(cons, 2),
        "variants_cpu_s_on": round(on, 2),
        "variants_cpu_s_checks_off": round(off, 2),
        "variants_cpu_s_legacy": round(legacy, 2),
        "variants_wall_s": {m: round(min(r[1] for r in v), 2) for m, v in runs.items()},
        "think_summary_rows": {m: c.get("think_summary") for m, c in counts.items()},
        # Before: responses without the consistency check, variants without the checks.
        "selfcheck_added_pct": round(100 * ((resp_cpu + on) / (resp_cpu - cons + legacy) - 1), 1),
        "checks_only_added_pct": round(100 * ((resp_cpu + on) / (resp_cpu - cons + off) - 1), 1),
        "target_pct": TARGET_PCT,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    out["target_met"] = out["selfcheck_added_pct"] <= TARGET_PCT
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000, help="replies in the replicated workload (default 10,000)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of variants per mode; the best CPU time is kept")
    ap.add_argument("--quick", action="store_true", help="2,000 replies, 1 repeat")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 2_000, 1
    out = measure(args.rows, args.repeats)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
