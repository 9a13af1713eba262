"""Content fingerprints of a release's configs, and what changed between two releases.

A row's text hash covers what a model trains on: `messages` (and the tool definitions,
`tools_json` or `tools`, where the schema has them), or for the `pairs` config its `prompt`,
`chosen` and `rejected` message lists: every text and the shape around it
(value lengths, list sizes), read from Arrow buffers. A config's `content_sha256` is the
sha256 of its (prompt_id, text hash) pairs sorted by prompt_id, so it does not depend on how
the rows were sharded or ordered, and it changes when any trained-on text changes.
The per-prompt hashes of two releases are joined in Arrow (no Python dict of every row).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quality.derive import one_array

# A chat config has the first three, `pairs` the last three: no schema has both kinds, so
# adding the pairs' columns left every chat config's hash as it was.
TEXT_COLUMNS = ("messages", "tools_json", "tools", "prompt", "chosen", "rejected")
BATCH_ROWS = 4_096
SHORT = ("role",)  # string fields gathered into the shape blob rather than hashed in place
EMPTY = pa.table({"prompt_id": pa.array([], pa.string()), "text_hash": pa.array([], pa.binary(16))})


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The indices of every range [starts[i], ends[i]), concatenated in order."""
    counts = ends - starts
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return np.arange(total, dtype=np.int64) + shift


def _streams(arr: pa.Array, s: np.ndarray, e: np.ndarray, small: list, big: list, name: str = "") -> None:
    """Walk a column down to its leaves; per top-level row i, the elements of `arr` it owns are
    [s[i], e[i]). Every list level and string leaf adds its value lengths to `small` (the
    row's shape); string bytes go to `big` (long texts, hashed in place) or `small` (short
    ones such as roles, gathered into the row's shape blob)."""
    t = arr.type
    if isinstance(t, pa.BaseExtensionType):  # Json: JSON text in a string column
        arr, t = arr.storage, t.storage_type
    if pa.types.is_dictionary(t):
        arr, t = arr.dictionary_decode(), t.value_type
    # Validity: a null differs from an empty value (always fed, so the bytes follow the schema).
    small.append((arr.is_valid().to_numpy(zero_copy_only=False).view(np.uint8), s, e))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        off = arr.offsets.to_numpy().astype(np.int64)
        small.append((np.diff(off).astype(np.int32).view(np.uint8), s * 4, e * 4))
        _streams(arr.values, off[s], off[e], small, big)
    elif pa.types.is_struct(t):
        for i in range(t.num_fields):
            _streams(arr.field(i), s, e, small, big, t.field(i).name)
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        wide = np.int64 if pa.types.is_large_string(t) or pa.types.is_large_binary(t) else np.int32
        raw = arr.buffers()[1]
        off = (np.frombuffer(raw, dtype=wide)[arr.offset:arr.offset + len(arr) + 1] if raw is not None
               else np.zeros(len(arr) + 1, wide)).astype(np.int64)
        small.append((np.diff(off).astype(np.int32).view(np.uint8), s * 4, e * 4))
        data = arr.buffers()[2]
        view = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        b0, b1 = off[s], off[e]
        if name in SHORT:
            small.append((view, b0, b1))
        elif (b1 > b0).any():  # a stream with no bytes in any row (e.g. all-null tools) adds nothing
            big.append((memoryview(view), b0.tolist(), b1.tolist()))
    elif pa.types.is_boolean(t):
        _streams(arr.cast(pa.uint8()), s, e, small, big, name)
    elif not (pa.types.is_integer(t) or pa.types.is_floating(t)) and not pa.types.is_null(t):
        _streams(arr.cast(pa.string()), s, e, small, big, name)  # dates, decimals…: their text
    elif not pa.types.is_null(t):  # numbers: their bytes
        vals = np.ascontiguousarray(arr.fill_null(0).to_numpy(zero_copy_only=False))
        w = vals.dtype.itemsize
        small.append((vals.view(np.uint8), s * w, e * w))


