"""Overthinking: how long a reply thought, against replies like it.

The signal is the thinking length in teacher tokens as a z-score of log(1 + tokens) within the
row's group: its category, and — when the prompt had at least two verified samples, so a pass
rate says how hard it is — its verified difficulty too (`easy` ≥ 0.75 pass, `hard` ≤ 0.25,
else `medium`). Logs, because thinking lengths are heavy-tailed: a raw z-score would flag
nothing in a category with one 60k-token outlier and everything in a tight one. A group needs
`MIN_GROUP` rows; smaller difficulty groups fall back to the category, smaller categories get no
score. Rows above the recipe's `overthinking_z` get the `overthinking` info code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MIN_GROUP = 8
CODE = "overthinking"
# Histogram edges of the z-score (the card renders the counts); the ends are open.
EDGES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0)


def difficulty(pass_rate: float | None) -> str | None:
    if pass_rate is None:
        return None
    return "easy" if pass_rate >= 0.75 else "hard" if pass_rate <= 0.25 else "medium"


def pass_rates(files: Iterable[str | object]) -> dict[str, float]:
    """prompt_id → share of verified reasoning samples that passed, for prompts with ≥ 2 verified.

    Reads only three columns of `parsed` and `quarantine` (a failed verification is quarantined).
    """
    parts = [pq.read_table(f, columns=["prompt_id", "teacher_role", "verify_status"]) for f in files]
    return pass_rates_of(pa.concat_tables(parts)) if parts else {}


def pass_rates_of(t: pa.Table) -> dict[str, float]:
    """pass_rates over a table of samples (prompt_id, teacher_role, verify_status): a per-prompt
    figure, so one bucket's samples give its prompts' rates exactly."""
    t = t.filter(pc.and_(pc.equal(t["teacher_role"], "reasoning"), pc.is_in(t["verify_status"], pa.array(["pass", "fail"]))))
    t = t.select(["prompt_id"]).append_column("ok", pc.cast(pc.equal(t["verify_status"], "pass"), pa.int32()))
    g = t.group_by("prompt_id").aggregate([("ok", "sum"), ("ok", "count")])
    g = g.filter(pc.greater_equal(g["ok_count"], 2))
    return {p: s / n for p, s, n in zip(g["prompt_id"].to_pylist(), g["ok_sum"].to_pylist(), g["ok_count"].to_pylist())}


@dataclass
class _Moments:
    n: int = 0
    s: float = 0.0
    ss: float = 0.0

    def add(self, x: float) -> None:
        self.n, self.s, self.ss = self.n + 1, self.s + x, self.ss + x * x

    def z(self, x: float) -> float | None:
        if self.n < MIN_GROUP:
            return None
        mean = self.s / self.n
        var = max(self.ss / self.n - mean * mean, 0.0)
        return (x - mean) / math.sqrt(var) if var > 1e-12 else 0.0


@dataclass
class LengthStats:
    """Per-group moments of log thinking length; fed once over every selected reply."""

    groups: dict[tuple[str, str | None], _Moments] = field(default_factory=dict)

    def add(self, category: str, level: str | None, tokens: int | None) -> None:
        if tokens is None:
            return
        x = math.log1p(max(tokens, 0))
        self.groups.setdefault((category, None), _Moments()).add(x)
        if level is not None:
            self.groups.setdefault((category, level), _Moments()).add(x)

    def z(self, category: str, level: str | None, tokens: int | None) -> float | None:
        if tokens is None:
            return None
        x = math.log1p(max(tokens, 0))
        if level is not None and (m := self.groups.get((category, level))) is not None and m.n >= MIN_GROUP:
            return m.z(x)
        m = self.groups.get((category, None))
        return m.z(x) if m is not None else None


def histogram(zs: Iterable[float | None]) -> dict[str, int]:
    """Counts of z-scores per EDGES bin ("<-3", "-3..-2", …, ">=4"); None rows are "none"."""
    labels = [f"<{EDGES[0]:g}", *(f"{a:g}..{b:g}" for a, b in zip(EDGES, EDGES[1:])), f">={EDGES[-1]:g}"]
    out = dict.fromkeys([*labels, "none"], 0)
    for z in zs:
        if z is None:
            out["none"] += 1
            continue
        i = sum(z >= e for e in EDGES)
        out[labels[i]] += 1
    return out
