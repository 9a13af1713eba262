"""The variants stage: prompts + selected replies → one chat dataset per variant.

READS / WRITES below (builder/tables.py): the selected rows of `parsed`; one table per variant,
one row id (prompt_id) per prompt shared by every variant, and a ledger where each variant is a
step: every curated prompt is either in it or absent with a reason.

Memory: prompts and selected replies are joined in buckets of about `bucket_rows` prompts.
When there is more than one bucket, both sides are first hash-partitioned by prompt_id into
temporary parquet files, so a bucket's prompts and replies are the only rows in memory.
Rows come out in curate order within a bucket (one bucket: curate order throughout).
"""

from __future__ import annotations

import os
import shutil
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.config.student import StudentConfig
from builder.config.variants import VariantsConfig
from builder.errors import UserError
from builder.ledger import DROPPED, KEPT, Ledger
from builder.progress import Progress, counted, report
from builder.recipe import Recipe
from builder.rows import PARSED_FEATURES, PROMPT_FEATURES, provenance_defaults
from builder.tables import VariantsSummary
from builder.tokens import count_tokens
from builder.variants.llm_summary import LlmSummarizer
from builder.variants.registry import REGISTRY, Candidate, Skip, declare, to_build
from builder.variants.summarizer import check_summary, extractive_summary
from builder.workdir import WorkDir

STAGE = "variants"
READS = (tables.PROMPTS, tables.PARSED)
WRITES = (tables.VARIANT, tables.VARIANTS_LEDGER, VariantsSummary)
CHATML_OVERHEAD = 5  # <|im_start|> role \n … <|im_end|> \n: tokens per message beyond content
# The reply columns a variant row needs (everything but the bookkeeping ones).
REPLY_COLS = [
    "generation_id", "prompt_id", "teacher_role", "teacher_model", "served_model", "endpoint_kind", "prompt_template_id",
    "prompt_template_hash", "think", "answer", "shape", "info_codes", "verify_status", "verify_method",
    "verify_reason", "repetition_score", "think_language", "answer_language", "teacher_think_tokens",
    "teacher_answer_tokens",
]  # fmt: skip
_ORDER = "_order"
# Candidates turned into variant rows at a time (their texts and row dicts are held at once).
TOKEN_CHUNK = 2_048


@dataclass
class VariantsResult:
    counts: dict[str, int]
    absent: dict[str, dict[str, int]]
    seconds: float
    steps: list[tuple[str, int, int, dict[str, int]]]


def config_of(recipe: Recipe) -> VariantsConfig:
    cfg = recipe.variants
    unknown = [v for v in to_build(cfg.build) if v not in REGISTRY]
    if unknown:
        raise UserError(f"{recipe.path}: variants.build: unknown variant(s) {unknown}; known: {sorted(REGISTRY)}")
    return cfg


def _user_text(prompt: dict[str, Any]) -> str:
    return next((m["content"] or "" for m in reversed(prompt["messages"] or []) if m["role"] == "user"), "")


# Set just before forking summary workers: they read the candidates copy-on-write.
_SUMMARY_JOB: tuple[list[Candidate], float, int] | None = None


def _extractive_range(bounds: tuple[int, int]) -> list[tuple[str | None, str | None]]:
    """(summary, failure) for candidates[lo:hi]; None, None where there is no reply."""
    assert _SUMMARY_JOB is not None
    cands, ratio, max_chars = _SUMMARY_JOB
    out: list[tuple[str | None, str | None]] = []
    for c in cands[bounds[0] : bounds[1]]:
        if c.reasoning is None:
            out.append((None, None))
            continue
        think, answer = c.reasoning["think"] or "", c.reasoning["answer"] or ""
        summary = extractive_summary(think, answer, ratio, max_chars)
        failure = check_summary(summary, think, answer, _user_text(c.prompt), ratio)
        out.append((None, failure) if failure else (summary, None))
    return out


def _summaries(cands: list[Candidate], cfg: VariantsConfig, llm: LlmSummarizer | None = None,
               progress: Progress | None = None) -> None:  # fmt: skip
    global _SUMMARY_JOB
    s = cfg.summarizer
    if llm is not None:
        llm.summarize(cands, [_user_text(c.prompt) for c in cands], progress)
        return
    step = "summarizing thinking (extractive)"
    _SUMMARY_JOB = (cands, s.max_ratio, s.max_chars)
    try:
        workers = min(2, os.cpu_count() or 1)
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
    for c, (summary, failure) in zip(cands, (r for part in parts for r in part)):
        if failure:
            c.summary_failure = failure
        elif summary is not None:
            c.summary = summary


def _bucket_of(prompt_id: str | None, n: int) -> int:
    return zlib.crc32((prompt_id or "").encode()) % n


