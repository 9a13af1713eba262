"""MinHash cluster step: datatrove's MinhashDedupCluster with numpy connected components.

The stock step runs a Python union-find over every duplicate pair, in the driver (it is one
task): ~5 s at 1M prompts, the near-dedupe step's only serial part. Here the pairs are read as
arrays and labelled by min-label propagation with pointer jumping.

Same `.clusters` files: every doc that appears in a pair, in (file, doc) order, with the cluster
number the stock step gives it (clusters numbered by their first doc in that order: it does not
depend on the union-find's roots). The `.remove` files list every doc but its cluster's first;
the stock step keeps its union-by-size root instead, and minhash_winners rewrites them anyway.
"""

from __future__ import annotations

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.dedup.minhash import MinhashDedupCluster


def components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Each node's component, as the smallest node index in it, for undirected edges a–b over n nodes."""
    label = np.arange(n, dtype=np.int64)
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]  # pointer jumping: a node takes its label's label
        while True:
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            return label
        label = new


class VectorizedMinhashCluster(MinhashDedupCluster):
    """The stock cluster step for the plain case (no index matches, ids and no sizes saved)."""

    def run(self, data: DocumentsPipeline = None, _: int = 0, world_size: int = 1) -> None:
        if self.ignore_index_matches or self.save_cluster_size or not self.save_cluster_id:
            return super().run(data, _, world_size)
        dup_files = self.input_folder.list_files(glob_pattern="*.dups")
        assert len(dup_files) % self.config.num_buckets == 0 and world_size == 1, "one task, every bucket's .dups"
        with self.track_time():
            parts = []
            for name in dup_files:
                with self.input_folder.open(name, "rb") as f:
                    parts.append(np.frombuffer(f.read(), dtype="<u4").reshape(-1, 4))
            recs = np.concatenate(parts) if parts else np.zeros((0, 4), "<u4")
            if (recs == np.iinfo(np.uint32).max).any():  # a match against an index: the stock step's case
                return super().run(data, _, world_size)
            left = (recs[:, 0].astype(np.uint64) << np.uint64(32)) | recs[:, 1]
            right = (recs[:, 2].astype(np.uint64) << np.uint64(32)) | recs[:, 3]
            nodes, idx = np.unique(np.concatenate([left, right]), return_inverse=True)
            label = components(idx[: len(left)], idx[len(left) :], len(nodes))
            first = label == np.arange(len(nodes))
            cluster = np.cumsum(first) - 1  # numbered by each cluster's first node, in node order
            cid = cluster[label]
            files = (nodes >> np.uint64(32)).astype(np.int64)
            docs = (nodes & np.uint64(0xFFFFFFFF)).astype("<u4")
            for f in np.unique(files):
                sel = files == f
                with self.output_folder.open(f"{int(f):06d}.clusters", mode="wb") as out:
                    out.write(np.stack([docs[sel], cid[sel].astype("<u4")], axis=1).tobytes())
                removed = docs[sel & ~first]
                if len(removed):
                    with self.output_folder.open(f"{int(f):06d}.remove", mode="wb") as out:
                        out.write(removed.tobytes())
            sizes = np.bincount(label, minlength=len(nodes))[first]
            self.stat_update("duplicates", value=int(len(nodes)))
            self.stat_update("to_remove", value=int((~first).sum()))
            self.stat_update("clusters", value=int(first.sum()))
            for size in sizes.tolist():
                self.stat_update("cluster_size", value=int(size), unit="cluster")
