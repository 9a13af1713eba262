"""The variants' shards into the release folder: which variants are published (those the
variants stage declared, with rows), then one streamed pass per shard that casts or copies it
into staging (hashing it on the way), computes its quality signals and partial statistics,
and finally gives the shards their Hub names. Gates read what this pass returns; nothing here
decides what blocks.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.errors import UserError
from builder.recipe import Recipe
from builder.release.content import batch_hashes
from builder.release.folder import SCHEMA, copy_hashed, is_published_schema, name_shards, secrets_in
from builder.release.manifest import sha256_file
from builder.release.redact_recipe import published_recipe
from builder.tables import VariantInfo, VariantsSummary
from builder.workdir import WorkDir
from quality.answer_keys import AnswerKeys
from quality.derive import answer_keys, signal_table, text_keys
from quality.gx_process import SignalFile
from quality.stats import VariantStats
from quality.suites import CheckOutcome

WORKERS = 2  # shards processed at once; the benchmark target is 2 cores
BATCH_ROWS = 2_048  # rows per record batch: ~28 MB of `full` text
# Read a column chunk in pieces of this size, not whole: a shard written as one row group held
# its whole compressed `messages` chunk (~100 MB for 20k `full` rows) while it was read.
BUFFER = 4 << 20


@dataclass
class Shard:
    """One work shard after its pass: signals, partial stats, copied (and hashed) to staging."""

    k: int
    path: Path
    rows: int = 0
    signals: list[pa.Table] = field(default_factory=list)
    stats: VariantStats = field(default_factory=VariantStats)
    answer_keys: list[pa.Table] = field(default_factory=list)  # exact-answer variant: per batch
    hashes: list[pa.Table] = field(default_factory=list)  # (prompt_id, text_hash) per batch
    dest: Path | None = None
    sha256: str = ""
    error: str = ""


@dataclass
class StagedVariant:
    """One variant's shards, staged: merged stats, every shard's signals (written to the GX
    process's file as each shard is folded), bytes read."""

    signals: SignalFile
    stats: VariantStats = field(default_factory=VariantStats)
    hashes: list[pa.Table] = field(default_factory=list)
    bytes_in: int = 0


def published(work: WorkDir) -> list[VariantInfo]:
    """The variants to publish: those the last variants run declared (its registry specs, as
    data: this stage may not import that one), minus any with no rows (e.g. no prompt had a
    community response). The exact-answer variant goes first: summaries are checked against it."""
    if any(work.shards(t) for t in work.members(tables.VARIANT)):
        work.require_complete("variants")  # never publish a half-written variants run
    summary = work.read_summary(VariantsSummary)
    if summary is None and any(work.shards(t) for t in work.members(tables.VARIANT)):
        raise UserError(f"{work.summary_path(VariantsSummary)}: not found (it says what was built); "
                        "run `answer-distill variants` first")
    specs = [s for s in (summary.specs if summary else [])
             if sum(pq.ParquetFile(f).metadata.num_rows for f in work.shards(tables.variant(s.name)))]
    if not specs:
        raise UserError(f"{work.root / tables.VARIANT.label}: no variant shards found; "
                        f"run `answer-distill {tables.VARIANT.producer}` first")
    return sorted(specs, key=lambda s: not s.exact_answer)  # stable: registry order otherwise


def contaminated_ids(work: WorkDir) -> pa.Array:
    """prompt_ids curate's decontamination flagged (empty when it wrote no report)."""
    files = work.shards(tables.DECONTAMINATION)
    if not files:
        return pa.array([], pa.string())
    return pq.read_table(files[0], columns=["prompt_id"]).column("prompt_id").combine_chunks()


def reply_answer_keys(work: WorkDir) -> AnswerKeys:
    """The exact answers summaries must end with, from the responses stage's selected reasoning
    replies (the text the exact-answer variant would publish byte for byte): for a release that
    publishes no exact-answer variant (`variants.build: [think_summary]`), whose summaries had
    nothing to be checked against and all failed summary_ends_with_answer."""
    keys = AnswerKeys()
    for f in work.shards(tables.PARSED):
        cols = ["prompt_id", "teacher_role", "selected", "answer"]
        for b in pq.ParquetFile(f, buffer_size=BUFFER).iter_batches(batch_size=BATCH_ROWS, columns=cols):
            t = pa.Table.from_batches([b])
            t = t.filter(pc.and_(pc.equal(t["teacher_role"], "reasoning"), pc.fill_null(t["selected"], False)))
            keys.add([text_keys(t["prompt_id"], t["answer"])])
    return keys


def answer_keys_for(work: WorkDir, specs: list[VariantInfo]) -> AnswerKeys:
    """Where summaries are checked from when no exact-answer variant is published (else empty:
    the exact-answer variant's shards fill the keys as they are staged)."""
    if any(s.exact_answer for s in specs) or not any(s.needs_summary for s in specs):
        return AnswerKeys()
    return reply_answer_keys(work)


def load_shard(k: int, path: Path, spec: VariantInfo, contaminated: pa.Array, answers: AnswerKeys,
               dest: Path, write: bool = True) -> Shard:
    """The per-shard work, streamed in record batches: memory stays near one batch whatever
    the shard size (read_table on a 676 MB shard peaked at 1.9 GB RSS, batches at 0.7 GB).
    Arrow kernels release the GIL, so two shards run on two cores. The published shard goes to
    `dest`; with `write` False it is already there (a resumed task): only hashed, never rewritten."""
    s = Shard(k, path)
    pf = pq.ParquetFile(path, buffer_size=BUFFER)
    s.rows = pf.metadata.num_rows
    s.dest = dest
    published = is_published_schema(pf.schema_arrow, check_metadata=True)
    if not published and not is_published_schema(pf.schema_arrow, check_metadata=False):
        try:  # fails on missing or mistyped columns: a schema failure, not a crash
            pa.Table.from_batches([], schema=pf.schema_arrow).cast(SCHEMA)
        except (ValueError, pa.ArrowInvalid, KeyError) as e:
            s.error = f"{path}: {str(e)[:160]}"
            return s
    writer = None if published or not write else pq.ParquetWriter(s.dest, SCHEMA, compression="zstd")
    try:
        # One thread a shard: WORKERS shards are read at once, and Arrow's own column threads cost ~8% more CPU.
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, use_threads=False):
            table = pa.Table.from_batches([batch])
            if not published:
                table = table.cast(SCHEMA)
                if writer is not None:
                    writer.write_table(table)
            if spec.exact_answer:
                s.answer_keys.append(answer_keys(table))
            s.signals.append(signal_table(table, spec.name, contaminated, answers, teacher=spec.reply is not None,
                                          think=spec.think, summary=spec.needs_summary))
            s.stats.add(table)
            s.hashes.append(batch_hashes(table))  # the content hash, taken while the text is in memory
    finally:
        if writer is not None:
            writer.close()
    s.sha256 = copy_hashed(path, s.dest) if published and write else sha256_file(s.dest)
    return s


