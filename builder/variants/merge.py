"""The variants stage's merge: buckets' outputs, in bucket order → the variant tables, the ledger
and the run-wide figures; and the accounting check over all of them.

Every bucket yields the same things whether it ran in this process or in a task
(builder/variants/tasks.py): its rows per table, its own ledger part, and a `BucketStats` (absent
reasons, the overthinking histogram, summary-quality sums, format survival, the adaptive mix).
Both paths add them up bucket by bucket in bucket order, so the sums (floats included) and every
ordered mapping come out the same for any number of tasks.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from builder.ledger import Ledger, LedgerMismatch
from builder.variants.format_gate import Survival
from builder.variants.summary_quality import Tally

STATS = "stats.json"
LEDGER = "ledger.parquet"


def _add(into: dict[str, Any], other: dict[str, Any]) -> None:
    """Nested counts: `other`'s numbers added into `into`, keys in first-seen order."""
    for k, v in other.items():
        if isinstance(v, dict):
            _add(into.setdefault(k, {}), v)
        else:
            into[k] = into.get(k, 0) + v


@dataclass
class BucketStats:
    """One bucket's run-wide figures (plain data: it travels as JSON), or the sum of many."""

    absent: dict[str, dict[str, int]] = field(default_factory=dict)  # variant → reason → prompts
    histogram: dict[str, int] = field(default_factory=dict)  # overthinking z bins
    tally: dict[str, float] = field(default_factory=dict)  # Tally's sums
    survival: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # variant → category → counts
    mix: dict[str, dict[str, int]] = field(default_factory=dict)  # category → adaptive choice → rows
    reasons: dict[str, int] = field(default_factory=dict)  # adaptive reason kind → rows
    steps: list[tuple[str, int, int, dict[str, int]]] = field(default_factory=list)  # the ledger part's

    @classmethod
    def of(cls, absent: dict[str, Counter[str]], histogram: dict[str, int], tally: Tally, survival: Survival,
           mix: dict[str, Counter[str]], reasons: Counter[str], ledger: Ledger) -> BucketStats:  # fmt: skip
        return cls(
            absent={k: dict(v) for k, v in absent.items()},
            histogram=dict(histogram),
            tally=dict(vars(tally)),
            survival={v: {c: dict(n) for c, n in cats.items()} for v, cats in survival.counts.items()},
            mix={k: dict(v) for k, v in mix.items()},
            reasons=dict(reasons),
            steps=[(s, i, k, dict(d)) for s, i, k, d in ledger.summary()],
        )

    def add(self, other: BucketStats) -> None:
        for name in ("absent", "histogram", "tally", "survival", "mix", "reasons"):
            _add(getattr(self, name), getattr(other, name))

    def save(self, folder: Path) -> None:
        (folder / STATS).write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> BucketStats:
        d = json.loads((folder / STATS).read_text(encoding="utf-8"))
        d["steps"] = [tuple(s) for s in d["steps"]]
        return cls(**d)

    def tally_obj(self) -> Tally:
        t = Tally()
        for k, v in self.tally.items():
            setattr(t, k, v)
        return t

    def survival_obj(self) -> Survival:
        s = Survival()
        for v, cats in self.survival.items():
            for c, n in cats.items():
                s.counts[v][c].update(n)
        return s


def read_bucket(folder: Path, writers: dict[str, Any], ledger: Ledger) -> BucketStats:
    """One task-written bucket into the stage's writers and ledger, row group by row group (the
    groups the task wrote are the chunks an in-process run writes: the same shards come out)."""
    if not (folder / STATS).is_file():
        raise RuntimeError(f"{folder}: the variants task for this bucket left no output; re-run the stage")
    st = BucketStats.load(folder)
    for name, w in writers.items():
        f = folder / f"{name}.parquet"
        if f.is_file():
            pf = pq.ParquetFile(f)
            for k in range(pf.num_row_groups):
                w.write_table(pf.read_row_group(k))
    ledger.add_part(folder / LEDGER, st.steps)  # read when the ledger is written
    return st


def check_accounting(ledger: Ledger, written: dict[str, int], n_prompts: int) -> None:
    """Every step saw every curated prompt once (rows in = kept + dropped), the ledger's rows say the
    same as its counters, and each table holds exactly the rows its step kept."""
    ledger.check()
    ledger.check_parts()
    for step, c in ledger.steps.items():
        if c.rows_in != n_prompts:
            raise LedgerMismatch(f"ledger variants/{step}: {c.rows_in:,} prompts entered, {n_prompts:,} curated")
        if step in written and written[step] != c.kept:
            raise LedgerMismatch(f"variants/{step}: {written[step]:,} rows written, {c.kept:,} kept in the ledger")
