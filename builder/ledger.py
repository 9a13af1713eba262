"""Every input row's fate, and the rows-in = rows-kept + rows-dropped check.

A stage opens one ``Ledger``, records each step's outcome per row (kept, or dropped with a
machine-readable reason), and ``close()`` writes ``<work>/<stage>/ledger.parquet`` after
checking that for every step the rows that entered equal the rows kept plus the rows dropped.
A step that loses a row fails the build loudly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from builder.rows import LEDGER_FEATURES

KEPT = "kept"
DROPPED = "dropped"
QUARANTINED = "quarantined"


class LedgerMismatch(RuntimeError):
    """A step's accounting does not add up: a bug, never a user error."""


@dataclass
class StepCount:
    rows_in: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Ledger:
    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._cols: dict[str, list[str]] = {k: [] for k in LEDGER_FEATURES}
        self.steps: dict[str, StepCount] = {}

    def enter(self, step: str, n: int) -> None:
        """Declare that n rows entered a step; close() checks they all got a fate."""
        self.steps.setdefault(step, StepCount()).rows_in += n

    def record(
        self,
        step: str,
        status: str,
        *,
        source: str = "",
        source_row_id: str = "",
        prompt_id: str = "",
        reason: str = "",
        detail: str = "",
        location: str = "",
    ) -> None:
        count = self.steps.setdefault(step, StepCount())
        if status == KEPT:
            count.kept += 1
        else:
            count.dropped[reason or status] += 1
        for key, value in (
            ("stage", self.stage),
            ("step", step),
            ("source", source),
            ("source_row_id", source_row_id),
            ("prompt_id", prompt_id),
            ("status", status),
            ("reason", reason),
            ("detail", detail),
            ("location", location),
        ):
            self._cols[key].append(value)

    def kept_many(self, step: str, source: list[str], source_row_id: list[str], prompt_id: list[str]) -> None:
        """Bulk form of record(KEPT) for the common case, without a Python call per row."""
        n = len(prompt_id)
        self.steps.setdefault(step, StepCount()).kept += n
        self._cols["stage"].extend([self.stage] * n)
        self._cols["step"].extend([step] * n)
        self._cols["source"].extend(source)
        self._cols["source_row_id"].extend(source_row_id)
        self._cols["prompt_id"].extend(prompt_id)
        self._cols["status"].extend([KEPT] * n)
        for key in ("reason", "detail", "location"):
            self._cols[key].extend([""] * n)

    def check(self) -> None:
        for step, c in self.steps.items():
            if c.rows_in != c.kept + c.dropped_total:
                raise LedgerMismatch(
                    f"ledger {self.stage}/{step}: {c.rows_in} rows in but {c.kept} kept + "
                    f"{c.dropped_total} dropped; a row was lost or double-counted"
                )

    def table(self) -> pa.Table:
        return pa.table(self._cols, schema=LEDGER_FEATURES.arrow_schema)

    def close(self, out_dir: Path) -> Path:
        self.check()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "ledger.parquet"
        pq.write_table(self.table(), path)
        return path

    def summary(self) -> list[tuple[str, int, int, dict[str, int]]]:
        return [(s, c.rows_in, c.kept, dict(c.dropped)) for s, c in self.steps.items()]


def verify_ledger_file(path: Path) -> dict[str, tuple[int, int]]:
    """Re-check a written ledger: per step, (kept, dropped). Used by `build` between stages."""
    t = pq.read_table(path, columns=["step", "status"]).to_pydict()
    per: dict[str, list[int]] = {}
    for step, status in zip(t["step"], t["status"]):
        k = per.setdefault(step, [0, 0])
        k[0 if status == KEPT else 1] += 1
    return {s: (v[0], v[1]) for s, v in per.items()}
