"""The responses stage's order-dependent part: rows of `process_batch`, in input-shard order →
duplicate ids, the ledger, `parsed` (with `selected`) and `quarantine`.

One code path whether the rows come straight from this process (one task) or from the task
outputs (builder/responses/tasks.py), read back in shard order: so any number of tasks writes
the same rows. The accounting identity (rows in = kept + quarantined) is checked over all parts.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.ledger import KEPT, QUARANTINED, Ledger
from builder.progress import Progress, counted, report
from builder.responses.tasks import output_path
from builder.rows import PARSED_FEATURES
from builder.workdir import ShardWriter, WorkDir

Batch = tuple[list[dict[str, Any]], list[str]]  # processed rows, each row's prompt source


DEFAULT_PRECEDENCE = ["verified_pass", "teacher_order"]  # GenerateConfig.precedence's default


class Selector:
    """The best kept reply per (prompt, role) by `generate.precedence`, kept as ids only.

    A reply's rank is one value per precedence key (verified_pass: passed first; finish_stop:
    finish_reason stop first; teacher_order: the teacher listed first in generate.teachers;
    sample_index: lowest first), then the sample index and the generation id, so the choice
    never depends on shard order. The runner-up is kept too: the first key where the winner
    beats it is why the winner was chosen (`selected_by`)."""

    def __init__(self, precedence: list[str], teachers: list[str]) -> None:
        self.keys = [*precedence, "sample_index", "generation_id"]
        order = {name: i for i, name in enumerate(teachers)}
        value: dict[str, Callable[[dict[str, Any]], Any]] = {
            "verified_pass": lambda r: r["verify_status"] != "pass",
            "finish_stop": lambda r: r.get("finish_reason") != "stop",
            "teacher_order": lambda r: order.get(r.get("teacher") or "", len(order)),
            "sample_index": lambda r: r["sample_index"] if r["sample_index"] is not None else 1 << 30,
            "generation_id": lambda r: r["generation_id"],
        }
        self._values = [value[k] for k in self.keys]
        self.best: dict[str, tuple[tuple[Any, ...], str, tuple[Any, ...] | None]] = {}

    def rank(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(v(row) for v in self._values)

    def offer(self, row: dict[str, Any]) -> None:
        key = f"{row['prompt_id']}\x00{row['teacher_role']}"
        rank = self.rank(row)
        cur = self.best.get(key)
        if cur is None:
            self.best[key] = (rank, row["generation_id"], None)
        elif rank < cur[0]:
            self.best[key] = (rank, row["generation_id"], cur[0])
        elif cur[2] is None or rank < cur[2]:
            self.best[key] = (cur[0], cur[1], rank)

    def chosen(self) -> dict[str, str]:
        """Selected generation id → the precedence key that decided ("only_reply": no rival)."""
        out: dict[str, str] = {}
        for rank, gid, runner in self.best.values():
            if runner is None:
                out[gid] = "only_reply"
            else:
                out[gid] = next(k for k, a, b in zip(self.keys, rank, runner) if a != b)
        return out


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
          out: Path, selector: Selector, progress: Progress | None = None, n_in: int = 0) -> Merged:  # fmt: skip
    """Write `parsed` and `quarantine` and record every row in `ledger` (entered by the caller)."""
    staging = ShardWriter(out / ".parsed-unselected", PARSED_FEATURES, shard_rows)
    quarantine = work.writer(tables.QUARANTINE, shard_rows)
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
        report(progress, "replies parsed, validated, verified", m.rows_in, n_in)
    staged = staging.close()
    quarantine.close()

    # Second pass: set `selected` and `selected_by`, one shard at a time.
    why = selector.chosen()
    parsed = work.writer(tables.PARSED, shard_rows)
    for f in counted(staged, progress, "selecting one reply per prompt and role (shards)", len(staged)):
        t = pq.read_table(f)
        by = pa.array([why.get(g) for g in t.column("generation_id").to_pylist()], pa.string())
        t = t.set_column(t.schema.get_field_index("selected"), "selected", pc.is_valid(by))
        parsed.write_table(t.set_column(t.schema.get_field_index("selected_by"), "selected_by", by))
        f.unlink()
    parsed.close()
    shutil.rmtree(staging.out_dir, ignore_errors=True)
    m.kept, m.quarantined, m.selected = staging.rows, quarantine.rows, len(why)
    if m.rows_in != n_in or m.kept + m.quarantined != n_in:  # nothing lost between tasks and merge
        raise RuntimeError(f"responses accounting broken: {n_in:,} replies in, {m.rows_in:,} merged, "
                           f"{m.kept:,} kept + {m.quarantined:,} quarantined")  # fmt: skip
    return m
