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
    writer = ShardWriter(out_dir, features, shard_rows)
    writer.write_table(pa.table({k: rows[k] for k in features}, schema=features.arrow_schema))
    return writer.close()


def iter_rows(files: list[Path], columns: list[str] | None = None, batch_size: int = 8192) -> Iterator[dict[str, Any]]:
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=columns):
            yield from batch.to_pylist()


def read_table(files: list[Path], columns: list[str] | None = None) -> pa.Table:
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


class ShardWriter:
    """Append row batches to part-*.parquet shards of at most `shard_rows` rows (old shards go)."""

    def __init__(self, out_dir: Path, features: Features, shard_rows: int = SHARD_ROWS) -> None:
        self.out_dir, self.schema, self.shard_rows = out_dir, features.arrow_schema, shard_rows
        self.features = features
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("part-*.parquet"):
            old.unlink()
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._in_shard = 0
        self.paths: list[Path] = []
        self.rows = 0

    def _roll(self) -> None:
        self._finish()
        path = self.out_dir / f"part-{len(self.paths):05d}.parquet"
        self._tmp = path.with_suffix(".tmp")
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")
        self.paths.append(path)
        self._in_shard = 0

    def _finish(self) -> None:
        if self._writer is not None and self._tmp is not None:
            self._writer.close()
            os.replace(self._tmp, self.paths[-1])
            self._writer = None

    def write_table(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            if self._writer is None or self._in_shard >= self.shard_rows:
                self._roll()
            n = min(self.shard_rows - self._in_shard, table.num_rows - start)
            assert self._writer is not None
            self._writer.write_table(table.slice(start, n))
            self._in_shard += n
            self.rows += n
            start += n

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.write_table(pa.Table.from_pylist([{k: r[k] for k in self.features} for r in rows], schema=self.schema))

    def close(self) -> list[Path]:
        if not self.paths:  # an empty table still gets one shard, like write_shards
            self._roll()
            assert self._writer is not None
            self._writer.write_table(self.schema.empty_table())
        self._finish()
        return self.paths
