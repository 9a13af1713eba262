"""Every input row's fate, and the rows-in = rows-kept + rows-dropped check.

A stage opens one ``Ledger``, records each step's outcome per row (kept, or dropped with a
machine-readable reason), and ``close()`` writes ``<work>/<stage>/ledger.parquet`` after
checking that for every step the rows that entered equal the rows kept plus the rows dropped.
A step that loses a row fails the build loudly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder.rows import LEDGER_FEATURES

KEPT = "kept"
DROPPED = "dropped"
QUARANTINED = "quarantined"


class LedgerMismatch(RuntimeError):
    """A step's accounting does not add up: a bug, never a user error."""


@dataclass
class StepCount:
    rows_in: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Ledger:
    def __init__(self, stage: str, spill: Path | None = None) -> None:
        """`spill`: a scratch parquet file where own rows in Arrow go as they come (memory stays
        one batch however many rows the stage records); removed when the ledger is written."""
        self.stage = stage
        self._cols: dict[str, list[str]] = {k: [] for k in LEDGER_FEATURES}
        self._parts: list[pa.Table | Path] = []  # other ledgers' rows (add_part), before _cols
        self._chunks: list[pa.Table] = []  # own rows already in Arrow (kept_arrow), in order, before _cols
        self.steps: dict[str, StepCount] = {}
        self._spill_path = spill
        self._spill: pq.ParquetWriter | None = None
        self._spilled = False  # the spill file is whole (read back): later rows stay in _chunks

    def enter(self, step: str, n: int) -> None:
        """Declare that n rows entered a step; close() checks they all got a fate."""
        self.steps.setdefault(step, StepCount()).rows_in += n

    def record(
        self,
        step: str,
        status: str,
        *,
        source: str = "",
        source_row_id: str = "",
        prompt_id: str = "",
        reason: str = "",
        detail: str = "",
        location: str = "",
    ) -> None:
        count = self.steps.setdefault(step, StepCount())
        if status == KEPT:
            count.kept += 1
        else:
            count.dropped[reason or status] += 1
        for key, value in (
            ("stage", self.stage),
            ("step", step),
            ("source", source),
            ("source_row_id", source_row_id),
            ("prompt_id", prompt_id),
            ("status", status),
            ("reason", reason),
            ("detail", detail),
            ("location", location),
        ):
            self._cols[key].append(value)

    def kept_many(self, step: str, source: list[str], source_row_id: list[str], prompt_id: list[str]) -> None:
        """Bulk form of record(KEPT) for the common case, without a Python call per row."""
        n = len(prompt_id)
        self.steps.setdefault(step, StepCount()).kept += n
        self._cols["stage"].extend([self.stage] * n)
        self._cols["step"].extend([step] * n)
        self._cols["source"].extend(source)
        self._cols["source_row_id"].extend(source_row_id)
        self._cols["prompt_id"].extend(prompt_id)
        self._cols["status"].extend([KEPT] * n)
        for key in ("reason", "detail", "location"):
            self._cols[key].extend([""] * n)

    def kept_arrow(self, step: str, rows: pa.Table) -> None:
        """kept_many for rows already in Arrow (`source`, `source_row_id`, `prompt_id` columns):
        stored as Arrow (a million kept rows per step cost their bytes, not a Python str each)."""
        self.steps.setdefault(step, StepCount()).kept += rows.num_rows
        self._append_arrow(rows, {"step": step, "status": KEPT, "reason": "", "detail": ""})

    def record_arrow(self, step: str, rows: pa.Table) -> None:
        """record() for a batch of rows already in Arrow: `source`, `source_row_id`, `prompt_id`,
        `status`, `reason`, `detail` columns (`location` is empty), one row each, in order."""
        count = self.steps.setdefault(step, StepCount())
        kept = pc.equal(rows["status"], KEPT)
        count.kept += pc.sum(pc.cast(kept, pa.int64())).as_py() or 0
        dropped = rows.filter(pc.invert(kept))
        if dropped.num_rows:  # a dropped row counts under its reason, or its status when it has none
            named = pc.and_(pc.is_valid(dropped["reason"]), pc.not_equal(dropped["reason"], ""))
            key = pc.if_else(pc.fill_null(named, False), dropped["reason"], dropped["status"])
            vc = pc.value_counts(key)
            count.dropped.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())))
        self._append_arrow(rows, {"step": step})

    def _append_arrow(self, rows: pa.Table, const: dict[str, str]) -> None:
        """`rows`' ledger columns, the others constant (`stage` and an empty `location` always),
        after the rows recorded one by one so far (the ledger keeps its order)."""
        self._flush()
        const = {"stage": self.stage, "location": "", **const}
        n = rows.num_rows
        cols = {k: pa.repeat(pa.scalar(const[k], pa.string()), n) if k in const else rows[k] for k in LEDGER_FEATURES}
        self._add_chunk(pa.table(cols).cast(LEDGER_FEATURES.arrow_schema))

    def _add_chunk(self, t: pa.Table) -> None:
        if self._spill_path is not None and not self._spilled:
            if self._spill is None:
                self._spill_path.parent.mkdir(parents=True, exist_ok=True)
                self._spill = pq.ParquetWriter(self._spill_path, LEDGER_FEATURES.arrow_schema)
            self._spill.write_table(t)
        else:
            self._chunks.append(t)

    def _flush(self) -> None:
        """Move the rows recorded so far into an Arrow chunk (keeps the ledger's row order)."""
        if self._cols["step"]:
            self._add_chunk(pa.table(self._cols, schema=LEDGER_FEATURES.arrow_schema))
            self._cols = {k: [] for k in LEDGER_FEATURES}

    def _spilled_tables(self) -> Iterator[pa.Table]:
        """The spill file's rows (closed on first read; rows recorded after it stay in memory)."""
        if self._spill_path is None or (self._spill is None and not self._spilled):
            return
        if not self._spilled:
            self._flush()
            assert self._spill is not None
            self._spill.close()
            self._spill, self._spilled = None, True
        for b in pq.ParquetFile(self._spill_path).iter_batches(batch_size=65536):
            yield pa.Table.from_batches([b], LEDGER_FEATURES.arrow_schema)

    def add_part(self, rows: pa.Table | Path, steps: list[tuple[str, int, int, dict[str, int]]]) -> None:
        """Another ledger of this stage (a task's part): its rows (Arrow, or a parquet file read
        only when the ledger is written: a million-row stage's parts need not all be in memory)
        and its step counts (its `summary()`); `check_parts` tells whether the rows say the same."""
        for step, rows_in, kept, dropped in steps:
            c = self.steps.setdefault(step, StepCount())
            c.rows_in += rows_in
            c.kept += kept
            c.dropped.update(dropped)
        self._parts.append(rows)

    def _tables(self, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """The parts, then this ledger's own rows, one table at a time."""
        for p in self._parts:
            t = pq.read_table(p, columns=columns) if isinstance(p, Path) else p
            yield t.select(columns) if columns else t.cast(LEDGER_FEATURES.arrow_schema)
        for own in self._spilled_tables():
            yield own.select(columns) if columns else own
        for own in [*self._chunks, pa.table(self._cols, schema=LEDGER_FEATURES.arrow_schema)]:
            yield own.select(columns) if columns else own

    def check_parts(self) -> None:
        """The rows themselves (not only the counters) account for every step's kept and dropped."""
        got: Counter[tuple[str, bool]] = Counter()
        for t in self._tables(["step", "status"]):
            for r in t.group_by(["step", "status"]).aggregate([("status", "count")]).to_pylist():
                got[(r["step"], r["status"] == KEPT)] += r["status_count"]
        for step, c in self.steps.items():
            if (got[(step, True)], got[(step, False)]) != (c.kept, c.dropped_total):
                raise LedgerMismatch(f"ledger {self.stage}/{step}: {c.kept} kept + {c.dropped_total} dropped counted, "
                                     f"but {got[(step, True)]} + {got[(step, False)]} rows recorded")  # fmt: skip

    def check(self) -> None:
        for step, c in self.steps.items():
            if c.rows_in != c.kept + c.dropped_total:
                raise LedgerMismatch(
                    f"ledger {self.stage}/{step}: {c.rows_in} rows in but {c.kept} kept + "
                    f"{c.dropped_total} dropped; a row was lost or double-counted"
                )

    def table(self) -> pa.Table:
        return pa.concat_tables(list(self._tables()))

    def close(self, out_dir: Path) -> Path:
        self.check()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "ledger.parquet"
        if not self._parts and not self._chunks and self._spill_path is None:
            pq.write_table(self.table(), path)
            return path
        with pq.ParquetWriter(path, LEDGER_FEATURES.arrow_schema) as w:  # part by part: bounded memory
            for t in self._tables():
                w.write_table(t)
        if self._spill_path is not None:
            self._spill_path.unlink(missing_ok=True)
        return path

    def summary(self) -> list[tuple[str, int, int, dict[str, int]]]:
        return [(s, c.rows_in, c.kept, dict(c.dropped)) for s, c in self.steps.items()]


def verify_ledger_file(path: Path) -> dict[str, tuple[int, int]]:
    """Re-check a written ledger: per step, (kept, dropped). Used by `build` between stages."""
    t = pq.read_table(path, columns=["step", "status"]).to_pydict()
    per: dict[str, list[int]] = {}
    for step, status in zip(t["step"], t["status"]):
        k = per.setdefault(step, [0, 0])
        k[0 if status == KEPT else 1] += 1
    return {s: (v[0], v[1]) for s, v in per.items()}


# Why a row was quarantined or failed → what to do about it. `{source}` is the source's name.
# One table for every stage's reasons, so the console, and anything else that explains a
# ledger, says the same thing. A reason missing here is shown without a hint.
HINTS: dict[str, str] = {
    "unknown_category": "add `category_map` (or a fixed `category`) for source {source}",
    "missing_field": "check `fields:` of source {source}: a mapped field is absent in these rows",
    "wrong_type": "check `fields:` of source {source}: a mapped field has another type (text expected)",
    "empty_prompt": "these rows of {source} have an empty prompt; nothing to do if that is right",
    "no_user_turn": "map `messages` of source {source} to the conversation with at least one user turn",
    "too_long": "raise the source's length limit, or accept that these prompts are dropped",
    "bad_json": "fix the file of source {source} at that line (one JSON object per line)",
    "bad_utf8": "re-encode the file of source {source} as UTF-8",
    "not_text": "source {source} holds binary data; point `path` at the text file",
    "not_an_object": "each line of source {source} must be a JSON object",
    "truncated_file": "the file of source {source} is cut; download it again",
    "corrupt_file": "the file of source {source} is corrupt; download it again",
    "too_many_options": "an MCQ of {source} has more than 26 options; drop or split it",
    "bad_unicode": "the file of source {source} holds lone surrogates; re-export it as valid UTF-8",
    "not_serializable": "source {source} holds values JSON cannot store (NaN, bytes); clean them",
    "failed:auth_failed": "the endpoint refused the key: check the teacher's `api_key_env`",
    "failed:model_not_found": "the endpoint does not serve this model: check the teacher's `model`",
    "failed:connection_error": "the endpoint did not answer: check `base_url`, then re-run (stored replies are kept)",
    "failed:insufficient_balance": "the provider's account has no balance left (402): top it up, then re-run",
    "failed:store_damaged": "a stored reply could not be read back (a crash, disk damage): re-run to ask it again",
    "failed:insufficient_system_resource": "the provider cut the reply for lack of resources: re-run to ask again",
    "failed:rate_limited": "re-run to retry; lower `limits.requests_per_minute` if it persists",
    "failed:server_error": "re-run to retry (stored replies are kept)",
    "failed:timeout": "re-run to retry; raise `limits.timeout_s` for long replies",
    "failed:bad_request": "the endpoint rejected the request: check `sampling` against what it accepts",
    "context_length_exceeded": "the prompt does not fit the model's context; lower `max_tokens` or accept the loss",
    "content_filter": "the provider refused these prompts; nothing to do, or use another teacher",
    "verify_fail": "the teacher's answer did not match the reference; kept out on purpose (`responses.keep`)",
    "repetition_loop": "the reply loops; kept out on purpose (tune `responses.repetition` if too strict)",
    "unclosed_answer": "the reply has no closing </answer>; usually a truncated reply (raise `max_tokens`)",
    "missing_think": "the reply has no thinking: check the teacher's `reasoning_format`",
    "unknown_reasoning_format": "set `reasoning_format` on the teacher (r1, skythought, marco…)",
    "too_long_for_student": "longer than `student.max_tokens`; raise it or accept the loss",
    "language_mismatch_think": "the thinking is in another language than the prompt; kept out on purpose",
    "language_mismatch_answer": "the answer is in another language than the prompt; kept out on purpose",
}
# Absences that are the recipe's design, not failures: shown as expected.
EXPECTED: dict[str, str] = {
    "not_in_import": "expected: the import has replies for some prompts only",
    "generation_failed:not_in_import": "expected: the import has replies for some prompts only",
}


def hint_for(reason: str, source: str) -> str:
    """The fix (or the expected-absence note) for a ledger reason, '' when none is known."""
    base = reason.removeprefix("generation_failed:")  # responses names generate's failures so
    text = EXPECTED.get(reason) or HINTS.get(reason) or HINTS.get(base) or HINTS.get(f"failed:{base}", "")
    return text.replace("{source}", source or "?")


@dataclass
class ReasonRow:
    """One (source, reason) among a step's drops: how many of the source's rows, one example."""

    step: str
    source: str
    reason: str
    count: int
    of: int
    example: str
    hint: str
    expected: bool


def top_reasons(path: Path, per_source: int = 3) -> list[ReasonRow]:
    """Per step and source, the `per_source` most frequent quarantine / failure reasons of a
    written ledger, each with one example (`file:line` where the reader knew it). Ordinary
    curation drops (duplicates, contamination, balance quotas) are the steps table's business."""
    cols = ["step", "source", "status", "reason", "location", "source_row_id"]
    t = pq.read_table(path, columns=cols).to_pydict()
    totals: Counter[tuple[str, str]] = Counter(zip(t["step"], t["source"]))
    found: dict[tuple[str, str, str], list[Any]] = {}
    for step, src, status, reason, loc, rid in zip(*(t[c] for c in cols)):
        if status == KEPT or not (status == QUARANTINED or reason in HINTS or reason in EXPECTED):
            continue
        row = found.setdefault((step, src, reason), [0, loc or (f"row {rid[:16]}" if rid else "")])
        row[0] += 1
    out: list[ReasonRow] = []
    by_source: dict[tuple[str, str], list[tuple[str, list[Any]]]] = {}
    for (step, src, reason), v in found.items():
        by_source.setdefault((step, src), []).append((reason, v))
    for (step, src), reasons in sorted(by_source.items()):
        for reason, (n, example) in sorted(reasons, key=lambda kv: -kv[1][0])[:per_source]:
            out.append(ReasonRow(step, src, reason, n, totals[(step, src)], example, hint_for(reason, src),
                                 reason in EXPECTED))  # fmt: skip
    return out
