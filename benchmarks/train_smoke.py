"""Runtime of the training README's CPU smoke run (train_reference/README.md, first block).

    python benchmarks/train_smoke.py [--release work/sample/release] [--out DIR]

Runs the README's commands as a user would (each a child process): the sample build (skipped
with `--release`, which reuses a built release), `tiny_model.py`, then `sft.py` on
recipes/train/cpu_smoke.yaml. Prints each command's wall and CPU seconds (children's user +
system time: less sensitive to other jobs on the machine than wall time), the machine's load
average at the start and end, and the whole tree's peak memory; the last line is one JSON object.
No baseline: this measures a documented command, it claims no speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memtree import TreePeak

ROOT = Path(__file__).resolve().parents[1]


def _run(name: str, cmd: list[str], env: dict[str, str], out: dict[str, dict[str, float]]) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{name} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out[name] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
    print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--release", help="a built sample release to reuse (skips the build)")
    ap.add_argument("--out", help="scratch folder (default: a temporary one, removed after)")
    args = ap.parse_args()
    scratch = Path(args.out or tempfile.mkdtemp(prefix="train-smoke-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    py = sys.executable
    times: dict[str, dict[str, float]] = {}
    load0 = os.getloadavg()[0]
    with TreePeak() as peak:
        release = Path(args.release) if args.release else scratch / "sample" / "release"
        if not args.release:
            _run("build", [py, "-m", "builder.cli", "build", "recipes/sample.yaml", "--work", str(scratch / "sample"),
                           "--quiet"], env, times)  # fmt: skip
        _run("tiny_model", [py, "train_reference/tiny_model.py", "--release", str(release), "--out", str(scratch / "tiny")],
             env, times)  # fmt: skip
        paths = [f"model.name_or_path={scratch / 'tiny' / 'model'}", f"dataset.path={scratch / 'tiny' / 'release'}",
                 f"training.output_dir={scratch / 'tiny' / 'out'}"]  # fmt: skip
        _run("sft", [py, "train_reference/sft.py", "--config", "recipes/train/cpu_smoke.yaml",
                     *[a for p in paths for a in ("--set", p)]], env, times)  # fmt: skip
    if not args.out:
        shutil.rmtree(scratch, ignore_errors=True)
    total = {k: round(sum(t[k] for t in times.values()), 1) for k in ("wall_s", "cpu_s")}
    print(json.dumps({"steps": times, "total": total, "load_avg_start": round(load0, 1),
                      "load_avg_end": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
                      "peak_tree_rss_mb": round(peak.mb)}))  # fmt: skip


if __name__ == "__main__":
    main()
