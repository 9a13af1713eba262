"""Token counting speed: tiktoken (built from the pinned files) vs `tokenizers` (baseline).

Runs both counters over real corpus text (../shared/corpus), checks that every count is
equal, and prints absolute figures and the speed ratio; the last line is one JSON object.

    python benchmarks/tokens.py [--stride N] [--repeat N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder import tokens  # noqa: E402
from tests.corpus import corpus_dir  # noqa: E402

CORPUS = corpus_dir()


def _rows(rel: str) -> list[dict]:
    path = CORPUS / rel
    if not path.is_file():
        sys.exit(f"benchmarks/tokens.py: {path} is missing; put shared/corpus beside the repo")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        if path.suffix == ".json":
            return json.load(fh)
        return [json.loads(line) for line in fh if line.strip()]


# (file, text fields): Bangla/English R1 traces, Chinese+English CoT, math, code,
# Chinese Q&A, English R1 reasoning.
SOURCES: list[tuple[str, tuple[str, ...]]] = [
    ("r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl", ("formated_question", "reason", "gen_ans")),
    ("marco-o1-cot-demo/CoT_demo.json", ("instruction", "response")),
    ("gsm8k/test.jsonl", ("question", "answer")),
    ("humaneval/HumanEval.jsonl.gz", ("prompt", "canonical_solution", "test")),
    ("alignbench/data_v1.1_release.jsonl", ("question", "reference")),
    ("r1-mmlupro-pcmb-traces/pcmb_traces.jsonl", ("reasoning", "answer_text")),
]


def corpus_texts(stride: int) -> list[str]:
    texts: list[str] = []
    for rel, fields in SOURCES:
        for row in _rows(rel)[::stride]:
            texts += [row[f] for f in fields if row.get(f)]
    return texts


def _best(fn: Callable[[], list[int]], repeat: int) -> tuple[float, list[int]]:
    best, out = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stride", type=int, default=4, help="take every Nth corpus row")
    ap.add_argument("--repeat", type=int, default=3, help="best of N timed runs")
    args = ap.parse_args(argv)

    texts = corpus_texts(args.stride)
    chars = sum(map(len, texts))
    result: dict[str, object] = {
        "benchmark": "tokens",
        "texts": len(texts),
        "chars": chars,
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
    }
    print(f"corpus: {len(texts)} texts, {chars / 1e6:.2f} M chars, {os.cpu_count()} CPUs")
    for name in sorted(tokens.SOURCES):
        # Load and warm both before timing: the ratio is about counting, not loading.
        tokens.count_tokens_hf(name, texts[:50])
        tokens.count_tokens_tiktoken(name, texts[:50])
        hf_s, hf = _best(lambda n=name: tokens.count_tokens_hf(n, texts), args.repeat)
        tk_s, tk = _best(lambda n=name: tokens.count_tokens_tiktoken(n, texts), args.repeat)
        mismatches = sum(a != b for a, b in zip(hf, tk, strict=True))
        total = sum(hf)
        print(
            f"{name}: tokenizers {hf_s:.2f} s ({total / hf_s / 1e6:.2f} M tok/s), "
            f"tiktoken {tk_s:.2f} s ({total / tk_s / 1e6:.2f} M tok/s), "
            f"ratio {hf_s / tk_s:.2f}x, tokens {total}, count mismatches {mismatches}"
        )
        result[name] = {
            "tokenizers_s": round(hf_s, 3),
            "tiktoken_s": round(tk_s, 3),
            "ratio": round(hf_s / tk_s, 3),
            "tokens": total,
            "mismatches": mismatches,
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
