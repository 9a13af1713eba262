"""CPU seconds a fresh interpreter spends importing a stage process's modules, old code vs this
checkout (issue 16: the responses forkserver pays `builder.responses.worker_preload` once before its
tasks start, and every pool's forkserver pays it again).

"old" is the tree at --base (default: main), exported with `git archive` into a temporary folder;
"new" is this checkout. Each run is a new process with PYTHONPATH set to one tree, old and new
alternating, that imports <module> (its CPU: the process's own user + system time), then forks one
child, as the forkserver forks a worker, that runs --worker (default: building a first Arrow array
from Python values, which makes pyarrow import pandas where it is not loaded yet; its CPU: the
child's). The tokenizer and language-model disk caches are shared, so both sides read warm caches.

    python benchmarks/import_cost.py [--runs 7] [--base main] [--module builder.responses.worker_preload]

Last line: one JSON object: [min, median] CPU-s of the import and of the worker's first step, old
and new, and per run the import plus --workers workers' first steps (what a pool of that many pays
before its first batch); `import_ratio` / `with_workers_ratio`: old over new, medians; the heavy
modules the import loaded (`datasets` / `pandas`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("datasets", "pandas")


# Run in the fresh interpreter: the import's CPU, the forked worker's, the heavy modules loaded.
PROBE = """import os, sys, time
t = time.process_time()
import {module}
own = time.process_time() - t
heavy = [m for m in {heavy!r} if m in sys.modules]
pid = os.fork()
if pid == 0:
    exec({worker!r})
    os._exit(0)
_, status, usage = os.wait4(pid, 0)
assert status == 0
print(own, usage.ru_utime + usage.ru_stime, *heavy)
"""


def _run(root: Path, module: str, worker: str) -> tuple[float, float, list[str]]:
    code = PROBE.format(module=module, heavy=HEAVY, worker=worker)
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    own, child, *heavy = out.stdout.split()
    return float(own), float(child), heavy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--base", default="main")
    ap.add_argument("--module", default="builder.responses.worker_preload")
    ap.add_argument("--worker", default="import pyarrow as pa; pa.array(['x'])")
    ap.add_argument("--workers", type=int, default=2)  # the responses stage's default pool
    args = ap.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    heavy: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="import-cost-") as tmp:
        old_root = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_root)], input=archive, check=True)
        for _ in range(args.runs):
            for side, root in (("old", old_root), ("new", ROOT)):
                own, child, heavy[side] = _run(root, args.module, args.worker)
                runs[side].append((own, child))
    out: dict[str, object] = {"module": args.module, "worker": args.worker, "workers": args.workers,
                              "runs": args.runs, "base": args.base}  # fmt: skip
    for side, rs in runs.items():
        for key, values in (("import", [o for o, _ in rs]), ("worker", [c for _, c in rs]),
                            ("with_workers", [o + args.workers * c for o, c in rs])):  # fmt: skip
            out[f"{side}_{key}_cpu_s"] = [round(min(values), 3), round(statistics.median(values), 3)]
        out[f"{side}_heavy_modules"] = heavy[side]
    # old / new of the medians: the import alone, and the import plus the pool's first steps
    for key in ("import", "with_workers"):
        old, new = out[f"old_{key}_cpu_s"][1], out[f"new_{key}_cpu_s"][1]  # type: ignore[index]
        out[f"{key}_ratio"] = round(old / new, 3) if new else None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
