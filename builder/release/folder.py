"""The release folder on disk: built in a hidden temp dir next to the target and renamed
into place at the end, so a failed or interrupted release leaves nothing half-written."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features

from builder.errors import secret_values
from builder.rows import VARIANT_FEATURES

SCHEMA = VARIANT_FEATURES.arrow_schema


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """Yield a temp dir; on success it becomes out_dir (one rename), on error it is removed."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.rename(tmp, out_dir)


def is_published_schema(schema: pa.Schema, check_metadata: bool = True) -> bool:
    """Same HF features as VARIANT_FEATURES (parquet renames list children, so compare
    features, not raw Arrow schemas), and the features metadata `datasets` reads."""
    try:
        same = Features.from_arrow_schema(schema) == VARIANT_FEATURES and schema.names == SCHEMA.names
    except (ValueError, TypeError, KeyError):
        return False
    if not check_metadata:
        return same
    return same and (schema.metadata or {}).get(b"huggingface") == SCHEMA.metadata[b"huggingface"]


def put_shard(src: Path, table: pa.Table, dest: Path) -> None:
    """Copy a work shard that already has the exact published schema (bytes unchanged, no
    re-encode); otherwise write the table cast to the published schema."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if is_published_schema(pq.read_schema(src)):
        shutil.copyfile(src, dest)
    else:
        pq.write_table(table.cast(SCHEMA), dest, compression="zstd")


def name_shards(variant_dir: Path, staged: list[Path]) -> list[Path]:
    """Rename staged shards to the Hub's `train-0000k-of-0000n.parquet` pattern."""
    n = len(staged)
    final = []
    for k, p in enumerate(staged):
        target = variant_dir / f"train-{k:05d}-of-{n:05d}.parquet"
        os.replace(p, target)
        final.append(target)
    return final


def secrets_in(folder: Path) -> list[str]:
    """Files that contain the value of any secret-looking environment variable."""
    needles = [s.encode() for s in secret_values()]
    if not needles:
        return []
    return [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*"))
            if p.is_file() and any(n in p.read_bytes() for n in needles)]
