"""Release statistics, accumulated shard by shard: counts, token lengths, verification,
rejection reasons from the ledgers, and cost per kept row."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TOKEN_COLUMNS = ("teacher_think_tokens", "teacher_answer_tokens", "assistant_student_tokens", "student_tokens")


@dataclass
class VariantStats:
    rows: int = 0
    num_bytes: int = 0  # in-memory Arrow bytes, what `datasets` reports as num_bytes
    by_source: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_language: Counter[str] = field(default_factory=Counter)
    by_license: Counter[str] = field(default_factory=Counter)
    verify: dict[str, Counter[str]] = field(default_factory=dict)  # category → status → n
    teachers: Counter[str] = field(default_factory=Counter)  # "model|endpoint_kind"
    templates: set[tuple[str, str]] = field(default_factory=set)
    summary_templates: set[tuple[str, str]] = field(default_factory=set)
    summarizers: set[str] = field(default_factory=set)
    licenses_by_source: dict[str, set[str]] = field(default_factory=dict)
    tokens: dict[str, list[np.ndarray]] = field(default_factory=lambda: {c: [] for c in TOKEN_COLUMNS})

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        self.num_bytes += table.nbytes
        for counter, col in ((self.by_source, "source"), (self.by_category, "category"),
                             (self.by_language, "language"), (self.by_license, "source_license")):
            counter.update(_value_counts(table.column(col)))
        pairs = pc.binary_join_element_wise(
            table.column("category").fill_null("?"), table.column("verify_status").fill_null("?"), "|")
        for key, n in _value_counts(pairs).items():
            cat, status = key.split("|", 1)
            self.verify.setdefault(cat, Counter())[status] += n
        teach = pc.binary_join_element_wise(
            table.column("teacher_model"), table.column("endpoint_kind").fill_null("?"), "|")
        self.teachers.update(_value_counts(teach))
        tpl = table.select(["prompt_template_id", "prompt_template_hash"]).group_by(
            ["prompt_template_id", "prompt_template_hash"]).aggregate([]).to_pylist()
        self.templates |= {(r["prompt_template_id"], r["prompt_template_hash"] or "") for r in tpl
                           if r["prompt_template_id"]}
        stpl = table.select(["summary_template_id", "summary_template_hash"]).group_by(
            ["summary_template_id", "summary_template_hash"]).aggregate([]).to_pylist()
        self.summary_templates |= {(r["summary_template_id"], r["summary_template_hash"] or "") for r in stpl
                                   if r["summary_template_id"]}
        for r in table.select(["source", "source_license"]).group_by(["source", "source_license"]).aggregate([]).to_pylist():
            self.licenses_by_source.setdefault(r["source"], set()).add(r["source_license"] or "undeclared")
        self.summarizers |= {s for s in pc.unique(table.column("summarizer")).to_pylist() if s}
        for c in TOKEN_COLUMNS:
            arr = table.column(c).drop_null().to_numpy()
            if len(arr):
                self.tokens[c].append(arr.astype(np.int32))

    def merge(self, other: VariantStats) -> None:
        """Fold in the stats of another shard of the same variant."""
        self.rows += other.rows
        self.num_bytes += other.num_bytes
        for name in ("by_source", "by_category", "by_language", "by_license", "teachers"):
            getattr(self, name).update(getattr(other, name))
        for cat, c in other.verify.items():
            self.verify.setdefault(cat, Counter()).update(c)
        self.templates |= other.templates
        self.summary_templates |= other.summary_templates
        self.summarizers |= other.summarizers
        for src, lics in other.licenses_by_source.items():
            self.licenses_by_source.setdefault(src, set()).update(lics)
        for c in TOKEN_COLUMNS:
            self.tokens[c] += other.tokens[c]

    def token_array(self, column: str) -> np.ndarray:
        parts = self.tokens[column]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)

    def summary(self) -> dict[str, Any]:
        tokens = {}
        for c in TOKEN_COLUMNS:
            a = self.token_array(c)
            tokens[c] = None if not len(a) else {
                "mean": round(float(a.mean()), 1), "p50": int(np.percentile(a, 50)),
                "p90": int(np.percentile(a, 90)), "p99": int(np.percentile(a, 99)), "max": int(a.max()),
            }
        verify = {}
        for cat, c in sorted(self.verify.items()):
            checked = c.get("pass", 0) + c.get("fail", 0)
            verify[cat] = {**dict(c), "pass_rate": round(c.get("pass", 0) / checked, 4) if checked else None}
        return {
            "rows": self.rows, "num_bytes": self.num_bytes,
            "by_source": dict(sorted(self.by_source.items())), "by_category": dict(sorted(self.by_category.items())),
            "by_language": dict(sorted(self.by_language.items())), "by_license": dict(sorted(self.by_license.items())),
            "verification": verify, "tokens": tokens,
        }


def _value_counts(arr: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    vc = pc.value_counts(arr)
    return {v: int(n) for v, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()) if v is not None}


def rejections(work_root: Path, responses: dict[str, Any] | None) -> dict[str, Any]:
    """Dropped / quarantined rows per stage and reason, from every `<work>/*/ledger.parquet`,
    plus the responses stage's own reject-code counts (from its summary)."""
    out: dict[str, Any] = {"ledgers": {}, "responses": None}
    for path in sorted(work_root.glob("*/ledger.parquet")):
        t = pq.read_table(path, columns=["step", "status", "reason"])
        t = t.filter(pc.not_equal(t.column("status"), "kept"))
        rows = t.group_by(["step", "reason"]).aggregate([("status", "count")]).to_pylist()
        out["ledgers"][path.parent.name] = {
            f"{r['step']}:{r['reason']}": r["status_count"]
            for r in sorted(rows, key=lambda r: (r["step"], -r["status_count"]))
        }
    if responses is not None:
        out["responses"] = {k: responses.get(k) for k in ("rows_in", "kept", "quarantined", "reasons") if k in responses}
    return out


