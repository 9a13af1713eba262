"""Fixed-width generation ids as numpy integers: the reply store's latest-per-id and lookups
without a string hash table.

Generation ids are hex digests of one width. Arrow's hash kernels (dictionary_encode, index_in)
over 1.3M such strings build a memo table of a few hundred MB at their peak; here each id's bytes
are viewed as uint64 words (no copy when the width is a multiple of 8), folded into one 64-bit
hash, and ids are grouped by sorting hashes and found by binary search. A hash is only a hint:
two ids with one hash are caught by comparing their words (the caller then falls back to the
hash-table path), and a lookup is a hit only when the words match too. Ids of several widths,
or nulls, also fall back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

_SEED = np.uint64(0x9E3779B97F4A7C15)
_MUL = np.uint64(0xBF58476D1CE4E5B9)


def _words(arr: pa.Array | pa.ChunkedArray, width: int | None = None) -> tuple[np.ndarray, int] | None:
    """(n, k) uint64 words of each string, zero-padded to 8-byte multiples; None unless every
    value is a non-null string of one width (`width` when given)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if n == 0 or arr.null_count or arr.type not in (pa.string(), pa.large_string()):
        return None
    offs = np.frombuffer(arr.buffers()[1], np.int32 if arr.type == pa.string() else np.int64)
    offs = offs[arr.offset : arr.offset + n + 1]
    w = int(offs[1] - offs[0])
    if w == 0 or (width is not None and w != width) or int(offs[-1] - offs[0]) != n * w or np.any(np.diff(offs) != w):
        return None
    raw = np.frombuffer(arr.buffers()[2], np.uint8, count=n * w, offset=int(offs[0])).reshape(n, w)
    k = -(-w // 8)
    if w % 8:
        padded = np.zeros((n, k * 8), np.uint8)
        padded[:, :w] = raw
        raw = padded
    return raw.view(np.uint64), w


def _hash(words: np.ndarray) -> np.ndarray:
    h = np.full(len(words), _SEED, np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j]
        h *= _MUL  # wraps modulo 2**64, as intended
        h ^= h >> np.uint64(31)
    return h


@dataclass(slots=True)
class IdKeys:
    words: np.ndarray  # (n, k) uint64: each id's bytes
    hashes: np.ndarray  # (n,) uint64
    width: int  # bytes per id

    @classmethod
    def of(cls, ids: pa.Array | pa.ChunkedArray) -> IdKeys | None:
        got = _words(ids)
        if got is None:
            return None
        words, width = got
        return cls(words, _hash(words), width)

    def latest(self, t: pa.Table) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray] | None:
        """Per distinct id, in hash order: (ids, row of its newest record by `q`, summed `a`,
        record count); None when two different ids share a hash."""
        n = len(self.hashes)
        order = np.lexsort((-t["q"].to_numpy(), self.hashes))  # by hash, newest first
        hs = self.hashes[order]
        first = np.ones(n, dtype=bool)
        first[1:] = hs[1:] != hs[:-1]
        del hs
        later = np.flatnonzero(~first)  # records sharing the previous record's hash: same id?
        if len(later) and np.any(self.words[order[later]] != self.words[order[later - 1]]):
            return None
        starts = np.flatnonzero(first)
        row = order[starts]
        attempts = np.add.reduceat(t["a"].to_numpy()[order], starts)
        counts = np.diff(np.append(starts, n))
        data = np.ascontiguousarray(self.words[row].view(np.uint8)[:, : self.width])
        u = len(row)
        big = u * self.width >= 2**31
        offs = np.arange(u + 1, dtype=np.int64 if big else np.int32) * self.width
        ids = pa.Array.from_buffers(pa.large_string() if big else pa.string(), u,
                                    [None, pa.py_buffer(offs), pa.py_buffer(data)])  # fmt: skip
        return ids, row, attempts, counts

    def find(self, arr: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
        """Position of each of `arr` among these keys (sorted by hash), -1 where absent; None when
        `arr` is not all one width like these (the caller uses a hash table)."""
        got = _words(arr, self.width)
        if got is None:
            return None
        qw = got[0]
        qh = _hash(qw)
        j = np.minimum(np.searchsorted(self.hashes, qh), len(self.hashes) - 1)
        hit = self.hashes[j] == qh
        at = np.flatnonzero(hit)
        ok = np.ones(len(at), dtype=bool)
        for c in range(qw.shape[1]):  # word by word: no (n, k) temporaries
            ok &= self.words[j[at], c] == qw[at, c]
        hit[at] = ok
        return np.where(hit, j, -1).astype(np.int64)
