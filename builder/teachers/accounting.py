"""Tokens, requests and cost of everything a teacher's store holds, priced per model."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from builder.config.generate import Price, TeacherConfig
from builder.teachers.store import scan

_KEYS = ("records", "requests", "ok", "failed", "retried", "prompt_tokens", "completion_tokens", "reasoning_tokens")


def _blank() -> dict[str, float]:
    return {**dict.fromkeys(_KEYS, 0), "cost_usd": 0.0}


def accounting(folder: Path, teacher: TeacherConfig, price: Price | None) -> dict[str, Any]:
    """Tokens, requests and cost over every stored record (retried and superseded ones too)."""
    groups: dict[str, dict[str, dict[str, float]]] = {k: defaultdict(_blank) for k in ("run", "source", "category")}
    total = _blank()
    for e in scan(folder):
        cost = (e.prompt_tokens * price.input_per_1m + e.completion_tokens * price.output_per_1m) / 1e6 if price else 0.0
        vals = {
            "records": 1, "requests": e.attempts, "ok": int(e.status == "ok"), "failed": int(e.status != "ok"),
            "retried": max(0, e.attempts - 1), "prompt_tokens": e.prompt_tokens,
            "completion_tokens": e.completion_tokens, "reasoning_tokens": e.reasoning_tokens, "cost_usd": cost,
        }  # fmt: skip
        for bucket in (total, groups["run"][e.run], groups["source"][e.source], groups["category"][e.category]):
            for k, v in vals.items():
                bucket[k] += v
    return {
        "teacher": teacher.name,
        "model": teacher.model,
        "price": price.model_dump() if price else None,
        "total": total,
        **{f"by_{k}": {name: dict(v) for name, v in sorted(g.items())} for k, g in groups.items()},
    }
