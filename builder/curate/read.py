"""Curate's read step: every source's rows → normalized prompt columns (Arrow); what can't be used
is quarantined with its file:line and a code.

Serial by default. A big JSONL file (.jsonl.gz too) is cut into blocks at line ends, each block
knowing its first line number (so `file:line` locations and line-number row ids stay exact), a big
parquet file into runs of row groups, each knowing its first row number (`file#row`), and
the blocks are turned into rows by the driver and the workers of a lean process pool side by side
(executors.lean_executor: its workers do not inherit the driver's heap, and one killed from
outside raises BrokenProcessPool instead of hanging; the driver then reads the blocks it had handed
out itself). The driver joins the blocks' columns, quarantine records and counts in file order, so
the table, the ledger and the warnings are the serial read's, row for row.
"""

from __future__ import annotations

import sys
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import regex

from builder.config.base import CATEGORIES
from builder.config.sources import SourceConfig
from builder.constraints.spec import BadConstraints, parse, to_json
from builder.cpus import usable_cores
from builder.curate.columns import key_digest
from builder.curate.normalize import dedupe_key, normalize_text, visible_chars
from builder.language import prompt_language_label
from builder.ledger import QUARANTINED, Ledger
from builder.progress import Progress
from builder.progress import report as progress_report
from builder.recipe import Recipe
from builder.rows import PROMPT_FEATURES, arrow_table, prompt_id_for, provenance_defaults
from builder.sources.mapping import RowProblem, map_row
from builder.sources.paths import named_files
from builder.sources.readers import (
    BadRow,
    RawRow,
    file_format,
    file_ids,
    file_warning,
    id_head,
    jsonl_blocks,
    mapped_rows,
    parquet_blocks,
    read_file,
    read_jsonl_block,
    read_parquet_block,
    read_source,
)

READ_BATCH = 20_000  # rows held as Python objects before they become Arrow columns
BLOCK_BYTES = 2 << 20  # a JSONL pool job: ~7k prompts of ~300 bytes, ~0.2 CPU-s (the driver waits for the last ones)
BLOCK_ROWS = 8192  # a parquet pool job: row groups of at least this many rows in all
IN_FLIGHT = 2  # blocks handed to each worker and not yet taken back: it never waits for the driver
SWITCH_S = 0.0002  # the driver's GIL switch interval while a pool reads (see _read_parallel)
# A file (its bytes on disk: a compressed one reaches it later) below this is read serially. A read worker's start costs ~1 CPU-s (it imports
# the row schemas, i.e. `datasets`), and in curate the benchmark index is built on the other core
# while the read runs (decontam_build, ~3-4 CPU-s): below ~200k prompts a worker mostly competes
# with that build.
PARALLEL_FROM_BYTES = 64 << 20

# Columns a row fills; the source's constants (verifier, license, provenance) are added per batch.
ROW_COLUMNS = ("prompt_id", "messages", "tools_json", "category", "language", "num_turns", "original_response",
               "original_tool_calls", "reference_answer", "tests_json", "constraints_json", "source_row_id",
               "_key", "_user")  # fmt: skip
LEDGER_COLUMNS = ["source", "source_row_id", "prompt_id"]


@dataclass(frozen=True)
class ReadRules:
    """What each row is normalized and checked with (travels to the pool's workers)."""

    max_chars: int
    min_chars: int
    form: str

    @classmethod
    def of(cls, recipe: Recipe) -> ReadRules:
        n = recipe.curate.normalize
        return cls(n.max_prompt_chars, n.min_prompt_chars, n.unicode_form)


# (source_row_id, reason, detail, location) of a quarantined item
Quarantined = tuple[str, str, str, str]


