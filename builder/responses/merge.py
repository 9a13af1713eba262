"""The responses stage's order-dependent part: rows of `process_batch`, in input-shard order →
duplicate ids, the ledger, `parsed` (with `selected`) and `quarantine`.

One code path whether the rows come straight from this process (one task) or from the task
outputs (builder/responses/tasks.py), read back in shard order: so any number of tasks writes
the same rows. The accounting identity (rows in = kept + quarantined) is checked over all parts.

Column-wise, so the serial part after the tasks is Arrow work per batch and the driver's memory
does not grow with a Python object per row: duplicate generation ids are input positions found
by sorting the id column (`duplicate_positions`), each batch's ledger rows go to the ledger as
one Arrow table, and the selection is one sort of the kept rows' narrow rank columns
(`rank_table`, `select`) read back from the staged shards.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.ledger import KEPT, QUARANTINED, Ledger
from builder.progress import Progress, counted, report
from builder.responses.consistency import verdict_of
from builder.responses.tasks import OUTPUT_SCHEMA, output_path
from builder.rows import PARSED_FEATURES
from builder.workdir import ShardWriter, WorkDir

DEFAULT_PRECEDENCE = ["verified_pass", "teacher_order"]  # GenerateConfig.precedence's default


# selected_by per winner: the first rank key where it beats the runner-up, or no rival at all.
ONLY_REPLY = "only_reply"
# The narrow columns selection reads back from the kept rows (never the texts).
RANK_COLS = ("prompt_id", "teacher_role", "teacher", "sample_index", "verify_status", "finish_reason", "generation_id")
_NO_SAMPLE = 1 << 30  # a reply without a sample index ranks after every numbered one


def rank_keys(precedence: list[str]) -> list[str]:
    """The rank of a kept reply, key by key: `generate.precedence` (verified_pass: passed first;
    finish_stop: finish_reason stop first; teacher_order: the teacher listed first in
    generate.teachers; sample_index: lowest first), then the sample index and the generation id,
    so the choice never depends on shard order (generation ids are unique among kept rows)."""
    return [*precedence, "sample_index", "generation_id"]


def _rank_column(key: str, t: pa.Table, teachers: list[str]) -> pa.Array:
    """One rank key as an int64 (generation_id: string) array; lower wins. Nulls rank as Python
    compares them: a missing status or finish reason is "not pass" / "not stop"."""
    col = t[_RANK_SOURCE.get(key, key)].combine_chunks()
    if key == "verified_pass":
        return pc.cast(pc.fill_null(pc.not_equal(col, "pass"), True), pa.int64())
    if key == "finish_stop":
        return pc.cast(pc.fill_null(pc.not_equal(col, "stop"), True), pa.int64())
    if key == "teacher_order":
        order = {name: i for i, name in enumerate(teachers)}  # a name listed twice: its last place
        at = pc.index_in(col, value_set=pa.array(list(order), pa.string()))
        return pc.fill_null(pc.take(pa.array(list(order.values()), pa.int64()), at), len(order))
    if key == "sample_index":
        return pc.fill_null(pc.cast(col, pa.int64()), _NO_SAMPLE)
    if key == "generation_id":
        return col
    raise ValueError(f"unknown precedence key {key!r}")


_RANK_SOURCE = {"verified_pass": "verify_status", "finish_stop": "finish_reason", "teacher_order": "teacher"}


def rank_table(t: pa.Table, precedence: list[str], teachers: list[str]) -> pa.Table:
    """Kept rows' RANK_COLS → the narrow columns `select` sorts: group (p: prompt id, r: role),
    then one rank column per key of `rank_keys(precedence)`."""
    cols = {"p": t["prompt_id"].combine_chunks(), "r": t["teacher_role"].combine_chunks()}
    cols.update({f"k{i}": _rank_column(k, t, teachers) for i, k in enumerate(rank_keys(precedence))})
    return pa.table(cols)


def select(ranked: pa.Table) -> np.ndarray:
    """The best kept reply per (prompt, role), column-wise over `rank_table`'s rows: per row, the
    index into `rank_keys(precedence) + [ONLY_REPLY]` of why it was selected, or -1 when it was
    not. The runner-up is the group's second-best rank: the first key where the winner beats it
    is why the winner was chosen (the generation id, the last key, always differs)."""
    n, n_keys = ranked.num_rows, ranked.num_columns - 2
    codes = np.full(n, -1, np.int8)
    if n == 0:
        return codes
    order = pc.sort_indices(ranked, sort_keys=[(c, "ascending") for c in ranked.column_names]).to_numpy()
    new = np.ones(n, bool)  # sorted position i starts a (prompt, role) group
    if n > 1:
        same: Any = None
        for c in ("p", "r"):
            s = pc.take(ranked[c], order)
            eq = pc.fill_null(pc.equal(s.slice(1), s.slice(0, n - 1)), False)
            same = eq if same is None else pc.and_(same, eq)
        new[1:] = ~same.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(new)
    size = np.diff(np.append(starts, n))
    codes[order[starts]] = n_keys  # ONLY_REPLY, unless there is a rival
    rival = starts[size > 1]
    if len(rival):
        win, run = pa.array(order[rival]), pa.array(order[rival + 1])
        differs = np.empty((len(rival), n_keys), bool)
        for j in range(n_keys):
            col = ranked[f"k{j}"]
            differs[:, j] = pc.not_equal(pc.take(col, win), pc.take(col, run)).to_numpy(zero_copy_only=False)
        codes[order[rival]] = differs.argmax(axis=1)  # the first key that differs
    return codes


def selected_by(codes: np.ndarray, precedence: list[str]) -> pa.Array:
    """`select`'s codes as the `selected_by` column (null: not selected)."""
    names = pa.array([*rank_keys(precedence), ONLY_REPLY], pa.string())
    return pc.take(names, pa.array(codes.astype(np.int64), pa.int64(), mask=codes < 0))


