"""The reply store's index, columnar: what builder/teachers/store.py's segments hold, read in Arrow.

A 1.3M-reply store has 1.3M index lines; read as one Python object per line they cost about a
gigabyte and tens of seconds on every open (each generate task, export, accounting). Here each
segment's ``.idx`` is parsed by Arrow's JSON reader into columns, the latest record per
generation_id is picked by sorting (fixed-width ids as integer words and a 64-bit hash,
builder/teachers/store_keys.py; other ids by dictionary codes), and lookups are vectorized
(`positions`). Arrow buffers made while opening come from the system allocator (see
`_system_pool`): at 1.3M records the whole open stays under 1 GB with the caller's items.

Compaction: after a segment's index is parsed, its columns are kept in ``<segment>.idx.parquet``
(a cache, never the truth) stamped with the ``.idx`` file's size and mtime; the next open reads
the parquet when both still match and parses the ``.idx`` again when either changed (a live
writer appended, a hand edit). Only segments of at least ``CACHE_MIN_ROWS`` lines are cached, so
small stores stay two files per segment. A cache that cannot be written (read-only folder) is
skipped.

The reading rules are the store's (see store.py): a torn tail is ignored, an index line that
does not parse or has wrong field types is skipped with one warning, a line pointing past the
end of its data file is ignored, and the latest stamp ``q`` wins while every record counts.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from builder.teachers.store_keys import IdKeys

log = logging.getLogger("builder.teachers.store")
_warned: set[tuple[Path, int]] = set()  # the stages open the store several times: warn once per line

CACHE_MIN_ROWS = 50_000
_CACHE_VERSION = b"1"
_INTS = ("m", "a", "pt", "ct", "rt", "q", "o", "n")
_STRS = ("g", "s", "c", "f", "r", "src", "cat")
_FIELDS = ("g", "s", "c", "f", "m", "a", "pt", "ct", "rt", "r", "src", "cat", "q", "o", "n")
SCHEMA = pa.schema([(k, pa.int64() if k in _INTS else pa.string()) for k in _FIELDS])
_REQUIRED = ("g", "q", "o", "n")  # compared and summed: a null there is damage


@dataclass(slots=True)
class Entry:
    generation_id: str
    status: str
    error_code: str
    finish_reason: str
    max_tokens: int
    attempts: int  # HTTP attempts behind this record
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    run: str
    source: str
    category: str
    seq: int
    data: Path
    offset: int
    length: int


@dataclass(slots=True)
class Latest:
    entry: Entry
    attempts_total: int  # every HTTP attempt for this id, over all records and runs
    records: int


def _parse_fast(body: bytes) -> pa.Table | None:
    """Arrow's JSON reader over whole lines; None when any line is damaged (then: line by line)."""
    if not body:
        return SCHEMA.empty_table()
    try:
        t = pj.read_json(
            io.BytesIO(body), parse_options=pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if any(t[k].null_count for k in _REQUIRED) or t.num_rows != body.count(b"\n"):
        return None
    return t.select(list(_FIELDS))


def _wrong_type(k: str, v: Any) -> bool:
    if k in _INTS:
        return type(v) is not int  # bool is not a count
    return type(v) is not str and not (v is None and k != "g")


def warn_bad_line(idx_path: Path, lineno: int, exc: Exception) -> None:
    """Once per damaged index line (the stages open the store several times)."""
    if (idx_path, lineno) not in _warned:
        _warned.add((idx_path, lineno))
        log.warning("%s:%d: unreadable reply-index line skipped (%s); its reply counts as not stored and is "
                    "requested again", idx_path, lineno, str(exc)[:80] or type(exc).__name__)  # fmt: skip


def _parse_slow(idx_path: Path, body: bytes) -> pa.Table:
    """Line by line: skip (and warn about) every line that does not parse or has wrong types."""
    cols: dict[str, list[Any]] = {k: [] for k in _FIELDS}
    for lineno, line in enumerate(body.splitlines(), 1):
        try:
            d = orjson.loads(line)
            vals = [d[k] for k in _FIELDS]
            # Offsets and stamps are compared and summed: a wrong type is damage too.
            bad = next((k for k, v in zip(_FIELDS, vals) if _wrong_type(k, v)), None)
            if bad:
                raise TypeError(f"wrong type for {bad!r}")
        except (ValueError, KeyError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
            warn_bad_line(idx_path, lineno, exc)
            continue
        for k, v in zip(_FIELDS, vals):
            cols[k].append(v)
    return pa.table(cols, schema=SCHEMA)


def _cache_path(idx_path: Path) -> Path:
    return idx_path.with_name(idx_path.name + ".parquet")


def _stamp(st: os.stat_result) -> dict[bytes, bytes]:
    return {b"v": _CACHE_VERSION, b"size": str(st.st_size).encode(), b"mtime": str(st.st_mtime_ns).encode()}


def _read_cache(idx_path: Path, st: os.stat_result) -> pa.Table | None:
    cache = _cache_path(idx_path)
    try:
        if not cache.is_file():
            return None
        meta = pq.read_schema(cache).metadata or {}
        if {k: meta.get(k) for k in (b"v", b"size", b"mtime")} != _stamp(st):
            return None
        return pq.read_table(cache).select(list(_FIELDS))
    except (OSError, pa.ArrowException):
        return None  # a damaged cache is rebuilt from the index


def _write_cache(idx_path: Path, st: os.stat_result, t: pa.Table) -> None:
    cache = _cache_path(idx_path)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(t.replace_schema_metadata(_stamp(st)), tmp, compression="zstd")
        os.replace(tmp, cache)
    except OSError:
        tmp.unlink(missing_ok=True)


def segment_table(idx_path: Path) -> pa.Table:
    """Every record of one segment whose data line is whole."""
    data = idx_path.with_suffix(".jsonl")
    size = data.stat().st_size if data.is_file() else 0
    st = idx_path.stat()
    t = _read_cache(idx_path, st)
    if t is None:
        raw = idx_path.read_bytes()
        body = raw[: raw.rfind(b"\n") + 1]  # a torn tail (no newline) is a crash, not damage
        t = _parse_fast(body)
        if t is None:
            t = _parse_slow(idx_path, body)
        del raw, body
        if t.num_rows >= CACHE_MIN_ROWS:
            _write_cache(idx_path, st, t)
    whole = pc.less_equal(pc.add(t["o"], t["n"]), size)
    if pc.all(whole).as_py() is not False:
        return t  # the usual case: no copy
    return t.filter(whole)  # the index outlived its data line (crash between writes)


def records(folder: Path) -> tuple[pa.Table, list[Path]]:
    """Every intact record of the store folder (column `seg` indexes the returned data files)."""
    tables, paths = [], []
    if folder.is_dir():
        for idx_path in sorted(folder.glob("*.idx")):
            t = segment_table(idx_path)
            tables.append(t.append_column("seg", pa.array(np.full(t.num_rows, len(paths), np.int32))))
            paths.append(idx_path.with_suffix(".jsonl"))
    if not tables:
        return SCHEMA.append(pa.field("seg", pa.int32())).empty_table(), paths
    return pa.concat_tables(tables), paths


@contextmanager
def _system_pool() -> Iterator[None]:
    """Arrow's default pool (mimalloc) keeps the pages of freed buffers for reuse: parsing a 1.3M-record
    index and sorting it left ~300 MB more resident than it held. Buffers made here come from the
    system allocator, which gives them back; each buffer frees into the pool that made it. The
    default pool is process-wide: another thread's Arrow work meanwhile uses the system one too."""
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(before)


class _Columns(dict):  # type: ignore[type-arg]
    """Int columns as numpy; string columns as (dictionary codes, distinct values): built lazily."""

    def __init__(self, table: pa.Table) -> None:
        super().__init__()
        self.table = table

    def __missing__(self, k: str) -> Any:
        with _system_pool():
            val = self._convert(k)
        self[k] = val
        return val

    def _convert(self, k: str) -> Any:
        col = self.table[k]
        if k in _STRS:
            enc = pc.dictionary_encode(col.fill_null("")).combine_chunks()
            val: Any = (enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist())
        else:
            val = col.to_numpy()
        return val


class StoreIndex(Mapping[str, Latest]):
    """The latest record of every generation_id, in columns. A Mapping for small uses (`get`,
    `items`); hot paths use `positions` (vectorized lookup), `column`/`strings` and `entry(i)`.

    `ids[i]` is an id, `row[i]` its latest record's row in `table` (every intact record)."""

    def __init__(self, table: pa.Table, data_paths: list[Path], ids: pa.Array, row: np.ndarray,
                 attempts_total: np.ndarray, records: np.ndarray) -> None:  # fmt: skip
        self.table, self.data_paths, self._ids, self.row = table, data_paths, ids, row
        self.attempts_total, self.records = attempts_total, records
        self._cols: _Columns | None = None
        self._dict: dict[str, int] | None = None
        self._keys: IdKeys | None = None  # sorted fixed-width id hashes: lookups without a hash table

    @classmethod
    def every_record(cls, folder: Path) -> StoreIndex:
        """Every intact record, superseded ones too (accounting)."""
        t, paths = records(folder)
        n = t.num_rows
        return cls(t, paths, t["g"].combine_chunks(), np.arange(n), t["a"].to_numpy(), np.ones(n, dtype=np.int64))

    @classmethod
    def open(cls, folder: Path) -> StoreIndex:
        """The latest record per generation_id, with every record's attempts summed."""
        with _system_pool():
            t, paths = records(folder)
            keys = IdKeys.of(t["g"])
            made = keys.latest(t) if keys is not None else None
            if made is None:  # ids of several widths, or two ids sharing a 64-bit hash
                return cls._open_by_dictionary(t, paths)
            ids, row, attempts, counts = made
            # The ids live on in `ids` (hash order): the table's copy would only double them.
            idx = cls(t.drop_columns(["g"]), paths, ids, row, attempts, counts)
            idx._keys = IdKeys.of(ids)
            return idx

    @classmethod
    def _open_by_dictionary(cls, t: pa.Table, paths: list[Path]) -> StoreIndex:
        """Ids become dictionary codes (one hash pass), then numpy sorts integers, never strings."""
        n = t.num_rows
        enc = pc.dictionary_encode(t["g"])  # one dictionary over all chunks; no copy of the ids first
        chunks = [c.indices.to_numpy(zero_copy_only=False) for c in enc.chunks]
        code = np.concatenate(chunks).astype(np.int64) if chunks else np.zeros(0, dtype=np.int64)
        ids = enc.chunks[0].dictionary if enc.num_chunks else pa.array([], pa.string())
        u = len(ids)
        if u == n:  # no id stored twice: every record is its id's latest
            row = np.empty(n, dtype=np.int64)
            row[code] = np.arange(n)
            return cls(t, paths, ids, row, t["a"].to_numpy()[row], np.ones(n, dtype=np.int64))
        order = np.lexsort((-t["q"].to_numpy(), code))  # by id, newest first
        first = np.ones(n, dtype=bool)
        first[1:] = code[order][1:] != code[order][:-1]
        starts = np.flatnonzero(first)
        ids_at = code[order][starts]  # which dictionary entry each group is
        row = np.empty(u, dtype=np.int64)
        row[ids_at] = order[starts]
        attempts = np.empty(u, dtype=np.int64)
        attempts[ids_at] = np.add.reduceat(t["a"].to_numpy()[order], starts)
        counts = np.empty(u, dtype=np.int64)
        counts[ids_at] = np.diff(np.append(starts, n))
        return cls(t, paths, ids, row, attempts, counts)

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids.to_pylist())

    def __getitem__(self, gid: str) -> Latest:
        if self._dict is None:  # single lookups only (tests, small stores): hot paths use positions()
            self._dict = {g: i for i, g in enumerate(self._ids.to_pylist())}
        return self.at(self._dict[gid])

    def __contains__(self, gid: object) -> bool:
        try:
            self[gid]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def positions(self, ids: list[str] | pa.Array) -> np.ndarray:
        """Row of each id in this index, -1 where it is not stored."""
        with _system_pool():
            arr = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(ids, type=pa.string())
            if self._keys is not None and (found := self._keys.find(arr)) is not None:
                return found
            return pc.index_in(arr, value_set=self._ids).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def column(self, name: str) -> np.ndarray:
        """A column of the latest records, by id position: numpy (int columns) or dictionary codes
        into `strings(name)` (string columns)."""
        cols = self._columns()
        return (cols[name][0] if name in _STRS else cols[name])[self.row]

    def strings(self, name: str) -> list[str]:
        """The distinct values a string column's codes (`column(name)`) point into."""
        return self._columns()[name][1]

    def values(self) -> Iterator[Latest]:  # type: ignore[override]  # lazily: one Latest at a time
        return (self.at(i) for i in range(len(self)))

    def _columns(self) -> dict[str, Any]:
        """Columns over every record, converted on first use (one at a time: see _Columns)."""
        if self._cols is None:
            self._cols = _Columns(self.table)
        return self._cols  # type: ignore[return-value]

    def entry(self, i: int) -> Entry:
        c, r = self._columns(), self.row[i]

        def s(k: str) -> str:
            codes, vals = c[k]
            return vals[codes[r]]

        return Entry(self._ids[i].as_py(), s("s"), s("c"), s("f"), int(c["m"][r]), int(c["a"][r]), int(c["pt"][r]),
                     int(c["ct"][r]), int(c["rt"][r]), s("r"), s("src"), s("cat"), int(c["q"][r]),
                     self.data_paths[c["seg"][r]], int(c["o"][r]), int(c["n"][r]))  # fmt: skip

    def at(self, i: int) -> Latest:
        return Latest(self.entry(i), int(self.attempts_total[i]), int(self.records[i]))
