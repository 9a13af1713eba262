"""The work directory: where each stage reads the previous stage's shards and writes its own.

    <work>/curate/prompts/part-00000.parquet    PROMPT_FEATURES
    <work>/curate/ledger.parquet                LEDGER_FEATURES
    <work>/generate/...                         the reply store and REPLY_FEATURES shards
    <work>/variants/<variant>/part-*.parquet    VARIANT_FEATURES
    <work>/<stage>/summary.json                 counts shown by the CLI and used by `build`
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features

from builder.errors import UserError

SHARD_ROWS = 50_000


class WorkDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def stage(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def shards(self, stage: str, table: str) -> list[Path]:
        return sorted((self.root / stage / table).glob("part-*.parquet"))

    def require(self, stage: str, table: str, producer: str) -> list[Path]:
        files = self.shards(stage, table)
        if not files:
            raise UserError(
                f"{self.root / stage / table}: no shards found; run `answer-distill {producer}` first"
            )
        return files

    def write_summary(self, stage: str, summary: dict[str, Any]) -> Path:
        path = self.stage(stage) / "summary.json"
        atomic_write_bytes(path, json.dumps(summary, indent=2, ensure_ascii=False, default=str).encode())
        return path

    def read_summary(self, stage: str) -> dict[str, Any] | None:
        path = self.root / stage / "summary.json"
        return json.loads(path.read_text()) if path.is_file() else None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_shards(rows: dict[str, list[Any]], features: Features, out_dir: Path, shard_rows: int = SHARD_ROWS) -> list[Path]:
    """Write column lists as parquet shards with the explicit schema (replacing old shards)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("part-*.parquet"):
        old.unlink()
    table = pa.table({k: rows[k] for k in features}, schema=features.arrow_schema)
    paths: list[Path] = []
    for i, start in enumerate(range(0, max(table.num_rows, 1), shard_rows)):
        path = out_dir / f"part-{i:05d}.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(table.slice(start, shard_rows), tmp, compression="zstd")
        os.replace(tmp, path)
        paths.append(path)
    return paths


def iter_rows(files: list[Path], columns: list[str] | None = None, batch_size: int = 8192) -> Iterator[dict[str, Any]]:
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=columns):
            yield from batch.to_pylist()


def read_table(files: list[Path], columns: list[str] | None = None) -> pa.Table:
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])
