"""Release statistics, accumulated shard by shard: counts, token lengths, verification,
rejection reasons from the ledgers, and cost per kept row (every teacher's spend, the LLM
summarizer's included, from the typed stage summaries)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.tables import GenerateSummary, ResponsesSummary, TeacherAccounting, VariantsSummary
from builder.workdir import WorkDir

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


def rejections(work: WorkDir, responses: ResponsesSummary | None) -> dict[str, Any]:
    """Dropped / quarantined rows per stage and reason, from every stage's ledger,
    plus the responses stage's own reject-code counts (from its summary)."""
    out: dict[str, Any] = {"ledgers": {}, "responses": None}
    for stage, table in tables.LEDGERS.items():
        for path in work.shards(table):
            t = pq.read_table(path, columns=["step", "status", "reason"])
            t = t.filter(pc.not_equal(t.column("status"), "kept"))
            rows = t.group_by(["step", "reason"]).aggregate([("status", "count")]).to_pylist()
            out["ledgers"][stage] = {
                f"{r['step']}:{r['reason']}": r["status_count"]
                for r in sorted(rows, key=lambda r: (r["step"], -r["status_count"]))
            }
    if responses is not None:
        out["responses"] = responses.model_dump(include={"rows_in", "kept", "quarantined", "reasons"})
    return out


def spend_by_role(generate: GenerateSummary | None, variants: VariantsSummary | None) -> dict[str, float | None]:
    """USD per teacher role over every teacher's store: generate's teachers under their role, the
    variants stage's LLM summarizer as "summarizer" (None: a teacher of that role has no price,
    so its spend is unknown, not zero). A role with no teacher at all is absent."""
    books: list[tuple[str, TeacherAccounting]] = []
    if generate is not None:
        roles = {t.name: t.role for t in generate.teachers}
        books += [(roles.get(b.teacher, "reasoning"), b) for b in generate.accounting]
    if variants is not None and variants.summarizer_accounting is not None:
        books.append(("summarizer", variants.summarizer_accounting))
    out: dict[str, float | None] = {}
    for role, book in books:
        prev, cost = out.get(role, 0.0), book.spend_usd
        out[role] = None if cost is None or prev is None else prev + cost
    return out


def costs(by_role: dict[str, float | None], rows_per_variant: dict[str, int],
          roles: dict[str, tuple[str, ...]]) -> dict[str, float | None]:
    """Cost per kept row and variant: the spend of every role its rows stand on (`roles`, from
    its spec: the reply's teacher, plus the summarizer for a summary) over its rows. No summarizer
    spend recorded means the extractive one, which costs nothing; any other role missing, or a
    role without a price, leaves the figure unknown (None) rather than too low."""
    out: dict[str, float | None] = {}
    for v, n in rows_per_variant.items():
        spent = [by_role.get(r) for r in roles[v] if r in by_role or r != "summarizer"]
        if any(c is None for c in spent) or not n:
            out[v] = None
        else:
            out[v] = round(sum(c for c in spent if c is not None) / n, 6)
    return out
