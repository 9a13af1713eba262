"""Responses as datatrove tasks: task `rank` of W parses, validates and verifies units
rank, rank+W, rank+2W…, then helps with the units no task has taken yet (builder/task_claims.py),
and writes one output per unit; the stage merges them, in unit order, as they land.

A unit is a run of consecutive row groups of one reply shard (`units_of`): one row group when a
task works alone, enough for a batch per worker when it has a pool. generate writes row groups
of 2,048 replies, so a 50k-reply shard is a couple of dozen units and two tasks end within a
unit's time of each other, where whole shards left one task working alone on the last. A shard
written as one row group is one unit.

The task body (which units, `process_batch` over their batches) is the stage's `task_shards`;
this module holds what the task and the merge share. Each output `<scratch>/<unit>.parquet` holds every row `process_batch` made from that unit, in
order (PARSED_FEATURES plus the prompt's `source`, which the ledger needs), written to a temporary
name and renamed when whole: a task killed mid-unit leaves no output for it, and a re-run (a
fresh rank, or datatrove's retry) skips every unit whose output exists, so no unit is written
twice. The scratch folder is named after the stage's fingerprint (recipe sections and input
digests), so outputs of another recipe or other replies are never reused. Code sandboxes run
inside the task, so a cluster verifies in parallel.

Everything order-dependent (duplicate ids, the ledger, `selected`) is the merge's job
(builder/responses/stage.py), which reads the outputs in unit order: any number of tasks
gives the same rows as one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.pipeline.base import PipelineStep

from builder.rows import PARSED_FEATURES, arrow_table

# A fault-injection hook for the kill -9 test: "rank:units" makes task `rank` SIGKILL itself
# after writing that many units (tests/test_responses_tasks.py). Never set in a real run.
KILL_ENV = "ANSWER_DISTILL_TEST_KILL_RESPONSES_TASK"
OUTPUT_SCHEMA = PARSED_FEATURES.arrow_schema.append(pa.field("source", pa.string()))


def output_path(scratch: Path, unit: int) -> Path:
    return scratch / f"{unit:05d}.parquet"


def output_written(scratch: Path, unit: int) -> bool:
    """The unit's output is there, whole (renamed into place only when complete: write_output)."""
    return output_path(scratch, unit).is_file()


class Unit(NamedTuple):
    shard: int  # index into the reply shards
    row_groups: list[int]  # consecutive row groups of that shard


def min_unit_rows(workers: int, batch_rows: int) -> int:
    """The fewest replies in a task's unit: a row group when the task works alone (units that small
    let tasks end together), a batch for each worker of a task's pool otherwise."""
    return 1 if workers <= 1 else batch_rows * workers


def unit_batches(path: Path, unit: Unit, batch_rows: int) -> Iterator[list[dict[str, Any]]]:
    """A unit's replies (of the shard at `path`), in order, `batch_rows` at a time."""
    if unit.row_groups:
        for b in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, row_groups=unit.row_groups):
            yield b.to_pylist()


def units_of(files: list[Path], min_rows: int) -> list[Unit]:
    """Every reply shard's row groups in order, as runs of at least `min_rows` replies (a shard's
    last run may hold fewer); a shard without row groups is one empty unit. From the parquet
    footers alone: the driver and every task compute the same list."""
    out: list[Unit] = []
    for k, f in enumerate(files):
        meta = pq.ParquetFile(f).metadata
        run: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            run.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= min_rows:
                out.append(Unit(k, run))
                run, rows = [], 0
        if run or not meta.num_row_groups:
            out.append(Unit(k, run))
    return out


def output_table(rows: list[dict[str, Any]], sources: list[str]) -> pa.Table:
    """Rows of `process_batch` and each row's prompt source as one OUTPUT_SCHEMA table: what a
    worker hands back and a task writes (Arrow crosses processes and files without a per-row cost)."""
    return arrow_table(rows, PARSED_FEATURES).append_column("source", pa.array(sources, pa.string()))


def write_output(path: Path, tables: Any) -> None:
    """OUTPUT_SCHEMA tables → one output file, renamed into place when whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with pq.ParquetWriter(tmp, OUTPUT_SCHEMA) as w:
        for t in tables:
            w.write_table(t)
    os.replace(tmp, path)  # whole or absent


def after_unit(scratch: Path, rank: int, written: int) -> None:
    if os.environ.get(KILL_ENV, "") == f"{rank}:{written}":
        (scratch / f"killed-{rank}").touch()  # so the test knows the kill happened
        os.kill(os.getpid(), signal.SIGKILL)


class ResponsesTask(PipelineStep):
    """A datatrove step calling `runner` (builder/responses/stage.py's task body, passed in and
    pickled by reference so this module needs no import of the stage) with (recipe, work,
    scratch, rank, world, workers, claims). The recipe travels whole (it holds no secret: keys come from
    the environment), so every task runs exactly the driver's recipe."""

    name = "responses"
    type = "🧪 - PARSE"

    def __init__(self, runner: Callable[..., int], recipe: Any, work: str, scratch: str, workers: int,
                 claims: str) -> None:  # fmt: skip
        super().__init__()
        self.runner = runner
        self.recipe, self.work, self.scratch, self.workers, self.claims = recipe, work, scratch, workers, claims

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Any:
        from builder.workdir import WorkDir

        wrote = self.runner(self.recipe, WorkDir(self.work), Path(self.scratch), rank, world_size, self.workers,
                            Path(self.claims))  # fmt: skip
        self.stat_update("units", value=wrote)
        return iter(())