def row_hashes(table: pa.Table | pa.RecordBatch) -> pa.Array:
    """Per row, a 16-byte sha256 over its trained-on text (TEXT_COLUMNS present), read from
    the Arrow buffers: per row one shape blob (every value length and the short strings,
    gathered with numpy) plus the long texts in place — no Python string, ~2 hash updates a row."""
    n = table.num_rows
    cols = [c for c in TEXT_COLUMNS if c in table.schema.names]
    if not cols:
        return pa.array([b"\0" * 16] * n, pa.binary(16))
    small: list = []
    big: list = []
    rows = np.arange(n + 1, dtype=np.int64)
    for c in cols:
        col = table.column(c)
        col = one_array(col)
        _streams(col, rows[:-1], rows[1:], small, big)
    # The shape blob: each small stream's bytes of row i, streams in order, rows one after another.
    owner = [np.repeat(np.arange(n), b1 - b0) for _, b0, b1 in small]
    gathered = np.concatenate([v[_ranges(b0, b1)] for v, b0, b1 in small]) if small else np.zeros(0, np.uint8)
    order = np.argsort(np.concatenate(owner), kind="stable") if small else np.zeros(0, np.int64)
    blob = memoryview(gathered[order].tobytes())
    per_row = np.sum([b1 - b0 for _, b0, b1 in small], axis=0) if small else np.zeros(n, np.int64)
    bo = np.concatenate(([0], np.cumsum(per_row))).tolist()
    sha = hashlib.sha256
    out = []
    for i in range(n):
        h = sha(blob[bo[i]:bo[i + 1]])
        for mv, b0, b1 in big:
            h.update(mv[b0[i]:b1[i]])
        out.append(h.digest()[:16])
    return pa.array(out, pa.binary(16))


def batch_hashes(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """(prompt_id, text_hash) of a table's rows."""
    ids = table.column("prompt_id")
    ids = one_array(ids)
    return pa.table({"prompt_id": ids.cast(pa.string()), "text_hash": row_hashes(table)})


def text_hashes(folder: Path, config: str) -> pa.Table:
    """(prompt_id, text_hash) for every row of a config in a release folder, streamed (the
    previous release's side of a changelog; this release's are taken while staging)."""
    parts: list[pa.Table] = []
    for path in sorted((folder / "data" / config).glob("*.parquet")):
        pf = pq.ParquetFile(path)
        cols = [c for c in TEXT_COLUMNS if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=["prompt_id", *cols]):
            parts.append(batch_hashes(batch))
    return pa.concat_tables(parts) if parts else EMPTY


def content_sha256(hashes: pa.Table) -> str:
    """sha256 over "prompt_id \\0 text_hash" of every row, sorted by prompt_id: one Arrow join
    per chunk of rows and one hash update over its buffer (the same bytes a loop would feed)."""
    order = pc.sort_indices(hashes, [("prompt_id", "ascending")])  # stable, as sort_by
    h = hashlib.sha256()
    step = 1 << 20
    for a in range(0, hashes.num_rows, step):
        part = hashes.take(order.slice(a, step))  # a sorted slice at a time: no sorted copy of it all
        pid = pc.fill_null(part.column("prompt_id").combine_chunks(), "").cast(pa.binary())
        joined = pc.binary_join_element_wise(pid, part.column("text_hash").combine_chunks().cast(pa.binary()),
                                             pa.scalar(b"\0", pa.binary()))
        _, off_buf, data = joined.buffers()
        off = np.frombuffer(off_buf, dtype=np.int32)[joined.offset:joined.offset + len(joined) + 1]
        if data is not None:
            h.update(memoryview(data)[int(off[0]):int(off[-1])])
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




@dataclass(frozen=True)
class ConfigContent:
    """One config of a release against the previous one: what the changelog and manifest say."""

    rows_before: int
    rows_now: int
    content_sha256: str | None  # None: the config is not in this release
    diff: ConfigDiff


@dataclass(frozen=True)
class Taken:
    """A config's content as staged: its digest and rows, and its (prompt_id, text_hash) table
    only when a previous release will be diffed against it (else ~50 bytes a row saved)."""

    sha256: str
    rows: int
    table: pa.Table | None

    @classmethod
    def of(cls, parts: list[pa.Table], keep: bool) -> Taken:
        t = pa.concat_tables(parts) if parts else EMPTY
        return cls(content_sha256(t), t.num_rows, t if keep else None)


def compare(folder: Path, previous: Path | None, configs: list[str], old_configs: list[str],
            taken: dict[str, Taken] | None = None) -> dict[str, ConfigContent]:
    """Per config (this release's, then those only the previous one had). `taken` holds this
    release's content, taken while its shards were staged (a config missing there is read back
    from `folder`); the previous release's hashes are read one config at a time."""
    taken = taken or {}
    out: dict[str, ConfigContent] = {}
    for c in [*configs, *[c for c in old_configs if c not in configs]]:
        old = text_hashes(previous, c) if previous is not None and c in old_configs else EMPTY
        if c not in configs:
            out[c] = ConfigContent(old.num_rows, 0, None, diff(old, EMPTY))
            continue
        new = taken.get(c) or Taken.of([text_hashes(folder, c)], keep=True)
        if new.table is None and old.num_rows:
            new = Taken.of([text_hashes(folder, c)], keep=True)  # kept no table: read it back
        change = diff(old, new.table) if new.table is not None else ConfigDiff(new.rows, 0, 0, 0)
        out[c] = ConfigContent(old.num_rows, new.rows, new.sha256, change)
    return out
