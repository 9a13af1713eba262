"""The variants stage's partitions: prompts and their replies, split by a hash of prompt_id.

A bucket holds about `bucket_rows` prompts with every reply of theirs, so everything decided per
prompt (the selected replies, pass rates over its n samples, its preference pair) is decided in
one bucket, by whichever task owns it. How many buckets there are depends on the prompt count and
`bucket_rows` only, never on the number of tasks, so any number of tasks writes the same rows.

Layout (one pass over the inputs, in the driver): `<folder>/{prompts,replies,samples}/bucket-<i>.parquet`,
then `<folder>/_PARTITIONED`, written last: a folder without it is partial and written again.

    prompts   every curated column, plus `_order` (the row's place in curate order)
    replies   the selected rows of `parsed` (REPLY_COLS)
    samples   every reasoning row of `parsed` and `quarantine`, kept or not (pass rates, pairs)

With one bucket nothing is written: the bucket is read straight from the inputs.
"""

from __future__ import annotations

import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.cpus import usable_cores
from builder.rows import PARSED_FEATURES, PROMPT_FEATURES
from builder.variants.pairs import SAMPLE_COLS
from builder.workdir import WorkDir

# The reply columns a variant row needs (everything but the bookkeeping ones).
REPLY_COLS = [
    "generation_id", "prompt_id", "teacher_role", "teacher_model", "served_model", "endpoint_kind", "prompt_template_id",
    "prompt_template_hash", "think", "answer", "shape", "info_codes", "verify_status", "verify_method",
    "verify_reason", "repetition_score", "think_language", "answer_language", "teacher_think_tokens",
    "teacher_answer_tokens", "student_answer_tokens",
]  # fmt: skip
RATE_COLS = ["prompt_id", "teacher_role", "verify_status"]  # pass rates only: no texts
DONE = "_PARTITIONED"
_ORDER = "_order"


class Bucket(NamedTuple):
    prompts: list[dict[str, Any]]  # curate order
    replies: list[dict[str, Any]]  # the selected ones
    samples: pa.Table  # reasoning samples, kept and quarantined (SAMPLE_COLS or RATE_COLS)


def count(work: WorkDir, bucket_rows: int) -> int:
    """Buckets for this many prompts: a function of the inputs and `bucket_rows` alone."""
    n_prompts = sum(pq.ParquetFile(f).metadata.num_rows for f in work.require(tables.PROMPTS))
    return max(1, -(-n_prompts // bucket_rows))


def bucket_of(prompt_id: str | None, n: int) -> int:
    return zlib.crc32((prompt_id or "").encode()) % n


def _schema(cols: list[str]) -> pa.Schema:
    return pa.schema([PARSED_FEATURES.arrow_schema.field(c) for c in cols])


def _sample_cols(pairs: bool) -> list[str]:
    return SAMPLE_COLS if pairs else RATE_COLS


def _split(files: list[Path], columns: list[str] | None, schema: pa.Schema, n: int, out: Path,
           keep: Any = None, order: bool = False) -> None:  # fmt: skip
    """Hash-partition shards by prompt_id into out/bucket-<i>.parquet, in input order; `keep`
    filters each batch (an Arrow mask of it), `order` tags each row with its input position."""
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[int, pq.ParquetWriter] = {}
    seen = 0
    try:
        for f in files:
            for b in pq.ParquetFile(f).iter_batches(batch_size=8192, columns=columns):
                t = pa.Table.from_batches([b]).cast(schema)
                if order:
                    t = t.append_column(_ORDER, pa.array(range(seen, seen + t.num_rows), pa.int64()))
                seen += b.num_rows
                if keep is not None:
                    t = t.filter(keep(t))
                ids = pa.array([bucket_of(p, n) for p in t.column("prompt_id").to_pylist()], pa.int32())
                for i in sorted(set(ids.to_pylist())):
                    part = t.filter(pc.equal(ids, i))
                    if i not in writers:
                        writers[i] = pq.ParquetWriter(out / f"bucket-{i:05d}.parquet", part.schema)
                    writers[i].write_table(part)
    finally:
        for w in writers.values():
            w.close()


def _selected(t: pa.Table) -> pa.Array:
    return pc.equal(t.column("selected"), True)


def _reasoning(t: pa.Table) -> pa.Array:
    return pc.equal(t.column("teacher_role"), "reasoning")


def partition(work: WorkDir, n: int, folder: Path, pairs: bool) -> None:
    """Write the buckets (a no-op when a whole partition is there already)."""
    if (folder / DONE).is_file():
        return
    shutil.rmtree(folder, ignore_errors=True)
    reply_cols, cols = [*REPLY_COLS, "selected"], _sample_cols(pairs)
    splits = [
        (work.require(tables.PROMPTS), None, PROMPT_FEATURES.arrow_schema, n, folder / "prompts", None, True),
        (work.require(tables.PARSED), reply_cols, _schema(reply_cols), n, folder / "replies", _selected),
        ([*work.require(tables.PARSED), *work.shards(tables.QUARANTINE)], cols, _schema(cols), n, folder / "samples",
         _reasoning),
    ]  # fmt: skip
    # The three tables side by side: Arrow decodes, filters, encodes and compresses without the
    # GIL, and this runs in the driver before any task can start.
    with ThreadPoolExecutor(min(len(splits), usable_cores())) as pool:
        for done in [pool.submit(_split, *args) for args in splits]:
            done.result()
    (folder / DONE).touch()


def _read(path: Path, schema: pa.Schema) -> pa.Table:
    return pq.read_table(path) if path.is_file() else schema.empty_table()


def load(work: WorkDir, n: int, folder: Path | None, i: int, pairs: bool) -> Bucket:
    """Bucket i of n (from `folder`, or straight from the inputs when n == 1)."""
    cols = _sample_cols(pairs)
    if n == 1:
        prompts = [r for f in work.require(tables.PROMPTS) for r in pq.read_table(f).to_pylist()]
        replies: list[dict[str, Any]] = []
        for f in work.require(tables.PARSED):
            t = pq.read_table(f, columns=[*REPLY_COLS, "selected"])
            replies += t.filter(_selected(t)).drop_columns(["selected"]).to_pylist()
        parts = [pq.read_table(f, columns=cols) for f in [*work.require(tables.PARSED), *work.shards(tables.QUARANTINE)]]
        samples = pa.concat_tables([t.filter(_reasoning(t)) for t in parts]) if parts else _schema(cols).empty_table()
        return Bucket(prompts, replies, samples)
    assert folder is not None and (folder / DONE).is_file(), f"{folder}: not partitioned"
    name = f"bucket-{i:05d}.parquet"
    p = _read(folder / "prompts" / name, PROMPT_FEATURES.arrow_schema.append(pa.field(_ORDER, pa.int64())))
    p = p.sort_by(_ORDER).drop_columns([_ORDER])  # curate order (the split kept it; sorting is cheap insurance)
    replies = _read(folder / "replies" / name, _schema([*REPLY_COLS, "selected"])).drop_columns(["selected"])
    return Bucket(p.to_pylist(), replies.to_pylist(), _read(folder / "samples" / name, _schema(cols)))
