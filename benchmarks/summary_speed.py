"""The variants stage's extractive summary and its checks, old code vs this checkout, one process.

Every real trace of the shared corpus (benchmarks/responses.load_real_traces: 6,518 R1 / Sky-T1 /
Marco-o1 replies) parsed as the responses stage parses it; those with a thinking and an answer
(the ones the variants stage summarizes) go through what builder/variants/summary_job.py runs per
reply: `extractive_summary`, then `assess_summary` on it (the recipe defaults' thresholds).

"old" is the summarizer, scorer, faithfulness check and repeat rule at --base (default: the
commit before issue 16's summary work), read with `git show` into a throwaway package; "new" is
this checkout's. Chunk by chunk (250 replies), runs alternate (old, new, old, …), each module's
caches cleared first, and the least CPU seconds of each is kept; the figures are their sums. Every
reply's (summary, failure, scores, faithfulness) is compared: any difference exits 1.

    python benchmarks/summary_speed.py [--rounds 3] [--limit N] [--base COMMIT]

Last line: one JSON object (replies, old_cpu_s, new_cpu_s, old_us_per_reply, new_us_per_reply,
ratio = old / new, same).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from builder.config.variants import VariantsConfig  # noqa: E402
from builder.language import preload_models  # noqa: E402
from builder.reasoning_format import resolve_delimiters  # noqa: E402
from builder.responses.shapes import normalize  # noqa: E402

BASE = "ba687b8730d5b330d1e61a48caf2d3fce2bd1a60"  # main before issue 16's summary speed-ups
CHUNK = 250  # replies timed at a time
MODULES = ("repeats", "summary_quality", "faithfulness", "summarizer")  # in import order

Triple = tuple[str, str, str]  # think, answer, prompt


def replies(limit: int | None) -> list[Triple]:
    """The real traces as the variants stage gets them (think and answer both non-empty)."""
    from responses import load_real_traces

    out: list[Triple] = []
    for r in load_real_traces():
        try:
            delims = resolve_delimiters(r.get("reasoning_format") or "r1")
        except ValueError:
            delims = resolve_delimiters("r1")
        p = normalize(r.get("content"), r.get("reasoning_content"), r.get("reasoning"), r.get("finish_reason"), delims)
        if isinstance(p.think, str) and p.think and isinstance(p.answer, str) and p.answer:
            out.append((p.think, p.answer, r["prompt"]))
    return out if limit is None else out[:: max(1, len(out) // limit)][:limit]  # every source in a sample


def old_modules(base: str, where: Path) -> dict[str, ModuleType]:
    """builder/variants' summary modules at `base`, as package `_summary_old` (imports among them
    pointed at each other; everything else is this checkout's)."""
    pkg = where / "_summary_old"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in MODULES:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{base}:builder/variants/{name}.py"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        for other in MODULES:
            src = src.replace(f"from builder.variants.{other} import", f"from _summary_old.{other} import")
        (pkg / f"{name}.py").write_text(src)
    sys.path.insert(0, str(where))
    return {name: importlib.import_module(f"_summary_old.{name}") for name in MODULES}


def new_modules() -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"builder.variants.{name}") for name in MODULES}


def _clear_caches(mods: dict[str, ModuleType]) -> None:
    for mod in mods.values():
        for obj in vars(mod).values():
            if isinstance(obj, functools._lru_cache_wrapper):
                obj.cache_clear()


def run(mods: dict[str, ModuleType], triples: list[Triple]) -> tuple[float, list[Any]]:
    """(CPU seconds, per reply results) of the stage's per-reply summary work."""
    sz = mods["summarizer"]
    s = VariantsConfig().summarizer
    gate = sz.SummaryGate.of(s)
    _clear_caches(mods)
    out: list[Any] = []
    start = time.process_time()
    for think, answer, prompt in triples:
        summary = sz.extractive_summary(think, answer, gate.max_ratio, s.max_chars, prompt, s.max_sentences)
        failure, sc, faith = sz.assess_summary(summary, think, answer, prompt, gate)
        out.append((summary, failure, sc and (sc.sentences, sc.fragment_rate, sc.filler_rate, sc.repetition,
                                              sc.final_covered), faith))  # fmt: skip
    return time.process_time() - start, out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="N replies spread over the sources")
    ap.add_argument("--base", default=BASE, help="the commit whose code is 'old'")
    args = ap.parse_args(argv)
    triples = replies(args.limit)
    preload_models()
    with tempfile.TemporaryDirectory() as tmp:
        old, new = old_modules(args.base, Path(tmp)), new_modules()
        run(new, triples[:200])  # warm: the language module's caches are shared
        # Chunk by chunk, old and new in turn, the least CPU of each kept: on a shared machine,
        # load that comes and goes hits both alike.
        best = {"old": 0.0, "new": 0.0}
        results: dict[str, list[Any]] = {"old": [], "new": []}
        for lo in range(0, len(triples), CHUNK):
            chunk = triples[lo : lo + CHUNK]
            least = {"old": float("inf"), "new": float("inf")}
            for _ in range(args.rounds):
                for name, mods in (("old", old), ("new", new)):
                    cpu, got = run(mods, chunk)
                    least[name] = min(least[name], cpu)
                    if len(results[name]) == lo:
                        results[name] += got
            for name in best:
                best[name] += least[name]
    differ = [i for i, (a, b) in enumerate(zip(results["old"], results["new"])) if a != b]
    n = len(triples)
    out = {
        "replies": n,
        "old_cpu_s": round(best["old"], 3),
        "new_cpu_s": round(best["new"], 3),
        "old_us_per_reply": round(1e6 * best["old"] / n, 1),
        "new_us_per_reply": round(1e6 * best["new"] / n, 1),
        "ratio": round(best["old"] / best["new"], 3),
        "same": not differ and len(results["old"]) == n,
        "differ": differ[:10],
    }
    print(json.dumps(out))
    if not out["same"]:
        sys.exit(1)
    return out


if __name__ == "__main__":
    main()