def fold(out: StagedVariant, done: Shard, schema: CheckOutcome, answers: AnswerKeys) -> bool:
    """One shard's results into its variant's (in shard order); False for a shard that could
    not take the published schema (a schema failure, its rows not staged)."""
    if done.error:
        schema.merge(False, done.rows, done.rows, [done.path.name])
        schema.detail = done.error
        return False
    schema.merge(True, done.rows, 0, [])
    answers.add(done.answer_keys)
    out.signals.write(done.signals)
    done.signals = []
    out.hashes += done.hashes
    out.stats.merge(done.stats)
    return True


def stage_variant(work: WorkDir, spec: VariantInfo, tmp: Path, contaminated: pa.Array,
                  answers: AnswerKeys, schema: CheckOutcome, known: dict[str, str], signals: SignalFile,
                  ) -> StagedVariant:
    """Stage every shard of a variant into tmp/data/<v>/ under its Hub name; each file's
    sha256 goes into `known` (relative to tmp), a shard that cannot take the published
    schema into `schema`, (for the exact-answer variant) its texts' keys into `answers`, and its
    signals into `signals`."""
    v = spec.name
    out = StagedVariant(signals)
    staged: list[Path] = []
    hashes: list[str] = []
    (tmp / "data" / v).mkdir(parents=True, exist_ok=True)
    shards = work.shards(tables.variant(v))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        pending: deque[Future[Shard]] = deque()
        for k, path in enumerate(shards):
            out.bytes_in += path.stat().st_size
            pending.append(pool.submit(load_shard, k, path, spec, contaminated, answers,
                                       tmp / "data" / v / f".part-{k:05d}.parquet"))
            # At most WORKERS + 1 shards in memory at once.
            while len(pending) > WORKERS or (k == len(shards) - 1 and pending):
                done = pending.popleft().result()
                if fold(out, done, schema, answers):
                    assert done.dest is not None
                    staged.append(done.dest)
                    hashes.append(done.sha256)
    for final, sha in zip(name_shards(tmp / "data" / v, staged), hashes):
        known[final.relative_to(tmp).as_posix()] = sha
    return out


def data_configs(tmp: Path, stats: dict[str, VariantStats]) -> dict[str, dict[str, int]]:
    """Per staged variant (HF config): rows, in-memory bytes and download size on disk."""
    configs = {}
    for v, s in stats.items():
        files = sorted((tmp / "data" / v).glob("*.parquet"))
        configs[v] = {"num_examples": s.rows, "num_bytes": s.num_bytes,
                      "download_size": sum(f.stat().st_size for f in files)}
    return configs


def write_documents(tmp: Path, recipe: Recipe, files: dict[str, str]) -> None:
    """The text files next to the data (card, changelog…) and the recipe, as published: its
    local paths and private endpoints replaced by markers (never a copy of the file: the
    originals would name the builder's machine and network; the manifest keeps their hashes)."""
    for name, text in files.items():
        (tmp / name).write_text(text)
    recipe_file = published_recipe(recipe)
    if recipe_file is not None:
        (tmp / "recipe.yaml").write_bytes(recipe_file.text.encode())  # the bytes the manifest hashes


def refuse_leaks(tmp: Path) -> None:
    """A secret from the environment made it into a file (a data shard included): refuse to
    publish it, naming the first file (and for a shard its column and row) in one line."""
    leaked = secrets_in(tmp)
    if leaked:
        more = f" (and {len(leaked) - 1} more file(s))" if len(leaked) > 1 else ""
        raise UserError(f"release refused: a secret from the environment appears in {leaked[0]}{more}; "
                        "remove it from the recipe or data and re-run")
