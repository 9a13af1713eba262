"""The variants stage: prompts + selected replies → one chat dataset per variant.

READS / WRITES below (builder/tables.py): the selected rows of `parsed`; one table per variant,
one row id (prompt_id) per prompt shared by every variant, and a ledger where each variant is a
step: every curated prompt is either in it or absent with a reason.

Buckets: prompts and their replies are joined in buckets of about `bucket_rows` prompts, hash
partitions by prompt_id (builder/variants/buckets.py), so everything per prompt (its n samples,
its pass rate, its pair) is in one bucket; a bucket's rows are the only texts in memory. What
must be global is computed first by the driver over narrow columns: the thinking-length moments
behind the overthinking z-scores (within category over the whole set).

Tasks: with `variants.tasks` > 1 (or executor.tasks on Slurm / Ray) the buckets are built by
datatrove tasks on the recipe's executor (builder/variants/tasks.py), each bucket written whole to
a fingerprint-named scratch folder, resumable per bucket; the driver reads them in bucket order
as they land, while the tasks run on (builder/variants/merge.py, builder/landing.py), then checks
the accounting. One task on the local executor
builds the buckets in this process. Rows come out in curate order within a bucket, buckets in
order, whatever the number of tasks (one bucket: curate order throughout).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables, task_claims
from builder.config.variants import VariantsConfig
from builder.constraints.spec import BadConstraints, contradictions, parse
from builder.errors import UserError
from builder.landing import run_and_merge
from builder.ledger import Ledger
from builder.progress import Progress, report
from builder.recipe import Recipe
from builder.rows import provenance_defaults, stable_hash
from builder.tables import ResponsesSummary, VariantsSummary
from builder.variants import buckets
from builder.variants.adaptive import choose
from builder.variants.buckets import Bucket
from builder.variants.format_gate import Survival, broken
from builder.variants.llm_summary import LlmSummarizer
from builder.variants.merge import BucketStats, check_accounting, read_bucket
from builder.variants.overthinking import LengthStats, difficulty, histogram, pass_rates, pass_rates_of
from builder.variants.pairs import multi_samples_of, write_pairs
from builder.variants.registry import REGISTRY, Candidate, declare, omitted, to_build
from builder.variants.summary_job import summaries
from builder.variants.summary_quality import Tally
from builder.variants.tasks import BucketFiles, VariantsTask, after_bucket, bucket_dir, bucket_written
from builder.variants.variant_rows import TOKEN_CHUNK, prompt_tokens, variant_chunk
from builder.workdir import WorkDir

STAGE = "variants"
READS = (tables.PROMPTS, tables.PARSED, tables.QUARANTINE, ResponsesSummary)
WRITES = (tables.VARIANT, tables.PAIRS, tables.VARIANTS_LEDGER, VariantsSummary)
TASKS = ".tasks"  # hidden: variants/<name>/ folders are the variant tables (WorkDir.members)


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


class Plan:
    """What every bucket needs, decided once by the driver; picklable, so it travels to the tasks.
    `stats` are the run-wide thinking-length moments (overthinking z-scores are within category
    over the whole set): one cheap pre-pass over narrow columns, never per task. (A plain class,
    not a dataclass: datatrove's executor.json writes a dataclass out field by field.)"""

    def __init__(self, recipe: Recipe, build: list[str], summ: dict[str, str | None], stats: LengthStats,
                 n: int) -> None:  # fmt: skip
        self.recipe, self.build, self.stats, self.n = recipe, build, stats, n
        self.chat = [name for name in build if not REGISTRY[name].preference]  # in build order
        self.want_pairs = len(self.chat) < len(build)
        self.summarize = any(REGISTRY[name].needs_summary for name in build)
        self.summ = summ  # summary rows' provenance
        gate = recipe.variants.format_gate
        self.gated = set(gate.variants if gate.variants is not None else [v for v in build if REGISTRY[v].needs_summary])
        self.folder: str | None = None  # the partition (None: one bucket, read straight from the inputs)
        self.claims: str | None = None  # the task run's claims folder (builder/task_claims.py)
        self.workers = recipe.variants.workers  # extractive summary processes per bucket (tasks: _run_tasks)
        self.rows_done, self.rows_total = 0, 0  # progress (in this process)
        self.answer_counts = False  # parsed.student_answer_tokens are this student's counts (_variants)

    def features(self) -> dict[str, Any]:
        out = {name: tables.VARIANT.features for name in self.chat}
        return {**out, "pairs": tables.PAIRS.features} if self.want_pairs else out


def _candidates(bucket: Bucket, answer_counts: bool) -> list[Candidate]:
    """One per prompt, with its selected replies; `answer_counts`: the responses stage counted each
    answer with this run's student tokenizer, so the count is taken, not made again."""
    selected = {(r["prompt_id"], r["teacher_role"]): r for r in bucket.replies}
    cands = [Candidate(p, selected.get((p["prompt_id"], "reasoning")), selected.get((p["prompt_id"], "control")))
             for p in bucket.prompts]  # fmt: skip
    if answer_counts:
        for c in cands:
            if c.reasoning is not None:
                c.answer_tokens = c.reasoning.get("student_answer_tokens")  # None (an older partition): counted
    return cands


def run_bucket(plan: Plan, work: WorkDir, i: int, writers: dict[str, Any], ledger: Ledger,
               llm: LlmSummarizer | None = None, progress: Progress | None = None) -> BucketStats:  # fmt: skip
    """Bucket i → its rows (into `writers`), its ledger part (`ledger`, this bucket's own) and figures."""
    cfg = plan.recipe.variants
    bucket = buckets.load(work, plan.n, Path(plan.folder) if plan.folder else None, i, plan.want_pairs)
    cands = _candidates(bucket, plan.answer_counts)
    rates = pass_rates_of(bucket.samples)
    prov = provenance_defaults()
    absent: dict[str, Counter[str]] = {name: Counter() for name in plan.build}
    zs: list[float | None] = []
    tally, survival = Tally(), Survival()
    mix: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    for c in cands:
        _constraints_of(c)
        if c.reasoning is not None:
            p = c.prompt
            c.overthinking_z = plan.stats.z(p["category"] or "", difficulty(rates.get(p["prompt_id"])),
                                            c.reasoning["teacher_think_tokens"])  # fmt: skip
            zs.append(c.overthinking_z)
    if plan.summarize:
        summaries(cands, cfg, llm, progress, workers=plan.workers)
        for c in cands:
            tally.add(c.summary_scores)
    if plan.want_pairs:
        write_pairs(cands, multi_samples_of(bucket.samples), ledger, writers["pairs"], absent["pairs"], prov)
    del bucket  # the candidates hold what is still needed
    p_tokens = prompt_tokens(plan.recipe.student, [c.prompt for c in cands])
    if "adaptive" in plan.build:
        for c in cands:
            if c.reasoning is not None:
                _choose(c, cfg, mix, reasons)
    for name in plan.chat:
        ledger.enter(name, len(cands))
        # In chunks: a bucket's variant texts, token ids and row dicts at once would take GBs.
        for lo in range(0, len(cands), TOKEN_CHUNK):
            hi = lo + TOKEN_CHUNK
            variant_chunk(name, cands[lo:hi], p_tokens[lo:hi], plan.recipe.student, ledger, writers[name], absent[name],
                          prov, plan.summ, (cfg, plan.gated, survival))  # fmt: skip
            plan.rows_done += min(hi, len(cands)) - lo
            report(progress, "building variant rows", plan.rows_done, plan.rows_total)
    return BucketStats.of(absent, histogram(zs), tally, survival, mix, reasons, ledger)


def task_buckets(plan: Plan, work: WorkDir, scratch: Path, rank: int, world: int) -> int:
    """One datatrove task's body (builder/variants/tasks.py): the buckets it claims that have no
    output yet (its own first, then others' not yet taken: builder/task_claims.py), each built and
    written whole; returns how many it wrote."""
    assert plan.claims is not None, "the driver makes the run's claims folder"
    n = 0
    for i in task_claims.units(plan.n, rank, world, Path(plan.claims), lambda i: bucket_written(scratch, i)):
        out = BucketFiles(scratch, i, plan.features())
        part = Ledger(STAGE)
        out.commit(part, run_bucket(plan, work, i, out.writers, part))
        n += 1
        after_bucket(scratch, rank, n)
    return n


def _tasks(recipe: Recipe, n_buckets: int) -> int:
    cfg = recipe.variants
    if cfg.summarizer.kind == "llm" and any(REGISTRY[v].needs_summary for v in to_build(cfg.build)):
        return 1  # the LLM summarizer's store has one writer: this process
    n = cfg.tasks or (recipe.executor.tasks if recipe.executor.kind != "local" else 1)
    return max(1, min(n, n_buckets))


def _scratch(work: WorkDir, key: str) -> Path:
    return work.stage(STAGE) / TASKS / key / "outputs"


def _run_tasks(plan: Plan, work: WorkDir, n_tasks: int, key: str) -> Path:
    """Partition (once), then run the datatrove tasks (resumable: completed ranks and written buckets
    are skipped); their outputs' folder. Keyed by the stage's fingerprint: another recipe or other
    inputs start afresh."""
    from builder.executors import make_executor, run_executor

    recipe = plan.recipe
    root = work.stage(STAGE) / TASKS
    for old in root.glob("*"):
        if old.name != key:
            shutil.rmtree(old, ignore_errors=True)
    if plan.n > 1:
        folder = root / key / "buckets"
        buckets.partition(work, plan.n, folder, plan.want_pairs)
        plan.folder = str(folder.resolve())
    scratch = _scratch(work, key)
    scratch.mkdir(parents=True, exist_ok=True)
    ex_cfg = recipe.executor.model_copy(update={"tasks": n_tasks})
    plan.workers = min(2, recipe.executor.cpus_per_task) if recipe.executor.kind != "local" else 1
    plan.claims = str(task_claims.new_run(root / key).resolve())
    step = VariantsTask(task_buckets, plan, str(work.root.resolve()), str(scratch.resolve()))
    run_executor(make_executor([step], ex_cfg, root / key / "logs", STAGE), ex_cfg)
    return scratch


def _variants(recipe: Recipe, work: WorkDir, key: str, progress: Progress | None = None) -> VariantsResult:
    # Writers below go to the run's staging folder (stage_run): a missing or corrupt input
    # found later costs nothing of the last run's outputs.
    t0 = time.perf_counter()
    cfg = config_of(recipe)
    build = to_build(cfg.build)
    # Summaries (S_think) are computed only when a built variant's spec asks for them.
    summarize = any(REGISTRY[name].needs_summary for name in build)
    llm = LlmSummarizer(recipe, work, cfg.summarizer) if summarize and cfg.summarizer.kind == "llm" else None
    # Summary rows' provenance: who summarized, with which prompt (llm only).
    summ: dict[str, str | None] = {
        "summarizer": llm.label if llm else "extractive",
        "summary_template_id": llm.template.id if llm else None,
        "summary_template_hash": llm.template.hash if llm else None,
    }
    n_prompts = sum(pq.ParquetFile(f).metadata.num_rows for f in work.require(tables.PROMPTS))
    n = buckets.count(work, cfg.bucket_rows)
    rates = pass_rates([*work.require(tables.PARSED), *work.shards(tables.QUARANTINE)])
    plan = Plan(recipe, build, summ, _length_stats(work, rates), n)
    responded = work.read_summary(ResponsesSummary)
    plan.answer_counts = responded is not None and responded.student_tokenizer == recipe.student.tokenizer
    plan.rows_total = len(plan.chat) * n_prompts
    del rates
    writers = {name: work.writer(tables.variant(name), cfg.shard_rows) for name in plan.chat}
    if plan.want_pairs:
        writers["pairs"] = work.writer(tables.PAIRS, cfg.shard_rows)
    ledger = Ledger(STAGE)
    total = BucketStats()
    n_tasks = _tasks(recipe, n)
    tmp = work.stage(STAGE) / ".buckets"  # this process's partition and ledger parts
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if llm is not None or (n_tasks == 1 and recipe.executor.kind == "local"):  # here, bucket after bucket
            tmp.mkdir(parents=True)
            if n > 1:
                buckets.partition(work, n, tmp, plan.want_pairs)
                plan.folder = str(tmp)
            for i in range(n):
                part = Ledger(STAGE)
                total.add(run_bucket(plan, work, i, writers, part, llm, progress))
                pq.write_table(part.table(), tmp / f"ledger-{i:05d}.parquet")  # on disk until the ledger is written
                ledger.add_part(tmp / f"ledger-{i:05d}.parquet", part.summary())
        else:  # the buckets merged in order as they land (builder/landing.py)
            scratch = _scratch(work, key)

            def run() -> None:
                _run_tasks(plan, work, n_tasks, key)

            def merged(order: Iterator[int]) -> None:
                for i in order:
                    total.add(read_bucket(bucket_dir(scratch, i), writers, ledger))
                    report(progress, "merging buckets", i + 1, n)

            run_and_merge(run, merged, n, lambda i: bucket_written(scratch, i))
        counts: dict[str, int] = {}
        for name, w in writers.items():
            w.close()
            counts[name] = w.rows
        check_accounting(ledger, counts, n_prompts)
        work.write_ledger(ledger)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res = VariantsResult(counts, total.absent, time.perf_counter() - t0, ledger.summary())
    work.write_summary(
        VariantsSummary(
            counts=counts,
            absent=total.absent,
            summarizer=summ["summarizer"] or "",
            summarizer_accounting=llm.accounting() if llm else None,
            variants=build,
            specs=declare(build),
            seconds=res.seconds,
            omitted=omitted(build),
            overthinking_histogram=total.histogram or histogram([]),
            overthinking_z=cfg.overthinking_z,
            summary_quality=total.tally_obj().figures() if summarize else {},
            format_survival=total.survival_obj().table(),
            adaptive_mix={k: v for k, v in sorted(total.mix.items())},
            adaptive_reasons=dict(Counter(total.reasons).most_common()),
        )
    )
    return res

def fingerprint(recipe: Recipe, work: WorkDir) -> dict[str, Any]:
    """What this stage's outputs depend on (see WorkDir.fingerprint)."""
    return work.fingerprint({"variants": recipe.variants, "student": recipe.student}, ("curate", "responses"), None)


def run_variants(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> VariantsResult:
    """Build every variant from prompts and selected replies. Outputs are committed together at the end (WorkDir.stage_run)."""
    fp = fingerprint(recipe, work)
    key = stable_hash(fp, 16)
    with work.stage_run(STAGE, fp):
        res = _variants(recipe, work, key, progress)
    shutil.rmtree(work.stage(STAGE) / TASKS / key, ignore_errors=True)  # committed: the task outputs are spent
    with contextlib.suppress(OSError):  # only when empty (another key's run may be under way)
        (work.stage(STAGE) / TASKS).rmdir()
    return res
