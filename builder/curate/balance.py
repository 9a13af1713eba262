"""Source and category balancing: seeded, deterministic, with a before/after table.

Quotas come from a target total split by category weights (or the paper's mix), then each
category's quota is split across its sources (by availability, scaled by source weights).
Caps are hard limits; what a capped cell cannot take flows to the others (water-filling).
Within a cell, the rows kept are those with the smallest hash(seed, prompt_id): independent
of input order, stable when rows are added, and reproducible from the seed alone.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from builder.config.curate import PAPER_MIX, BalanceConfig


def allocate(total: int, capacity: dict[str, int], weight: dict[str, float]) -> dict[str, int]:
    """Split `total` proportionally to `weight`, never above `capacity`; integers summing to
    min(total, sum(capacity)). Remainders go to the largest fractional parts, ties by key."""
    alloc = {k: 0 for k in capacity}
    active = {k for k in capacity if capacity[k] > 0 and weight.get(k, 0) > 0}
    remaining = min(total, sum(capacity[k] for k in active))
    shares: dict[str, float] = {}
    while active:
        wsum = sum(weight[k] for k in active)
        shares = {k: remaining * weight[k] / wsum for k in active}
        full = {k for k in active if capacity[k] <= shares[k]}
        if not full:
            break
        for k in full:
            alloc[k] = capacity[k]
            remaining -= capacity[k]
        active -= full
    if active:
        floors = {k: int(shares[k]) for k in active}
        left = remaining - sum(floors.values())
        order = sorted(active, key=lambda k: (-(shares[k] - floors[k]), k))
        for k in order[:left]:
            floors[k] += 1
        alloc.update(floors)
    return alloc


@dataclass
class BalanceResult:
    keep: list[bool]
    reason: list[str]  # "" for kept rows; else which limit dropped it
    before: dict[tuple[str, str], int]
    after: dict[tuple[str, str], int]
    category_quota: dict[str, int]


def _rank_key(seed: int, prompt_id: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{prompt_id}".encode(), digest_size=8).digest()


def balance(prompt_ids: list[str], sources: list[str], categories: list[str], cfg: BalanceConfig) -> BalanceResult:
    n = len(prompt_ids)
    before = Counter(zip(categories, sources))
    avail_cat = Counter(categories)
    if not cfg.enabled:
        return BalanceResult([True] * n, [""] * n, dict(before), dict(before), dict(avail_cat))

    weights = dict(cfg.category_weights)
    if cfg.preset == "paper" and not weights:
        weights = {k: float(v) for k, v in PAPER_MIX.items()}
    cap_cat = {c: min(avail_cat[c], cfg.category_caps.get(c, avail_cat[c])) for c in avail_cat}
    if weights:
        w = {c: weights.get(c, 0.0) for c in avail_cat}
        if cfg.target_total is None:
            # The largest total that keeps the exact proportions with the rows available.
            wsum = sum(w.values()) or 1.0
            total = int(min((cap_cat[c] / (w[c] / wsum) for c in w if w[c] > 0), default=0))
        else:
            total = cfg.target_total
        cat_quota = allocate(total, cap_cat, w)
    else:
        total = cfg.target_total if cfg.target_total is not None else sum(cap_cat.values())
        cat_quota = allocate(total, cap_cat, {c: float(cap_cat[c]) for c in cap_cat})

    # Per-source caps bind across categories: give each source its cap in proportion to
    # its availability per category, then split each category quota among its sources.
    src_total = Counter(sources)
    cell_quota: dict[tuple[str, str], int] = {}
    for c, q in cat_quota.items():
        cells = {s: before[(c, s)] for (cc, s) in before if cc == c}
        caps = {
            s: min(a, int(cfg.source_caps[s] * a / src_total[s])) if s in cfg.source_caps else a
            for s, a in cells.items()
        }
        wts = {s: float(a) * cfg.source_weights.get(s, 1.0) for s, a in cells.items()}
        for s, k in allocate(q, caps, wts).items():
            cell_quota[(c, s)] = k

    # smallest rank key first: the 8-byte digests as big-endian integers sort as the bytes do
    ranks = np.frombuffer(b"".join([_rank_key(cfg.seed, p) for p in prompt_ids]), dtype=">u8")
    order = np.argsort(ranks, kind="stable").tolist()
    taken: Counter[tuple[str, str]] = Counter()
    keep = [False] * n
    reason = [""] * n
    for i in order:
        cell = (categories[i], sources[i])
        if taken[cell] < cell_quota.get(cell, 0):
            taken[cell] += 1
            keep[i] = True
        elif cat_quota.get(cell[0], 0) < avail_cat[cell[0]] and cfg.category_caps.get(cell[0]) is not None:
            reason[i] = f"category_cap:{cell[0]}"
        elif cell[1] in cfg.source_caps:
            reason[i] = f"source_cap:{cell[1]}"
        else:
            reason[i] = f"quota:{cell[0]}"
    return BalanceResult(keep, reason, dict(before), dict(taken), cat_quota)
