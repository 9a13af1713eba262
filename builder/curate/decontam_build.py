"""The benchmark index, built once, in a side process, while curate reads its sources.

Why: building the index (read the benchmark files, tokenize ~18k items, sort their windows) costs
a few CPU-seconds, and reading the sources keeps one core busy while the other waits. So when
the stage starts reading it hands the build to one lean process (executors.lean_executor); that
process pickles the finished index to a scratch file and returns what the summary needs. The
decontamination workers each load the file (word hashes are xxh3, alike in every process: see
decontam_tokens), so the index is built once per run, not once per worker, and the driver holds
it only when it matches alone (small runs).

Layout: `<work>/curate/decontaminate/index.pickle` (+ `.tmp` while written), removed when the step
ends or fails. Reading rule: only this run reads it, after `info()` returned.
With the optional semantic pass (an embedding model, not picklable) the driver builds the index itself.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builder.curate.decontam import BenchmarkIndex, build_index, load_index, save_index

if TYPE_CHECKING:
    from builder.recipe import Recipe

INDEX_FILE = "index.pickle"


@dataclass(frozen=True)
class IndexInfo:
    benchmarks: list[str]
    skipped: list[str]
    items: int
    common_ngrams: int
    semantic: bool


def _info(index: BenchmarkIndex) -> IndexInfo:
    return IndexInfo(list(index.benchmarks), list(index.skipped), len(index.items), index.common_ngrams,
                     index.semantic is not None)  # fmt: skip


def _build_to_file(recipe: Recipe, path: Path) -> IndexInfo:
    index = build_index(recipe, recipe.curate.decontaminate)  # no progress: it belongs to the driver
    save_index(index, path)
    return _info(index)


class IndexBuild:
    """`IndexBuild(recipe, folder)` starts the build; `info()` waits for it; `index()` loads it
    (the driver's own copy); `path` is the file the workers load; `close()` removes it."""

    def __init__(self, recipe: Recipe, folder: Path, background: bool = True) -> None:
        self.recipe = recipe
        self.path = Path(folder) / INDEX_FILE
        self._index: BenchmarkIndex | None = None
        self._info: IndexInfo | None = None
        self._in_file = False
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future[IndexInfo] | None = None
        if background and not recipe.curate.decontaminate.semantic.enabled:
            from builder.executors import lean_executor

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._pool = lean_executor(preload=["builder.curate.prompt_work"])  # what the match workers import too
            self._future = self._pool.submit(_build_to_file, recipe, self.path)

    def info(self) -> IndexInfo:
        """Wait for the build; a UserError of the build (a bad benchmark file) is raised here."""
        if self._info is None:
            if self._future is not None:
                try:
                    self._info = self._future.result()
                    self._in_file = True
                except BrokenProcessPool:  # the process was killed (OOM?): build here instead
                    self._future = None
                finally:
                    self._shutdown()
            if self._info is None:
                self._index = build_index(self.recipe, self.recipe.curate.decontaminate)
                self._info = _info(self._index)
        return self._info

    @property
    def in_file(self) -> bool:
        """Whether the index is in `path` (workers can load it); else only the driver holds it."""
        self.info()
        return self._in_file

    def index(self) -> BenchmarkIndex:
        self.info()
        if self._index is None:
            self._index = load_index(self.path)
        return self._index

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Stop a build still running and remove the file; the driver's copy (if any) is dropped."""
        self._shutdown()
        self._index = None
        for p in (self.path, self.path.with_name(self.path.name + ".tmp")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
