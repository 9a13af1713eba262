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
from builder.responses.consistency import verdict_of
from builder.responses.tasks import OUTPUT_SCHEMA, output_path
from builder.rows import PARSED_FEATURES
from builder.workdir import ShardWriter, WorkDir

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
    agree: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (source, teacher, consistency verdict)


def read_outputs(scratch: Path, n_shards: int, batch_rows: int) -> Iterator[pa.Table]:
    """Every task output in shard order, as OUTPUT_SCHEMA tables; a missing one is an error."""
    for i in range(n_shards):
        path = output_path(scratch, i)
        if not path.is_file():
            raise RuntimeError(f"{path}: the responses task for reply shard {i} left no output; re-run the stage")
        for b in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            yield pa.Table.from_batches([b])


# Columns the merge reads per row (the selector's keys, the counters, the ledger); the texts
# stay in Arrow from the worker to the written shard.
_ROW_COLS = ("generation_id", "prompt_id", "teacher_role", "sample_index", "teacher", "teacher_model",
             "finish_reason", "shape", "verify_status", "verify_method", "consistency_json", "source")  # fmt: skip


def merge(batches: Iterator[pa.Table], work: WorkDir, ledger: Ledger, step: str, shard_rows: int,
          out: Path, selector: Selector, progress: Progress | None = None, n_in: int = 0) -> Merged:  # fmt: skip
    """Write `parsed` and `quarantine` and record every row in `ledger` (entered by the caller).
    `batches`: OUTPUT_SCHEMA tables (builder/responses/tasks.py) in input order."""
    staging = ShardWriter(out / ".parsed-unselected", PARSED_FEATURES, shard_rows)
    quarantine = work.writer(tables.QUARANTINE, shard_rows)
    seen: set[str] = set()
    m = Merged()
    codes_at = OUTPUT_SCHEMA.get_field_index("reject_codes")
    for t in batches:
        cols = {c: t.column(c).to_pylist() for c in _ROW_COLS}
        codes = t.column(codes_at).to_pylist()
        keep: list[bool] = []
        duplicated = False
        for i, gid in enumerate(cols["generation_id"]):
            if gid in seen:  # the same reply stored twice (e.g. overlapping shards after a resume)
                codes[i] = ["duplicate_generation", *codes[i]]
                duplicated = True
            seen.add(gid)
            src, pid = cols["source"][i], cols["prompt_id"][i]
            m.shapes[cols["shape"][i]] += 1
            if codes[i]:
                keep.append(False)
                m.reasons[codes[i][0]] += 1
                ledger.record(step, QUARANTINED, source=src, source_row_id=gid, prompt_id=pid,
                              reason=codes[i][0], detail=",".join(codes[i]))  # fmt: skip
            else:
                keep.append(True)
                row = {c: v[i] for c, v in cols.items()}
                selector.offer(row)
                m.verify[f"{row['teacher_role']}:{row['verify_method']}:{row['verify_status']}"] += 1
                m.agree[(src, row["teacher_model"], verdict_of(row["consistency_json"]))] += 1
                ledger.record(step, KEPT, source=src, source_row_id=gid, prompt_id=pid)
        if duplicated:
            t = t.set_column(codes_at, OUTPUT_SCHEMA.field(codes_at), pa.array(codes, OUTPUT_SCHEMA.field(codes_at).type))
        t = t.drop_columns(["source"])
        mask = pa.array(keep, pa.bool_())
        staging.write_table(t.filter(mask))
        quarantine.write_table(t.filter(pc.invert(mask)))
        m.rows_in += t.num_rows
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