class SourceRows:
    """One source's items as they are read: kept rows into Arrow a batch at a time (`parts`), the
    others as quarantine records (`bad`), `n` items in all."""

    def __init__(self, src: SourceConfig, rules: ReadRules) -> None:
        self.src, self.rules = src, rules
        self.ref_re = regex.compile(src.reference_regex, regex.M) if src.reference_regex else None
        prov = provenance_defaults()
        self.constants = {"verifier": src.verifier, "source": src.name, "source_license": src.license,
                          "schema_version": prov["schema_version"], "toolkit_version": prov["toolkit_version"]}  # fmt: skip
        self.rows: list[tuple[Any, ...]] = []
        self.parts: list[pa.Table] = []
        self.bad: list[Quarantined] = []
        self.n = 0

    def add(self, item: RawRow | BadRow) -> None:
        self.n += 1
        if isinstance(item, BadRow):
            self.bad.append((item.row_id, item.reason, item.detail, item.location))
            return
        try:
            self.rows.append(self._row(item))
        except RowProblem as p:
            self.bad.append((item.row_id, p.code, p.detail, item.location))
            return
        if len(self.rows) >= READ_BATCH:
            self.flush()

    def _row(self, item: RawRow) -> tuple[Any, ...]:
        """The row's ROW_COLUMNS values; RowProblem when it cannot be a prompt."""
        src, rules = self.src, self.rules
        rec = map_row(src, item.data, self.ref_re)
        msgs = rec["messages"]  # dicts of map_row's own: normalized in place
        size = 0
        users: list[str] = []
        for m in msgs:
            m["content"] = text = normalize_text(m["content"], rules.form)
            size += len(text)
            if m["role"] == "user":
                users.append(text)
        if size > rules.max_chars:
            raise RowProblem("too_long", f"prompt has {size:,} chars > max_prompt_chars={rules.max_chars:,}")
        if not any(users):
            raise RowProblem("empty_prompt", "prompt is empty after normalization")
        # A non-empty normalized text starts with a visible character (normalize_text strips), so
        # the default minimum of 1 holds once the check above passed: nothing to count.
        if rules.min_chars > 1 and (visible := sum(map(visible_chars, users))) < rules.min_chars:
            raise RowProblem("too_short", f"prompt has {visible} non-space chars < min_prompt_chars={rules.min_chars}")
        category = rec["category"]
        if category not in CATEGORIES:
            raise RowProblem("unknown_category", f"category {category!r}; map it with category_map")
        try:  # a source's own list is validated here; the rest are detected on kept rows (stage)
            given = None if rec["constraints"] is None else to_json(parse(rec["constraints"]))
        except BadConstraints as e:
            raise RowProblem("bad_constraints", f"field `{src.fields.constraints}`: {e}") from None
        if category == "chat" and len(users) > 1:
            category = "multi_turn"  # the paper counts multi-turn chat on its own
        # User turns only: a long shared system prompt (tool-use sets) would make every row a
        # near-duplicate of every other. Exact dedupe still compares whole conversations.
        text = "\n".join(users)
        tools = rec["tools_json"]
        original = rec["original_response"]
        return (
            prompt_id_for(msgs, tools), msgs, tools, category,
            rec["language"] if rec["language"] != "auto" else prompt_language_label(text),
            len(users), normalize_text(original, rules.form) if original else None, rec["original_tool_calls"],
            rec["reference_answer"], rec["tests_json"], given, rec["row_id"] or item.row_id,
            key_digest(dedupe_key(msgs, tools)), text,
        )  # fmt: skip

    def flush(self) -> None:
        """The batch's rows as Arrow: the prompt columns, the exact-dedupe digest `_key` and the
        user text `_user` (what near dedupe and decontamination read)."""
        if not self.rows:
            return
        cols: dict[str, Any] = dict(zip(ROW_COLUMNS, map(list, zip(*self.rows))))
        self.rows.clear()
        n = len(cols["prompt_id"])
        cols |= {k: [v] * n for k, v in self.constants.items()}
        t = arrow_table(cols, PROMPT_FEATURES)
        t = t.append_column("_key", pa.array(cols["_key"], pa.binary(16)))
        self.parts.append(t.append_column("_user", pa.array(cols["_user"], pa.string())))

    def extend(self, part: BlockRows) -> None:
        """Append a block read elsewhere (after this source's rows so far)."""
        self.flush()
        self.parts += part.parts
        self.bad += part.bad
        self.n += part.n


@dataclass
class BlockRows:
    """What one block of a file gave: Arrow parts, quarantine records, items."""

    parts: list[pa.Table]
    bad: list[Quarantined]
    n: int


