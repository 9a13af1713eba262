"""The reply store at full size: append speed, and what opening a 1.3M-reply store to resume costs.

Builds a store of `--records` reply records over 16 segments (one per generate task), shaped like
a real run: ~3% of ids retried (a failed record superseded by a later one), 5% transient failures,
2% permanent ones, 3% `length` finishes, a torn tail on one segment. Then, each in a fresh process
so its peak RSS (whole process tree, benchmarks/memtree.py) is its own, it opens the store and
computes what is still pending for every item (plus 2% never requested):

- `new_cold`: builder/teachers/store.py, first open (parses the JSON index, writes the parquet caches);
- `new_warm`: the same, second open (reads the caches);
- `baseline`: the store before the columnar index (benchmarks/store_legacy.py), bounded to
  `--baseline-timeout` seconds; a baseline that does not finish is reported with its reason.

The pending sets are compared (`same_pending`). Last line: JSON with `records`, `append_per_s`,
`open_s` (cold), `open_warm_s`, `peak_rss_mb` (the worse of cold and warm), the baseline's figures
and `open_speedup` = baseline open_s / open_s.

    python benchmarks/store.py            # 1.3M records (~1 GB of disk under --dir, removed after)
    python benchmarks/store.py --quick    # 100k records
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SEGMENTS = 16
TEACHER = {"name": "r1", "kind": "openai", "model": "deepseek-reasoner",
           "endpoints": [{"base_url": "http://127.0.0.1:1/v1"}]}  # fmt: skip


def gid(i: int) -> str:
    return hashlib.md5(str(i).encode()).hexdigest()  # 32 hex characters, like stable_hash


def build(folder: Path, n: int) -> dict[str, float]:
    from builder.rows import REPLY_FEATURES
    from builder.teachers.store import StoreWriter

    base: dict[str, Any] = dict.fromkeys(REPLY_FEATURES)
    base.update(prompt_id="p" * 32, sample_index=0, teacher_role="reasoning", teacher_model="deepseek-reasoner",
                endpoint_kind="openai", prompt_template_id="r1", prompt_template_hash="h" * 16,
                sampling_json='{"temperature":0.6,"top_p":0.95}', content="The answer is 42. " * 12,
                reasoning_content="Let me think about this step by step. " * 12, prompt_tokens=120,
                completion_tokens=400, reasoning_tokens=300, latency_s=12.5, attempts=1, max_tokens=16384,
                created_at="2026-01-01T00:00:00+00:00", schema_version="1", toolkit_version="0.1.0")  # fmt: skip
    t0 = time.perf_counter()
    written = 0
    per = -(-n // SEGMENTS)
    for k in range(SEGMENTS):
        with StoreWriter(folder, f"t{k:05d}", fsync_every_s=1.0) as w:
            for i in range(k * per, min(n, (k + 1) * per)):
                g, r = gid(i), i % 100
                if r < 3:  # retried: a transient failure first, superseded by the later record
                    w.append({**base, "generation_id": g, "status": "failed", "error_code": "timeout"},
                             run="run1", source="src", category="chat")  # fmt: skip
                    written += 1
                row = {**base, "generation_id": g}
                if 3 <= r < 8:
                    row.update(status="failed", error_code="server_error")
                elif 8 <= r < 10:
                    row.update(status="failed", error_code="content_filter")
                else:
                    row.update(status="ok", finish_reason="length" if r >= 97 else "stop")
                w.append(row, run="run2", source="src", category="math" if i % 2 else "chat")
                written += 1
    secs = time.perf_counter() - t0
    with open(sorted(folder.glob("*.idx"))[-1], "ab") as fh:
        fh.write(b'{"g": "torn')  # a kill in the middle of an index line
    size = sum(f.stat().st_size for f in folder.iterdir())
    return {"records": written, "append_s": round(secs, 2), "append_per_s": round(written / secs),
            "store_mb": round(size / 2**20)}  # fmt: skip


def child(impl: str, folder: Path, n: int) -> None:
    """Open the store and compute what is pending for n items + 2% new; print one JSON line."""
    from memtree import TreePeak, tree_rss_mb

    from builder.config.generate import TeacherConfig
    from builder.teachers.items import WorkItem

    teacher = TeacherConfig.model_validate({**TEACHER, "sampling": {"max_tokens": 16384, "truncation_ladder": [32768]}})
    msgs: list[dict[str, str]] = []  # the inputs should weigh what a task's items weigh, not more
    items = [WorkItem(g, "p", 0, msgs, None, None, "src", g, "chat") for g in map(gid, range(n + n // 50))]  # type: ignore[arg-type]
    with TreePeak() as peak:
        before = tree_rss_mb()
        t0 = time.perf_counter()
        if impl == "baseline":
            from store_legacy import latest, schedule

            todo = schedule(teacher, items, latest(folder))
        else:
            from builder.teachers.send import schedule
            from builder.teachers.store import latest

            todo = schedule(teacher, items, latest(folder))
        secs = time.perf_counter() - t0
    digest = hashlib.sha256("".join(sorted(f"{it.generation_id}:{it.max_tokens}\n" for it in todo)).encode())
    print(json.dumps({"open_s": round(secs, 2), "peak_rss_mb": round(peak.mb), "items_rss_mb": round(before),
                      "pending": len(todo), "pending_sha": digest.hexdigest()[:16]}))  # fmt: skip


def run_child(impl: str, folder: Path, n: int, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", impl, "--dir", str(folder), "--records", str(n)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout:.0f} s (stopped)"}
    if p.returncode != 0:
        return {"error": f"exit {p.returncode}: {(p.stderr.strip().splitlines() or [''])[-1][:200]}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_300_000, help="distinct generation ids in the store")
    ap.add_argument("--quick", action="store_true", help="100k records")
    ap.add_argument("--dir", type=Path, default=None, help="where to build the store (default: a temp folder)")
    ap.add_argument("--baseline-timeout", type=float, default=60.0, help="seconds the baseline may take")
    ap.add_argument("--child", choices=["new", "baseline"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = 100_000 if args.quick else args.records
    if args.child:
        child(args.child, args.dir, n)
        return
    tmp = Path(tempfile.mkdtemp(prefix="store-bench-", dir=args.dir))
    try:
        folder = tmp / "store"
        built = build(folder, n)
        print(json.dumps({"built": built}), flush=True)
        cold = run_child("new", folder, n, 600)
        print(json.dumps({"new_cold": cold}), flush=True)
        base = run_child("baseline", folder, n, args.baseline_timeout)
        print(json.dumps({"baseline": base}), flush=True)
        warm = run_child("new", folder, n, 600)
        print(json.dumps({"new_warm": warm}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out: dict[str, Any] = {
        "records": built["records"], "ids": n, "append_per_s": built["append_per_s"], "store_mb": built["store_mb"],
        "open_s": cold.get("open_s"), "open_warm_s": warm.get("open_s"),
        "peak_rss_mb": max(cold.get("peak_rss_mb", 0), warm.get("peak_rss_mb", 0)),
        "items_rss_mb": cold.get("items_rss_mb"), "pending": cold.get("pending"),
        "baseline_open_s": base.get("open_s"), "baseline_peak_rss_mb": base.get("peak_rss_mb"),
        "baseline_error": base.get("error", ""),
        "same_pending": (base["pending_sha"] == cold.get("pending_sha") == warm.get("pending_sha")) if "pending_sha" in base
        else cold.get("pending_sha") == warm.get("pending_sha"),
        "open_speedup": round(base["open_s"] / cold["open_s"], 2) if "open_s" in base and cold.get("open_s") else None,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    out["targets_met"] = bool(out["open_s"] is not None and out["open_s"] <= 20 and out["peak_rss_mb"] <= 1024
                              and out["append_per_s"] >= 20_000 and out["same_pending"])  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
