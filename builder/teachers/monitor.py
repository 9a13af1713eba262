"""Live progress of a generation run, read from the store's index files.

The same code watches an inline run, local worker processes and Slurm/Ray tasks on other
nodes: they all append index lines under one folder, which a thread here tails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

Progress = Callable[[dict[str, Any]], None]


class StoreMonitor:
    def __init__(self, folder: Path, run_id: str, teacher: str, total: int, top_step: int,
                 progress: Progress | None, every_s: float = 0.5, fill_on_done: bool = False) -> None:  # fmt: skip
        self.folder, self.run_id, self.teacher, self.total = folder, run_id, teacher, total
        self.top_step = top_step
        self.progress = progress
        self.every_s = every_s
        self.fill_on_done = fill_on_done  # imports: a prompt without a reply is settled too
        self._offsets: dict[Path, int] = {}
        self.done = self.ok = self.failed = self.tokens = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = time.monotonic()

    def poll(self) -> None:
        for idx in self.folder.glob("*.idx"):
            pos = self._offsets.get(idx, 0)
            with idx.open("rb") as fh:
                fh.seek(pos)
                chunk = fh.read()
            end = chunk.rfind(b"\n") + 1  # only whole lines; a half-written one waits
            self._offsets[idx] = pos + end
            for line in chunk[:end].splitlines():
                try:
                    d = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if d.get("r") != self.run_id:
                    continue
                self.tokens += d.get("ct") or 0
                if d["s"] == "ok" and d["f"] == "length" and d["m"] < self.top_step:
                    continue  # an intermediate rung of the truncation ladder
                self.done += 1
                if d["s"] == "ok":
                    self.ok += 1
                else:
                    self.failed += 1
        self._emit("update")

    def _emit(self, phase: str) -> None:
        if self.progress is not None:
            self.progress({
                "phase": phase, "teacher": self.teacher, "done": self.done, "total": self.total,
                "ok": self.ok, "failed": self.failed, "completion_tokens": self.tokens,
                "elapsed_s": time.monotonic() - self.started,
                "settled": phase == "done" and self.fill_on_done,
            })  # fmt: skip

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.poll()

    def __enter__(self) -> StoreMonitor:
        for idx in self.folder.glob("*.idx"):  # earlier runs' records are not this run's progress
            self._offsets[idx] = idx.stat().st_size
        self._emit("start")
        if self.progress is not None:
            self._thread = threading.Thread(target=self._loop, name="generate-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.progress is not None:
            self.poll()
            self._emit("done")
