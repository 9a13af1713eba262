"""The curate stage: sources → normalized, deduplicated, decontaminated, balanced prompts.

Steps, each accounted for in the ledger (rows in = kept + dropped):
  read          map fields, normalize; bad rows are quarantined with file:line and a code
  exact_dedupe  same normalized conversation (case/space-insensitive) → keep the winner
  near_dedupe   datatrove MinHash clusters → keep the winner (source priority, first seen)
  decontaminate benchmark n-gram / fuzzy hits → dropped, with benchmark + item
  balance       category / source quotas → over-quota rows dropped
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import regex

from builder import tables
from builder.config.base import CATEGORIES
from builder.constraints.spec import BadConstraints, parse, to_json
from builder.curate.balance import balance
from builder.curate.decontam import build_index
from builder.curate.normalize import dedupe_key, normalize_text, tools_signature
from builder.curate.prompt_work import match_and_detect, workers_for
from builder.errors import UserError
from builder.language import prompt_language_label
from builder.ledger import DROPPED, QUARANTINED, Ledger
from builder.progress import Progress
from builder.progress import report as progress_report
from builder.recipe import Recipe
from builder.rows import PROMPT_FEATURES, prompt_id_for, provenance_defaults
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


def _read_all(recipe: Recipe, ledger: Ledger, warnings: list[str], progress: Progress | None = None) -> dict[str, list[Any]]:
    """Read every source in priority order into columns; quarantine what can't be used."""
    cols: dict[str, list[Any]] = {k: [] for k in PROMPT_FEATURES}
    cols["_key"] = []
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
            cols["_key"].append(dedupe_key(msgs, rec["tools_json"]))
        ledger.enter("read", n_src)  # once a source, not once a row
        if n_src == 0:
            warnings.append(f"source {src.name}: read 0 rows")
    ledger.kept_many("read", cols["source"], cols["source_row_id"], cols["prompt_id"])
    progress_report(progress, "read", len(ordered), len(ordered))
    return cols


def _take(cols: dict[str, list[Any]], keep: list[bool]) -> dict[str, list[Any]]:
    return {k: [v for v, ok in zip(vals, keep) if ok] for k, vals in cols.items()}


def _step(ledger: Ledger, step: str, cols: dict[str, list[Any]], drop: dict[int, tuple[str, str]]) -> dict[str, list[Any]]:
    """Record one step's fate for every row; `drop` maps row index → (reason, detail)."""
    n = len(cols["prompt_id"])
    ledger.enter(step, n)
    keep = [i not in drop for i in range(n)]
    ledger.kept_many(
        step,
        [s for s, k in zip(cols["source"], keep) if k],
        [r for r, k in zip(cols["source_row_id"], keep) if k],
        [p for p, k in zip(cols["prompt_id"], keep) if k],
    )
    for i, (reason, detail) in sorted(drop.items()):
        ledger.record(step, DROPPED, source=cols["source"][i], source_row_id=cols["source_row_id"][i],
                      prompt_id=cols["prompt_id"][i], reason=reason, detail=detail)
    return _take(cols, keep)


def _exact_dedupe(cols: dict[str, list[Any]]) -> dict[int, tuple[str, str]]:
    first: dict[str, int] = {}
    drop: dict[int, tuple[str, str]] = {}
    for i, key in enumerate(cols["_key"]):
        j = first.setdefault(key, i)
        if j != i:
            drop[i] = ("exact_dup", cols["prompt_id"][j])
    return drop


def _near_dedupe(recipe: Recipe, work: WorkDir, cols: dict[str, list[Any]],
                 progress: Progress | None = None) -> dict[int, tuple[str, str]]:  # fmt: skip
    from builder.curate.near_dedupe import run_near_dedupe

    texts = [_user_text(m) for m in cols["messages"]]
    removed = run_near_dedupe(
        cols["prompt_id"], texts, cols["language"], work.stage(STAGE) / "near_dedupe",
        recipe.curate.near_dedupe, recipe.executor, progress,
    )
    index = {pid: i for i, pid in enumerate(cols["prompt_id"])}
    tools = [tools_signature(t) for t in cols["tools_json"]]
    # Texts alone are compared: a near twin offered other tools is another prompt, and stays.
    return {index[pid]: ("near_dup", kept) for pid, kept in removed.items() if tools[index[pid]] == tools[index.get(kept, index[pid])]}


def _constraint_items(cols: dict[str, list[Any]]) -> tuple[list[int], list[tuple[str | None, str]]]:
    """Rows whose constraints are to be detected (a source's own list is used as given; an IFEval
    tests spec is read by prompt_constraints) and their (tests_json, last user turn)."""
    todo = [i for i, c in enumerate(cols["constraints_json"]) if c is None]
    return todo, [(cols["tests_json"][i], next((m["content"] for m in reversed(cols["messages"][i])
                                                if m["role"] == "user"), "")) for i in todo]  # fmt: skip


