"""Store → `<work>/generate/replies/part-*.parquet` and the ledger (token/cost accounting: builder/teachers/accounting.py)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.config.generate import TeacherConfig
from builder.ledger import DROPPED, KEPT, Ledger
from builder.rows import REPLY_FEATURES
from builder.teachers.items import WorkItem, ledger_reason, reply_row
from builder.teachers.reply_shape import checked_row
from builder.teachers.store import RecordReader, StoreIndex, StoreWriter
from builder.workdir import SHARD_ROWS, ShardWriter

DAMAGED = "store_damaged"  # a stored record whose bytes are unreadable; not permanent: asked again

# Replies per row group of the replies table (a responses task's unit: builder/responses/tasks.py).
ROW_GROUP_ROWS = 2048


class PartWriter:
    """REPLY_FEATURES parquet parts of at most `shard_rows` rows, swapped in atomically at the end."""

    def __init__(self, out_dir: Path, shard_rows: int = SHARD_ROWS) -> None:
        self.out_dir = out_dir
        self.tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._shards = ShardWriter(self.tmp, REPLY_FEATURES, shard_rows)
        self._rows: list[dict[str, Any]] = []

    @property
    def total(self) -> int:
        return self._shards.rows

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append({k: row.get(k) for k in REPLY_FEATURES})
        if len(self._rows) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        rows, self._rows = self._rows, []
        self._shards.write_rows(rows)

    def close(self) -> list[Path]:
        self._flush()
        self._shards.close()  # an empty stage still leaves one (empty) shard with the schema
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for old in self.out_dir.glob("part-*.parquet"):
            old.unlink()
        paths = []
        for f in sorted(self.tmp.glob("part-*.parquet")):
            dest = self.out_dir / f.name
            os.replace(f, dest)
            paths.append(dest)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return paths


@dataclass
class TeacherTally:
    items: int = 0
    ok: int = 0
    failed: dict[str, int] = field(default_factory=dict)


def export_teacher(
    teacher: TeacherConfig,
    items: list[WorkItem],
    latest: StoreIndex,
    parts: PartWriter,
    ledger: Ledger,
    abort: str = "",
) -> TeacherTally:
    """One row per item, in prompt order: the latest stored record, or a failed row saying why not."""
    step = teacher.name
    ledger.enter(step, len(items))
    tally = TeacherTally(items=len(items))
    reader = RecordReader()
    damaged: list[tuple[dict[str, Any], WorkItem, Path]] = []
    where = latest.positions([it.generation_id for it in items]).tolist()  # one vectorized lookup
    try:
        for it, pos in zip(items, where):
            if pos < 0:
                code = "not_in_import" if teacher.kind == "import" else "not_attempted"
                msg = (
                    "no imported reply matches this prompt's (source, source_row_id)"
                    if code == "not_in_import"
                    else abort or "not requested yet: the run stopped before this request; re-run to resume"
                )
                it.max_tokens = 0 if teacher.kind == "import" else teacher.sampling.max_tokens
                # No reply was created: no timestamp, so an unchanged store exports identical bytes.
                row = reply_row(it, teacher, status="failed", error_code=code, error_message=msg, attempts=0,
                                created_at=None)  # fmt: skip
            elif (row := reader.try_read(entry := latest.entry(pos))) is None:
                it.max_tokens = entry.max_tokens or teacher.sampling.max_tokens
                row = reply_row(it, teacher, status="failed", error_code=DAMAGED, attempts=0, created_at=None,
                                error_message=f"{entry.data.name} at byte {entry.offset}: the stored reply cannot be "
                                "read back (a crash or disk damage); a re-run asks it again")  # fmt: skip
                damaged.append((row, it, entry.data.parent))
            else:
                row["attempts"] = int(latest.attempts_total[pos])
                row = checked_row(row)  # a record of any shape exports; a bad one as a failed row
                row["teacher"] = teacher.name  # also for records stored before the column existed
            parts.add(row)
            if row["status"] == "ok":
                tally.ok += 1
                ledger.record(step, KEPT, source=it.source, source_row_id=it.source_row_id, prompt_id=it.prompt_id,
                              detail=f"finish={row.get('finish_reason')}" if row.get("finish_reason") == "length" else "")  # fmt: skip
            else:
                code = row.get("error_code") or "unknown"
                tally.failed[code] = tally.failed.get(code, 0) + 1
                ledger.record(step, DROPPED, source=it.source, source_row_id=it.source_row_id, prompt_id=it.prompt_id,
                              reason=ledger_reason(code), detail=(row.get("error_message") or "")[:300])  # fmt: skip
    finally:
        reader.close()
    if damaged:  # a failed record after the unreadable one: the next run's schedule asks it again
        with StoreWriter(damaged[0][2], "repair") as w:
            for row, it, _ in damaged:
                w.append(row, run="repair", source=it.source, category=it.category)
    return tally
