"""The n-gram rule: how much of a benchmark item a prompt holds, in runs of n words or more.

Index: every n-word window of every item, by hash. A window found in more than
`common_ngram_items` items is boilerplate ("which of the following statements is true") and
is dropped; the rest are the item's *distinctive* windows, and the words they cover are the
item's *coverable* words.

Evidence for a (prompt, item) pair: `shared`, the distinctive windows of the item found in
the prompt, and `coverage`, the share of the item's coverable words that those windows
cover. A pair is a hit when coverage >= min_coverage and shared >= min(min_shared_ngrams,
the item's distinctive windows). Coverage scales with the item: one generic 8-word phrase is
most of nothing, a whole item embedded in a longer instruction is all of it, and a word
edited every ~15 words uncovers only the words next to the edit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from builder.curate.decontam_tokens import HashIndex, WordBatch


def _runs(keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the first element of each run of equal values in a sorted array."""
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return first


def covered_words(group: np.ndarray, pos: np.ndarray, n: int, groups: int) -> np.ndarray:
    """Words covered by the n-word windows starting at `pos`, summed per group.

    Input sorted by (group, pos). The union of [pos, pos + n) is n for a group's last window
    plus min(n, gap to the next window) for every other one.
    """
    if not len(pos):
        return np.zeros(groups, dtype=np.int64)
    gap = np.full(len(pos), n, dtype=np.int64)
    same = group[1:] == group[:-1]
    gap[:-1][same] = np.minimum(pos[1:][same] - pos[:-1][same], n)
    return np.bincount(group, weights=gap, minlength=groups).astype(np.int64)


@dataclass
class GramIndex:
    n: int
    hashes: np.ndarray  # sorted distinct hashes of distinctive windows
    ptr: np.ndarray  # CSR: entries of hashes[g] are item[ptr[g]:ptr[g+1]], pos[...]
    item: np.ndarray
    pos: np.ndarray
    windows: np.ndarray  # per item: distinctive windows
    coverable: np.ndarray  # per item: words covered by its distinctive windows
    common: int  # windows dropped as boilerplate

    def __post_init__(self) -> None:
        self.lookup = HashIndex(self.hashes)

    @classmethod
    def build(cls, items: WordBatch, n: int, max_items: int) -> GramIndex:
        h, item, pos = items.windows(n)
        order = np.lexsort((pos, item, h))
        h, item, pos = h[order], item[order], pos[order]
        first_hash = _runs(h)
        new_pair = first_hash.copy()
        new_pair[1:] |= item[1:] != item[:-1]
        hash_id = np.cumsum(first_hash) - 1
        items_per_hash = np.bincount(hash_id, weights=new_pair).astype(np.int64) if len(h) else np.zeros(0, np.int64)
        keep = items_per_hash[hash_id] <= max_items
        h, item, pos = h[keep], item[keep], pos[keep]
        first = np.flatnonzero(_runs(h))
        n_items = len(items)
        by_item = np.lexsort((pos, item))
        coverable = covered_words(item[by_item], pos[by_item], n, n_items)
        return cls(
            n=n,
            hashes=h[first],
            ptr=np.append(first, len(h)),
            item=item,
            pos=pos,
            windows=np.bincount(item, minlength=n_items).astype(np.int64),
            coverable=coverable,
            common=int((items_per_hash > max_items).sum()),
        )

    def pairs(self, batch: WordBatch) -> dict[str, np.ndarray]:
        """Every (prompt, item) pair sharing a distinctive window, with its evidence:
        prompt, item, shared, covered, coverage, first and last matched item position."""
        empty = {k: np.empty(0, np.int64) for k in ("prompt", "item", "shared", "covered", "first", "last")}
        empty["coverage"] = np.empty(0)
        h, prompt, _ = batch.windows(self.n)
        if not len(h) or not len(self.hashes):
            return empty
        hit, g = self.lookup.find(h)
        if not len(hit):
            return empty
        prompt = prompt[hit]
        counts = self.ptr[g + 1] - self.ptr[g]
        total = int(counts.sum())
        # expand each matched window into its (item, pos) entries
        run_start = np.repeat(np.cumsum(counts) - counts, counts)
        idx = np.repeat(self.ptr[g], counts) + (np.arange(total) - run_start)
        p, it, ps = np.repeat(prompt, counts), self.item[idx], self.pos[idx]
        order = np.lexsort((ps, it, p))
        p, it, ps = p[order], it[order], ps[order]
        distinct = np.ones(len(p), dtype=bool)  # a window repeated in the prompt counts once
        distinct[1:] = (p[1:] != p[:-1]) | (it[1:] != it[:-1]) | (ps[1:] != ps[:-1])
        p, it, ps = p[distinct], it[distinct], ps[distinct]
        new_group = np.ones(len(p), dtype=bool)
        new_group[1:] = (p[1:] != p[:-1]) | (it[1:] != it[:-1])
        group = np.cumsum(new_group) - 1
        starts = np.flatnonzero(new_group)
        ends = np.append(starts[1:], len(p)) - 1
        covered = covered_words(group, ps, self.n, len(starts))
        gi = it[starts]
        return {
            "prompt": p[starts],
            "item": gi,
            "shared": np.diff(np.append(starts, len(p))),
            "covered": covered,
            "coverage": covered / np.maximum(self.coverable[gi], 1),
            "first": ps[starts],
            "last": ps[ends],
        }
