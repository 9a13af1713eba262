"""Prompts left out because their teacher replies failed verification: the part of the verified
pass rate the released rows cannot show.

By default a reply that fails verification is not kept (`responses.keep_verify`), so the rows of
`answer` only ever say `pass` or `unverifiable`, and a pass rate read off them is 100% whatever the
teacher got right. The verification floor and the card's Verification table count, per category,
the prompts whose reasoning replies failed verification and which no kept reasoning reply
answers: they are the failures the release left out.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.workdir import WorkDir


def _column(work: WorkDir, table: tables.Table, columns: list[str], role_filter: bool = True) -> pa.Table:
    files = work.shards(table)
    parts = [pq.read_table(f, columns=columns) for f in files]
    t = pa.concat_tables(parts) if parts else pa.table({c: pa.array([], pa.string()) for c in columns})
    return t.filter(pc.equal(t["teacher_role"], "reasoning")) if role_filter else t


def failed_left_out(work: WorkDir) -> Counter[str]:
    """Per category, prompts with a reasoning reply that failed verification and no kept reasoning
    reply (empty when the responses stage's tables are absent)."""
    if not work.shards(tables.QUARANTINE):
        return Counter()
    failed = _column(work, tables.QUARANTINE, ["prompt_id", "teacher_role", "verify_status"])
    failed = pc.unique(failed.filter(pc.equal(failed["verify_status"], "fail"))["prompt_id"])
    kept = _column(work, tables.PARSED, ["prompt_id", "teacher_role"])["prompt_id"]
    left_out = failed.filter(pc.invert(pc.is_in(failed, value_set=pc.unique(kept))))
    if not len(left_out):
        return Counter()
    prompts = _column(work, tables.PROMPTS, ["prompt_id", "category"], role_filter=False)
    cats = prompts.filter(pc.is_in(prompts["prompt_id"], value_set=left_out))["category"].fill_null("?")
    return Counter(dict(zip(*(pc.value_counts(cats).field(k).to_pylist() for k in ("values", "counts")))))


def rates(verify: dict[str, Counter[str]], left_out: Counter[str]) -> dict[str, dict[str, float | int | None]]:
    """Per category: the released rows' statuses, `failed_left_out`, and the pass rate among the
    verifiable prompts (pass / (pass + fail + failed_left_out)) — the verification floor's figure,
    exact: a rate just under a floor fails it (`shown` rounds it for the card)."""
    out: dict[str, dict[str, float | int | None]] = {}
    for cat in sorted(set(verify) | set(left_out)):
        c = verify.get(cat, Counter())
        checked = c.get("pass", 0) + c.get("fail", 0) + left_out.get(cat, 0)
        out[cat] = {**dict(c), "failed_left_out": left_out.get(cat, 0),
                    "pass_rate": c.get("pass", 0) / checked if checked else None}
    return out


def shown(rates_: dict[str, dict[str, float | int | None]]) -> dict[str, dict[str, float | int | None]]:
    """`rates` with each pass rate rounded to 4 places, as the card and quality.json print it."""
    return {cat: {**r, "pass_rate": None if r["pass_rate"] is None else round(r["pass_rate"], 4)}
            for cat, r in rates_.items()}  # fmt: skip
