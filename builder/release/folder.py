"""The release folder on disk: built in a hidden temp dir next to the target and renamed
into place at the end, so a failed or interrupted release leaves nothing half-written."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from datasets import Features

from builder.errors import secret_values
from builder.release.manifest import CHUNK
from builder.rows import VARIANT_FEATURES

SCHEMA = VARIANT_FEATURES.arrow_schema
BINARY = {".parquet", ".png"}


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


def copy_hashed(src: Path, dest: Path) -> str:
    """Copy a shard byte for byte (it already has the published schema: no re-encode),
    hashing it on the way so the manifest needs no second read. Returns its sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with src.open("rb") as fin, dest.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)  # hashlib releases the GIL on large buffers
            fout.write(chunk)
    return h.hexdigest()


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
    """Text files that contain the value of any secret-looking environment variable (the
    data shards hold pipeline rows, not configuration, and are too big to re-read)."""
    needles = [s.encode() for s in secret_values()]
    if not needles:
        return []
    leaked = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix not in BINARY:
            data = p.read_bytes()  # once per file, not once per secret
            if any(n in data for n in needles):
                leaked.append(p.relative_to(folder).as_posix())
    return leaked
