"""Content fingerprints of a release's configs, and what changed between two releases.

A row's text hash covers what a model trains on: `messages` (and the tool definitions,
`tools_json` or `tools`, where the schema has them). A config's `content_sha256` is the
sha256 of its (prompt_id, text hash) pairs sorted by prompt_id, so it does not depend on how
the rows were sharded or ordered, and it changes when any trained-on text changes.
The per-prompt hashes of two releases are joined in Arrow (no Python dict of every row).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TEXT_COLUMNS = ("messages", "tools_json", "tools")
BATCH_ROWS = 4_096


def _string_slices(arr: pa.Array) -> tuple[memoryview, np.ndarray]:
    """A string array's data buffer and its value offsets: the bytes of values [a, b) are one
    contiguous slice, data[off[a]:off[b]] (no Python string is made)."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    return memoryview(data if data is not None else b""), offsets


def _column_hashes(col: pa.Array) -> list[bytes]:
    """Per row, a sha256 over the column's value, read from Arrow buffers where the layout
    allows (chat messages, strings), else from its Python value (small columns)."""
    n = len(col)
    if pa.types.is_list(col.type) and pa.types.is_struct(col.type.value_type):
        lo = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset:col.offset + n + 1]
        children = col.values.flatten()  # relative to the struct's own offset, as the list offsets are
        if all(c.type == pa.string() for c in children):
            parts = [_string_slices(c) for c in children]
            out = []
            for i in range(n):
                a, b = int(lo[i]), int(lo[i + 1])
                h = hashlib.sha256()
                for data, off in parts:  # the bytes, and where each message's text starts and ends
                    h.update(data[off[a]:off[b]])
                    h.update((off[a:b + 1] - off[a]).tobytes())
                out.append(h.digest())
            return out
    if col.type == pa.string():
        data, off = _string_slices(col)
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        return [hashlib.sha256(data[off[i]:off[i + 1]]).digest() if valid[i] else b"\0" for i in range(n)]
    return [hashlib.sha256(orjson.dumps(v, option=orjson.OPT_SORT_KEYS)).digest() for v in col.to_pylist()]


def text_hashes(folder: Path, config: str) -> pa.Table:
    """(prompt_id, text_hash) for every row of a config in a release folder, streamed; the
    texts are hashed from Arrow buffers (a 13 kB `full` row costs one sha256, no decode)."""
    ids: list[pa.Array] = []
    hashes: list[bytes] = []
    for path in sorted((folder / "data" / config).glob("*.parquet")):
        pf = pq.ParquetFile(path)
        cols = [c for c in TEXT_COLUMNS if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=["prompt_id", *cols]):
            per_col = [_column_hashes(batch.column(c)) for c in cols]
            ids.append(batch.column("prompt_id"))
            if per_col:
                hashes += [hashlib.sha256(b"".join(row)).digest()[:16] for row in zip(*per_col, strict=True)]
            else:
                hashes += [b"\0" * 16] * batch.num_rows
    prompt_ids = pa.concat_arrays(ids).cast(pa.string()) if ids else pa.array([], pa.string())
    return pa.table({"prompt_id": prompt_ids, "text_hash": pa.array(hashes, pa.binary(16))})


def content_sha256(hashes: pa.Table) -> str:
    t = hashes.sort_by("prompt_id")
    h = hashlib.sha256()
    for pid, th in zip(t.column("prompt_id").to_pylist(), t.column("text_hash").to_pylist()):
        h.update((pid or "").encode() + b"\0" + th)
    return h.hexdigest()


@dataclass(frozen=True)
class ConfigDiff:
    added: int
    removed: int
    changed: int  # same prompt_id, different trained-on text
    unchanged: int


def diff(old: pa.Table, new: pa.Table) -> ConfigDiff:
    """prompt_ids added / removed / with changed text, old → new (a config absent on one side
    is an empty table: every row added or removed)."""
    o = old.rename_columns(["prompt_id", "old"])
    n = new.rename_columns(["prompt_id", "new"])
    joined = o.join(n, "prompt_id", join_type="full outer")
    old_h, new_h = joined.column("old"), joined.column("new")
    added = pc.sum(pc.and_(pc.is_null(old_h), pc.is_valid(new_h))).as_py() or 0
    removed = pc.sum(pc.and_(pc.is_valid(old_h), pc.is_null(new_h))).as_py() or 0
    both = pc.and_(pc.is_valid(old_h), pc.is_valid(new_h))
    same = pc.fill_null(pc.equal(old_h, new_h), False)
    changed = pc.sum(pc.and_(both, pc.invert(same))).as_py() or 0
    unchanged = pc.sum(pc.and_(both, same)).as_py() or 0
    return ConfigDiff(int(added), int(removed), int(changed), int(unchanged))


EMPTY = pa.table({"prompt_id": pa.array([], pa.string()), "text_hash": pa.array([], pa.binary(16))})


@dataclass(frozen=True)
class ConfigContent:
    """One config of a release against the previous one: what the changelog and manifest say."""

    rows_before: int
    rows_now: int
    content_sha256: str | None  # None: the config is not in this release
    diff: ConfigDiff


def compare(folder: Path, previous: Path | None, configs: list[str], old_configs: list[str]) -> dict[str, ConfigContent]:
    """Per config (this release's, then those only the previous one had): one config's hash
    tables in memory at a time, so memory stays at one config's (prompt_id, hash) pairs."""
    out: dict[str, ConfigContent] = {}
    for c in [*configs, *[c for c in old_configs if c not in configs]]:
        new = text_hashes(folder, c) if c in configs else EMPTY
        old = text_hashes(previous, c) if previous is not None and c in old_configs else EMPTY
        out[c] = ConfigContent(old.num_rows, new.num_rows, content_sha256(new) if c in configs else None,
                               diff(old, new))
    return out
