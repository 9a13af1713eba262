"""Student token counts of the variants' assistant turns: each turn counted whole (as before) vs
`turn_tokens` (the reasoning answer counted once per prompt and added to each turn's head where
the join is additive, builder/variants/variant_rows.py). One JSON last line.

Workload: benchmarks/responses.py's (the sample's real replies replicated to --rows, the real
responses stage), the extractive summaries of the real stage; the turns of `answer`,
`think_summary` and `full`. Both ways run alternately in this process, --repeats times; the best
CPU time of each is kept, and the counts must be equal row for row.

    python benchmarks/variant_turn_tokens.py [--rows 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import responses as rb  # noqa: E402

from builder.recipe import load_recipe  # noqa: E402
from builder.responses.stage import run_responses  # noqa: E402
from builder.tokens import count_tokens  # noqa: E402
from builder.variants import buckets  # noqa: E402
from builder.variants.registry import REGISTRY  # noqa: E402
from builder.variants.stage import _candidates, _constraints_of  # noqa: E402
from builder.variants.summary_job import summaries  # noqa: E402
from builder.variants.variant_rows import turn_tokens  # noqa: E402
from builder.workdir import WorkDir  # noqa: E402

VARIANTS = ("answer", "think_summary", "full")


def measure(rows: int, repeats: int) -> dict[str, Any]:
    recipe = load_recipe(ROOT / "recipes" / "sample.yaml")
    tok = recipe.student.tokenizer
    root = Path(tempfile.mkdtemp(prefix="bench-turn-tokens-"))
    try:
        prompts, replies = rb.build_base(root / "base")
        rb.write_replicated(root / "work", prompts, replies, rows, 100_000)
        work = WorkDir(root / "work")
        run_responses(recipe, work)
        cands = _candidates(buckets.load(work, 1, None, 0, False))
        for c in cands:
            _constraints_of(c)
        summaries(cands, recipe.variants, workers=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    turns = {v: [t if isinstance(t := REGISTRY[v].fn(c), str) else "" for c in cands] for v in VARIANTS}
    count_tokens(tok, ["warm-up"])
    whole_s, shared_s = [], []
    for _ in range(repeats):
        t = time.process_time()
        whole = [count_tokens(tok, turns[v]) for v in VARIANTS]
        whole_s.append(time.process_time() - t)
        for c in cands:
            c.answer_tokens = None  # every repeat counts the answers again
        t = time.process_time()
        shared = [turn_tokens(tok, cands, turns[v]) for v in VARIANTS]
        shared_s.append(time.process_time() - t)
        if shared != whole:
            raise SystemExit("benchmarks/variant_turn_tokens.py: the shared counts differ from whole-turn counts")
    return {
        "rows": rows,
        "turns": sum(map(len, turns.values())),
        "whole_cpu_s": round(min(whole_s), 3),
        "shared_cpu_s": round(min(shared_s), 3),
        "speedup_vs_whole": round(min(whole_s) / min(shared_s), 2),
        "counts_equal": True,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000, help="replies in the replicated workload (default 2,000)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of each way; the best CPU time is kept")
    args = ap.parse_args(argv)
    out = measure(args.rows, args.repeats)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
