"""The exact-answer variant's keys, held as columns: per prompt_id, the UTF-8 length and a
16-byte digest of its assistant turn, so a summary can be checked to end with that exact text.

Why columns: a Python dict of prompt_id → (length, digest) cost ~250 bytes a row (a str, a
tuple, an int and a bytes object each), 325 MB at the paper's 1.3M rows; here a row costs its
id's bytes plus 20 (~56 bytes with 32-character ids). Keys arrive shard by shard as small Arrow
tables (`key_table`), and the first lookup sorts them once into numpy arrays searched with
`np.searchsorted`. Duplicate ids keep the last key added (as `dict.update` did).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DIGEST = 16
EMPTY = pa.table({"prompt_id": pa.array([], pa.string()), "length": pa.array([], pa.int64()),
                  "digest": pa.array([], pa.binary(DIGEST))})


def digest(text: str | bytes | memoryview) -> bytes:
    return hashlib.blake2b(text.encode() if isinstance(text, str) else text, digest_size=DIGEST).digest()


def fixed_width(ids: pa.Array | pa.ChunkedArray, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids as numpy fixed-width bytes `S<width>`, each id's byte length, -1 for a null). Ids of
    one length (hashes) are a view of the Arrow buffer; others are padded (numpy drops trailing
    NULs, so the lengths tell "ab" from "ab\\0"). An id longer than `width` is cut: its length says so."""
    arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    arr = arr.cast(pa.large_binary() if large else pa.binary())
    n = len(arr)
    raw = arr.buffers()[1]
    off = (np.frombuffer(raw, np.int64 if large else np.int32)[arr.offset:arr.offset + n + 1] if raw is not None
           else np.zeros(n + 1, np.int64)).astype(np.int64)
    lens = np.diff(off)
    if arr.null_count:
        lens[~arr.is_valid().to_numpy(zero_copy_only=False)] = -1
    w = width or max(1, int(lens.max(initial=0)))
    data = np.frombuffer(arr.buffers()[2] or b"", np.uint8)
    if n and (lens == w).all():
        return data[off[0]:off[0] + n * w].view(f"S{w}"), lens
    return np.array([b or b"" for b in arr.to_pylist()], dtype=f"S{w}"), lens


def key_table(prompt_ids: pa.Array | pa.ChunkedArray, data: memoryview, starts: list[int], ends: list[int]) -> pa.Table:
    """The keys of rows whose text is data[start:end] (end -1: no text, no key)."""
    pids = prompt_ids.combine_chunks() if isinstance(prompt_ids, pa.ChunkedArray) else prompt_ids
    keep = [i for i, b in enumerate(ends) if b >= 0]
    return pa.table({
        "prompt_id": pids.take(pa.array(keep, pa.int64())).cast(pa.string()),
        "length": pa.array([ends[i] - starts[i] for i in keep], pa.int64()),
        "digest": pa.array([digest(data[starts[i]:ends[i]]) for i in keep], pa.binary(DIGEST)),
    })


@dataclass(frozen=True)
class _Index:
    keys: np.ndarray  # sorted ids, fixed-width bytes (with their lengths when `composite`)
    id_lens: np.ndarray
    lengths: np.ndarray  # the answers' byte lengths
    digests: np.ndarray  # (n, 16) uint8
    width: int
    composite: bool


