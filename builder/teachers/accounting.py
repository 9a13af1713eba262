"""Tokens, requests and cost of everything a teacher's store holds, priced per model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from builder.config.generate import Price, TeacherConfig
from builder.teachers.store import records

_KEYS = ("records", "requests", "ok", "failed", "retried", "prompt_tokens", "completion_tokens", "reasoning_tokens")


def _sums(t: pa.Table, key: str | None) -> dict[str, dict[str, float]]:
    """_KEYS and cost summed per value of `key` (None: the whole table), by Arrow's group kernels."""
    aggs = [("records", "sum"), ("a", "sum"), ("ok", "sum"), ("failed", "sum"), ("retried", "sum"),
            ("pt", "sum"), ("ct", "sum"), ("rt", "sum"), ("cost", "sum")]  # fmt: skip
    names = ("records", "requests", "ok", "failed", "retried", "prompt_tokens", "completion_tokens",
             "reasoning_tokens", "cost_usd")  # fmt: skip
    g = t.group_by([key] if key else []).aggregate(aggs)
    out: dict[str, dict[str, float]] = {}
    cols = {n: g[f"{c}_{f}"].to_pylist() for n, (c, f) in zip(names, aggs)}
    labels = g[key].to_pylist() if key else [""]
    for i, label in enumerate(labels):
        out[label] = {n: (cols[n][i] or 0) for n in names}
        out[label]["cost_usd"] = float(out[label]["cost_usd"])
    return out


def accounting(folder: Path, teacher: TeacherConfig, price: Price | None) -> dict[str, Any]:
    """Tokens, requests and cost over every stored record (retried and superseded ones too)."""
    t, _ = records(folder)
    ok = pc.equal(t["s"], "ok")
    t = t.select(["a", "pt", "ct", "rt", "r", "src", "cat"]).append_column("ok", pc.cast(ok, pa.int64()))
    t = t.append_column("failed", pc.subtract(1, t["ok"])).append_column(
        "records", pa.array(np.ones(t.num_rows, np.int64))
    )
    t = t.append_column("retried", pc.max_element_wise(pc.subtract(t["a"], 1), 0))
    pt, ct = t["pt"].to_numpy().astype(np.float64), t["ct"].to_numpy().astype(np.float64)
    cost = price.cost(pt, ct) if price else np.zeros(t.num_rows)
    t = t.append_column("cost", pa.array(cost, pa.float64()))
    blank = {**dict.fromkeys(_KEYS, 0), "cost_usd": 0.0}
    total = _sums(t, None).get("", blank) if t.num_rows else blank
    by = {
        k: dict(sorted(_sums(t, col).items())) if t.num_rows else {}
        for k, col in (("run", "r"), ("source", "src"), ("category", "cat"))
    }
    return {
        "teacher": teacher.name,
        "model": teacher.model,
        "price": price.model_dump() if price else None,
        "total": total,
        **{f"by_{k}": v for k, v in by.items()},
    }


def without_usage(folder: Path) -> int:
    """Stored ok replies that carried no token counts (a proxy that drops `usage`): whatever they
    cost is missing from accounting()'s totals, which must then be said, not shown as complete."""
    t, _ = records(folder)
    if not t.num_rows:
        return 0
    blank = pc.and_(pc.equal(t["s"], "ok"), pc.and_(pc.equal(t["pt"], 0), pc.equal(t["ct"], 0)))
    return int(pc.sum(pc.cast(blank, pa.int64())).as_py() or 0)