def duplicate_positions(files: list[Path]) -> np.ndarray:
    """Sorted input positions (over `files` in order) of replies whose generation id occurred at
    an earlier position: the same reply stored twice (e.g. overlapping shards after a resume).
    Reads the id column only, and holds it in Arrow, never a Python set of every id."""
    parts = [pq.read_table(f, columns=["generation_id"])["generation_id"] for f in files]
    ids = pa.chunked_array([c for p in parts for c in p.chunks], pa.string())
    del parts
    n = len(ids)
    if n < 2:
        return np.zeros(0, np.int64)
    order = pc.sort_indices(ids).to_numpy()  # stable, nulls last: a first occurrence comes first
    s = pc.take(ids, order)
    del ids
    a, b = s.slice(1), s.slice(0, n - 1)
    # equal ids, or two nulls (pc.equal gives null there): both are one id seen again
    same = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))
    dup = same.to_numpy(zero_copy_only=False)
    return np.sort(order[1:][dup])


@dataclass
class Merged:
    rows_in: int = 0
    kept: int = 0
    quarantined: int = 0
    selected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    verify: Counter[str] = field(default_factory=Counter)
    shapes: Counter[str] = field(default_factory=Counter)
    agree: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (source, teacher, consistency verdict)


def read_outputs(scratch: Path, units: Iterable[int], batch_rows: int) -> Iterator[pa.Table]:
    """The task outputs of `units` (all of them, in order), as OUTPUT_SCHEMA tables; a missing one
    is an error."""
    for i in units:
        path = output_path(scratch, i)
        if not path.is_file():
            raise RuntimeError(f"{path}: the responses task for unit {i} left no output; re-run the stage")
        for b in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            yield pa.Table.from_batches([b])


def _counts(col: pa.Array | pa.ChunkedArray) -> list[tuple[Any, int]]:
    """(value, rows) in order of first appearance, nulls as None (what a Counter of the values gives)."""
    vc = pc.value_counts(col)
    return list(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))


def _group_counts(t: pa.Table, keys: list[str]) -> list[dict[str, Any]]:
    """Rows per distinct combination of `keys`, in order of first appearance."""
    return t.group_by(keys, use_threads=False).aggregate([([], "count_all")]).to_pylist()


def _consistency_keys(kept: pa.Table) -> pa.Table:
    """The kept reasoning replies' (source, model, consistency_json): the model that wrote each
    reply as its published rows name it (the served / imported model, else the teacher's), not the
    teacher entry's model — an import can hold another model's replies (the sample's Marco-o1 CoT
    under its DeepSeek-R1 teacher). Control replies have no thinking to check and are left out."""
    t = kept.filter(pc.equal(kept["teacher_role"], "reasoning"))
    served = t["served_model"]
    named = pc.not_equal(pc.fill_null(served, ""), "")  # set and not empty, as `served_model or teacher_model`
    return pa.table({"source": t["source"], "model": pc.if_else(named, served, t["teacher_model"]),
                     "consistency_json": t["consistency_json"]})


