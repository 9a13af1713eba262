"""Variants as datatrove tasks: task `rank` of W builds buckets rank, rank+W, … (hash partitions of
the prompts, builder/variants/buckets.py), then helps with the buckets no task has taken yet
(builder/task_claims.py), and writes one output folder per bucket; the stage merges.

The task body (which buckets, the per-bucket work) is the stage's `task_buckets`; this module
holds what the tasks and the merge share. A bucket's output `<scratch>/<bucket>/` holds one parquet
per table (`<variant>.parquet`, `pairs.parquet`: that bucket's rows, in order, one row group per
chunk written), `ledger.parquet` (its ledger part) and `stats.json` (builder/variants/merge.py's
BucketStats). It is written in a hidden temporary folder and renamed into place when whole: a task
killed mid-bucket leaves nothing for it, a re-run (a fresh rank, or datatrove's retry) skips every
bucket whose folder exists, and a bucket that another task renamed into place first is left as it
is (the late copy is discarded), so no bucket is written twice. The scratch folder is named after
the stage's fingerprint (recipe sections and input digests): outputs of another recipe or other
inputs are never reused.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datatrove.pipeline.base import PipelineStep

from builder.ledger import Ledger
from builder.rows import arrow_table
from builder.schema import Features
from builder.variants.merge import LEDGER, BucketStats

# A fault-injection hook for the kill -9 test: "rank:buckets" makes task `rank` SIGKILL itself
# after writing that many buckets (tests/test_variants_tasks.py). Never set in a real run.
KILL_ENV = "ANSWER_DISTILL_TEST_KILL_VARIANTS_TASK"


def bucket_dir(scratch: Path, i: int) -> Path:
    return scratch / f"{i:05d}"


def bucket_written(scratch: Path, i: int) -> bool:
    """Bucket i's output is there, whole (its folder is renamed into place only when complete)."""
    return bucket_dir(scratch, i).is_dir()


class PartWriter:
    """A bucket's rows of one table: one parquet file, one row group per `write_rows` call."""

    def __init__(self, path: Path, features: Features) -> None:
        self.path, self.features = path, features
        self._w: pq.ParquetWriter | None = None
        self.rows = 0

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._w is None:
            self._w = pq.ParquetWriter(self.path, self.features.arrow_schema, compression="zstd")
        self._w.write_table(arrow_table(rows, self.features), row_group_size=len(rows))
        self.rows += len(rows)

    def close(self) -> None:
        if self._w is not None:
            self._w.close()


class BucketFiles:
    """One bucket's output folder, written under a temporary name and renamed when whole."""

    def __init__(self, scratch: Path, i: int, features: dict[str, Features]) -> None:
        self.final = bucket_dir(scratch, i)
        self.tmp = scratch / f".{i:05d}.{os.getpid()}.tmp"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.writers = {name: PartWriter(self.tmp / f"{name}.parquet", f) for name, f in features.items()}

    def commit(self, ledger: Ledger, stats: BucketStats) -> bool:
        """Rename into place; False (and the copy discarded) when the bucket was written already."""
        for w in self.writers.values():
            w.close()
        pq.write_table(ledger.table(), self.tmp / LEDGER)
        stats.save(self.tmp)
        try:
            os.rename(self.tmp, self.final)  # whole or absent; refuses an existing (non-empty) folder
        except OSError:
            if not (self.final / "stats.json").is_file():
                raise
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        return True


def after_bucket(scratch: Path, rank: int, written: int) -> None:
    if os.environ.get(KILL_ENV, "") == f"{rank}:{written}":
        (scratch / f"killed-{rank}").touch()  # so the test knows the kill happened
        os.kill(os.getpid(), signal.SIGKILL)


class VariantsTask(PipelineStep):
    """A datatrove step calling `runner` (builder/variants/stage.py's task body, passed in and pickled
    by reference so this module needs no import of the stage) with (plan, work, scratch, rank,
    world). The plan holds the recipe whole (no secret: keys come from the environment) and the
    driver's run-wide statistics, so every task works exactly as the driver would."""

    name = "variants"
    type = "🧩 - BUILD"

    def __init__(self, runner: Callable[..., int], plan: Any, work: str, scratch: str) -> None:
        super().__init__()
        self.runner, self.plan, self.work, self.scratch = runner, plan, work, scratch

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Any:
        from builder.workdir import WorkDir

        wrote = self.runner(self.plan, WorkDir(self.work), Path(self.scratch), rank, world_size)
        self.stat_update("buckets", value=wrote)
        return iter(())
