"""The curate stage: sources → normalized, deduplicated, decontaminated, balanced prompts.

Steps, each accounted for in the ledger (rows in = kept + dropped):
  read          map fields, normalize; bad rows are quarantined with file:line and a code
  exact_dedupe  same normalized conversation (case/space-insensitive) → keep the winner
  near_dedupe   datatrove MinHash clusters → keep the winner (source priority, first seen)
  decontaminate benchmark n-gram / fuzzy hits → dropped, with benchmark + item
  balance       category / source quotas → over-quota rows dropped
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from builder import tables
from builder.curate.balance import balance
from builder.curate.columns import ChunkedTexts, ConstraintItems, interned
from builder.curate.decontam import methods_run
from builder.curate.decontam_build import IndexBuild
from builder.curate.normalize import tools_signature
from builder.curate.prompt_work import match_and_detect, workers_for
from builder.curate.read import LEDGER_COLUMNS, read_all
from builder.errors import UserError
from builder.executors import release_freed_memory, stop_forkservers
from builder.ledger import DROPPED, Ledger
from builder.progress import Progress
from builder.progress import report as progress_report
from builder.recipe import Recipe
from builder.sources.paths import local_files
from builder.tables import BalanceRow, CurateSummary, DecontaminationSummary, StepRow
from builder.workdir import WorkDir

STAGE = "curate"
READS: tuple[()] = ()  # the recipe's sources, outside the work dir
WRITES = (tables.PROMPTS, tables.DECONTAMINATION, tables.CURATE_LEDGER, CurateSummary)


@dataclass
class CurateResult:
    rows_in: int
    rows_out: int
    steps: list[tuple[str, int, int, dict[str, int]]]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)


_LEDGER_COLS = LEDGER_COLUMNS


def _column(t: pa.Table, name: str, rows: list[int]) -> list[Any]:
    """Column `name` of rows `rows` only, as Python values."""
    return t[name].take(pa.array(rows, pa.int64())).to_pylist() if rows else []


def _step(ledger: Ledger, step: str, t: pa.Table, drop: dict[int, tuple[str, str]]) -> pa.Table:
    """Record one step's fate for every row; `drop` maps row index → (reason, detail)."""
    ledger.enter(step, t.num_rows)
    keep = np.ones(t.num_rows, dtype=bool)
    order = sorted(drop)
    keep[order] = False
    mask = pa.array(keep)
    ledger.kept_arrow(step, t.select(_LEDGER_COLS).filter(mask))
    gone = t.select(_LEDGER_COLS).take(pa.array(order, pa.int64())).to_pydict()
    for k, i in enumerate(order):
        reason, detail = drop[i]
        ledger.record(step, DROPPED, source=gone["source"][k], source_row_id=gone["source_row_id"][k],
                      prompt_id=gone["prompt_id"][k], reason=reason, detail=detail)
    return t.filter(mask)


def _exact_dedupe(t: pa.Table) -> dict[int, tuple[str, str]]:
    """Each row whose key an earlier row has → (exact_dup, that first row's prompt_id)."""
    twin, first = _key_twins(t["_key"].combine_chunks())
    winners = sorted(set(first.tolist()))
    kept = dict(zip(winners, _column(t, "prompt_id", winners)))
    return {i: ("exact_dup", kept[j]) for i, j in zip(twin.tolist(), first.tolist())}