def merge(batches: Iterator[pa.Table], work: WorkDir, ledger: Ledger, step: str, shard_rows: int, out: Path,
          choice: tuple[list[str], list[str]], dups: np.ndarray, progress: Progress | None = None,
          n_in: int = 0) -> Merged:  # fmt: skip
    """Write `parsed` and `quarantine` and record every row in `ledger` (entered by the caller).
    `batches`: OUTPUT_SCHEMA tables (builder/responses/tasks.py) in input order; `choice`:
    (generate.precedence, teacher names); `dups`: duplicate_positions of the same input.
    Column-wise per batch: what stays in memory is counters and the ledger's Arrow (or spilled)
    rows, never a Python object per row."""
    staging = ShardWriter(out / ".parsed-unselected", PARSED_FEATURES, shard_rows)
    quarantine = work.writer(tables.QUARANTINE, shard_rows)
    m = Merged()
    codes_at = OUTPUT_SCHEMA.get_field_index("reject_codes")
    codes_field = OUTPUT_SCHEMA.field(codes_at)
    for t in batches:
        lo, hi = np.searchsorted(dups, [m.rows_in, m.rows_in + t.num_rows])
        if hi > lo:  # the same reply stored twice: every copy after the first is quarantined
            codes = t.column(codes_at).to_pylist()
            for i in dups[lo:hi] - m.rows_in:
                codes[i] = ["duplicate_generation", *(codes[i] or [])]
            t = t.set_column(codes_at, codes_field, pa.array(codes, codes_field.type))
        codes = t.column(codes_at)
        keep = pc.fill_null(pc.equal(pc.list_value_length(codes), 0), True)
        for shape, n in _counts(t["shape"]):
            m.shapes[shape] += n
        fate = pa.table({
            "source": t["source"], "source_row_id": t["generation_id"], "prompt_id": t["prompt_id"],
            "status": pc.if_else(keep, KEPT, QUARANTINED),
            "reason": pc.fill_null(pc.binary_join(pc.list_slice(codes, 0, 1), ""), ""),
            "detail": pc.fill_null(pc.binary_join(codes, ","), ""),
        })  # fmt: skip
        ledger.record_arrow(step, fate)
        for reason, n in _counts(fate["reason"].filter(pc.invert(keep))):
            m.reasons[reason] += n
        kept = t.filter(keep)
        for g in _group_counts(kept, ["teacher_role", "verify_method", "verify_status"]):
            m.verify[f"{g['teacher_role']}:{g['verify_method']}:{g['verify_status']}"] += g["count_all"]
        for g in _group_counts(_consistency_keys(kept), ["source", "model", "consistency_json"]):
            m.agree[(g["source"], g["model"], verdict_of(g["consistency_json"]))] += g["count_all"]
        staging.write_table(kept.drop_columns(["source"]))
        quarantine.write_table(t.filter(pc.invert(keep)).drop_columns(["source"]))
        m.rows_in += t.num_rows
        report(progress, "replies parsed, validated, verified", m.rows_in, n_in)
    staged = staging.close()
    quarantine.close()

    # Second pass: `selected` and `selected_by` from the kept rows' narrow rank columns.
    precedence, teachers = choice
    ranked = [rank_table(pq.read_table(f, columns=list(RANK_COLS)), precedence, teachers) for f in staged]
    why = select(pa.concat_tables(ranked) if ranked else rank_table(_empty_ranks(), precedence, teachers))
    del ranked
    parsed = work.writer(tables.PARSED, shard_rows)
    at = 0
    for f in counted(staged, progress, "selecting one reply per prompt and role (shards)", len(staged)):
        t = pq.read_table(f)
        by = selected_by(why[at : at + t.num_rows], precedence)
        at += t.num_rows
        t = t.set_column(t.schema.get_field_index("selected"), "selected", pc.is_valid(by))
        parsed.write_table(t.set_column(t.schema.get_field_index("selected_by"), "selected_by", by))
        f.unlink()
    parsed.close()
    shutil.rmtree(staging.out_dir, ignore_errors=True)
    m.kept, m.quarantined, m.selected = staging.rows, quarantine.rows, int((why >= 0).sum())
    if m.rows_in != n_in or m.kept + m.quarantined != n_in:  # nothing lost between tasks and merge
        raise RuntimeError(f"responses accounting broken: {n_in:,} replies in, {m.rows_in:,} merged, "
                           f"{m.kept:,} kept + {m.quarantined:,} quarantined")  # fmt: skip
    return m


def _empty_ranks() -> pa.Table:
    return pa.table({c: pa.array([], PARSED_FEATURES.arrow_schema.field(c).type) for c in RANK_COLS})
