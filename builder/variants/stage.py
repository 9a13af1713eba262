"""The variants stage: prompts + selected replies → one chat dataset per variant.

Reads  <work>/curate/prompts, <work>/responses/parsed (selected rows)
Writes <work>/variants/<variant>/part-*.parquet (VARIANT_FEATURES), one row id (prompt_id)
       per prompt shared by every variant, and <work>/variants/ledger.parquet where each
       variant is a step: every curated prompt is either in it or absent with a reason.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from builder.errors import UserError
from builder.ledger import DROPPED, KEPT, Ledger
from builder.recipe import Recipe
from builder.rows import VARIANT_FEATURES, provenance_defaults
from builder.tokens import count_tokens
from builder.variants.config import VariantsConfig
from builder.variants.registry import REGISTRY, Candidate, Skip
from builder.variants.summarizer import check_summary, extractive_summary
from builder.workdir import WorkDir, iter_rows, write_shards

STAGE = "variants"
CHATML_OVERHEAD = 5  # <|im_start|> role \n … <|im_end|> \n: tokens per message beyond content


@dataclass
class VariantsResult:
    counts: dict[str, int]
    absent: dict[str, dict[str, int]]
    seconds: float
    steps: list[tuple[str, int, int, dict[str, int]]]


def config_of(recipe: Recipe) -> VariantsConfig:
    cfg = VariantsConfig.model_validate(recipe.variants or {})
    unknown = [v for v in cfg.build if v not in REGISTRY]
    if unknown:
        raise UserError(f"{recipe.path}: variants.build: unknown variant(s) {unknown}; known: {sorted(REGISTRY)}")
    return cfg


def _summaries(cands: list[Candidate], cfg: VariantsConfig) -> None:
    s = cfg.summarizer
    if s.kind != "extractive":
        from builder.variants.llm_summary import summarize_with_llm

        summarize_with_llm(cands, s)
        return
    for c in cands:
        if c.reasoning is None:
            continue
        think, answer = c.reasoning["think"] or "", c.reasoning["answer"] or ""
        summary = extractive_summary(think, answer, s.max_ratio, s.max_chars)
        prompt_text = next((m["content"] for m in reversed(c.prompt["messages"]) if m["role"] == "user"), "")
        failure = check_summary(summary, think, answer, prompt_text, s.max_ratio)
        if failure:
            c.summary_failure = failure
        else:
            c.summary = summary


def run_variants(recipe: Recipe, work: WorkDir, progress: Any = None) -> VariantsResult:
    t0 = time.perf_counter()
    cfg = config_of(recipe)
    prompts = list(iter_rows(work.require("curate", "prompts", "curate")))
    selected: dict[tuple[str, str], dict[str, Any]] = {}
    for f in work.require("responses", "parsed", "variants"):
        for r in pq.read_table(f).to_pylist():
            if r["selected"]:
                selected[(r["prompt_id"], r["teacher_role"])] = r
    cands = [Candidate(p, selected.get((p["prompt_id"], "reasoning")), selected.get((p["prompt_id"], "control")))
             for p in prompts]
    if "think_summary" in cfg.build:
        if progress:
            progress(f"summarizing {sum(c.reasoning is not None for c in cands):,} thinking traces ({cfg.summarizer.kind})")
        _summaries(cands, cfg)

    prompt_tokens = count_tokens(cfg.student_tokenizer, ["\n".join(m["content"] for m in p["messages"]) for p in prompts])
    prompt_tokens = [t + CHATML_OVERHEAD * len(p["messages"]) for t, p in zip(prompt_tokens, prompts)]
    ledger = Ledger(STAGE)
    prov = provenance_defaults()
    counts: dict[str, int] = {}
    absent: dict[str, dict[str, int]] = {}
    out = work.stage(STAGE)
    summarizer_label = "extractive" if cfg.summarizer.kind == "extractive" else str((cfg.summarizer.teacher or {}).get("model", "llm"))
    for name in cfg.build:
        fn = REGISTRY[name]
        ledger.enter(name, len(cands))
        results = [fn(c) for c in cands]
        texts = [r if isinstance(r, str) else "" for r in results]
        a_tokens = count_tokens(cfg.student_tokenizer, texts)
        cols: dict[str, list[Any]] = {k: [] for k in VARIANT_FEATURES}
        reasons: Counter[str] = Counter()
        for c, res, n_tok, p_tok in zip(cands, results, a_tokens, prompt_tokens):
            p = c.prompt
            total = p_tok + n_tok + CHATML_OVERHEAD
            if isinstance(res, str) and total > cfg.max_student_tokens:
                res = Skip("too_long_for_student")
            if isinstance(res, Skip):
                reasons[res.reason] += 1
                ledger.record(name, DROPPED, source=p["source"], source_row_id=p["source_row_id"],
                              prompt_id=p["prompt_id"], reason=res.reason)
                continue
            reply = c.control if name == "control" else (c.reasoning if name != "original" else None)
            row = {
                "prompt_id": p["prompt_id"], "variant": name,
                "messages": [*p["messages"], {"role": "assistant", "content": res}],
                "tools_json": p["tools_json"], "category": p["category"], "language": p["language"],
                "num_turns": p["num_turns"],
                "generation_id": reply["generation_id"] if reply else None,
                "teacher_model": reply["teacher_model"] if reply else None,
                "endpoint_kind": reply["endpoint_kind"] if reply else None,
                "prompt_template_id": reply["prompt_template_id"] if reply else None,
                "prompt_template_hash": reply["prompt_template_hash"] if reply else None,
                "summarizer": summarizer_label if name == "think_summary" else None,
                "summary_template_id": cfg.summarizer.template if name == "think_summary" and cfg.summarizer.kind == "llm" else None,
                "summary_template_hash": None,
                "reply_shape": reply["shape"] if reply else None,
                "verify_status": reply["verify_status"] if reply else "unverifiable",
                "verify_method": reply["verify_method"] if reply else "none",
                "verify_reason": reply["verify_reason"] if reply else "community_response",
                "quality_codes": reply["info_codes"] if reply else [],
                "repetition_score": reply["repetition_score"] if reply else None,
                "think_language": reply["think_language"] if reply else None,
                "answer_language": reply["answer_language"] if reply else None,
                "teacher_think_tokens": reply["teacher_think_tokens"] if reply else None,
                "teacher_answer_tokens": reply["teacher_answer_tokens"] if reply else None,
                "student_tokens": total, "assistant_student_tokens": n_tok,
                "source": p["source"], "source_license": p["source_license"], "source_row_id": p["source_row_id"],
                **prov,
            }
            for k in VARIANT_FEATURES:
                cols[k].append(row[k])
            ledger.record(name, KEPT, source=p["source"], source_row_id=p["source_row_id"], prompt_id=p["prompt_id"])
        write_shards(cols, VARIANT_FEATURES, out / name)
        counts[name] = len(cols["prompt_id"])
        absent[name] = dict(reasons)
        if progress:
            progress(f"{name}: {counts[name]:,} rows")
    ledger.close(out)
    res = VariantsResult(counts, absent, time.perf_counter() - t0, ledger.summary())
    work.write_summary(STAGE, {"counts": counts, "absent": absent, "summarizer": summarizer_label,
                               "variants": cfg.build, "seconds": res.seconds})
    return res