def _decontaminate(recipe: Recipe, cols: dict[str, list[Any]], work: WorkDir,
                   progress: Progress | None = None) -> tuple[dict[int, tuple[str, str]], DecontaminationSummary]:  # fmt: skip
    """Decontamination hits; constraints of every row are detected in the same pool (see prompt_work)
    into the `_detected` column, which the later steps carry along."""
    cfg = recipe.curate.decontaminate
    index = build_index(recipe, cfg, progress)
    drop: dict[int, tuple[str, str]] = {}
    report: dict[str, list[Any]] = {k: [] for k in tables.DECONTAMINATION.features}
    texts = [_user_text(m) for m in cols["messages"]]
    todo, items = _constraint_items(cols)
    hits, found = match_and_detect(index, texts, items, workers_for(len(texts)), progress)
    cols["_detected"] = [None] * len(texts)
    for i, j in zip(todo, found):
        cols["_detected"][i] = j
    for i, hit in enumerate(hits):
        if hit is None:
            continue
        drop[i] = ("contaminated", f"{hit.benchmark}:{hit.item_id} ({hit.rule})")
        for k, v in (("benchmark", hit.benchmark), ("item_id", hit.item_id), ("prompt_id", cols["prompt_id"][i]),
                     ("source", cols["source"][i]), ("source_row_id", cols["source_row_id"][i]),
                     ("rule", hit.rule), ("score", float(hit.score)), ("span", hit.clipped_span),
                     ("evidence", hit.evidence)):
            report[k].append(v)
    work.write_columns(tables.DECONTAMINATION, report)
    meta = DecontaminationSummary(
        benchmarks=index.benchmarks,
        skipped_absent=index.skipped,
        ngram=cfg.ngram,
        fuzzy_threshold=cfg.fuzzy_threshold,
        hits_per_benchmark=dict(Counter(report["benchmark"])),
        items=len(index.items),
        common_ngrams_ignored=index.common_ngrams,
    )
    return drop, meta


def _curate(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> CurateResult:
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
    rows_in = ledger.steps["read"].rows_in if "read" in ledger.steps else 0
    if rows_in == 0:
        from builder.errors import UserError

        # The reader's warnings say why (an empty file, limit 0): the error is all that prints.
        why = f" ({warnings[0]}{f'; +{len(warnings) - 1} more' if len(warnings) > 1 else ''})" if warnings else ""
        raise UserError(f"{recipe.path}: the sources yielded 0 rows{why}; check each source's path and limit")
    tick("exact_dedupe")
    cols = _step(ledger, "exact_dedupe", cols, _exact_dedupe(cols))
    if recipe.curate.near_dedupe.enabled and cols["prompt_id"]:
        tick("near_dedupe")
        cols = _step(ledger, "near_dedupe", cols, _near_dedupe(recipe, work, cols, progress))
    decontam_meta = DecontaminationSummary(benchmarks=[], skipped_absent=[])
    if recipe.curate.decontaminate.enabled:
        tick("decontaminate")
        drop, decontam_meta = _decontaminate(recipe, cols, work, progress)
        # Said loudly, not only recorded: the card must disclose what was not checked.
        warnings += [f"decontamination against {b} skipped: its file is absent (optional: true)"
                     for b in dict.fromkeys(decontam_meta.skipped_absent)]  # fmt: skip
        cols = _step(ledger, "decontaminate", cols, drop)
    tick("balance")
    bal = balance(cols["prompt_id"], cols["source"], cols["category"], recipe.curate.balance)
    cols = _step(ledger, "balance", cols, {i: ("over_quota", r) for i, r in enumerate(bal.reason) if not bal.keep[i]})

    # Chain check: each step starts with exactly what the previous one kept.
    names = list(ledger.steps)
    for a, b in zip(names, names[1:]):
        if ledger.steps[a].kept != ledger.steps[b].rows_in:
            raise RuntimeError(f"ledger chain broken: {a} kept {ledger.steps[a].kept} but {b} received {ledger.steps[b].rows_in}")

    tick("constraints")
    # Detection costs ~0.1 ms a prompt; it ran beside decontamination (prompt_work) unless that was off.
    detected = cols.pop("_detected", None)
    if detected is None:
        todo, items = _constraint_items(cols)
        _, detected_todo = match_and_detect(None, [], items, workers_for(len(items)))
        detected = [None] * len(cols["prompt_id"])
        for i, j in zip(todo, detected_todo):
            detected[i] = j
    cols["constraints_json"] = [c if c is not None else d for c, d in zip(cols["constraints_json"], detected)]
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
        rows_out=len(cols["prompt_id"]),
        steps=ledger.summary(),
        warnings=warnings,
        seconds=time.perf_counter() - t0,
        step_seconds=step_seconds,
        by_category=dict(Counter(cols["category"])),
        by_source=dict(Counter(cols["source"])),
    )
    work.write_summary(CurateSummary(
        recipe=recipe.name, version=recipe.version, recipe_sha256=recipe.sha256,
        rows_in=result.rows_in, rows_out=result.rows_out, steps=StepRow.rows(result.steps),
        balance=balance_table, category_quota=bal.category_quota,
        decontamination=decontam_meta, warnings=warnings, seconds=result.seconds,
        step_seconds=step_seconds,
    ))  # fmt: skip
    return result


def source_stats(recipe: Recipe) -> list[Any]:
    """What curate reads besides the recipe: each local file's (path, size, mtime) — sources and
    benchmark files — and each Hub source's id and revision (an unpinned one always re-runs)."""
    out: list[Any] = []
    for src in recipe.sources:
        if src.kind == "hf":
            out.append([src.dataset, src.config, src.split, src.revision or f"unpinned:{time.time_ns()}"])
            continue
        try:
            files = local_files(recipe, src)
        except UserError:
            files = []  # the stage itself will say what is wrong
        out += [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]
    for b in recipe.curate.decontaminate.benchmarks:
        f = recipe.resolve(b.path)
        out.append([str(f), *( [f.stat().st_size, f.stat().st_mtime_ns] if f.is_file() else ["absent"])])
    return out


def fingerprint(recipe: Recipe, work: WorkDir) -> dict[str, Any]:
    """What this stage's outputs depend on (see WorkDir.fingerprint)."""
    return work.fingerprint({"sources": recipe.sources, "curate": recipe.curate}, (), source_stats(recipe))


def run_curate(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> CurateResult:
    """Read, normalize, dedupe, decontaminate and balance every source. Outputs are committed together at the end (WorkDir.stage_run)."""
    with work.stage_run(STAGE, fingerprint(recipe, work)):
        return _curate(recipe, work, progress)