def _key_twins(keys: pa.FixedSizeBinaryArray) -> tuple[np.ndarray, np.ndarray]:
    """(rows whose 16-byte key occurred before, the first row with that key), by row. The keys as two
    uint64 halves, sorted stably: a Python dict of 1M bytes keys cost ~2 s in the driver."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    data = np.frombuffer(keys.buffers()[1], dtype=np.uint64)[2 * keys.offset : 2 * (keys.offset + n)]
    hi, lo = data[0::2], data[1::2]
    order = np.lexsort((np.arange(n), lo, hi))
    same = (hi[order][1:] == hi[order][:-1]) & (lo[order][1:] == lo[order][:-1])
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    group_first = np.repeat(order[starts], np.diff(np.append(starts, n)))
    dup = np.concatenate(([False], same))
    twin, first = order[dup], group_first[dup]
    by_row = np.argsort(twin)
    return twin[by_row], first[by_row]


def _near_dedupe(recipe: Recipe, work: WorkDir, t: pa.Table,
                 progress: Progress | None = None) -> dict[int, tuple[str, str]]:  # fmt: skip
    from builder.curate.near_dedupe import run_near_dedupe

    removed = run_near_dedupe(
        t["prompt_id"], t["_user"], t["language"], work.stage(STAGE) / "near_dedupe",
        recipe.curate.near_dedupe, recipe.executor, progress,
    )
    if not removed:
        return {}
    # Only the removed rows and their winners are looked up (not a dict of every prompt id).
    wanted = pa.array(list({*removed, *removed.values()}), pa.string())
    rows = np.flatnonzero(pc.is_in(t["prompt_id"], value_set=wanted).to_numpy(zero_copy_only=False)).tolist()
    index = dict(zip(_column(t, "prompt_id", rows), rows))
    tools = dict(zip(rows, (tools_signature(j) for j in _column(t, "tools_json", rows))))
    # Texts alone are compared: a near twin offered other tools is another prompt, and stays.
    return {index[pid]: ("near_dup", kept) for pid, kept in removed.items() if tools[index[pid]] == tools[index.get(kept, index[pid])]}


def _constraint_rows(t: pa.Table) -> np.ndarray:
    """Rows whose constraints are to be detected (a source's own list is used as given; an IFEval
    tests spec is read by prompt_constraints); ConstraintItems gives their (tests_json, last user turn)."""
    return np.flatnonzero(pc.is_null(t["constraints_json"]).to_numpy(zero_copy_only=False))


def _decontaminate(recipe: Recipe, t: pa.Table, work: WorkDir, build: IndexBuild,
                   progress: Progress | None = None) -> tuple[dict[int, tuple[str, str]], DecontaminationSummary, pa.Table]:  # fmt: skip
    """Decontamination hits; constraints of every row are detected in the same pool (see prompt_work)
    into the `_detected` column, which the later steps carry along. The index comes from `build`
    (started when the stage began reading: decontam_build)."""
    cfg = recipe.curate.decontaminate
    progress_report(progress, "decontaminate: indexing benchmark files", 0, 1)
    info = build.info()
    progress_report(progress, "decontaminate: indexing benchmark files", 1, 1)
    benchmarks, skipped, n_items, common = info.benchmarks, info.skipped, info.items, info.common_ngrams
    workers = workers_for(t.num_rows)
    # Pool workers load the file themselves: the driver does not keep a third copy.
    source: Any = build.path if workers > 1 and build.in_file else build.index()
    drop: dict[int, tuple[str, str]] = {}
    report: dict[str, list[Any]] = {k: [] for k in tables.DECONTAMINATION.features}
    texts = ChunkedTexts(t["_user"])  # a batch at a time, into the workers' jobs
    todo = _constraint_rows(t)
    hits, found_c = match_and_detect(source, texts, ConstraintItems(t, todo), workers, progress)
    detected: list[str | None] = [None] * t.num_rows
    for i, j in zip(todo.tolist(), found_c):
        detected[i] = j
    del found_c
    t = t.append_column("_detected", pa.array(detected, pa.string()))
    del detected
    rows = [i for i, hit in enumerate(hits) if hit is not None]
    found = t.select(_LEDGER_COLS).take(pa.array(rows, pa.int64())).to_pydict()
    for n, i in enumerate(rows):
        hit = hits[i]
        assert hit is not None
        drop[i] = ("contaminated", f"{hit.benchmark}:{hit.item_id} ({hit.rule})")
        for k, v in (("benchmark", hit.benchmark), ("item_id", hit.item_id), ("prompt_id", found["prompt_id"][n]),
                     ("source", found["source"][n]), ("source_row_id", found["source_row_id"][n]),
                     ("rule", hit.rule), ("score", float(hit.score)), ("span", hit.clipped_span),
                     ("evidence", hit.evidence)):
            report[k].append(v)
    work.write_columns(tables.DECONTAMINATION, report)
    meta = DecontaminationSummary(
        benchmarks=benchmarks,
        skipped_absent=skipped,
        ngram=cfg.ngram,
        fuzzy_threshold=cfg.fuzzy_threshold,
        hits_per_benchmark=dict(Counter(report["benchmark"])),
        items=n_items,
        common_ngrams_ignored=common,
        methods=methods_run(cfg, benchmarks),
    )
    return drop, meta, t


def _curate(recipe: Recipe, work: WorkDir, build: IndexBuild, progress: Progress | None = None) -> CurateResult:
    t0 = time.perf_counter()
    ledger = Ledger(STAGE)
    warnings: list[str] = []

    step_seconds: dict[str, float] = {}
    last = [time.perf_counter(), ""]

    def tick(step: str) -> None:
        now = time.perf_counter()
        if last[1]:
            step_seconds[str(last[1])] = round(now - float(last[0]), 3)
        last[0], last[1] = now, step
        if progress is not None and step:
            progress(step)

    tick("read")
    cols = read_all(recipe, ledger, warnings, progress)
    release_freed_memory()  # the step's Python objects and the previous table
    rows_in = ledger.steps["read"].rows_in if "read" in ledger.steps else 0
    if rows_in == 0 or cols.num_rows == 0:
        from builder.errors import UserError

        # The reader's warnings say why (an empty file, limit 0, every row quarantined): the error is all that prints.
        why = f" ({warnings[0]}{f'; +{len(warnings) - 1} more' if len(warnings) > 1 else ''})" if warnings else ""
        what = "yielded 0 rows" if rows_in == 0 else f"yielded {rows_in:,} rows and none could be used"
        raise UserError(f"{recipe.path}: the sources {what}{why}; check each source's path, limit and fields")
    if recipe.curate.decontaminate.enabled:
        # The side build is done by now on a big read; waiting here ends its process before any step
        # stops the forkservers (a server outlives none of its children), and a bad benchmark file
        # fails the run before the dedupe steps are paid for.
        build.info()
    tick("exact_dedupe")
    cols = _step(ledger, "exact_dedupe", cols, _exact_dedupe(cols))
    release_freed_memory()  # the step's Python objects and the previous table
    if recipe.curate.near_dedupe.enabled and cols.num_rows:
        tick("near_dedupe")
        cols = _step(ledger, "near_dedupe", cols, _near_dedupe(recipe, work, cols, progress))
        # datatrove's idle server would stay for the rest of the stage; ours (started by the index
        # build, decontam_build) forks decontamination's workers next
        stop_forkservers(keep_lean=recipe.curate.decontaminate.enabled)
        release_freed_memory()  # the step's Python objects and the previous table
    decontam_meta = DecontaminationSummary(benchmarks=[], skipped_absent=[])
    if recipe.curate.decontaminate.enabled:
        tick("decontaminate")
        drop, decontam_meta, cols = _decontaminate(recipe, cols, work, build, progress)
        build.close()  # the file and any copy the driver held
        # Said loudly, not only recorded: the card must disclose what was not checked.
        warnings += [f"decontamination against {b} skipped: its file is absent (optional: true)"
                     for b in dict.fromkeys(decontam_meta.skipped_absent)]  # fmt: skip
        cols = _step(ledger, "decontaminate", cols, drop)
        stop_forkservers()
        release_freed_memory()  # the step's Python objects and the previous table
    tick("balance")
    bal = balance(cols["prompt_id"].to_pylist(), interned(cols["source"]), interned(cols["category"]), recipe.curate.balance)
    cols = _step(ledger, "balance", cols, {i: ("over_quota", r) for i, r in enumerate(bal.reason) if not bal.keep[i]})

    # Chain check: each step starts with exactly what the previous one kept.
    names = list(ledger.steps)
    for a, b in zip(names, names[1:]):
        if ledger.steps[a].kept != ledger.steps[b].rows_in:
            raise RuntimeError(f"ledger chain broken: {a} kept {ledger.steps[a].kept} but {b} received {ledger.steps[b].rows_in}")

    tick("constraints")
    # Detection costs ~0.1 ms a prompt; it ran beside decontamination (prompt_work) unless that was off.
    if "_detected" not in cols.column_names:
        todo = _constraint_rows(cols)
        _, found = match_and_detect(None, [], ConstraintItems(cols, todo), workers_for(len(todo)))
        detected: list[str | None] = [None] * cols.num_rows
        for i, j in zip(todo.tolist(), found):
            detected[i] = j
        cols = cols.append_column("_detected", pa.array(detected, pa.string()))
        del detected, found
    merged = pc.coalesce(cols["constraints_json"], cols["_detected"])
    cols = cols.set_column(cols.schema.get_field_index("constraints_json"), cols.schema.field("constraints_json"), merged)
    tick("write")
    work.write_columns(tables.PROMPTS, cols)
    work.write_ledger(ledger)
    tick("")
    balance_table = [
        BalanceRow(category=c, source=s, before=bal.before.get((c, s), 0), after=bal.after.get((c, s), 0))
        for (c, s) in sorted(set(bal.before) | set(bal.after))
    ]
    result = CurateResult(
        rows_in=rows_in,
        rows_out=cols.num_rows,
        steps=ledger.summary(),
        warnings=warnings,
        seconds=time.perf_counter() - t0,
        step_seconds=step_seconds,
        by_category=dict(Counter(interned(cols["category"]))),
        by_source=dict(Counter(interned(cols["source"]))),
    )
    work.write_summary(CurateSummary(
        recipe=recipe.name, version=recipe.version, recipe_sha256=recipe.sha256,
        rows_in=result.rows_in, rows_out=result.rows_out, steps=StepRow.rows(result.steps),
        balance=balance_table, category_quota=bal.category_quota,
        decontamination=decontam_meta, warnings=warnings, seconds=result.seconds,
        step_seconds=step_seconds,
    ))  # fmt: skip
    return result


def _source_files(recipe: Recipe) -> Iterator[tuple[Any, list[Path]]]:
    """Each source with its local files (none for a Hub source, or where the paths are wrong:
    the read step says what is wrong)."""
    for src in recipe.sources:
        files: list[Path] = []
        if src.kind != "hf":
            with contextlib.suppress(UserError):
                files = [f for f in local_files(recipe, src) if f.is_file()]
        yield src, files


def source_stats(recipe: Recipe) -> list[Any]:
    """What curate reads besides the recipe: each local file's (path, size, mtime) — sources and
    benchmark files — and each Hub source's id and revision (an unpinned one always re-runs)."""
    out: list[Any] = []
    for src, files in _source_files(recipe):
        if src.kind == "hf":
            out.append([src.dataset, src.config, src.split, src.revision or f"unpinned:{time.time_ns()}"])
        out += [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    for b in recipe.curate.decontaminate.benchmarks:
        f = recipe.resolve(b.path)
        out.append([str(f), *( [f.stat().st_size, f.stat().st_mtime_ns] if f.is_file() else ["absent"])])
    return out


BACKGROUND_INDEX_FROM = 8 << 20  # source bytes (~20k prompts): below, a side process costs more than it hides


def _large_sources(recipe: Recipe) -> bool:
    """Whether the sources are big enough (or of unknown size: Hub) for a side process to pay."""
    size = 0
    for src, files in _source_files(recipe):
        if src.kind == "hf":
            return True
        size += sum(f.stat().st_size for f in files)
    return size >= BACKGROUND_INDEX_FROM


def fingerprint(recipe: Recipe, work: WorkDir) -> dict[str, Any]:
    """What this stage's outputs depend on (see WorkDir.fingerprint)."""
    return work.fingerprint({"sources": recipe.sources, "curate": recipe.curate}, (), source_stats(recipe))


def run_curate(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> CurateResult:
    """Read, normalize, dedupe, decontaminate and balance every source. Outputs are committed together at the end (WorkDir.stage_run)."""
    with work.stage_run(STAGE, fingerprint(recipe, work)):
        # The benchmark index is built beside the read (one core reads, the other builds): decontam_build.
        dc = recipe.curate.decontaminate
        background = dc.enabled and bool(dc.benchmarks) and _large_sources(recipe)
        build = IndexBuild(recipe, work.stage(STAGE) / "decontaminate", background=background)
        try:
            return _curate(recipe, work, build, progress)
        finally:
            build.close()
