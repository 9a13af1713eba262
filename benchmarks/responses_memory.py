"""Where the responses stage's memory goes, per process kind, on a built work dir (issue 16).

    python benchmarks/responses_memory.py RECIPE WORK [--repo DIR]   # measure one run
    python benchmarks/responses_memory.py --compare WORK_A WORK_B     # same outputs, row for row?

Runs `answer-distill responses RECIPE -w WORK` as a user does (the code of `--repo`, default this
checkout, so the code before a change can be measured on the same inputs) and samples its process
tree every 0.1 s (children caught between fork and exec left out, as memtree does): the driver (the CLI process), the forkserver, the parse workers and the code
sandboxes; per kind the peak of the kind's summed RSS and the largest single process, the tree's
peak, and the tree's CPU seconds (each process's own user + system, sampled, as
benchmarks/memtree.py counts them). `--compare` hashes every row of `parsed`, `quarantine` and the
ledger (value by value, so shard and row-group boundaries do not matter) and the summary's
counters. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from memtree import unexeced  # noqa: E402

KINDS = ("driver", "forkserver", "workers", "sandboxes")


def _kind(p: psutil.Process, driver: int) -> str:
    if p.pid == driver:
        return "driver"
    cmd = " ".join(p.cmdline())
    if " -I -S -c" in cmd:
        return "sandboxes"
    if "forkserver" in cmd and p.ppid() == driver:
        return "forkserver"
    return "workers"


class Sampler(threading.Thread):
    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.peak = dict.fromkeys(KINDS, 0.0)  # the kind's summed RSS, peak over samples
        self.single = dict.fromkeys(KINDS, 0.0)  # the largest one process of the kind
        self.tree = 0.0
        self.cpu: dict[tuple[int, float], float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            now = dict.fromkeys(KINDS, 0.0)
            seen: list[tuple[psutil.Process, str, float, tuple[int, float]]] = []
            rss: dict[int, int] = {}
            cmd: dict[int, list[str]] = {}
            for p in procs:
                try:
                    with p.oneshot():
                        rss[p.pid], cmd[p.pid] = p.memory_info().rss, p.cmdline()
                        t = p.cpu_times()
                        key = (p.pid, p.create_time())
                    seen.append((p, _kind(p, self.pid), t.user + t.system, key))
                except psutil.Error:
                    continue
            for p, kind, cpu, key in seen:
                self.cpu[key] = max(self.cpu.get(key, 0.0), cpu)
                if unexeced(p, rss, cmd):  # a phantom copy of its parent (memtree.unexeced)
                    continue
                mb = rss[p.pid] / 2**20
                now[kind] += mb
                self.single[kind] = max(self.single[kind], mb)
            for k in KINDS:
                self.peak[k] = max(self.peak[k], now[k])
            self.tree = max(self.tree, sum(now.values()))
            self.stop.wait(self.interval_s)


def measure(recipe: Path, work: Path, repo: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "builder.cli", "responses", str(recipe), "--work", str(work), "--quiet"]
    t0, cpu0 = time.perf_counter(), os.times()
    proc = subprocess.Popen(cmd, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    s = Sampler(proc.pid)
    s.start()
    rc = proc.wait()
    s.stop.set()
    s.join()
    reaped = (os.times().children_user + os.times().children_system) - (cpu0.children_user + cpu0.children_system)
    return {
        "rc": rc, "repo": str(repo), "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(max(reaped, sum(s.cpu.values())), 1), "tree_peak_mb": round(s.tree, 1),
        "peak_mb": {k: round(v, 1) for k, v in s.peak.items()},
        "largest_process_mb": {k: round(v, 1) for k, v in s.single.items()},
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }  # fmt: skip


def table_digest(files: list[Path]) -> tuple[int, str]:
    """(rows, sha256 over every value in row order, column by column per batch)."""
    h = hashlib.sha256()
    rows = 0
    for f in files:
        for b in pq.ParquetFile(f).iter_batches(batch_size=4096):
            rows += b.num_rows
            for row in b.to_pylist():
                h.update(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
                h.update(b"\n")
    return rows, h.hexdigest()


def digests(work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("parsed", "quarantine"):
        out[name] = table_digest(sorted((work / "responses" / name).glob("*.parquet")))
    out["ledger"] = table_digest([work / "responses" / "ledger.parquet"])
    summary = json.loads((work / "responses" / "summary.json").read_text())
    summary.pop("seconds", None)
    out["summary"] = hashlib.sha256(orjson.dumps(summary, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("recipe", type=Path, nargs="?")
    ap.add_argument("work", type=Path, nargs="?")
    ap.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose code runs the stage")
    ap.add_argument("--compare", type=Path, nargs=2, default=None, metavar=("WORK_A", "WORK_B"))
    args = ap.parse_args(argv)
    if args.compare:
        a, b = (digests(w) for w in args.compare)
        out = {"identical": a == b, "a": a, "b": b}
    else:
        if args.recipe is None or args.work is None:
            ap.error("RECIPE and WORK are needed (or --compare)")
        out = measure(args.recipe.resolve(), args.work.resolve(), args.repo.resolve())
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
