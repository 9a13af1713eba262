"""Run the variants stage on a work dir that has curate + responses outputs and print a digest of
everything it wrote (each variant table, pairs, the ledger and summary.json, row by row, timings
left out) as one JSON line: run it with two checkouts' code on copies of one work dir to show a
change leaves the variants' outputs row-for-row identical.

    PYTHONPATH=<checkout> python scripts/variants_digest.py WORK_DIR [--recipe recipes/sample.yaml]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

VOLATILE = {"seconds"}  # summary.json: wall time


def digest(work_dir: Path) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    root = work_dir / "variants"
    for f in sorted(root.rglob("*.parquet")):
        if any(part.startswith(".") for part in f.relative_to(root).parts):
            continue  # scratch of tasks / buckets
        rows = pq.read_table(f).to_pylist()
        text = json.dumps(rows, sort_keys=True, default=str)
        out[str(f.relative_to(work_dir))] = [len(rows), hashlib.sha256(text.encode()).hexdigest()[:16]]
    summary = {k: v for k, v in json.loads((root / "summary.json").read_text()).items() if k not in VOLATILE}
    out["variants/summary.json"] = [1, hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()[:16]]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("work", type=Path, help="a work dir with curate and responses outputs")
    ap.add_argument("--recipe", type=Path, default=Path("recipes/sample.yaml"))
    args = ap.parse_args(argv)
    from builder.recipe import load_recipe
    from builder.variants.stage import run_variants
    from builder.workdir import WorkDir

    run_variants(load_recipe(args.recipe), WorkDir(args.work))
    print(json.dumps(digest(args.work)))


if __name__ == "__main__":
    sys.exit(main())
