"""Token counting, old vs new in one process: the proven tiktoken pattern on every text, added tokens
by tiktoken's encode (old), vs the look-around-free pattern on texts cut at its triggers and at added
tokens (builder/token_cuts.py, new), over every real trace.

Texts: each real reply's content, reasoning fields and prompt (benchmarks/responses.py's
load_real_traces: R1, Sky-T1, Marco-o1 traces from ../shared/corpus), on one thread as
count_tokens_tiktoken counts a slice; times are CPU seconds (best of --repeat, old and new interleaved), and
every count of the new path (and of tokens.count_tokens) must equal the old one. The last line
is one JSON object.

    python benchmarks/token_count_speed.py [--repeat 3] [--stride 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from responses import load_real_traces  # noqa: E402

from builder import token_cuts, tokens  # noqa: E402


def trace_texts(stride: int) -> list[str]:
    fields = ("content", "reasoning_content", "reasoning", "prompt")
    return [v for r in load_real_traces()[::stride] for k in fields if isinstance(v := r.get(k), str) and v]


def counters(name: str) -> tuple[Callable[[list[str]], list[int]], Callable[[list[str]], list[int]]]:
    """(old, new) counts of a list of raw texts, as count_tokens_tiktoken computes them on one thread."""
    enc = tokens.tiktoken_encoding(name)
    form = tokens._tiktoken_build(name).form
    specials_in = tokens._special_finder(name)
    core = enc._core_bpe
    ordinary = tokens._ordinary_counter(name)

    def old(texts: list[str]) -> list[int]:
        normed = [unicodedata.normalize(form, t) for t in texts] if form else texts
        return [len(enc.encode(t, allowed_special="all")) if specials_in(t)
                else memoryview(core.encode_to_tiktoken_buffer(t, set())).nbytes >> 2 for t in normed]  # fmt: skip

    def new(texts: list[str]) -> list[int]:
        normed = [unicodedata.normalize(form, t) for t in texts] if form else texts
        return [token_cuts.count_around(ordinary, sp, t) if (sp := specials_in(t)) else ordinary(t) for t in normed]

    return old, new


def _cpu(fn: Callable[[], list[int]]) -> tuple[float, list[int]]:
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="best of N timed runs of each")
    ap.add_argument("--stride", type=int, default=1, help="take every Nth real trace")
    args = ap.parse_args(argv)
    texts = trace_texts(args.stride)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    result: dict[str, object] = {"benchmark": "token_count_speed", "texts": len(texts), "mb": round(mb, 2)}
    print(f"{len(texts)} texts of {len(load_real_traces()[:: args.stride])} real traces, {mb:.1f} MB")
    old_total = new_total = 0.0
    for name in sorted(tokens.TIKTOKEN_PROVEN):
        old, new = counters(name)
        old(texts[:20]), new(texts[:20])  # build and warm both outside the timings
        old_s = new_s = float("inf")
        for _ in range(args.repeat):
            s, want = _cpu(lambda o=old: o(texts))
            old_s = min(old_s, s)
            s, got = _cpu(lambda n=new: n(texts))
            new_s = min(new_s, s)
        mismatches = sum(a != b for a, b in zip(want, got, strict=True))
        mismatches += sum(a != b for a, b in zip(want, tokens.count_tokens(name, texts), strict=True))
        old_total, new_total = old_total + old_s, new_total + new_s
        print(f"{name}: old {old_s:.2f} CPU-s ({mb / old_s:.1f} MB/s), new {new_s:.2f} CPU-s ({mb / new_s:.1f} MB/s), "
              f"ratio {old_s / new_s:.2f}x, tokens {sum(want)}, count mismatches {mismatches}")  # fmt: skip
        result[name] = {"old_cpu_s": round(old_s, 3), "new_cpu_s": round(new_s, 3), "old_mb_s": round(mb / old_s, 2),
                        "new_mb_s": round(mb / new_s, 2), "ratio": round(old_s / new_s, 3), "tokens": sum(want),
                        "mismatches": mismatches}  # fmt: skip
        if mismatches:
            print(json.dumps(result))
            return 1
    result["ratio"] = round(old_total / new_total, 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
