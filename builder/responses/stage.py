"""The responses stage: stored replies → (think, answer), grammar codes, verification.

Reads  <work>/curate/prompts, <work>/generate/replies
Writes <work>/responses/parsed/      kept replies (PARSED_FEATURES), `selected` marks the
                                     one sample per (prompt, teacher role) the variants use
       <work>/responses/quarantine/  rejected replies with their reject codes
       <work>/responses/ledger.parquet

With n samples per prompt, the selected sample is the first kept one that passed
verification, else the first kept one (rejection sampling); which one is recorded.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from builder.ledger import DROPPED, KEPT, Ledger
from builder.recipe import Recipe
from builder.responses.config import ResponsesConfig
from builder.responses.grammar import REJECT_CODES, validate
from builder.responses.language import prompt_languages
from builder.responses.shapes import normalize, resolve_delimiters
from builder.rows import PARSED_FEATURES, provenance_defaults
from builder.workdir import WorkDir, write_shards

STAGE = "responses"
# A non-reasoning (control) teacher has no thinking by design.
CONTROL_IGNORED = frozenset({"missing_think", "answer_tags_absent"})


@dataclass
class ResponsesResult:
    rows_in: int
    kept: int
    quarantined: int
    reasons: dict[str, int]
    verify: dict[str, int]
    seconds: float
    steps: list[tuple[str, int, int, dict[str, int]]] = field(default_factory=list)


def config_of(recipe: Recipe) -> ResponsesConfig:
    return ResponsesConfig.model_validate(recipe.responses or {})


def _prompt_info(work: WorkDir) -> dict[str, dict[str, Any]]:
    cols = ["prompt_id", "messages", "category", "language", "reference_answer", "tests_json", "verifier", "source"]
    info: dict[str, dict[str, Any]] = {}
    for f in work.require("curate", "prompts", "curate"):
        for row in pq.read_table(f, columns=cols).to_pylist():
            last_user = next((m["content"] for m in reversed(row["messages"]) if m["role"] == "user"), "")
            row["prompt_text"] = last_user
            del row["messages"]
            info[row["prompt_id"]] = row
    return info


def process_batch(replies: list[dict[str, Any]], prompts: dict[str, dict[str, Any]], cfg: ResponsesConfig) -> list[dict[str, Any]]:
    """Parse, validate and verify a batch of replies; pure, so it can run in a worker."""
    from builder.responses.verify import verify
    from builder.tokens import count_tokens

    out: list[dict[str, Any]] = []
    parsed_all = []
    for r in replies:
        try:
            delims = resolve_delimiters(r.get("reasoning_format") or "r1")
        except Exception:  # an unknown preset name is a recipe bug; parse as R1 and flag it
            delims = resolve_delimiters("r1")
        parsed_all.append(normalize(r.get("content"), r.get("reasoning_content"), r.get("reasoning"), r.get("finish_reason"), delims))
    answers = [p.answer if isinstance(p.answer, str) else "" for p in parsed_all]
    thinks = [p.think if isinstance(p.think, str) else "" for p in parsed_all]
    student = count_tokens(cfg.student_tokenizer, answers)
    t_think = count_tokens(cfg.teacher_tokenizer, thinks)
    t_ans = count_tokens(cfg.teacher_tokenizer, answers)
    prov = provenance_defaults()
    kw = {} if cfg.repetition_threshold is None else {"repetition_threshold": cfg.repetition_threshold}
    for i, (r, p) in enumerate(zip(replies, parsed_all)):
        pinfo = prompts.get(r["prompt_id"], {})
        if r.get("status") != "ok":
            codes, info = [f"generation_failed:{r.get('error_code') or 'unknown'}"], []
            v_status, v_method, v_reason = "unverifiable", "none", "no_reply"
            val = None
        else:
            val = validate(p, r.get("finish_reason"), prompt_languages(pinfo.get("prompt_text")), None, cfg.max_student_tokens, **kw)
            codes, info = list(val.codes), list(val.info)
            if r.get("teacher_role") == "control":
                codes = [c for c in codes if c not in CONTROL_IGNORED]
            codes += [c for c in info if c in cfg.reject_info]
            v_status, v_method, v_reason = "unverifiable", "none", "rejected"
            if not codes and answers[i]:
                verifier = pinfo.get("verifier") or "auto"
                if verifier == "code" and not cfg.verify_code:
                    verifier = "none"
                try:
                    v = verify(answers[i], pinfo.get("category") or "", pinfo.get("reference_answer"),
                               pinfo.get("tests_json"), None if verifier == "auto" else verifier)
                    v_status, v_method, v_reason = v.status, v.method, v.reason
                except Exception as e:  # a verifier bug must not sink the stage; record it
                    v_status, v_method, v_reason = "unverifiable", "error", f"verifier_error:{type(e).__name__}"
                if v_status not in cfg.keep_verify:
                    codes.append(f"verify_{v_status}")
        out.append({
            "generation_id": r["generation_id"], "prompt_id": r["prompt_id"], "teacher_role": r["teacher_role"],
            "sample_index": r["sample_index"], "teacher_model": r["teacher_model"], "served_model": r.get("served_model"),
            "endpoint_kind": r["endpoint_kind"], "prompt_template_id": r.get("prompt_template_id"),
            "prompt_template_hash": r.get("prompt_template_hash"), "finish_reason": r.get("finish_reason"),
            "think": p.think if isinstance(p.think, str) else None,
            "answer": p.answer if isinstance(p.answer, str) else None,
            "shape": p.shape, "reject_codes": codes, "info_codes": info,
            "verify_status": v_status, "verify_method": v_method, "verify_reason": v_reason,
            "repetition_score": float(val.repetition_score) if val else 0.0,
            "think_language": val.think_language if val else "unknown",
            "answer_language": val.answer_language if val else "unknown",
            "teacher_think_tokens": t_think[i], "teacher_answer_tokens": t_ans[i],
            "student_answer_tokens": student[i], "selected": False, **prov,
        })
    return out


def _select(rows: list[dict[str, Any]]) -> None:
    """Mark one kept sample per (prompt, role): verified first, then lowest sample index."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["prompt_id"], r["teacher_role"])
        cur = best.get(key)
        rank = (r["verify_status"] != "pass", r["sample_index"])
        if cur is None or rank < (cur["verify_status"] != "pass", cur["sample_index"]):
            best[key] = r
    for r in best.values():
        r["selected"] = True


