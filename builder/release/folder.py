"""The release folder on disk: built in a hidden temp dir next to the target and renamed
into place at the end, so a failed or interrupted release leaves nothing half-written."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder.errors import secret_values
from builder.release.manifest import CHUNK
from builder.rows import VARIANT_FEATURES

SCHEMA = VARIANT_FEATURES.arrow_schema
HF_FEATURES = VARIANT_FEATURES.to_datasets()  # what `datasets` reads back from a published shard
SCAN_ROWS = 2_048  # rows per batch searched for secrets (as staging reads them)
SCAN_WORKERS = 2  # shards searched at once; the benchmark target is 2 cores


def _alive(pid: str) -> bool:
    """Is a process with this pid running (a release folder it stages is still in use)?"""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """Yield a temp dir; on success it becomes out_dir (one rename), on error it is removed."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for old in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):  # left by a killed release
        if not _alive(old.name.rsplit("-", 1)[-1]):
            shutil.rmtree(old, ignore_errors=True)
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
        same = datasets.Features.from_arrow_schema(schema) == HF_FEATURES and schema.names == SCHEMA.names
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
    buf = bytearray(CHUNK)  # one buffer, refilled: no new 8 MB bytes object per chunk
    view = memoryview(buf)
    with src.open("rb", buffering=0) as fin, dest.open("wb") as fout:  # buffered: writes all of it
        while n := fin.readinto(buf):
            h.update(view[:n])  # hashlib releases the GIL on large buffers
            fout.write(view[:n])
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


def _text_rows(arr: pa.Array, needles: list[str], path: str) -> Iterator[tuple[str, pa.Array]]:
    """(leaf column path, rows of `arr` holding a needle) for every string leaf under `arr`:
    lists are searched through their values (mapped back to rows by their offsets), structs
    through their fields. Values under null slots are searched too: they are in the file."""
    t = arr.type
    if isinstance(t, pa.BaseExtensionType):  # Json (`tools`, `tool_calls`): JSON text in a string column
        arr, t = arr.storage, t.storage_type
    if pa.types.is_dictionary(t):
        arr, t = arr.dictionary_decode(), t.value_type
    if (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t)):
        # One escaped-literal RE2 search per needle: RE2 skips ahead to a literal with memchr;
        # on 390 MB of replies about 10x faster than match_substring, 4x than one alternation.
        mask = pc.match_substring_regex(arr, re.escape(needles[0]))
        for n in needles[1:]:
            mask = pc.or_(mask, pc.match_substring_regex(arr, re.escape(n)))
        rows = pc.indices_nonzero(pc.fill_null(mask, False))
        if len(rows):
            yield path, rows
    elif pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _text_rows(arr.field(i), needles, f"{path}.{t.field(i).name}")
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        offsets = arr.offsets.to_numpy()
        values = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
        parents = np.repeat(np.arange(len(arr)), np.diff(offsets))
        for leaf, rows in _text_rows(values, needles, path):
            yield leaf, pa.array(parents[rows.to_numpy()])
    elif pa.types.is_fixed_size_list(t):
        size = t.list_size
        values = arr.values.slice(arr.offset * size, len(arr) * size)
        for leaf, rows in _text_rows(values, needles, path):
            yield leaf, pa.array(rows.to_numpy() // size)


def _has_text(t: pa.DataType) -> bool:
    if isinstance(t, pa.BaseExtensionType):
        return _has_text(t.storage_type)
    if pa.types.is_dictionary(t):
        return _has_text(t.value_type)
    if pa.types.is_nested(t):
        return any(_has_text(t.field(i).type) for i in range(t.num_fields))
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


def secret_in_parquet(path: Path, needles: list[str]) -> str | None:
    """Where the first secret in a parquet file is: "column C, row N" (N counts from 0 in the
    file), "footer" (key-value metadata, statistics), "" for a file that is not parquet but
    holds one; None when it holds none. Its pages are compressed, so a byte search cannot see
    into them: the text columns are decoded a batch at a time and searched with Arrow kernels."""
    encoded = [n.encode() for n in needles]
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError):
        data = path.read_bytes()
        return "" if any(n in data for n in encoded) else None
    columns = [f.name for f in pf.schema_arrow if _has_text(f.type)]
    start = 0
    for batch in pf.iter_batches(batch_size=SCAN_ROWS, columns=columns, use_threads=False) if columns else ():
        hits = [(int(pc.min(rows).as_py()), k, leaf) for k, col in enumerate(columns)
                for leaf, rows in _text_rows(batch.column(col), needles, col)]
        if hits:
            row, _, leaf = min(hits)  # the earliest row; on a tie, the first column
            return f"column {leaf}, row {start + row}"
        start += batch.num_rows
    with path.open("rb") as f:  # the footer is stored uncompressed: key-value metadata, names
        f.seek(-(pf.metadata.serialized_size + 8), os.SEEK_END)
        return "footer" if any(n in f.read() for n in encoded) else None


def secrets_in(folder: Path) -> list[str]:
    """Where the value of any secret in the environment (secret_values: keys by name and every
    recipe's api_key_env) appears in the folder, one entry per file: its path relative to the
    folder, and for a parquet shard the column and row of the first hit. Every file is read:
    a key echoed in a reply lands in the data shards, not in the configuration."""
    needles = secret_values()
    if not needles:
        return []
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    shards = [p for p in files if p.suffix == ".parquet"]
    with ThreadPoolExecutor(max_workers=SCAN_WORKERS) as pool:  # Arrow kernels release the GIL
        in_shards = dict(zip(shards, pool.map(lambda p: secret_in_parquet(p, needles), shards)))
    encoded = [n.encode() for n in needles]
    leaked = []
    for p in files:
        rel = p.relative_to(folder).as_posix()
        if p in in_shards:
            where = in_shards[p]
            if where is not None:
                leaked.append(f"{rel}, {where}" if where else rel)
        elif any(n in p.read_bytes() for n in encoded):  # once per file, not once per secret
            leaked.append(rel)
    return leaked
