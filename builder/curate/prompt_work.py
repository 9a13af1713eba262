"""Curate's per-prompt work after near dedupe, decontamination matching and constraint detection,
shared by one forked pool so both cores stay busy.

Both are pure per prompt (a prompt's hit and its constraints never depend on another prompt),
so they can run side by side in any chunking. Constraints are detected for every row that
reaches decontamination (not only those balance keeps later): the stage carries them along and
uses those of the kept rows, exactly what detecting on the kept rows alone would give. Detecting
a few more rows (the contaminated and over-quota ones, a few % on real mixes) costs less than
running the two steps one after another on one core each: decontamination alone forked only
from 100k prompts, and neither could fill the other's idle core.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from builder.constraints.detect import constraints_json_many, json_batch
from builder.cpus import usable_cores
from builder.curate.decontam import MATCH_STEP, BenchmarkIndex, Hit, load_index
from builder.progress import Progress, report

PARALLEL_FROM = 20_000  # prompts: below this, forking costs more than it saves
MATCH_CHUNK = 10_000  # prompts per decontamination job (bounded window-hash arrays)
DETECT_CHUNK = 4_096  # prompts per detection job

# A worker's own index, loaded once when it starts. Workers come from a lean pool (executors.lean_map),
# not forked from the driver: they hold the index and their job's batch, not the driver's prompts.
_INDEX: BenchmarkIndex | None = None


def _start(index: BenchmarkIndex | Path | None) -> None:
    global _INDEX
    _INDEX = load_index(index) if isinstance(index, Path) else index


def _job(job: tuple[str, int, list[Any]]) -> list:
    kind, _, batch = job
    if kind == "match":
        assert _INDEX is not None
        return _INDEX.match_many(batch)
    return json_batch(batch)


def workers_for(n: int) -> int:
    return min(2, usable_cores()) if n >= PARALLEL_FROM else 1


def match_and_detect(
    index: BenchmarkIndex | Path | None,
    texts: Sequence[str],
    items: Sequence[tuple[str | None, str]],
    workers: int = 1,
    progress: Progress | None = None,
) -> tuple[list[Hit | None], list[str]]:
    """(`index.match_many(texts)`, `constraints_json_many(items)`), in order, on `workers` processes
    of a lean pool; no matching without an index. `index` may be the path of a pickled index
    (decontam.save_index: each worker loads it; no index is sent through the pool's pipe);
    `texts` and `items` are sliced a job at a time (curate passes Arrow-backed views).
    `progress` hears (MATCH_STEP, matched, prompts)."""
    n = len(texts) if index is not None else 0
    jobs = [("match", lo, min(lo + MATCH_CHUNK, n)) for lo in range(0, n, MATCH_CHUNK)]
    jobs += [("detect", lo, min(lo + DETECT_CHUNK, len(items))) for lo in range(0, len(items), DETECT_CHUNK)]
    hits: list[Hit | None] = [None] * n
    found: list[str] = [""] * len(items)
    report(progress, MATCH_STEP, 0, n)
    serial = workers <= 1 or len(jobs) < 2
    if isinstance(index, Path) and serial:
        index = load_index(index)
    if serial or (isinstance(index, BenchmarkIndex) and index.semantic is not None):
        # one process (the embedder is not fork-safe)
        assert not isinstance(index, Path)
        for lo in range(0, n, MATCH_CHUNK):
            hits[lo : lo + MATCH_CHUNK] = index.match_many(texts[lo : lo + MATCH_CHUNK])  # type: ignore[union-attr]
            report(progress, MATCH_STEP, min(lo + MATCH_CHUNK, n), n)
        return hits, constraints_json_many(items, workers=workers)
    from builder.executors import lean_map

    matched = 0
    # Each job carries its batch, built when a worker can take it (not all at once).
    batches = ((kind, lo, (texts if kind == "match" else items)[lo:hi]) for kind, lo, hi in jobs)
    # An index object travels pickled to each worker (its word hashes are the same in every process).
    # A worker killed from outside (OOM) leaves its jobs to this process instead of hanging the run.
    for (kind, lo, _), part in lean_map(_job, batches, workers, _start, (index,), preload=[__name__]):
        out: list = hits if kind == "match" else found
        out[lo : lo + len(part)] = part
        if kind == "match":
            matched += len(part)
            report(progress, MATCH_STEP, matched, n)
    return hits, found
