"""The responses stage's order-dependent part: rows of `process_batch`, in input-shard order →
duplicate ids, the ledger, `parsed` (with `selected`) and `quarantine`.

One code path whether the rows come straight from this process (one task) or from the task
outputs (builder/responses/tasks.py), read back in shard order: so any number of tasks writes
the same rows. The accounting identity (rows in = kept + quarantined) is checked over all parts.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.ledger import KEPT, QUARANTINED, Ledger
from builder.responses.tasks import output_path
from builder.rows import PARSED_FEATURES
from builder.workdir import ShardWriter, WorkDir

Batch = tuple[list[dict[str, Any]], list[str]]  # processed rows, each row's prompt source


def _rank(row: dict[str, Any]) -> tuple[bool, int, str]:
    """Rejection sampling order: verified first, then lowest sample index (id breaks ties)."""
    return (
        row["verify_status"] != "pass",
        row["sample_index"] if row["sample_index"] is not None else 1 << 30,
        row["generation_id"],
    )


class _Selector:
    """The best-ranked kept sample per (prompt, role), kept as ids only."""

    def __init__(self) -> None:
        self.best: dict[str, tuple[tuple[bool, int, str], str]] = {}

    def offer(self, row: dict[str, Any]) -> None:
        key = f"{row['prompt_id']}\x00{row['teacher_role']}"
        rank = _rank(row)
        cur = self.best.get(key)
        if cur is None or rank < cur[0]:
            self.best[key] = (rank, row["generation_id"])

    def chosen(self) -> set[str]:
        return {gid for _, gid in self.best.values()}


@dataclass
class Merged:
    rows_in: int = 0
    kept: int = 0
    quarantined: int = 0
    selected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    verify: Counter[str] = field(default_factory=Counter)
    shapes: Counter[str] = field(default_factory=Counter)


def read_outputs(scratch: Path, n_shards: int, batch_rows: int) -> Iterator[Batch]:
    """Every task output in shard order, as (rows, sources) batches; a missing one is an error."""
    for i in range(n_shards):
        path = output_path(scratch, i)
        if not path.is_file():
            raise RuntimeError(f"{path}: the responses task for reply shard {i} left no output; re-run the stage")
        for b in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            sources = b.column("source").to_pylist()
            yield b.drop_columns(["source"]).to_pylist(), sources


def merge(batches: Iterator[Batch], work: WorkDir, ledger: Ledger, step: str, shard_rows: int,
          out: Path, progress: Any = None, n_in: int = 0) -> Merged:  # fmt: skip
    """Write `parsed` and `quarantine` and record every row in `ledger` (entered by the caller)."""
    staging = ShardWriter(out / ".parsed-unselected", PARSED_FEATURES, shard_rows)
    quarantine = work.writer(tables.QUARANTINE, shard_rows)
    selector = _Selector()
    seen: set[str] = set()
    m = Merged()
    for rows, sources in batches:
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        for row, src in zip(rows, sources):
            gid = row["generation_id"]
            if gid in seen:  # the same reply stored twice (e.g. overlapping shards after a resume)
                row["reject_codes"] = ["duplicate_generation", *row["reject_codes"]]
            seen.add(gid)
            m.shapes[row["shape"]] += 1
            if row["reject_codes"]:
                dropped.append(row)
                m.reasons[row["reject_codes"][0]] += 1
                ledger.record(step, QUARANTINED, source=src, source_row_id=gid, prompt_id=row["prompt_id"],
                              reason=row["reject_codes"][0], detail=",".join(row["reject_codes"]))  # fmt: skip
            else:
                kept.append(row)
                selector.offer(row)
                m.verify[f"{row['teacher_role']}:{row['verify_method']}:{row['verify_status']}"] += 1
                ledger.record(step, KEPT, source=src, source_row_id=gid, prompt_id=row["prompt_id"])
        staging.write_rows(kept)
        quarantine.write_rows(dropped)
        m.rows_in += len(rows)
        if progress is not None:
            progress(f"{m.rows_in:,}/{n_in:,} replies")
    staged = staging.close()
    quarantine.close()

    # Second pass: set `selected`, one shard at a time.
    chosen = pa.array(sorted(selector.chosen()), pa.string())
    parsed = work.writer(tables.PARSED, shard_rows)
    for f in staged:
        t = pq.read_table(f)
        sel = pc.is_in(t.column("generation_id"), value_set=chosen)
        parsed.write_table(t.set_column(t.schema.get_field_index("selected"), "selected", sel))
        f.unlink()
    parsed.close()
    shutil.rmtree(staging.out_dir, ignore_errors=True)
    m.kept, m.quarantined, m.selected = staging.rows, quarantine.rows, len(chosen)
    if m.rows_in != n_in or m.kept + m.quarantined != n_in:  # nothing lost between tasks and merge
        raise RuntimeError(f"responses accounting broken: {n_in:,} replies in, {m.rows_in:,} merged, "
                           f"{m.kept:,} kept + {m.quarantined:,} quarantined")  # fmt: skip
    return m
