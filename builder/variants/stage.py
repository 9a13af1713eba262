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

import shutil
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.config.student import StudentConfig
from builder.config.variants import VariantsConfig
from builder.constraints.spec import BadConstraints, contradictions, parse
from builder.errors import UserError
from builder.ledger import DROPPED, KEPT, Ledger
from builder.progress import Progress, report
from builder.recipe import Recipe
from builder.rows import PARSED_FEATURES, PROMPT_FEATURES, provenance_defaults, tools_list
from builder.tables import VariantsSummary
from builder.tokens import count_tokens
from builder.variants.adaptive import choose
from builder.variants.format_gate import Survival, apply_gate, broken
from builder.variants.llm_summary import LlmSummarizer
from builder.variants.overthinking import CODE as OVERTHINKING
from builder.variants.overthinking import LengthStats, difficulty, histogram, pass_rates
from builder.variants.pairs import multi_samples, write_pairs
from builder.variants.registry import REGISTRY, Candidate, Skip, declare, omitted, to_build
from builder.variants.summary_job import summaries, summary_columns
from builder.variants.summary_quality import Tally
from builder.workdir import WorkDir

STAGE = "variants"
READS = (tables.PROMPTS, tables.PARSED, tables.QUARANTINE)
WRITES = (tables.VARIANT, tables.PAIRS, tables.VARIANTS_LEDGER, VariantsSummary)
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
    unknown = [v for v in cfg.format_gate.variants or [] if v not in REGISTRY]
    if unknown:
        raise UserError(f"{recipe.path}: variants.format_gate.variants: unknown variant(s) {unknown}; known: {sorted(REGISTRY)}")
    return cfg


def _constraints_of(c: Candidate) -> None:
    """The prompt's constraints onto the candidate; a malformed column is a code, never a crash."""
    try:
        c.constraints = parse(c.prompt.get("constraints_json"))
    except BadConstraints:
        c.extra_codes.append("bad_constraints_json")
        return
    c.extra_codes += [f"constraints_contradict:{pair}" for pair in contradictions(c.constraints)]


def _choose(c: Candidate, cfg: VariantsConfig, mix: dict[str, Counter[str]], reasons: Counter[str]) -> None:
    assert c.reasoning is not None
    answer = c.reasoning["answer"] or ""
    breaks = broken(f"{c.summary}\n\n{answer}", answer, c.constraints) if c.summary and c.constraints else []
    c.choice = choose(c, cfg.adaptive, breaks)
    mix.setdefault(c.prompt["category"] or "unknown", Counter())[c.choice[0]] += 1
    reasons[c.choice[1].split(":")[0]] += 1


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


Bucket = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def _buckets(work: WorkDir, cfg: VariantsConfig, tmp: Path) -> list[Callable[[], Bucket]]:
    """Loaders of (prompts in curate order, selected reply rows), one per bucket."""
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
        return [lambda: (prompts, replies)]
    _partition(prompt_files, None, PROMPT_FEATURES.arrow_schema, n, tmp / "prompts", order=True)
    _partition(parsed_files, reply_cols, reply_schema, n, tmp / "replies", selected_only=True)

    def load(i: int) -> Bucket:
        prompts = sorted(_read_bucket(tmp / "prompts" / f"bucket-{i:05d}.parquet"), key=lambda r: r[_ORDER])
        return prompts, _read_bucket(tmp / "replies" / f"bucket-{i:05d}.parquet")

    return [lambda i=i: load(i) for i in range(n)]


def _candidates(bucket: Bucket) -> list[Candidate]:
    prompts, replies = bucket
    selected = {(r["prompt_id"], r["teacher_role"]): r for r in replies}
    return [
        Candidate(p, selected.get((p["prompt_id"], "reasoning")), selected.get((p["prompt_id"], "control")))
        for p in prompts
    ]