def read_block(src: SourceConfig, rules: ReadRules, path: Path, fmt: str, first: int, part: Any,
               name: str = "") -> BlockRows:  # fmt: skip
    """A pool job: one of jsonl_blocks' blocks (`part` its bytes, or their offset and size in a plain
    file) or parquet_blocks' runs (`part` the row groups), made into rows as the serial read makes them
    (`name`: what the file's row ids start with, named_files)."""
    if fmt == "jsonl" and isinstance(part, tuple):  # (offset, size) of a plain file: read here, not piped
        with path.open("rb") as fh:
            fh.seek(part[0])
            part = fh.read(part[1])
    rows = SourceRows(src, rules)
    for item in file_ids((read_jsonl_block if fmt == "jsonl" else read_parquet_block)(path, first, part), name, fmt):
        rows.add(item)
    rows.flush()
    return BlockRows(rows.parts, rows.bad, rows.n)


def read_workers(recipe: Recipe) -> int:
    """Processes reading at once, the driver included: the recipe's executor workers, at most the cores."""
    cores = usable_cores()
    return min(cores, recipe.executor.workers_for(cores))


class _Pool:
    """The lean pool's workers, made on first use; after a worker dies the driver reads alone."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        self.broken = workers < 1

    def get(self) -> ProcessPoolExecutor | None:
        if self.pool is None and not self.broken:
            from builder.executors import lean_executor

            self.pool = lean_executor(preload=[__name__], workers=self.workers)
        return None if self.broken else self.pool

    def submit(self, *args: Any) -> Future[BlockRows] | None:
        """read_block(*args) on a worker; None once the pool is broken (the driver reads it)."""
        executor = self.get()
        if executor is None:
            return None
        from builder.executors import submit_or_none

        job = submit_or_none(executor, read_block, *args)
        self.broken = job is None
        return job

    def close(self) -> None:
        if self.pool is None:
            return
        from builder.executors import close_lean_executor

        close_lean_executor(self.pool, self.broken)
        self.pool = None


def _read_parallel(pool: _Pool, src: SourceConfig, rules: ReadRules, path: Path, fmt: str, rows: SourceRows,
                   warnings: list[str], name: str) -> None:  # fmt: skip
    """`path`'s blocks into `rows`, in order: up to two blocks a worker wait in the pool while the
    driver reads the next one itself."""
    done: dict[int, BlockRows] = {}
    waiting: dict[Future[BlockRows], tuple[int, int, Any]] = {}
    tail: BadRow | None = None

    def collect(block: bool) -> None:
        for f in list(waiting) if block else [f for f in waiting if f.done()]:
            i, first, part = waiting.pop(f)
            try:
                done[i] = f.result()
            except BrokenProcessPool:  # a worker was killed (OOM?): its blocks are read here
                pool.broken = True
                done[i] = read_block(src, rules, path, fmt, first, part, name)

    blocks = jsonl_blocks(path, BLOCK_BYTES) if fmt == "jsonl" else parquet_blocks(path, BLOCK_ROWS)
    # A block's columns come back through a pipe, 64 KB a read, each read by the pool's thread here
    # once it gets the GIL back from the driver's rows: at the default 5 ms a switch a worker sat
    # blocked on its full pipe for most of its time (measured: busy 2.2 s of 4.0 at 200k prompts).
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, SWITCH_S))
    ranges = fmt == "jsonl" and not path.name.endswith(".gz")  # a worker reads its block's bytes itself
    offset = 0
    try:
        for i, block in enumerate(blocks):
            if isinstance(block, BadRow):
                tail = block  # always the last
                break
            first, part = block
            sent = (offset, len(part)) if ranges else part
            offset += len(part) if ranges else 0
            job = pool.submit(src, rules, path, fmt, first, sent, name) if len(waiting) < IN_FLIGHT * pool.workers else None
            if job is not None:
                waiting[job] = (i, first, part)
            else:
                done[i] = read_block(src, rules, path, fmt, first, part, name)
            collect(block=False)
        collect(block=True)
    finally:
        sys.setswitchinterval(switch)
    for i in sorted(done):
        rows.extend(done.pop(i))
    if tail is not None:
        tail.row_id = id_head(name, fmt) + tail.row_id
        file_warning(src, tail, warnings)
        rows.add(tail)


def _source_rows(recipe: Recipe, src: SourceConfig, rules: ReadRules, pool: _Pool, warnings: list[str]) -> SourceRows:
    rows = SourceRows(src, rules)
    if src.kind != "local" or src.limit is not None or pool.broken:  # a limit counts items in order: serial
        for item in read_source(recipe, src, warnings):
            rows.add(item)
        return rows
    for path, name in named_files(recipe, src):
        # the size first: an empty file is only warned about, whatever its name (read_file)
        if path.stat().st_size >= PARALLEL_FROM_BYTES and (fmt := file_format(src, path)) in ("jsonl", "parquet"):
            _read_parallel(pool, src, rules, path, fmt, rows, warnings, name)
            continue
        for item in read_file(src, path, warnings, name=name):
            rows.add(item)
    return rows


def _all_quarantined(source: str, bad: list[Quarantined]) -> str:
    """One line for a source none of whose rows could be used: the top reason and an example."""
    reason, n = Counter(b[1] for b in bad).most_common(1)[0]
    _, _, detail, location = next(b for b in bad if b[1] == reason)
    return (f"source {source}: all {len(bad):,} rows quarantined ({n:,} {reason}, e.g. {location}: {detail}); "
            "check its `fields:` mapping and `path`")


def _repeated_ids(recipe: Recipe, src: SourceConfig, ids: pa.ChunkedArray) -> str | None:
    """One warning line when the source's kept rows repeat a `fields.id` value (it becomes their
    source_row_id, which pairs imported replies): how many rows, how many ids, the first repeat's
    file:line (found by reading the source again, only when there is one)."""
    import pyarrow.compute as pc

    counts = pc.value_counts(ids)
    many = pc.greater(counts.field("counts"), 1)
    if not pc.any(many).as_py():
        return None
    repeated = set(pc.filter(counts.field("values"), many).to_pylist())
    rows = pc.sum(pc.subtract(pc.filter(counts.field("counts"), many), 1)).as_py()
    first, where, seen = "", "", set()
    for rid, _, location in mapped_rows(recipe, src):
        if rid in repeated:
            if rid in seen:
                first, where = rid, location
                break
            seen.add(rid)
    at = f" at {where}" if where else ""
    return (f"source {src.name}: {rows:,} row(s) repeat the `fields.id` ({src.fields.id}) of an earlier row "
            f"({len(repeated):,} id(s); first: {first or next(iter(repeated))!r}{at}); a reply file keyed by "
            "`id_field` cannot tell them apart (their prompts get bad_import): make the ids unique")


def read_all(recipe: Recipe, ledger: Ledger, warnings: list[str], progress: Progress | None = None,
             workers: int | None = None) -> pa.Table:  # fmt: skip
    """Read every source in priority order into Arrow columns; quarantine what can't be used.
    `workers`: processes reading at once, the driver included (default read_workers; 1: serial)."""
    rules = ReadRules.of(recipe)
    parts: list[pa.Table] = []
    ordered = sorted(recipe.sources, key=lambda s: s.priority)  # stable: recipe order breaks ties
    pool = _Pool((workers or read_workers(recipe)) - 1)  # the driver reads too
    try:
        for k, src in enumerate(ordered):
            progress_report(progress, "read", k, len(ordered))  # sources read so far (a file's rows are not known ahead)
            rows = _source_rows(recipe, src, rules, pool, warnings)
            rows.flush()
            if src.fields.id and rows.parts:
                repeats = _repeated_ids(recipe, src, pa.concat_tables(rows.parts).column("source_row_id"))
                warnings += [repeats] if repeats else []
            for row_id, reason, detail, location in rows.bad:
                ledger.record("read", QUARANTINED, source=src.name, source_row_id=row_id,
                              reason=reason, detail=detail, location=location)
            parts += rows.parts
            ledger.enter("read", rows.n)  # once a source, not once a row
            if rows.n == 0:
                warnings.append(f"source {src.name}: read 0 rows")
            elif len(rows.bad) == rows.n:  # a mapping typo, the wrong file: say it even under --quiet
                warnings.append(_all_quarantined(src.name, rows.bad))
    finally:
        pool.close()
    if parts:
        table = pa.concat_tables(parts)
    else:
        table = arrow_table({k: [] for k in PROMPT_FEATURES}, PROMPT_FEATURES)
        table = table.append_column("_key", pa.array([], pa.binary(16))).append_column("_user", pa.array([], pa.string()))
    ledger.kept_arrow("read", table.select(LEDGER_COLUMNS))
    progress_report(progress, "read", len(ordered), len(ordered))
    return table
