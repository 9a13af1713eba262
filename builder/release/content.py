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

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TEXT_COLUMNS = ("messages", "tools_json", "tools")
BATCH_ROWS = 4_096


def _row_hash(values: tuple[object, ...]) -> bytes:
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).digest()[:16]


def text_hashes(folder: Path, config: str) -> pa.Table:
    """(prompt_id, text_hash) for every row of a config in a release folder, streamed."""
    ids: list[str] = []
    hashes: list[bytes] = []
    for path in sorted((folder / "data" / config).glob("*.parquet")):
        pf = pq.ParquetFile(path)
        cols = [c for c in TEXT_COLUMNS if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=["prompt_id", *cols]):
            d = batch.to_pydict()
            ids += d["prompt_id"]
            hashes += [_row_hash(tuple(d[c][i] for c in cols)) for i in range(batch.num_rows)]
    return pa.table({"prompt_id": pa.array(ids, pa.string()), "text_hash": pa.array(hashes, pa.binary(16))})


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
