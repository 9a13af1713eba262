"""The curated prompts' columns the responses stage needs, looked up by prompt id: each batch (and
each worker) gets only its own prompts, never the whole index."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from builder import tables
from builder.workdir import WorkDir

_PROMPT_COLS = ["prompt_id", "category", "reference_answer", "tests_json", "verifier", "source"]


def _as_bytes(ids: list[str | None]) -> np.ndarray:
    return np.array([(i or "").encode() for i in ids], dtype=bytes) if ids else np.zeros(0, "S1")


class PromptIndex:
    """The curated prompts' columns the stage needs, as Arrow (compact), looked up by id."""

    def __init__(self, work: WorkDir) -> None:
        parts = []
        for f in work.require(tables.PROMPTS):
            pf = pq.ParquetFile(f)
            for b in pf.iter_batches(batch_size=8192, columns=[*_PROMPT_COLS, "messages"]):
                # Only the last user turn matters (language, translation request); keep that.
                texts = [
                    next((m["content"] or "" for m in reversed(msgs or []) if m["role"] == "user"), "")
                    for msgs in b.column("messages").to_pylist()
                ]
                t = pa.Table.from_batches([b]).drop_columns(["messages"])
                parts.append(t.append_column("prompt_text", pa.array(texts, pa.string())))
        self.table = pa.concat_tables(parts) if parts else pa.table({})
        # Looked up by a sorted array of the ids (fixed-width bytes), not a dict of a million strs.
        ids = _as_bytes(self.table.column("prompt_id").to_pylist() if parts else [])
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]

    def rows_of(self, prompt_ids: list[str]) -> np.ndarray:
        """Row numbers of these ids in `table`, sorted, each once (unknown ids left out)."""
        if not len(self._sorted) or not prompt_ids:
            return np.zeros(0, np.int64)
        want = np.unique(_as_bytes(prompt_ids))
        at = np.minimum(np.searchsorted(self._sorted, want), len(self._sorted) - 1)
        found = self._sorted[at] == want
        return np.unique(self._order[at[found]])

    def subset(self, prompt_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Rows for these ids only: what one batch (and one worker) needs."""
        wanted = self.rows_of(prompt_ids)
        if not len(wanted):
            return {}
        return {r["prompt_id"]: r for r in self.table.take(pa.array(wanted, pa.int64())).to_pylist()}
