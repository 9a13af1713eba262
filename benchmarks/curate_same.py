"""Two curate runs' outputs compared: prompts row for row, ledger, decontamination report, summary counts.

    python benchmarks/curate_same.py WORK_A WORK_B    (prints a JSON last line; exit 1 when they differ)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

_VOLATILE = {"seconds", "step_seconds"}  # timings differ run to run


def _table(path: Path) -> Any:
    files = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(f) for f in files])


def compare(a: Path, b: Path) -> dict[str, Any]:
    """{"prompts": bool, "ledger": bool, "decontamination": bool, "summary": bool, "rows": n, "same": bool}."""
    out: dict[str, Any] = {}
    for name, rel in (("prompts", "curate/prompts"), ("ledger", "curate/ledger.parquet"),
                      ("decontamination", "curate/decontamination.parquet")):  # fmt: skip
        ta, tb = _table(a / rel), _table(b / rel)
        out[name] = ta.schema == tb.schema and ta.num_rows == tb.num_rows and ta.equals(tb)
        out[f"{name}_rows"] = ta.num_rows
    sa, sb = (json.loads((w / "curate" / "summary.json").read_text()) for w in (a, b))
    out["summary"] = {k: v for k, v in sa.items() if k not in _VOLATILE} == {k: v for k, v in sb.items() if k not in _VOLATILE}
    out["same"] = all(out[k] for k in ("prompts", "ledger", "decontamination", "summary"))
    return out


if __name__ == "__main__":
    res = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps(res))
    sys.exit(0 if res["same"] else 1)