def _length_stats(work: WorkDir, rates: dict[str, float]) -> LengthStats:
    """Thinking-length moments over every selected reasoning reply, from four narrow columns (a
    first pass over the buckets would decode every thinking text twice). Rows in prompt_id order:
    the float sums, hence the z-scores, do not depend on how the tables are laid out."""
    prompts = pa.concat_tables([pq.read_table(f, columns=["prompt_id", "category"]) for f in work.require(tables.PROMPTS)])
    replies = pa.concat_tables([
        pq.read_table(f, columns=["prompt_id", "teacher_role", "teacher_think_tokens", "selected"])
        for f in work.require(tables.PARSED)])  # fmt: skip
    replies = replies.filter(pc.and_(pc.equal(replies["selected"], True), pc.equal(replies["teacher_role"], "reasoning")))
    joined = replies.select(["prompt_id", "teacher_think_tokens"]).join(prompts, "prompt_id").sort_by("prompt_id")
    stats = LengthStats()
    for pid, cat, tokens in zip(*(joined[c].to_pylist() for c in ("prompt_id", "category", "teacher_think_tokens"))):
        stats.add(cat or "", difficulty(rates.get(pid)), tokens)
    return stats


def _prompt_tokens(student: StudentConfig, prompts: list[dict[str, Any]]) -> list[int]:
    # Tool definitions go into the system turn by the chat template, so they count too.
    texts = ["\n".join([*(m["content"] or "" for m in p["messages"]), *(c for m in p["messages"] for c in m.get("tool_calls") or []),
                        p.get("tools_json") or ""]) for p in prompts]
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
    chat = [name for name in build if not REGISTRY[name].preference]
    want_pairs = len(chat) < len(build)
    writers = {name: work.writer(tables.variant(name), cfg.shard_rows) for name in chat}
    if want_pairs:
        writers["pairs"] = work.writer(tables.PAIRS, cfg.shard_rows)
    absent: dict[str, Counter[str]] = {name: Counter() for name in build}
    zs: list[float | None] = []
    tally = Tally()
    rows_done, rows_total = 0, len(chat) * sum(pq.ParquetFile(f).metadata.num_rows for f in work.require(tables.PROMPTS))
    survival = Survival()
    gated = set(cfg.format_gate.variants if cfg.format_gate.variants is not None
                else [n for n in build if REGISTRY[n].needs_summary])  # fmt: skip
    mix: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    try:
        loaders = _buckets(work, cfg, tmp)
        reply_files = [*work.require(tables.PARSED), *work.shards(tables.QUARANTINE)]
        rates = pass_rates(reply_files)
        samples = multi_samples(reply_files) if want_pairs else {}
        stats = _length_stats(work, rates)
        for load in loaders:
            bucket = load()
            prompts, cands = bucket[0], _candidates(bucket)
            for c in cands:
                _constraints_of(c)
                if c.reasoning is not None:
                    p = c.prompt
                    z = stats.z(p["category"] or "", difficulty(rates.get(p["prompt_id"])), c.reasoning["teacher_think_tokens"])
                    c.overthinking_z = z
                    zs.append(z)
            if summarize:
                summaries(cands, cfg, llm, progress)
                for c in cands:
                    tally.add(c.summary_scores)
            if want_pairs:
                write_pairs(cands, samples, ledger, writers["pairs"], absent["pairs"], prov)
            prompt_tokens = _prompt_tokens(recipe.student, prompts)
            if "adaptive" in build:
                for c in cands:
                    if c.reasoning is not None:
                        _choose(c, cfg, mix, reasons)
            for name in chat:
                ledger.enter(name, len(cands))
                # In chunks: a bucket's variant texts, token ids and row dicts at once would take GBs.
                for lo in range(0, len(cands), TOKEN_CHUNK):
                    hi = lo + TOKEN_CHUNK
                    _variant_chunk(
                        name, cands[lo:hi], prompt_tokens[lo:hi], recipe.student, ledger, writers[name], absent[name], prov,
                        summ, (cfg, gated, survival),
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
            omitted=omitted(build),
            overthinking_histogram=histogram(zs),
            overthinking_z=cfg.overthinking_z,
            summary_quality=tally.figures() if summarize else {},
            format_survival=survival.table(),
            adaptive_mix={k: dict(v) for k, v in sorted(mix.items())},
            adaptive_reasons=dict(reasons.most_common()),
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
    gate: tuple[VariantsConfig, set[str], Survival],
) -> None:
    spec = REGISTRY[name]
    fn = spec.fn
    results: list[str | Skip] = [fn(c) for c in cands]
    cfg, gated, survival = gate
    codes: list[list[str]] = [list(c.extra_codes) for c in cands]
    choices = [c.choice if name == "adaptive" else (("summary", "") if spec.needs_summary else None) for c in cands]
    for i, (c, res) in enumerate(zip(cands, results)):
        if not (isinstance(res, str) and c.constraints and cfg.format_gate.enabled and spec.reply == "reasoning"):
            continue
        answer = (c.reasoning or {}).get("answer") or ""
        o = apply_gate(res, answer, c.summary, c.constraints, cfg.format_gate.on_break, name in gated, name,
                       c.prompt["category"] or "", survival)  # fmt: skip
        results[i] = o.turn if o.turn is not None else Skip(o.drop)
        codes[i] += o.codes
        choices[i] = o.choice or choices[i]
    # A community response can be (or end in) tool calls; teacher replies carry none.
    calls = [c.prompt.get("original_tool_calls") if spec.reply is None else None for c in cands]
    a_tokens = count_tokens(student.tokenizer, [
        "\n".join([r, *(k or [])]) if isinstance(r, str) else "" for r, k in zip(results, calls)])
    rows: list[dict[str, Any]] = []
    for c, res, n_tok, p_tok, tool_calls, extra, choice in zip(cands, results, a_tokens, prompt_tokens, calls, codes, choices):
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
        with_summary = spec.needs_summary and not (choice and choice[0] == "answer")  # adaptive / fallback: answer only
        rows.append(
            {
                "prompt_id": p["prompt_id"],
                "variant": name,
                "messages": [*p["messages"], {"role": "assistant", "content": res, "tool_calls": tool_calls}],
                "tools": tools_list(p["tools_json"]),
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
                **(summ if with_summary else dict.fromkeys(summ)),
                "reply_shape": reply["shape"] if reply else None,
                "verify_status": reply["verify_status"] if reply else "unverifiable",
                "verify_method": reply["verify_method"] if reply else "none",
                "verify_reason": reply["verify_reason"] if reply else "community_response",
                "quality_codes": [*_codes(reply, c.overthinking_z if spec.reply == "reasoning" else None, cfg.overthinking_z),
                                  *extra],
                "variant_choice": choice[0] if choice else None,
                "choice_reason": choice[1] if choice else None,
                "repetition_score": reply["repetition_score"] if reply else None,
                "think_language": reply["think_language"] if reply else None,
                "answer_language": reply["answer_language"] if reply else None,
                "teacher_think_tokens": reply["teacher_think_tokens"] if reply else None,
                "teacher_answer_tokens": reply["teacher_answer_tokens"] if reply else None,
                "student_tokens": total,
                "assistant_student_tokens": n_tok,
                **summary_columns(c.summary_scores if with_summary else None),
                "overthinking_z": c.overthinking_z if spec.reply == "reasoning" else None,
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


def _codes(reply: dict[str, Any] | None, z: float | None, threshold: float) -> list[str]:
    codes = list(reply["info_codes"] or []) if reply else []
    if z is not None and z > threshold:
        codes.append(OVERTHINKING)  # informational: the row stays, users may re-filter
    return codes


def fingerprint(recipe: Recipe, work: WorkDir) -> dict[str, Any]:
    """What this stage's outputs depend on (see WorkDir.fingerprint)."""
    return work.fingerprint({"variants": recipe.variants, "student": recipe.student}, ("curate", "responses"), None)


def run_variants(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> VariantsResult:
    """Build every variant from prompts and selected replies. Outputs are committed together at the end (WorkDir.stage_run)."""
    with work.stage_run(STAGE, fingerprint(recipe, work)):
        return _variants(recipe, work, progress)