def _with_length(ids: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Each id padded to its width, then its length (4 bytes, big-endian): one exact key."""
    w = ids.dtype.itemsize
    out = np.zeros((len(ids), w + 4), np.uint8)
    out[:, :w] = np.frombuffer(ids.tobytes(), np.uint8).reshape(-1, w) if len(ids) else out[:, :w]
    out[:, w:] = np.maximum(lens, 0).astype(">u4").view(np.uint8).reshape(-1, 4)
    return out.view(f"S{w + 4}").ravel()


class AnswerKeys:
    """prompt_id → (UTF-8 length, digest), added as key tables, looked up a column at a time.
    Adding after a lookup is allowed (the next lookup sorts again); lookups may run on several
    threads at once."""

    def __init__(self, parts: list[pa.Table] | None = None) -> None:
        self._parts: list[pa.Table] = list(parts or [])
        self._lock = threading.Lock()
        self._sorted: _Index | None = None
        self._null: tuple[int, bytes] | None = None  # a null prompt_id's key (the last one added)

    def add(self, parts: list[pa.Table]) -> None:
        with self._lock:
            self._parts += [p for p in parts if p.num_rows]
            self._sorted = None if parts else self._sorted

    def __len__(self) -> int:
        return len(self._index().keys)

    def _index(self) -> _Index:
        with self._lock:
            if self._sorted is None:
                self._sorted = self._build()
            return self._sorted

    def _build(self) -> _Index:
        t = pa.concat_tables(self._parts) if self._parts else EMPTY
        valid = pc.is_valid(t.column("prompt_id"))
        nulls = t.filter(pc.invert(valid))
        nulls = nulls.slice(max(0, nulls.num_rows - 1))  # a null id's key: the last one added
        self._null = (int(nulls.column("length")[0].as_py()), nulls.column("digest")[0].as_py()) if nulls.num_rows else None
        t = t.filter(valid)
        t = t.take(pc.sort_indices(t, [("prompt_id", "ascending")])).combine_chunks()  # Arrow's sort is stable
        # numpy compares fixed-width bytes as if NUL-padded: ids ending in NUL bytes ("ab",
        # "ab\0") would compare equal, so those (pathological) keys carry their length too.
        composite = bool(pc.any(pc.ends_with(t.column("prompt_id"), "\x00")).as_py())
        ids, id_lens = fixed_width(t.column("prompt_id"))
        keys = _with_length(ids, id_lens) if composite else ids
        if len(keys) > 1 and not (keys[1:] >= keys[:-1]).all():  # Arrow's order is not numpy's there
            t = t.take(pa.array(np.argsort(keys, kind="stable"))).combine_chunks()
            ids, id_lens = fixed_width(t.column("prompt_id"))
            keys = _with_length(ids, id_lens) if composite else ids
        # The sorted table is the only copy kept: the arrays below are views of its buffers.
        self._parts = [p for p in (nulls, t) if p.num_rows]
        lengths = t.column("length").chunk(0).to_numpy() if t.num_rows else np.zeros(0, np.int64)
        raw = t.column("digest").chunk(0).buffers()[1] if t.num_rows else None
        digests = np.frombuffer(raw or b"", np.uint8)[:len(ids) * DIGEST].reshape(-1, DIGEST)
        return _Index(keys, id_lens, lengths, digests, ids.dtype.itemsize, composite)

    def lookup(self, prompt_ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """Per id: (its answer's byte length, -1 when it has no key; the row of its digest in
        `digests()`)."""
        x = self._index()
        n = len(prompt_ids)
        length = np.full(n, -1, np.int64)
        row = np.zeros(n, np.int64)
        if len(x.keys):
            q, qlen = fixed_width(prompt_ids, x.width)  # a longer id is cut: its length tells
            if x.composite:
                q = _with_length(q, qlen)
            pos = np.maximum(np.searchsorted(x.keys, q, side="right") - 1, 0)  # the last of equal ids
            hit = (qlen >= 0) & (x.keys[pos] == q) & (x.id_lens[pos] == qlen)
            length[hit], row[hit] = x.lengths[pos[hit]], pos[hit]
        return length, row

    def digests(self) -> np.ndarray:
        """Every key's digest, one 16-byte row each, in the order `lookup` numbers them."""
        return self._index().digests

    def get(self, prompt_id: str | None) -> tuple[int, bytes] | None:
        """One id's key (the dict-like view the string rule uses)."""
        if prompt_id is None:
            self._index()
            return self._null
        length, row = self.lookup(pa.array([prompt_id], pa.string()))
        return None if length[0] < 0 else (int(length[0]), self.digests()[row[0]].tobytes())

    def null_key(self) -> tuple[int, bytes] | None:
        self._index()
        return self._null