def run_responses(recipe: Recipe, work: WorkDir, progress: Any = None) -> ResponsesResult:
    t0 = time.perf_counter()
    cfg = config_of(recipe)
    prompts = _prompt_info(work)
    files = work.require("generate", "replies", "generate")
    ledger = Ledger(STAGE)
    kept: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    batches: list[list[dict[str, Any]]] = []
    for f in files:
        pf = pq.ParquetFile(f)
        for b in pf.iter_batches(batch_size=cfg.batch_rows):
            batches.append(b.to_pylist())
    n_in = sum(len(b) for b in batches)
    ledger.enter("parse_validate_verify", n_in)
    if cfg.workers > 1 and len(batches) > 1:
        with ProcessPoolExecutor(cfg.workers) as pool:
            results = list(pool.map(process_batch, batches, [prompts] * len(batches), [cfg] * len(batches)))
    else:
        results = [process_batch(b, prompts, cfg) for b in batches]
    reasons: Counter[str] = Counter()
    for rows in results:
        for row in rows:
            src = prompts.get(row["prompt_id"], {}).get("source", "")
            if row["reject_codes"]:
                quarantined.append(row)
                code = row["reject_codes"][0]
                reasons[code] += 1
                ledger.record("parse_validate_verify", DROPPED, source=src, source_row_id=row["generation_id"],
                              prompt_id=row["prompt_id"], reason=code, detail=",".join(row["reject_codes"]))
            else:
                kept.append(row)
                ledger.record("parse_validate_verify", KEPT, source=src, source_row_id=row["generation_id"], prompt_id=row["prompt_id"])
        if progress is not None:
            progress(f"{len(kept) + len(quarantined):,}/{n_in:,} replies")
    _select(kept)
    out = work.stage(STAGE)
    cols_k = {k: [r[k] for r in kept] for k in PARSED_FEATURES}
    cols_q = {k: [r[k] for r in quarantined] for k in PARSED_FEATURES}
    write_shards(cols_k, PARSED_FEATURES, out / "parsed")
    write_shards(cols_q, PARSED_FEATURES, out / "quarantine")
    ledger.close(out)
    verify_counts = Counter(f"{r['teacher_role']}:{r['verify_method']}:{r['verify_status']}" for r in kept)
    res = ResponsesResult(n_in, len(kept), len(quarantined), dict(reasons), dict(verify_counts),
                          time.perf_counter() - t0, ledger.summary())
    work.write_summary(STAGE, {"rows_in": n_in, "kept": len(kept), "quarantined": len(quarantined),
                               "reasons": dict(reasons), "verify": dict(verify_counts),
                               "shapes": dict(Counter(r["shape"] for r in kept + quarantined)),
                               "seconds": res.seconds})
    return res


__all__ = ["run_responses", "process_batch", "REJECT_CODES"]
