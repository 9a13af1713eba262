"""The `pairs` config: preference pairs in TRL's format (prompt / chosen / rejected as message
lists, builder.rows.PAIR_FEATURES), published when the variants run built them — the recipe lists
`pairs` in `variants.build`; no default build does.

Its schema is not a chat config's, so it is staged apart from them: every shard cast to the
declared schema (a shard that cannot take it refuses the release in one line), written under its
Hub name and hashed into the manifest, and its content hash (prompt / chosen / rejected, see
content.py) taken on the way, as the chat configs' are, for the manifest and the changelog. The chat configs' gates do not apply (there is no single
assistant turn); the secret scan of the whole folder does. The card gets its own section: rows,
rejection reasons and columns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from builder import tables
from builder.errors import UserError
from builder.release import columns
from builder.release.content import Taken, batch_hashes
from builder.release.folder import name_shards
from builder.release.manifest import sha256_file
from builder.rows import PAIR_FEATURES
from builder.tables import VariantsSummary
from builder.workdir import WorkDir

NAME = tables.PAIRS.name


@dataclass
class StagedPairs:
    config: dict[str, int]  # num_examples, num_bytes, download_size: as the chat configs'
    reasons: Counter[str] = field(default_factory=Counter)  # rejection_reason → rows
    taken: Taken | None = None  # its content hash, taken while staging


def stage_pairs(work: WorkDir, tmp: Path, known: dict[str, str], keep_hashes: bool = False) -> StagedPairs | None:
    """Stage `pairs` into tmp/data/pairs/ when the last variants run built it with rows; each
    file's sha256 goes into `known` (relative to tmp), its content into `taken` (with its per-row
    hashes when `keep_hashes`: a previous release to diff against). None: not built, or no
    prompt had a pair."""
    summary = work.read_summary(VariantsSummary)
    files = work.shards(tables.PAIRS)
    if summary is None or NAME not in summary.variants or not files:
        return None
    if not sum(pq.ParquetFile(f).metadata.num_rows for f in files):
        return None
    schema = PAIR_FEATURES.arrow_schema
    out = tmp / "data" / NAME
    out.mkdir(parents=True, exist_ok=True)
    staged, hashes, rows = [], [], []
    got = StagedPairs({"num_examples": 0, "num_bytes": 0, "download_size": 0})
    for k, path in enumerate(files):
        try:  # missing or mistyped columns: the work dir is not what this toolkit wrote
            t = pq.read_table(path).select(schema.names).cast(schema)
        except (ValueError, KeyError, pa.ArrowInvalid) as e:
            raise UserError(f"{path}: not the pairs schema ({str(e)[:160]}); re-run `answer-distill variants`") from None
        dest = out / f".part-{k:05d}.parquet"
        pq.write_table(t, dest, compression="zstd")
        staged.append(dest)
        hashes.append(sha256_file(dest))
        got.config["num_examples"] += t.num_rows
        got.config["num_bytes"] += t.nbytes
        got.reasons.update(r or "" for r in t.column("rejection_reason").to_pylist())
        rows.append(batch_hashes(t))
    got.taken = Taken.of(rows, keep_hashes)
    for final, sha in zip(name_shards(out, staged), hashes):
        known[final.relative_to(tmp).as_posix()] = sha
        got.config["download_size"] += final.stat().st_size
    return got


def card_section(staged: StagedPairs | None) -> dict[str, Any] | None:
    """The card's `pairs` section (None: no such config in this release)."""
    if staged is None:
        return None
    return {"name": NAME, "rows": staged.config["num_examples"], "reasons": dict(staged.reasons.most_common()),
            "columns": columns.table(PAIR_FEATURES)}  # fmt: skip
