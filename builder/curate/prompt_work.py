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

import os
from typing import TYPE_CHECKING

from builder.constraints.detect import constraints_json_many, prompt_constraints
from builder.constraints.spec import to_json
from builder.curate.decontam import MATCH_STEP
from builder.progress import Progress, report

if TYPE_CHECKING:
    from builder.curate.decontam import BenchmarkIndex, Hit

PARALLEL_FROM = 20_000  # prompts: below this, forking costs more than it saves
MATCH_CHUNK = 10_000  # prompts per decontamination job (bounded window-hash arrays)
DETECT_CHUNK = 4_096  # prompts per detection job

# Set in the parent just before forking: workers read the index and the texts copy-on-write (and
# inherit the parent's str hash seed, so the index's hashed keys stay comparable).
_SHARED: tuple[BenchmarkIndex | None, list[str], list[tuple[str | None, str]]] | None = None


def _job(job: tuple[str, int, int]) -> tuple[str, int, list]:
    kind, lo, hi = job
    assert _SHARED is not None
    index, texts, items = _SHARED
    if kind == "match":
        assert index is not None
        return kind, lo, index.match_many(texts[lo:hi])
    return kind, lo, [to_json(prompt_constraints(None, t, u)) for t, u in items[lo:hi]]


def workers_for(n: int) -> int:
    return min(2, os.cpu_count() or 1) if n >= PARALLEL_FROM else 1


def match_and_detect(
    index: BenchmarkIndex | None,
    texts: list[str],
    items: list[tuple[str | None, str]],
    workers: int = 1,
    progress: Progress | None = None,
) -> tuple[list[Hit | None], list[str]]:
    """(`index.match_many(texts)`, `constraints_json_many(items)`), in order, on `workers` forked
    processes; no matching without an index. `progress` hears (MATCH_STEP, matched, prompts)."""
    global _SHARED
    n = len(texts) if index is not None else 0
    jobs = [("match", lo, min(lo + MATCH_CHUNK, n)) for lo in range(0, n, MATCH_CHUNK)]
    jobs += [("detect", lo, min(lo + DETECT_CHUNK, len(items))) for lo in range(0, len(items), DETECT_CHUNK)]
    hits: list[Hit | None] = [None] * n
    found: list[str] = [""] * len(items)
    report(progress, MATCH_STEP, 0, n)
    if workers <= 1 or len(jobs) < 2 or (index is not None and index.semantic is not None):
        # one process (the embedder is not fork-safe)
        for lo in range(0, n, MATCH_CHUNK):
            hits[lo : lo + MATCH_CHUNK] = index.match_many(texts[lo : lo + MATCH_CHUNK])  # type: ignore[union-attr]
            report(progress, MATCH_STEP, min(lo + MATCH_CHUNK, n), n)
        return hits, constraints_json_many(items, workers=workers)
    import multiprocessing

    _SHARED = (index, texts, items)
    matched = 0
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for kind, lo, part in pool.imap_unordered(_job, jobs):
                out: list = hits if kind == "match" else found
                out[lo : lo + len(part)] = part
                if kind == "match":
                    matched += len(part)
                    report(progress, MATCH_STEP, matched, n)
    finally:
        _SHARED = None
    return hits, found
