"""Curate's rows held compactly: Arrow columns in the driver, Python objects a chunk at a time.

A million prompts as Python lists of dicts cost ~5 KB a row (object headers, a dict per turn,
a second copy of every text in the exact-dedupe key, per-step lists of user texts); as Arrow
columns they cost little more than their UTF-8 bytes. The steps read what they need through
the helpers here, a chunk (or a low-cardinality column's distinct values) at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KEY_BYTES = 16  # exact-dedupe keys are only compared for equality: a 128-bit digest stands for the text


def key_digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES).digest()


def interned(col: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A low-cardinality column (source, category) as a list sharing one str per distinct value."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    enc = arr.dictionary_encode()
    values = enc.dictionary.to_pylist()
    return [values[i] if i is not None else None for i in enc.indices.to_pylist()]


def last_user_texts(messages: pa.ChunkedArray | pa.Array) -> list[str]:
    """Each row's last user turn ("" without one) of a messages column, read off the flattened turns:
    no dict built per turn."""
    arr = messages.combine_chunks() if isinstance(messages, pa.ChunkedArray) else messages
    out: list[str] = [""] * len(arr)
    if not len(arr):
        return out
    turns = pc.list_flatten(arr)
    parents = pc.list_parent_indices(arr).to_numpy()
    is_user = pc.fill_null(pc.equal(pc.struct_field(turns, "role"), "user"), False)
    user = np.flatnonzero(is_user.to_numpy(zero_copy_only=False))
    row = parents[user]
    last = np.ones(len(row), dtype=bool)  # a row's last user turn: the next user turn is another row's
    last[:-1] = row[1:] != row[:-1]
    texts = pc.struct_field(turns, "content").take(pa.array(user[last], pa.int64())).to_pylist()
    for r, text in zip(row[last].tolist(), texts):
        out[r] = text
    return out


class ChunkedTexts(Sequence[str]):
    """A string column read as a list only a slice at a time (`texts[lo:hi]`), e.g. a pool's job."""

    def __init__(self, col: pa.ChunkedArray) -> None:
        self.col = col

    def __len__(self) -> int:
        return len(self.col)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            lo, hi, step = i.indices(len(self.col))
            assert step == 1, "contiguous slices only"
            return self.col.slice(lo, max(0, hi - lo)).to_pylist()
        return self.col[i].as_py()


class ConstraintItems(Sequence[tuple[str | None, str]]):
    """(tests_json, last user turn) of the rows `rows` of a prompts table, built a slice at a time."""

    def __init__(self, table: pa.Table, rows: np.ndarray) -> None:
        self.table, self.rows = table.select(["tests_json", "messages"]), rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: Any) -> Any:
        if not isinstance(i, slice):
            return self[i : i + 1][0]
        rows = self.rows[i]
        if not len(rows):
            return []
        # Take from the slice the rows span: a take on the whole chunked table concatenates every
        # chunk of the messages column first, on each call (~30 CPU-s in the driver at 1M rows).
        lo = int(rows.min())
        part = self.table.slice(lo, int(rows.max()) + 1 - lo)
        at = pa.array(rows - lo, pa.int64())
        return list(zip(part["tests_json"].take(at).to_pylist(), last_user_texts(part["messages"].take(at))))
