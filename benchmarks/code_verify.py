"""Throughput of sandboxed code verification: sequential vs parallel sandboxes.

Workload: the canonical solutions of HumanEval (164) and MBPP (974) from the shared corpus,
each run against its own test suite in the sandbox (builder/sandbox.py).
One "test" below is one problem's whole suite: HumanEval's check(), or MBPP's asserts.
The baseline is one sandbox at a time on a slice of the same items, measured in this run.

    .venv/bin/python benchmarks/code_verify.py [--workers N] [--limit N] [--seq-limit N]

The last line is one JSON object (stable keys; `code_tests_per_s` is the parallel rate).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder.responses.verify.codecheck import verify_code_batch  # noqa: E402
from builder.sandbox import isolation_plan  # noqa: E402
from tests.corpus import corpus_dir  # noqa: E402

CORPUS = corpus_dir()


def load_items() -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    with gzip.open(CORPUS / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            tests = {"format": "humaneval", "test": r["test"], "entry_point": r["entry_point"], "prompt": r["prompt"]}
            items.append((f"```python\n{r['prompt']}{r['canonical_solution']}\n```", json.dumps(tests)))
    with (CORPUS / "mbpp" / "mbpp.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            tests = {"format": "mbpp", "test_list": r["test_list"], "test_setup_code": r["test_setup_code"]}
            items.append((f"```python\n{r['code']}\n```", json.dumps(tests)))
    return items


def timed(items: list[tuple[str, str]], workers: int) -> tuple[float, int, dict[str, int]]:
    start = time.perf_counter()
    verdicts = verify_code_batch(items, workers=workers)
    elapsed = time.perf_counter() - start
    failures = Counter(v.reason for v in verdicts if v.status != "pass")
    for v in verdicts:
        if v.status != "pass":
            print(f"not passed: {v.reason}: {v.detail[:300]}", file=sys.stderr)
    return elapsed, sum(v.status == "pass" for v in verdicts), dict(failures)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--limit", type=int, default=0, help="items for the parallel run (0: all)")
    ap.add_argument("--seq-limit", type=int, default=200, help="items for the sequential baseline")
    args = ap.parse_args()

    items = load_items()
    # Interleave the two sources so any prefix mixes HumanEval and MBPP.
    he, mb = items[:164], items[164:]
    mixed = [x for pair in zip(he, mb[: len(he)], strict=False) for x in pair] + mb[len(he) :]
    par_items = mixed[: args.limit] if args.limit else mixed
    seq_items = mixed[: args.seq_limit]
    isolation_plan()  # probe once, outside the timings

    seq_s, seq_pass, seq_fail = timed(seq_items, 1)
    par_s, par_pass, par_fail = timed(par_items, args.workers)
    seq_rate, par_rate = len(seq_items) / seq_s, len(par_items) / par_s
    print(f"isolation: {','.join(isolation_plan().isolation)}  cpus: {os.cpu_count()}")
    print(f"sequential: {len(seq_items)} suites in {seq_s:.1f}s = {seq_rate:.1f}/s, {seq_pass} passed")
    print(f"parallel x{args.workers}: {len(par_items)} suites in {par_s:.1f}s = {par_rate:.1f}/s, {par_pass} passed")
    print(
        json.dumps(
            {
                "benchmark": "code_verify",
                "code_tests_per_s": round(par_rate, 2),
                "sequential_tests_per_s": round(seq_rate, 2),
                "speedup_vs_sequential": round(par_rate / seq_rate, 2),
                "workers": args.workers,
                "cpus": os.cpu_count(),
                "items_parallel": len(par_items),
                "items_sequential": len(seq_items),
                "passed_parallel": par_pass,
                "passed_sequential": seq_pass,
                "not_passed_reasons": {k: seq_fail.get(k, 0) + par_fail.get(k, 0) for k in {**seq_fail, **par_fail}},
                "isolation": list(isolation_plan().isolation),
            }
        )
    )


if __name__ == "__main__":
    main()
