"""Curate's process-tree memory at scale: peak summed RSS, per process, and the driver's cost a row.

Generates the rehearsal's inputs (benchmarks/rehearsal_data.py, real prompts from shared/corpus)
for `--rows` prompts (or reuses `--root`'s), runs `answer-distill curate` on them in a subprocess
and samples every process of its tree. The tree peak is what a memory budget is checked
against (benchmarks/memtree.py); `driver_kb_per_row` is the driver's peak RSS over the RSS of a
process that imported the same modules, per input row. `--compare DIR` checks the outputs row for row
against another work dir's curate outputs (benchmarks/curate_same.py).

    python benchmarks/curate_memory.py --rows 200000 --root /tmp/cm [--compare /tmp/other/work]
Prints a JSON last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _role(p: psutil.Process, driver: int) -> str:
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return "?"
    if p.pid == driver:
        return "driver"
    if "forkserver" in cmd:
        return "forkserver"
    if "resource_tracker" in cmd:
        return "resource_tracker"
    try:
        forked = p.ppid() == driver and p.cmdline() == psutil.Process(driver).cmdline()
    except psutil.Error:
        forked = False
    return "forked-from-driver" if forked else "worker"


def run(recipe: Path, work: Path, interval_s: float = 0.25) -> dict[str, Any]:
    shutil.rmtree(work, ignore_errors=True)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    with open(work.parent / "curate.err", "w") as err:
        p = subprocess.Popen([sys.executable, "-m", "builder.cli", "curate", str(recipe), "--work", str(work)],
                             cwd=repo, stderr=err, stdout=subprocess.DEVNULL, env=env)  # fmt: skip
        me = psutil.Process(p.pid)
        peak: tuple[float, list[tuple[int, str, float]]] = (0.0, [])
        driver_peak = 0.0
        driver_start = None
        while p.poll() is None:
            rows = []
            try:
                procs = [me, *me.children(recursive=True)]
            except psutil.Error:
                procs = []
            for q in procs:
                try:
                    rows.append((q.pid, _role(q, p.pid), q.memory_info().rss / 2**20))
                except psutil.Error:
                    continue
            total = sum(r[2] for r in rows)
            mine = next((r[2] for r in rows if r[0] == p.pid), 0.0)
            if driver_start is None and mine:
                driver_start = mine
            driver_peak = max(driver_peak, mine)
            if total > peak[0]:
                peak = (total, rows)
            time.sleep(interval_s)
    return {"rc": p.returncode, "tree_peak_mb": round(peak[0]), "driver_peak_mb": round(driver_peak),
            "driver_start_mb": round(driver_start or 0),
            "at_peak": [{"pid": pid, "role": role, "mb": round(mb)} for pid, role, mb in peak[1]]}  # fmt: skip


def _import_mb() -> int:
    """RSS of a process that has imported what the curate driver imports (the per-row cost excludes it)."""
    code = "import psutil, builder.cli, builder.curate.stage; print(psutil.Process().memory_info().rss)"
    repo = Path(__file__).resolve().parents[1]
    got = subprocess.run([sys.executable, "-c", code], cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)},
                         capture_output=True, text=True, check=True)  # fmt: skip
    return round(int(got.stdout.split()[-1]) / 2**20)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--root", type=Path, default=Path("/tmp/curate-memory"))
    ap.add_argument("--compare", type=Path, help="another work dir whose curate outputs must be the same")
    args = ap.parse_args(argv)
    recipe_path = args.root / "recipe.yaml"
    if not recipe_path.exists():
        from rehearsal import recipe
        from rehearsal_data import write_inputs

        recipe(write_inputs(args.rows, args.root / "inputs", 0), args.root)
    out = run(recipe_path, args.root / "work")
    rows = json.loads((args.root / "work" / "curate" / "summary.json").read_text())["rows_in"] if out["rc"] == 0 else 0
    out["rows_in"] = rows
    if rows:
        out["driver_import_mb"] = _import_mb()
        out["driver_kb_per_row"] = round((out["driver_peak_mb"] - out["driver_import_mb"]) * 1024 / rows, 2)
        out["tree_kb_per_row"] = round(out["tree_peak_mb"] * 1024 / rows, 2)
    if args.compare is not None and out["rc"] == 0:
        from curate_same import compare

        out["same_outputs_as"] = {str(args.compare): compare(args.root / "work", args.compare)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
