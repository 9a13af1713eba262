"""Winner step: pick each cluster's kept doc by input order and make datatrove's outputs agree.

datatrove's union-find roots clusters by union-by-size, not by input order, so the kept doc
is recomputed here as the earliest (file, line) of each cluster, from the signature step's
id sidecars; the `.remove` files are rewritten to match, so MinhashDedupFilter then agrees
with near_dups.parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from builder.curate.minhash_config import NearDedupeError


def read_sidecars(ids_dir: Path, tasks: int) -> list[pa.Table]:
    tables = []
    for rank in range(tasks):
        path = ids_dir / f"{rank:05d}.parquet"
        if not path.exists():
            raise NearDedupeError(f"signature rank {rank} wrote no id sidecar ({path}); re-run without resume")
        tables.append(pq.read_table(path))
    return tables


def order_keys(tables: list[pa.Table], files: list[str]) -> np.ndarray:
    """Global input order of every doc: (index of its file in sorted order) << 32 | line."""
    file_index = {f: i for i, f in enumerate(files)}
    keys = []
    for t in tables:
        src = t.column("src").combine_chunks()
        if isinstance(src, pa.DictionaryArray):
            lut = np.array([file_index[s] for s in src.dictionary.to_pylist()], dtype=np.uint64)
            fidx = lut[src.indices.to_numpy(zero_copy_only=False)] if len(src) else np.zeros(0, np.uint64)
        else:
            fidx = np.array([file_index[s] for s in src.to_pylist()], dtype=np.uint64)
        keys.append((fidx << np.uint64(32)) | t.column("line").to_numpy().astype(np.uint64))
    return np.concatenate(keys) if keys else np.zeros(0, np.uint64)


def resolve_winners(
    clusters_dir: Path, tables: list[pa.Table], keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(removed doc, its winner, cluster id) as global doc indices, winner = earliest doc of the cluster."""
    sizes = np.array([t.num_rows for t in tables], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    gs, cids = [], []
    for path in sorted(clusters_dir.glob("*.clusters")):
        rank = int(path.name.split(".")[0])
        pairs = np.frombuffer(path.read_bytes(), dtype="<u4").reshape(-1, 2).astype(np.int64)
        if rank >= len(tables) or (len(pairs) and pairs[:, 0].max() >= sizes[rank]):
            raise NearDedupeError(
                f"{path}: cluster refers to a doc the signature step never saw (rank {rank}); "
                "signature and cluster outputs are out of sync — re-run without resume"
            )
        gs.append(pairs[:, 0] + offsets[rank])
        cids.append(pairs[:, 1])
    if not gs:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    g = np.concatenate(gs)
    cid = np.concatenate(cids)
    order = np.lexsort((keys[g], cid))
    g, cid = g[order], cid[order]
    first = np.ones(len(cid), dtype=bool)
    first[1:] = cid[1:] != cid[:-1]
    winner_of_cluster = np.repeat(g[first], np.diff(np.flatnonzero(np.append(first, True))))
    removed = ~first
    return g[removed], winner_of_cluster[removed], cid[removed]


def rewrite_remove_files(clusters_dir: Path, removed: np.ndarray, offsets: np.ndarray) -> None:
    """Make datatrove's `.remove` files agree with our winner choice (MinhashDedupFilter reads them)."""
    for old in clusters_dir.glob("*.remove"):
        old.unlink()
    ranks = np.searchsorted(offsets, removed, side="right") - 1
    for rank in np.unique(ranks):
        docs = np.sort(removed[ranks == rank] - offsets[rank]).astype("<u4")
        (clusters_dir / f"{int(rank):06d}.remove").write_bytes(docs.tobytes())
