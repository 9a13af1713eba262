"""Truncation from the text alone, on two halves of the corpus's real traces: tuned vs held out.

    python benchmarks/truncation_split.py            # every trace of ../shared/corpus (~3 min)
    python benchmarks/truncation_split.py --quick    # 800 traces per half

The text rules of builder/responses/truncation.py were developed on half "A" of the traces
(a hash of prompt and answer decides the half); half "B" was not looked at while tuning. Per
half: recall with the right code for replies cut with no finish reason and no token counts
(thinking cuts and answer cuts, each answer cut labelled where it fell; `after_sentence` is the
class that looks complete as text and is reported apart), and the share of complete replies
given a truncation code, overall and per evidence rule. Last line: JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.adversarial_replies import TRUNCATION, Triple, build_cases, judge, real_triples  # noqa: E402


def half_of(t: Triple) -> str:
    """A or B, from a hash of the trace (stable across runs and machines)."""
    return "AB"[int(hashlib.sha1((t.prompt + t.answer[:200]).encode()).hexdigest(), 16) % 2]


def measure(triples: list[Triple], seed: int) -> dict[str, Any]:
    hit: Counter[str] = Counter()
    n: Counter[str] = Counter()
    clean_fp: Counter[str] = Counter()
    clean_n = 0
    for case in build_cases(triples, seed=seed):
        if case.kind == "clean":
            if case.finish != "none":
                continue  # a known finish or token counts under the budget: the text rules do not run
            codes, info = judge(case)
            clean_n += 1
            if set(codes) & TRUNCATION:
                clean_fp.update(c for c in info if c.startswith("cut_"))
                clean_fp["any"] += 1
            continue
        if case.finish != "none" or case.kind == "misrouted":
            continue
        codes, _ = judge(case)
        keys = ["text_only", case.kind]
        if case.kind == "cut_answer":
            keys.append(f"cut_answer:{case.where}")
            if case.where != "after_sentence":
                keys.append("text_only:evident")
        else:
            keys.append("text_only:evident")
        for k in keys:
            n[k] += 1
            hit[k] += case.expect in codes
    return {
        "recall": {k: round(hit[k] / n[k], 4) for k in sorted(n)},
        "n": dict(sorted(n.items())),
        "clean_text_only_reject_rate": round(clean_fp["any"] / max(1, clean_n), 4),
        "clean_n": clean_n,
        "clean_rejects_by_evidence": dict(clean_fp.most_common()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="800 traces per half")
    ap.add_argument("--triples", type=int, default=None, help="traces per half (default all)")
    ap.add_argument("--seed", type=int, default=23, help="seed of the cut positions and shapes")
    args = ap.parse_args(argv)
    limit = args.triples or (800 if args.quick else None)
    triples = real_triples()
    random.Random(args.seed).shuffle(triples)
    out: dict[str, Any] = {"seed": args.seed}
    start = time.perf_counter()
    for half in "AB":
        mine = [t for t in triples if half_of(t) == half][:limit]
        res = measure(mine, args.seed)
        res["triples"] = len(mine)
        out["tuned_A" if half == "A" else "held_out_B"] = res
        print(f"half {half} ({'tuned' if half == 'A' else 'held out'}): {len(mine)} traces; recall "
              f"{json.dumps(res['recall'])}; clean rejected {res['clean_text_only_reject_rate']:.4f} "
              f"of {res['clean_n']} {json.dumps(res['clean_rejects_by_evidence'])}")  # fmt: skip
    out["wall_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
