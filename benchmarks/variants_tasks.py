"""The variants stage's memory and time by bucket size and task count, on a kept rehearsal build.

    python benchmarks/rehearsal.py --quick --keep /tmp/reh          # once: curate … responses
    python benchmarks/variants_tasks.py /tmp/reh --runs 50000:1 12500:1 12500:2

Each run is `answer-distill variants` in its own process on the rehearsal's work dir with the
recipe's `variants.bucket_rows` and `variants.tasks` set (a local executor of that many tasks), measured
as benchmarks/rehearsal.py measures a stage: wall, CPU of the whole process tree, peak RSS of the
whole process tree (sampled every 0.2 s). Runs of equal `bucket_rows` must write the same rows
(`same_rows_as_first_of_its_bucket_rows`: every variant table, the pairs and the ledger compared).

The last line printed is one JSON object: rows (curated prompts), runs [{bucket_rows, tasks,
buckets, wall_s, cpu_s, peak_rss_mb, max_processes, same_rows…}], load_avg.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rehearsal import run_stage  # noqa: E402


def _tables(work: Path) -> dict[str, pa.Table]:
    out = {}
    for d in sorted((work / "variants").iterdir()):
        if d.is_dir() and not d.name.startswith("."):
            out[d.name] = pa.concat_tables([pq.read_table(f) for f in sorted(d.glob("part-*.parquet"))])
    out["ledger"] = pq.read_table(work / "variants" / "ledger.parquet")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kept", type=Path, help="a folder kept by `rehearsal.py --keep` (recipe.yaml, work/)")
    ap.add_argument("--runs", nargs="+", default=["50000:1", "12500:1", "12500:2"], help="bucket_rows:tasks …")
    args = ap.parse_args(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]
    work, logs = args.kept / "work", args.kept / "logs"
    base = yaml.safe_load((args.kept / "recipe.yaml").read_text(encoding="utf-8"))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in (work / "curate" / "prompts").glob("part-*.parquet"))
    runs: list[dict[str, Any]] = []
    first: dict[int, dict[str, pa.Table]] = {}
    for spec in args.runs:
        bucket_rows, tasks = (int(x) for x in spec.split(":"))
        recipe = {**base, "variants": {**base.get("variants", {}), "bucket_rows": bucket_rows, "tasks": tasks},
                  "executor": {**base.get("executor", {}), "kind": "local", "tasks": tasks, "workers": tasks}}  # fmt: skip
        path = args.kept / f"recipe-variants-{bucket_rows}-{tasks}.yaml"
        path.write_text(yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False), encoding="utf-8")
        res = run_stage("variants", path, work, logs)
        res.update(bucket_rows=bucket_rows, tasks=tasks, buckets=-(-rows // bucket_rows))
        if "error" not in res:
            got = _tables(work)
            ref = first.setdefault(bucket_rows, got)
            res["same_rows_as_first_of_its_bucket_rows"] = set(ref) == set(got) and all(
                ref[k].equals(got[k]) for k in ref
            )
        print(json.dumps(res), flush=True)
        runs.append(res)
    out = {"rows": rows, "runs": runs, "load_avg": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
           "cpus": os.cpu_count()}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