# Which teacher role's spend each variant's rows stand on.
VARIANT_ROLES = {"answer": ("reasoning",), "full": ("reasoning",), "think_summary": ("reasoning", "summarizer"),
                 "control": ("control",), "original": ()}


def _role_costs(summary: dict[str, Any]) -> dict[str, float | None]:
    """USD per teacher role from the generate stage's accounting (None: a teacher has no price)."""
    roles = {t.get("name"): t.get("role") for t in summary.get("teachers", []) if isinstance(t, dict)}
    out: dict[str, float | None] = {}
    for book in summary.get("accounting", []):
        role = roles.get(book.get("teacher"), "reasoning")
        cost = (book.get("total") or {}).get("cost_usd") if book.get("price") else None
        prev = out.get(role, 0.0)
        out[role] = None if cost is None or prev is None else prev + float(cost)
    return out


def costs(data: dict[str, Any] | None, rows_per_variant: dict[str, int]) -> dict[str, float | None]:
    """Generation cost per kept row and variant, when the generate stage's summary recorded prices."""
    if data is None:
        return dict.fromkeys(rows_per_variant)
    if isinstance(data.get("cost_usd"), (int, float)):  # a single total: spread over every variant
        by_role: dict[str, float | None] = {"reasoning": float(data["cost_usd"]), "control": float(data["cost_usd"])}
    else:
        by_role = _role_costs(data)
    out: dict[str, float | None] = {}
    for v, n in rows_per_variant.items():
        roles = VARIANT_ROLES.get(v, ("reasoning",))
        spent = [by_role.get(r) for r in roles if r in by_role or r != "summarizer"]
        if any(c is None for c in spent) or not n:
            out[v] = None
        else:
            out[v] = round(sum(c for c in spent if c is not None) / n, 6)
    return out
