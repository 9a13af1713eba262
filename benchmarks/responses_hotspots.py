"""The responses stage's CPU hot spots, old way vs the stage's way, in one process (issue 16).

On the real traces (tests/fixtures/adversarial_replies.real_triples; data/sample without the
shared corpus), replicated to --texts texts: token counting as a list of ids per text
(encode_ordinary; the old count) vs `tokens.count_tokens` (ids read off tiktoken's buffer), for
the teacher's and the student's tokenizer, in the stage's 512-text slices; the math consistency
check's `_concluded` with one regex compiled per value (re's cache purged first) (tests/test_responses_speedups.py's
reference) vs the fixed pattern; the language module's script table, one findall per script vs
one pass. CPU seconds (this process), and each ratio old / new. Outputs are checked equal.

    python benchmarks/responses_hotspots.py [--texts 6000]

Last line: one JSON object (tokens_old_cpu_s, tokens_new_cpu_s, tokens_speedup, concluded_speedup,
script_table_speedup, …).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder import language, tokens  # noqa: E402
from builder.responses import consistency  # noqa: E402
from tests.fixtures.adversarial_replies import real_triples  # noqa: E402
from tests.test_responses_speedups import _concluded_ref  # noqa: E402

SLICE = 512  # builder/responses/stage.py's INLINE_SLICE


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """(least CPU seconds of `repeat` runs, the result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = _cpu()
        out = fn()
        best = min(best, _cpu() - start)
    return best, out


def _old_counts(name: str, texts: list[str]) -> list[int]:
    enc = tokens.tiktoken_encoding(name)
    special = tokens._special_finder(name)
    normed = [tokens.tiktoken_normalize(name, t) for t in texts]
    return [len(enc.encode(t, allowed_special="all")) if special(t) else len(enc.encode_ordinary(t)) for t in normed]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--texts", type=int, default=6000, help="texts per tokenizer (think and answer texts, replicated)")
    args = ap.parse_args(argv)
    triples = real_triples()
    texts = [x for t in triples for x in (t.think, t.answer)]
    texts = [texts[i % len(texts)] for i in range(args.texts)]
    out: dict[str, Any] = {"texts": len(texts), "chars": sum(map(len, texts))}

    old_s = new_s = 0.0
    for name in ("deepseek-r1", "qwen2.5"):
        tokens.count_tokens(name, ["warm"])
        slices = [texts[i : i + SLICE] for i in range(0, len(texts), SLICE)]
        o, a = _timed(lambda: [n for s in slices for n in _old_counts(name, s)])  # noqa: B023
        n, b = _timed(lambda: [n for s in slices for n in tokens.count_tokens(name, s)])  # noqa: B023
        if a != b:
            sys.exit(f"responses_hotspots: {name} counts differ")
        old_s, new_s = old_s + o, new_s + n
        out[f"tokens_speedup_{name}"] = round(o / n, 3)
    out.update(tokens_old_cpu_s=round(old_s, 3), tokens_new_cpu_s=round(new_s, 3),
               tokens_speedup=round(old_s / new_s, 3))  # fmt: skip

    cases = []
    for t in triples:
        a = consistency._math_value(t.answer)
        if a and consistency._as_number(a) is not None:
            cases.append((a, t.think[-consistency._TAIL :]))
    # re caches compiled patterns: purged first, as a build meets each value once.
    o, a = _timed(lambda: (re.purge(), [_concluded_ref(v, tail) for v, tail in cases])[1])
    n, b = _timed(lambda: [consistency._concluded(v, tail) for v, tail in cases])
    if a != b:
        sys.exit("responses_hotspots: _concluded differs")
    out.update(concluded_cases=len(cases), concluded_old_us=round(o / max(1, len(cases)) * 1e6, 1),
               concluded_new_us=round(n / max(1, len(cases)) * 1e6, 1), concluded_speedup=round(o / n, 2) if n else None)  # fmt: skip

    from tests.test_responses_speedups import _per_script_table

    o, a = _timed(_per_script_table, 1)
    n, b = _timed(language._build_table, 1)
    if not (a == b).all():
        sys.exit("responses_hotspots: script tables differ")
    out.update(script_table_old_cpu_s=round(o, 3), script_table_new_cpu_s=round(n, 3),
               script_table_speedup=round(o / n, 2))  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
