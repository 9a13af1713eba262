"""The reply store: append-only, content-addressed by generation_id, safe to kill at any moment.

Layout: ``<work>/generate/store/<teacher>/<segment>.jsonl`` holds one reply record per line
(the REPLY_FEATURES row, whole); ``<segment>.idx`` holds one short line per record (id,
status, finish, tokens, where the record lies). Every writer (one per datatrove task and
run) owns its segment, so many nodes write to one shared folder without locks.

Durability: each record is written with one ``os.write`` on an O_APPEND descriptor, data
line before index line, so a kill -9 loses only requests still in flight (the page cache
outlives the process); ``fsync`` runs every ``fsync_every_s`` for machine crashes. A torn
tail (a record cut by a crash) is ignored on reading: the index line points past the end of
the data or does not parse. Any other unreadable index line (disk damage, a hand edit) is
skipped with a warning: its reply counts as not stored and is requested again.

Reading (builder/teachers/store_index.py): the latest record of a generation_id wins (``q``: a
nanosecond stamp); every record counts toward attempts and token accounting, so retried and
superseded requests are paid for in the summary. The index is read in columns (Arrow), not one
Python object per record, and a segment's parsed index is cached in ``<segment>.idx.parquet``
(stamped with the ``.idx`` size and mtime; the ``.idx`` stays the truth), so opening a
1.3M-reply store to see what is pending takes seconds and a few hundred MB.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from builder.teachers import store_index
from builder.teachers.store_index import Entry, Latest, StoreIndex, records

__all__ = ["Entry", "Latest", "RecordReader", "StoreIndex", "StoreWriter", "latest", "records", "scan"]


class StoreWriter:
    def __init__(self, folder: Path, label: str, fsync_every_s: float = 1.0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{label}-{os.getpid()}-{time.time_ns():x}"
        self.data_path = folder / f"{stem}.jsonl"
        self.idx_path = folder / f"{stem}.idx"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self._data = os.open(self.data_path, flags, 0o644)
        self._idx = os.open(self.idx_path, flags, 0o644)
        self._offset = 0
        self._fsync_every = fsync_every_s
        self._last_sync = time.monotonic()
        self._dirty = False
        self.written = 0

    def append(self, row: dict[str, Any], *, run: str, source: str, category: str) -> None:
        line = orjson.dumps(row) + b"\n"
        n = os.write(self._data, line)
        while n < len(line):  # a short write (rare: signals, full pipes) must not tear a record
            n += os.write(self._data, line[n:])
        idx = {
            "g": row["generation_id"], "s": row["status"], "c": row.get("error_code") or "",
            "f": row.get("finish_reason") or "", "m": row.get("max_tokens") or 0, "a": row.get("attempts") or 0,
            "pt": row.get("prompt_tokens") or 0, "ct": row.get("completion_tokens") or 0,
            "rt": row.get("reasoning_tokens") or 0, "r": run, "src": source, "cat": category,
            "q": time.time_ns(), "o": self._offset, "n": len(line),
        }  # fmt: skip
        os.write(self._idx, orjson.dumps(idx) + b"\n")
        self._offset += len(line)
        self.written += 1
        self._dirty = True
        if time.monotonic() - self._last_sync >= self._fsync_every:
            self.sync()

    def sync(self) -> None:
        if self._dirty:
            os.fsync(self._data)
            os.fsync(self._idx)
            self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        self.sync()
        os.close(self._data)
        os.close(self._idx)
        if self.written == 0:  # no empty segments piling up across resumes
            self.data_path.unlink(missing_ok=True)
            self.idx_path.unlink(missing_ok=True)
        elif self.written >= store_index.CACHE_MIN_ROWS:
            store_index.segment_table(self.idx_path)  # a sealed segment: its parquet index, for the next open

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scan(folder: Path) -> Iterator[Entry]:
    """Every intact record in the store folder, one object each (small stores; see records())."""
    idx = StoreIndex.every_record(folder)
    for i in range(len(idx)):
        yield idx.entry(i)


def latest(folder: Path) -> StoreIndex:
    """The latest record of every generation_id (a Mapping; vectorized lookups: `positions`)."""
    return StoreIndex.open(folder)


class RecordReader:
    """Reads whole records back by (file, offset, length); keeps files open."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    def read(self, e: Entry) -> dict[str, Any]:
        fd = self._fds.get(e.data)
        if fd is None:
            fd = self._fds[e.data] = os.open(e.data, os.O_RDONLY)
        return orjson.loads(os.pread(fd, e.length, e.offset))

    def try_read(self, e: Entry) -> dict[str, Any] | None:
        """The record, or None when its bytes are no JSON object: the index line outlived its data
        (a power loss on a filesystem that leaves zeros, disk damage, a hand edit)."""
        try:
            rec = self.read(e)
        except (ValueError, OSError):  # orjson.JSONDecodeError is a ValueError
            return None
        return rec if isinstance(rec, dict) else None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