def _partition(
    files: list[Path],
    columns: list[str] | None,
    schema: pa.Schema,
    n: int,
    out: Path,
    selected_only: bool = False,
    order: bool = False,
) -> None:
    """Hash-partition shards by prompt_id into out/bucket-<i>.parquet (optionally tagging input order)."""
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[int, pq.ParquetWriter] = {}
    seen = 0
    try:
        for f in files:
            for b in pq.ParquetFile(f).iter_batches(batch_size=8192, columns=columns):
                t = pa.Table.from_batches([b]).cast(schema)
                if order:
                    t = t.append_column(_ORDER, pa.array(range(seen, seen + t.num_rows), pa.int64()))
                seen += b.num_rows
                if selected_only:
                    t = t.filter(pc.equal(t.column("selected"), True)).drop_columns(["selected"])
                buckets = pa.array([_bucket_of(p, n) for p in t.column("prompt_id").to_pylist()], pa.int32())
                for i in sorted(set(buckets.to_pylist())):
                    part = t.filter(pc.equal(buckets, i))
                    if i not in writers:
                        writers[i] = pq.ParquetWriter(out / f"bucket-{i:05d}.parquet", part.schema)
                    writers[i].write_table(part)
    finally:
        for w in writers.values():
            w.close()


def _read_bucket(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist() if path.is_file() else []


def _buckets(
    work: WorkDir, cfg: VariantsConfig, tmp: Path
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """(prompts in curate order, selected reply rows) per bucket."""
    prompt_files = work.require(tables.PROMPTS)
    parsed_files = work.require(tables.PARSED)
    n_prompts = sum(pq.ParquetFile(f).metadata.num_rows for f in prompt_files)
    n = max(1, -(-n_prompts // cfg.bucket_rows))
    reply_cols = [*REPLY_COLS, "selected"]
    reply_schema = pa.schema([PARSED_FEATURES.arrow_schema.field(c) for c in reply_cols])
    if n == 1:
        prompts = [r for f in prompt_files for r in pq.read_table(f).to_pylist()]
        replies: list[dict[str, Any]] = []
        for f in parsed_files:
            t = pq.read_table(f, columns=reply_cols)
            replies += t.filter(pc.equal(t.column("selected"), True)).to_pylist()
        yield prompts, replies
        return
    _partition(prompt_files, None, PROMPT_FEATURES.arrow_schema, n, tmp / "prompts", order=True)
    _partition(parsed_files, reply_cols, reply_schema, n, tmp / "replies", selected_only=True)
    for i in range(n):
        prompts = sorted(_read_bucket(tmp / "prompts" / f"bucket-{i:05d}.parquet"), key=lambda r: r[_ORDER])
        yield prompts, _read_bucket(tmp / "replies" / f"bucket-{i:05d}.parquet")


def _prompt_tokens(student: StudentConfig, prompts: list[dict[str, Any]]) -> list[int]:
    # Tool definitions go into the system turn by the chat template, so they count too.
    texts = ["\n".join([*(m["content"] or "" for m in p["messages"]), p.get("tools_json") or ""]) for p in prompts]
    counts = count_tokens(student.tokenizer, texts)
    return [t + CHATML_OVERHEAD * len(p["messages"]) for t, p in zip(counts, prompts)]


def _variants(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> VariantsResult:
    # Writers below go to the run's staging folder (stage_run): a missing or corrupt input
    # found later costs nothing of the last run's outputs.
    t0 = time.perf_counter()
    cfg = config_of(recipe)
    build = to_build(cfg.build)
    # Summaries (S_think) are computed only when a built variant's spec asks for them.
    summarize = any(REGISTRY[name].needs_summary for name in build)
    out = work.stage(STAGE)
    tmp = out / ".buckets"
    shutil.rmtree(tmp, ignore_errors=True)
    ledger = Ledger(STAGE)
    prov = provenance_defaults()
    llm = (
        LlmSummarizer(recipe, work, cfg.summarizer)
        if summarize and cfg.summarizer.kind == "llm"
        else None
    )
    # Summary rows' provenance: who summarized, with which prompt (llm only).
    summ: dict[str, str | None] = {
        "summarizer": llm.label if llm else "extractive",
        "summary_template_id": llm.template.id if llm else None,
        "summary_template_hash": llm.template.hash if llm else None,
    }
    writers = {name: work.writer(tables.variant(name), cfg.shard_rows) for name in build}
    absent: dict[str, Counter[str]] = {name: Counter() for name in build}
    rows_done, rows_total = 0, len(build) * sum(pq.ParquetFile(f).metadata.num_rows for f in work.require(tables.PROMPTS))
    try:
        for prompts, replies in _buckets(work, cfg, tmp):
            selected = {(r["prompt_id"], r["teacher_role"]): r for r in replies}
            cands = [
                Candidate(p, selected.get((p["prompt_id"], "reasoning")), selected.get((p["prompt_id"], "control")))
                for p in prompts
            ]
            if summarize:
                _summaries(cands, cfg, llm, progress)
            prompt_tokens = _prompt_tokens(recipe.student, prompts)
            for name in build:
                ledger.enter(name, len(cands))
                # In chunks: a bucket's variant texts, token ids and row dicts at once would take GBs.
                for lo in range(0, len(cands), TOKEN_CHUNK):
                    hi = lo + TOKEN_CHUNK
                    _variant_chunk(
                        name, cands[lo:hi], prompt_tokens[lo:hi], recipe.student, ledger, writers[name], absent[name], prov, summ
                    )
                    rows_done += min(hi, len(cands)) - lo
                    report(progress, "building variant rows", rows_done, rows_total)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts: dict[str, int] = {}
    for name, w in writers.items():
        w.close()
        counts[name] = w.rows
    work.write_ledger(ledger)
    absent_d = {k: dict(v) for k, v in absent.items()}
    res = VariantsResult(counts, absent_d, time.perf_counter() - t0, ledger.summary())
    work.write_summary(
        VariantsSummary(
            counts=counts,
            absent=absent_d,
            summarizer=summ["summarizer"] or "",
            summarizer_accounting=llm.accounting() if llm else None,
            variants=build,
            specs=declare(build),
            seconds=res.seconds,
        )
    )
    return res


def _variant_chunk(
    name: str,
    cands: list[Candidate],
    prompt_tokens: list[int],
    student: StudentConfig,
    ledger: Ledger,
    writer: Any,
    reasons: Counter[str],
    prov: dict[str, str],
    summ: dict[str, str | None],
) -> None:
    spec = REGISTRY[name]
    fn = spec.fn
    results = [fn(c) for c in cands]
    a_tokens = count_tokens(student.tokenizer, [r if isinstance(r, str) else "" for r in results])
    rows: list[dict[str, Any]] = []
    for c, res, n_tok, p_tok in zip(cands, results, a_tokens, prompt_tokens):
        p = c.prompt
        total = p_tok + n_tok + CHATML_OVERHEAD
        if isinstance(res, str) and total > student.max_tokens:
            res = Skip("too_long_for_student")
        if not isinstance(res, str):
            reason = res.reason if isinstance(res, Skip) else "variant_error"
            reasons[reason] += 1
            ledger.record(
                name,
                DROPPED,
                source=p["source"] or "",
                source_row_id=p["source_row_id"] or "",
                prompt_id=p["prompt_id"],
                reason=reason,
                detail=f"{total} tokens" if reason == "too_long_for_student" else "",
            )
            continue
        reply = getattr(c, spec.reply) if spec.reply else None  # the teacher reply the spec builds from
        rows.append(
            {
                "prompt_id": p["prompt_id"],
                "variant": name,
                "messages": [*p["messages"], {"role": "assistant", "content": res}],
                "tools_json": p["tools_json"],
                "category": p["category"],
                "language": p["language"],
                "num_turns": p["num_turns"],
                "generation_id": reply["generation_id"] if reply else None,
                # Who actually wrote the reply: the served / imported model when it is known
                # (an import can mix models; an API may serve a dated alias).
                "teacher_model": (reply.get("served_model") or reply["teacher_model"]) if reply else None,
                "endpoint_kind": reply["endpoint_kind"] if reply else None,
                "prompt_template_id": reply["prompt_template_id"] if reply else None,
                "prompt_template_hash": reply["prompt_template_hash"] if reply else None,
                **(summ if spec.needs_summary else dict.fromkeys(summ)),
                "reply_shape": reply["shape"] if reply else None,
                "verify_status": reply["verify_status"] if reply else "unverifiable",
                "verify_method": reply["verify_method"] if reply else "none",
                "verify_reason": reply["verify_reason"] if reply else "community_response",
                "quality_codes": (reply["info_codes"] or []) if reply else [],
                "repetition_score": reply["repetition_score"] if reply else None,
                "think_language": reply["think_language"] if reply else None,
                "answer_language": reply["answer_language"] if reply else None,
                "teacher_think_tokens": reply["teacher_think_tokens"] if reply else None,
                "teacher_answer_tokens": reply["teacher_answer_tokens"] if reply else None,
                "student_tokens": total,
                "assistant_student_tokens": n_tok,
                "source": p["source"],
                "source_license": p["source_license"],
                "source_row_id": p["source_row_id"],
                **prov,
            }
        )
        ledger.record(
            name, KEPT, source=p["source"] or "", source_row_id=p["source_row_id"] or "", prompt_id=p["prompt_id"]
        )
    writer.write_rows(rows)


def fingerprint(recipe: Recipe, work: WorkDir) -> dict[str, Any]:
    """What this stage's outputs depend on (see WorkDir.fingerprint)."""
    return work.fingerprint({"variants": recipe.variants, "student": recipe.student}, ("curate", "responses"), None)


def run_variants(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> VariantsResult:
    """Build every variant from prompts and selected replies. Outputs are committed together at the end (WorkDir.stage_run)."""
    with work.stage_run(STAGE, fingerprint(recipe, work)):
        return _variants(recipe, work, progress)
