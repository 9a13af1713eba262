"""The responses merge alone (the serial part after the tasks), this checkout against another
checkout's, in one process on the same batches: CPU seconds each, and their ratio.

    git archive f1d9839 | tar -x -C /tmp/before     # the code before issue 16's merge
    python benchmarks/responses_merge.py WORK --before /tmp/before [--reps 3]

WORK holds a finished responses stage; its `parsed` and `quarantine` rows (with a made-up
`source`, sorted by generation id so kept and quarantined rows interleave) are fed to each
checkout's `merge` in batches of 4,096, the ledger written as the stage writes it. The texts'
parquet writes are in both figures. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
CHOICE = (["verified_pass", "teacher_order"], ["r1", "control"])


def batches(work: Path, rows: int) -> list[pa.Table]:
    parts = [pq.read_table(f) for name in ("parsed", "quarantine")
             for f in sorted((work / "responses" / name).glob("*.parquet"))]  # fmt: skip
    t = pa.concat_tables(parts)
    t = t.append_column("source", pa.array([f"src{i % 7}" for i in range(t.num_rows)], pa.string()))
    t = t.sort_by("generation_id")
    return [t.slice(i, rows) for i in range(0, t.num_rows, rows)]


def load(repo: Path) -> dict[str, ModuleType]:
    """`builder`'s merge, ledger and workdir modules from `repo` (each checkout imported afresh)."""
    for m in [k for k in sys.modules if k == "builder" or k.startswith("builder.")]:
        del sys.modules[m]
    sys.path.insert(0, str(repo))
    try:
        return {k: importlib.import_module(f"builder.{k}") for k in ("responses.merge", "ledger", "workdir")}
    finally:
        sys.path.remove(str(repo))


def run(repo: Path, bs: list[pa.Table], out: Path) -> float:
    mods = load(repo)
    merge, ledger_mod, workdir = mods["responses.merge"], mods["ledger"], mods["workdir"]
    n_in = sum(b.num_rows for b in bs)
    shutil.rmtree(out, ignore_errors=True)
    work = workdir.WorkDir(out)
    stage = work.stage("responses")
    c0 = time.process_time()
    if hasattr(merge, "Selector"):  # the per-row merge
        led = ledger_mod.Ledger("responses")
        led.enter("s", n_in)
        merge.merge(iter(bs), work, led, "s", 50_000, stage, merge.Selector(*CHOICE), None, n_in)
    else:
        led = ledger_mod.Ledger("responses", spill=stage / ".ledger-spill.parquet")
        led.enter("s", n_in)
        merge.merge(iter(bs), work, led, "s", 50_000, stage, CHOICE, np.zeros(0, np.int64), None, n_in)
    led.close(stage)
    return time.process_time() - c0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("work", type=Path, help="a work dir with a finished responses stage")
    ap.add_argument("--before", type=Path, required=True, help="the other checkout (the baseline)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    bs = batches(args.work, 4096)
    res: dict[str, Any] = {"rows": sum(b.num_rows for b in bs), "before_cpu_s": [], "after_cpu_s": []}
    with tempfile.TemporaryDirectory(prefix="merge-bench-") as tmp:
        for _ in range(args.reps):  # interleaved: a busy spell on a shared machine hits both
            res["before_cpu_s"].append(round(run(args.before.resolve(), bs, Path(tmp) / "before"), 2))
            res["after_cpu_s"].append(round(run(ROOT, bs, Path(tmp) / "after"), 2))
    res["speedup"] = round(min(res["before_cpu_s"]) / min(res["after_cpu_s"]), 2)
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
