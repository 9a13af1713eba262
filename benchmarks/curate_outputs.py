"""Check that a change to curate leaves its outputs as they were: run the stage on one fixed input
and compare its tables (prompts, decontamination evidence, ledger) with another run's, row by row.

The corpus is benchmarks/curate.py's (real prompts, planted duplicates, leaks, clean look-alikes),
written once under DIR and reused, so two runs (e.g. the code before and after a change, each
with its own PYTHONPATH) read the same bytes at the same path (the ledger's locations name it).

Usage:
  python benchmarks/curate_outputs.py run DIR LABEL [--n 100000]   # → DIR/LABEL/ (tables + cpu.json)
  python benchmarks/curate_outputs.py compare DIR/A DIR/B          # exit 1 on any difference
The last line printed is one JSON object (per-step CPU seconds of the run, or the comparison).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TABLES = ("prompts", "decontamination", "ledger")


def _tables(work: Path) -> dict[str, pa.Table]:
    cur = work / "curate"
    shards = sorted((cur / "prompts").glob("*.parquet"))
    return {
        "prompts": pa.concat_tables([pq.read_table(f) for f in shards]),
        "decontamination": pq.read_table(cur / "decontamination.parquet"),
        "ledger": pq.read_table(cur / "ledger.parquet"),
    }


def run(folder: Path, label: str, n: int, seed: int) -> dict:
    from curate import build, recipe_for
    from memtree import TreePeak

    from builder.curate.stage import run_curate
    from builder.recipe import load_recipe
    from builder.workdir import WorkDir

    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "prompts.jsonl"
    if not src.is_file():
        build(n, seed, src)
    recipe = load_recipe(recipe_for(src, folder))
    work = folder / f"work-{label}"
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    with TreePeak() as peak:
        marks: list[tuple[str, float]] = []

        def mark(step: str, done: int | None = None, total: int | None = None) -> None:
            if done is None:
                marks.append((step, peak.cpu_s()))

        res = run_curate(recipe, WorkDir(work), mark)
        marks.append(("", peak.cpu_s()))
    wall = time.perf_counter() - t0
    out = folder / label
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for name, table in _tables(work).items():
        pq.write_table(table, out / f"{name}.parquet")
    cpu = {a: round(tb - ta, 2) for (a, ta), (_, tb) in zip(marks, marks[1:])}
    summary = {"label": label, "rows_in": res.rows_in, "rows_out": res.rows_out, "wall_s": round(wall, 1),
               "cpu_s": round(marks[-1][1] - marks[0][1], 1), "step_cpu_s": cpu, "step_s": res.step_seconds}  # fmt: skip
    (out / "cpu.json").write_text(json.dumps(summary))
    return summary


def compare(a: Path, b: Path) -> dict:
    out: dict = {"same": True}
    for name in TABLES:
        ta, tb = pq.read_table(a / f"{name}.parquet"), pq.read_table(b / f"{name}.parquet")
        same = ta.schema.equals(tb.schema) and ta.num_rows == tb.num_rows and ta.equals(tb)
        entry: dict = {"rows": [ta.num_rows, tb.num_rows], "same": same}
        if not same and ta.schema.equals(tb.schema):
            x, y = ta.to_pylist(), tb.to_pylist()
            first = next((i for i, (r, s) in enumerate(zip(x, y)) if r != s), min(len(x), len(y)))
            entry["first_difference"] = first
            entry["a"] = x[first] if first < len(x) else None
            entry["b"] = y[first] if first < len(y) else None
        out[name] = entry
        out["same"] &= same
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("dir", type=Path)
    r.add_argument("label")
    r.add_argument("--n", type=int, default=100_000)
    r.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "run":
        print(json.dumps(run(args.dir, args.label, args.n, args.seed)))
        return 0
    res = compare(args.a, args.b)
    print(json.dumps(res, default=str))
    return 0 if res["same"] else 1


if __name__ == "__main__":
    sys.exit(main())
