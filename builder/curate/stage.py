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
import regex

from builder import tables
from builder.config.base import CATEGORIES
from builder.constraints.spec import BadConstraints, parse, to_json
from builder.curate.balance import balance
from builder.curate.columns import ChunkedTexts, ConstraintItems, interned, key_digest
from builder.curate.decontam_build import IndexBuild
from builder.curate.normalize import dedupe_key, normalize_text, tools_signature
from builder.curate.prompt_work import match_and_detect, workers_for
from builder.errors import UserError
from builder.executors import release_freed_memory, stop_forkservers
from builder.language import prompt_language_label
from builder.ledger import DROPPED, QUARANTINED, Ledger
from builder.progress import Progress
from builder.progress import report as progress_report
from builder.recipe import Recipe
from builder.rows import PROMPT_FEATURES, arrow_table, prompt_id_for, provenance_defaults
from builder.sources.mapping import RowProblem, map_row
from builder.sources.readers import BadRow, local_files, read_source
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


def _user_text(messages: list[dict[str, str]]) -> str:
    # User turns only: a long shared system prompt (tool-use sets) would make every row a
    # near-duplicate of every other. Exact dedupe still compares whole conversations.
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


READ_BATCH = 20_000  # rows held as Python objects before they become Arrow columns


def _new_batch() -> dict[str, list[Any]]:
    return {k: [] for k in [*PROMPT_FEATURES, "_key", "_user"]}


def _to_arrow(cols: dict[str, list[Any]], parts: list[pa.Table]) -> None:
    """The batch's rows as Arrow: the prompt columns, the exact-dedupe digest `_key` and the
    user text `_user` (what near dedupe and decontamination read). The lists are emptied."""
    if cols["prompt_id"]:
        t = arrow_table(cols, PROMPT_FEATURES)
        t = t.append_column("_key", pa.array(cols["_key"], pa.binary(16)))
        parts.append(t.append_column("_user", pa.array(cols["_user"], pa.string())))
    for v in cols.values():
        v.clear()


def _read_all(recipe: Recipe, ledger: Ledger, warnings: list[str], progress: Progress | None = None) -> pa.Table:
    """Read every source in priority order into Arrow columns; quarantine what can't be used."""
    cols = _new_batch()
    parts: list[pa.Table] = []
    max_chars = recipe.curate.normalize.max_prompt_chars
    min_chars = recipe.curate.normalize.min_prompt_chars
    form = recipe.curate.normalize.unicode_form
    prov = provenance_defaults()
    ordered = sorted(recipe.sources, key=lambda s: s.priority)  # stable: recipe order breaks ties
    for k, src in enumerate(ordered):
        progress_report(progress, "read", k, len(ordered))  # sources read so far (a file's rows are not known ahead)
        ref_re = regex.compile(src.reference_regex, regex.M) if src.reference_regex else None
        n_src = 0
        for item in read_source(recipe, src, warnings):
            n_src += 1
            if isinstance(item, BadRow):
                ledger.record("read", QUARANTINED, source=src.name, source_row_id=item.row_id,
                              reason=item.reason, detail=item.detail, location=item.location)
                continue
            try:
                rec = map_row(src, item.data, ref_re)
                msgs = [{"role": m["role"], "content": normalize_text(m["content"], form), "tool_calls": m["tool_calls"]}
                        for m in rec["messages"]]
                size = sum(len(m["content"]) for m in msgs)
                if size > max_chars:
                    raise RowProblem("too_long", f"prompt has {size:,} chars > max_prompt_chars={max_chars:,}")
                if not any(m["content"] for m in msgs if m["role"] == "user"):
                    raise RowProblem("empty_prompt", "prompt is empty after normalization")
                visible = sum(len("".join(m["content"].split())) for m in msgs if m["role"] == "user")
                if visible < min_chars:
                    raise RowProblem("too_short", f"prompt has {visible} non-space chars < min_prompt_chars={min_chars}")
                category = rec["category"]
                if category not in CATEGORIES:
                    raise RowProblem("unknown_category", f"category {category!r}; map it with category_map")
                try:  # a source's own list is validated here; the rest are detected on kept rows (below)
                    given = None if rec["constraints"] is None else to_json(parse(rec["constraints"]))
                except BadConstraints as e:
                    raise RowProblem("bad_constraints", f"field `{src.fields.constraints}`: {e}") from None
                n_user = sum(m["role"] == "user" for m in msgs)
                if category == "chat" and n_user > 1:
                    category = "multi_turn"  # the paper counts multi-turn chat on its own
            except RowProblem as p:
                ledger.record("read", QUARANTINED, source=src.name, source_row_id=item.row_id,
                              reason=p.code, detail=p.detail, location=item.location)
                continue
            text = _user_text(msgs)
            language = rec["language"] if rec["language"] != "auto" else prompt_language_label(text)
            row_id = rec["row_id"] or item.row_id
            pid = prompt_id_for(msgs, rec["tools_json"])
            cols["prompt_id"].append(pid)
            cols["messages"].append(msgs)
            cols["tools_json"].append(rec["tools_json"])
            cols["category"].append(category)
            cols["language"].append(language)
            cols["num_turns"].append(n_user)
            cols["original_response"].append(
                normalize_text(rec["original_response"], form) if rec["original_response"] else None
            )
            cols["original_tool_calls"].append(rec["original_tool_calls"])
            cols["reference_answer"].append(rec["reference_answer"])
            cols["tests_json"].append(rec["tests_json"])
            cols["verifier"].append(src.verifier)
            cols["constraints_json"].append(given)
            cols["source"].append(src.name)
            cols["source_license"].append(src.license)
            cols["source_row_id"].append(row_id)
            cols["schema_version"].append(prov["schema_version"])
            cols["toolkit_version"].append(prov["toolkit_version"])
            cols["_key"].append(key_digest(dedupe_key(msgs, rec["tools_json"])))
            cols["_user"].append(text)
            if len(cols["_key"]) >= READ_BATCH:
                _to_arrow(cols, parts)
        ledger.enter("read", n_src)  # once a source, not once a row
        if n_src == 0:
            warnings.append(f"source {src.name}: read 0 rows")
    _to_arrow(cols, parts)
    table = pa.concat_tables(parts) if parts else arrow_table(_new_batch(), PROMPT_FEATURES)
    if not parts:
        table = table.append_column("_key", pa.array([], pa.binary(16))).append_column("_user", pa.array([], pa.string()))
    ledger.kept_arrow("read", table.select(_LEDGER_COLS))
    progress_report(progress, "read", len(ordered), len(ordered))
    return table


_LEDGER_COLS = ["source", "source_row_id", "prompt_id"]


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
    cols = _read_all(recipe, ledger, warnings, progress)
    release_freed_memory()  # the step's Python objects and the previous table
    rows_in = ledger.steps["read"].rows_in if "read" in ledger.steps else 0
    if rows_in == 0:
        from builder.errors import UserError

        # The reader's warnings say why (an empty file, limit 0): the error is all that prints.
        why = f" ({warnings[0]}{f'; +{len(warnings) - 1} more' if len(warnings) > 1 else ''})" if warnings else ""
        raise UserError(f"{recipe.path}: the sources yielded 0 rows{why}; check each source's path and limit")
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
