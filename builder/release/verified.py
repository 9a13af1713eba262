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
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.workdir import WorkDir

_BATCH_ROWS = 65_536  # rows per record batch: a few MB of ids, whatever the table's size


def _batches(work: WorkDir, table: tables.Table, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The table's columns batch by batch (as staging reads its shards), never whole."""
    for f in work.shards(table):
        yield from pq.ParquetFile(f).iter_batches(batch_size=_BATCH_ROWS, columns=columns, use_threads=False)


def _reasoning_ids(work: WorkDir, table: tables.Table, status: str | None = None) -> pa.Array:
    """Distinct prompt ids of the table's reasoning replies (with that verify_status, if given)."""
    columns = ["prompt_id", "teacher_role"] + (["verify_status"] if status else [])
    parts = []
    for b in _batches(work, table, columns):
        keep = pc.equal(b.column("teacher_role"), "reasoning")
        if status:
            keep = pc.and_(keep, pc.equal(b.column("verify_status"), status))
        parts.append(pc.unique(pc.filter(b.column("prompt_id"), keep)))
    return pc.unique(pa.chunked_array(parts)) if parts else pa.array([], pa.string())


def failed_left_out(work: WorkDir) -> Counter[str]:
    """Per category, prompts with a reasoning reply that failed verification and no kept reasoning
    reply (empty when the responses stage's tables are absent)."""
    if not work.shards(tables.QUARANTINE):
        return Counter()
    failed = _reasoning_ids(work, tables.QUARANTINE, "fail")
    if not len(failed):
        return Counter()
    left_out = failed.filter(pc.invert(pc.is_in(failed, value_set=_reasoning_ids(work, tables.PARSED))))
    if not len(left_out):
        return Counter()
    cats: Counter[str] = Counter()
    for b in _batches(work, tables.PROMPTS, ["prompt_id", "category"]):
        found = pc.filter(b.column("category"), pc.is_in(b.column("prompt_id"), value_set=left_out))
        cats.update("?" if c is None else c for c in found.to_pylist())
    return cats


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
