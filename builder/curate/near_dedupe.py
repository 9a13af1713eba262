"""Near-duplicate removal with datatrove's MinHash steps (signature -> buckets -> cluster).

Input: prompt shards (parquet or jsonl[.gz]) in winner-priority order, with `id` and `text`.
Output: `near_dups.parquet` (prompt_id, kept_prompt_id, cluster_id) for every removed doc.

This module wires the steps into executors, checks each one, and maps the recipe's settings
onto NearDedupeConfig. The steps live in their own modules:
- minhash_inputs: shard discovery and readers (the signature reader tags (file, line));
- minhash_signatures: signatures with `builder.curate.shingles` (fast, CJK-aware,
  number-preserving, short docs hashed whole) instead of the spaCy word tokenizer, plus an
  id/position sidecar so results can be mapped back without re-reading;
- minhash_buckets: the buckets step vectorized, candidates verified on full signatures;
- minhash_cluster: the cluster step with numpy connected components (same cluster numbers);
- minhash_winners: the kept doc is the earliest (file, line) of each cluster (datatrove roots
  clusters by union-by-size), and the `.remove` files are rewritten to match (so
  MinhashDedupFilter agrees with near_dups.parquet).
Every step is checked: all ranks completed, the signature step read > 0 documents, the
buckets step wrote one `.dups` file per bucket, cluster ids point at real docs.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
from datatrove.pipeline.writers import JsonlWriter

from builder.curate.minhash_buckets import VectorizedMinhashBuckets
from builder.curate.minhash_cluster import VectorizedMinhashCluster
from builder.curate.minhash_config import BUFFER, NearDedupeConfig, NearDedupeError, NearDedupeResult
from builder.curate.minhash_inputs import input_spec, shard_reader
from builder.curate.minhash_signatures import MODE_STATS, PositionedMinhashSignature
from builder.curate.minhash_winners import order_keys, read_sidecars, resolve_winners, rewrite_remove_files
from builder.executors import ExecutorConfig, make_executor, preload_forkserver, run_executor
from builder.progress import Progress, report

NEAR_DUPS_FILE = "near_dups.parquet"
# Modules datatrove's forkserver imports before forking workers (see worker_preload.py).
FORKSERVER_PRELOAD = ["__main__", "builder.curate.worker_preload"]


def _stat_total(logs: Path, key: str) -> int:
    """Sum a stat over the per-rank stats files datatrove writes (all executors write these)."""
    import json

    total = 0
    for f in (logs / "stats").glob("*.json"):
        for step in json.loads(f.read_text()):
            entry = step.get("stats", {}).get(key)
            if entry is not None:
                total += int(entry["total"] if isinstance(entry, dict) else entry)
    return total


def near_dedupe(
    input_dir: Path,
    work_dir: Path,
    cfg: NearDedupeConfig | None = None,
    executor: ExecutorConfig | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> NearDedupeResult:
    """Find near-duplicate prompts in `input_dir` and write `work_dir/near_dups.parquet`.

    Without `resume`, earlier outputs in `work_dir` are cleared first (datatrove would
    otherwise skip "completed" ranks and reuse stale signatures).
    """
    cfg = cfg or NearDedupeConfig()
    executor = executor or ExecutorConfig()
    input_dir, work_dir = Path(input_dir), Path(work_dir)
    glob, files = input_spec(input_dir)
    mh = cfg.minhash_config()
    base = work_dir / "minhash"
    logs = work_dir / "logs"
    if not resume:
        for d in (base, logs, work_dir / "kept"):
            shutil.rmtree(d, ignore_errors=True)
        (work_dir / NEAR_DUPS_FILE).unlink(missing_ok=True)
    sig_dir, ids_dir, dups_dir, clusters_dir, full_dir = (
        base / x for x in ("signatures", "ids", "buckets", "clusters", "fullsigs")
    )
    sig_tasks = max(1, min(executor.tasks, len(files)))  # a rank without files would only add empty outputs
    preload_forkserver(executor, FORKSERVER_PRELOAD)  # the MinHash steps imported once, in the server
    shingles = cfg.shingle_params() if cfg.tokenizer == "fast" else None
    # full signatures (for candidate verification) come from our vectorized signature path only
    full = str(full_dir) if shingles and cfg.vectorized else None

    sig = make_executor(
        [
            shard_reader(input_dir, glob, cfg, positions=True),
            PositionedMinhashSignature(str(sig_dir), str(ids_dir), mh, shingles, cfg.language, cfg.vectorized, full),
        ],
        executor,
        logs / "signature",
        "near_dedupe_signature",
        tasks=sig_tasks,
    )
    buckets = make_executor(
        [
            VectorizedMinhashBuckets(str(sig_dir), str(dups_dir), mh, BUFFER, full, cfg.verify_threshold)
            if cfg.vectorized
            else MinhashDedupBuckets(str(sig_dir), str(dups_dir), config=mh, lines_to_buffer=BUFFER)
        ],
        executor,
        logs / "buckets",
        "near_dedupe_buckets",
        depends=_dep(sig, executor),
        tasks=mh.num_buckets,
    )
    cluster = make_executor(
        [
            (VectorizedMinhashCluster if cfg.vectorized else MinhashDedupCluster)(
                str(dups_dir), str(clusters_dir), config=mh, save_cluster_id=True, lines_to_buffer=BUFFER
            )
        ],
        executor,
        logs / "cluster",
        "near_dedupe_cluster",
        depends=_dep(buckets, executor),
        tasks=1,
    )

    seconds: dict[str, float] = {}
    if executor.kind == "slurm":
        # one chained submission; wait on the last job, then check every step's ranks
        t0 = time.perf_counter()
        run_executor(cluster, executor)
        for ex in (sig, buckets):
            run_executor_check(ex)
        seconds["all_steps"] = time.perf_counter() - t0
    else:
        for i, (name, ex) in enumerate((("signature", sig), ("buckets", buckets), ("cluster", cluster))):
            report(progress, "near_dedupe", i, 3)
            t0 = time.perf_counter()
            run_executor(ex, executor)
            seconds[name] = time.perf_counter() - t0
            if name == "signature":
                _check_signature(logs / "signature", input_dir, files)
            elif name == "buckets":
                _check_buckets(dups_dir, mh.num_buckets)
    if executor.kind == "slurm":
        _check_signature(logs / "signature", input_dir, files)
        _check_buckets(dups_dir, mh.num_buckets)

    report(progress, "near_dedupe", 3, 3)
    t0 = time.perf_counter()
    tables = read_sidecars(ids_dir, sig_tasks)
    docs_in = sum(t.num_rows for t in tables)
    if docs_in == 0:
        raise NearDedupeError(f"near_dedupe: the signature step read 0 documents from {input_dir}")
    keys = order_keys(tables, files)
    removed, winners, cids = resolve_winners(clusters_dir, tables, keys)
    ids = pa.concat_arrays([t.column("id").combine_chunks() for t in tables])
    out_order = np.argsort(keys[removed], kind="stable")
    removed, winners, cids = removed[out_order], winners[out_order], cids[out_order]
    out = pa.table(
        {
            "prompt_id": ids.take(pa.array(removed)),
            "kept_prompt_id": ids.take(pa.array(winners)),
            "cluster_id": pa.array(cids, pa.int64()),
        }
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(out, work_dir / NEAR_DUPS_FILE)
    offsets = np.concatenate([[0], np.cumsum([t.num_rows for t in tables])])
    rewrite_remove_files(clusters_dir, removed, offsets)
    seconds["resolve"] = time.perf_counter() - t0

    kept_dir = None
    if cfg.write_kept:
        kept_dir = work_dir / "kept"
        t0 = time.perf_counter()
        filt = make_executor(
            [
                # same reader, same files, same task count as the signature step: doc indices must line up
                shard_reader(input_dir, glob, cfg, positions=False),
                MinhashDedupFilter(str(clusters_dir)),
                JsonlWriter(str(kept_dir)),
            ],
            executor,
            logs / "filter",
            "near_dedupe_filter",
            tasks=sig_tasks,
        )
        run_executor(filt, executor)
        seconds["filter"] = time.perf_counter() - t0

    modes = {v: _stat_total(logs / "signature", v) for v in MODE_STATS.values()}
    return NearDedupeResult(
        docs_in=docs_in,
        removed=len(removed),
        kept=docs_in - len(removed),
        clusters=int(len(np.unique(cids))),
        near_dups_path=work_dir / NEAR_DUPS_FILE,
        kept_dir=kept_dir,
        step_seconds=seconds,
        shingle_modes=modes,
    )


def _dep(ex: Any, executor: ExecutorConfig) -> Any:
    # Slurm chains jobs by dependency; local and Ray run the steps one after another here
    return ex if executor.kind == "slurm" else None


def run_executor_check(ex: Any) -> None:
    missing = ex.get_incomplete_ranks(skip_completed=True)
    if missing:
        raise NearDedupeError(f"{len(missing)} ranks of {ex.logging_dir.path} did not complete")


def _check_signature(logs: Path, input_dir: Path, files: list[str]) -> None:
    read = _stat_total(logs, "documents")
    if read == 0:
        raise NearDedupeError(
            f"near_dedupe: the MinHash signature step read 0 documents from {input_dir} "
            f"({len(files)} shard files); check that the shards hold a non-empty text column"
        )


def _check_buckets(dups_dir: Path, num_buckets: int) -> None:
    found = len(list(dups_dir.glob("*.dups")))
    if found < num_buckets:
        raise NearDedupeError(f"{dups_dir}: {found} .dups files for {num_buckets} buckets; the buckets step failed")


def run_near_dedupe(
    prompt_ids: list[str] | pa.ChunkedArray,
    texts: list[str] | pa.ChunkedArray,
    languages: list[str] | pa.ChunkedArray | None,
    work_dir: Path,
    settings: Any = None,
    executor: Any = None,
    progress: Progress | None = None,
) -> dict[str, str]:
    """In-memory entry for the curate stage: {removed prompt_id: kept prompt_id}.

    Rows must be in winner-priority order. `settings` / `executor` may be our configs or the
    recipe's NearDedupeSettings (mapped field by field) / ExecutorConfig.
    """
    work_dir = Path(work_dir)
    shards = work_dir / "input"
    shutil.rmtree(shards, ignore_errors=True)
    shards.mkdir(parents=True)
    def arrow(v: Any) -> Any:  # curate passes its Arrow columns as they are
        return v if isinstance(v, (pa.Array, pa.ChunkedArray)) else pa.array(v, pa.string())

    cols: dict[str, Any] = {"id": arrow(prompt_ids), "text": arrow(texts)}
    if languages is not None:
        cols["lang"] = arrow(languages)
    table = pa.table(cols)
    ex = executor_config(executor)
    n_files = max(1, min(ex.tasks, len(prompt_ids) // 10_000 or 1))  # one shard per task, but not tiny ones
    per = -(-len(prompt_ids) // n_files) or 1
    for i in range(n_files):
        pq.write_table(table.slice(i * per, per), shards / f"{i:05d}.parquet")
    res = near_dedupe(shards, work_dir, near_dedupe_config(settings), ex, progress=progress)
    out = pq.read_table(res.near_dups_path, columns=["prompt_id", "kept_prompt_id"]).to_pydict()
    return dict(zip(out["prompt_id"], out["kept_prompt_id"]))


def near_dedupe_config(settings: Any) -> NearDedupeConfig:
    """NearDedupeConfig from ours, a dict, or the recipe's NearDedupeSettings (the same names)."""
    if settings is None or isinstance(settings, NearDedupeConfig):
        return settings or NearDedupeConfig()
    return NearDedupeConfig(**(settings if isinstance(settings, dict) else settings.model_dump()))


def executor_config(settings: Any) -> ExecutorConfig:
    """ExecutorConfig from ours (the recipe's), a dict, or None (the default)."""
    if settings is None or isinstance(settings, ExecutorConfig):
        return settings or ExecutorConfig()
    raw = settings if isinstance(settings, dict) else settings.model_dump()
    return ExecutorConfig(**{k: v for k, v in raw.items() if v is not None})
