"""Responses as datatrove tasks: task `rank` of W parses, validates and verifies reply shards
rank, rank+W, rank+2W…, then helps with the shards no task has taken yet (builder/task_claims.py),
and writes one output per input shard; the stage merges them.

The task body (which shards, `process_batch` over their batches) is the stage's `task_shards`;
this module holds what the task and the merge share. Each output `<scratch>/<shard>.parquet` holds every row `process_batch` made from that shard, in
order (PARSED_FEATURES plus the prompt's `source`, which the ledger needs), written to a temporary
name and renamed when whole: a task killed mid-shard leaves no output for it, and a re-run (a
fresh rank, or datatrove's retry) skips every shard whose output exists, so no shard is written
twice. The scratch folder is named after the stage's fingerprint (recipe sections and input
digests), so outputs of another recipe or other replies are never reused. Code sandboxes run
inside the task, so a cluster verifies in parallel.

Everything order-dependent (duplicate ids, the ledger, `selected`) is the merge's job
(builder/responses/stage.py), which reads the outputs in shard order: any number of tasks
gives the same rows as one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.pipeline.base import PipelineStep

from builder.rows import PARSED_FEATURES, arrow_table

# A fault-injection hook for the kill -9 test: "rank:shards" makes task `rank` SIGKILL itself
# after writing that many shards (tests/test_responses_tasks.py). Never set in a real run.
KILL_ENV = "ANSWER_DISTILL_TEST_KILL_RESPONSES_TASK"
OUTPUT_SCHEMA = PARSED_FEATURES.arrow_schema.append(pa.field("source", pa.string()))


def output_path(scratch: Path, shard: int) -> Path:
    return scratch / f"{shard:05d}.parquet"


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


def after_shard(scratch: Path, rank: int, written: int) -> None:
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
        self.stat_update("shards", value=wrote)
        return iter(())
