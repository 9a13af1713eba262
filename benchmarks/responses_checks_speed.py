"""The responses stage's per-reply checks, old code vs this tree's, in one process (issue 16).

`process_batch` (parse, validate, consistency, verify, token counts) of a base revision of
`builder/` (default BASE_REV: main before the checks' speed-ups; `git archive` into a temporary
folder) and of this tree, run alternately on the same batches in one process: each side's
modules are swapped into `sys.modules` while it runs, so the imports the stage makes inside
its functions resolve to its own side. Inputs: every real trace of the shared corpus
(benchmarks/responses.py load_real_traces) and the adversarial corpus built from them
(tests/fixtures/adversarial_replies.py: truncation cuts, clean, misrouted), as stage rows over
a rotation of prompt kinds (mcq with references, chat, math unverified; every 17th a control
teacher); plus a work dir's stored replies with its curated prompts (--work). Every output row
of both sides must be equal (codes, verdicts, languages, scores, consistency_json, counts).

    python benchmarks/responses_checks_speed.py [--work /tmp/work] [--rounds 2] [--limit N]

CPU seconds of this process (least of --rounds per side). Last line: one JSON object with
old_cpu_s, new_cpu_s, us_per_reply_old / _new and speedup (old / new), per input set and in all.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

BASE_REV = "ba687b8"  # main before the per-reply checks were sped up
KINDS = [("mcq", "B", "mcq"), ("chat", None, "auto"), ("mcq", "A", "auto"), ("math", None, "none")]
SLICE = 512  # the stage's INLINE_SLICE
Batch = tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]


def _own(name: str) -> bool:
    return name == "builder" or name.startswith("builder.")


def load_side(src: Path) -> dict[str, Any]:
    """Import `src`'s builder (the stage and what it imports) and take its modules out of
    sys.modules again; returns them, to be swapped in by `using`."""
    saved = {k: sys.modules.pop(k) for k in [k for k in sys.modules if _own(k)]}
    sys.path.insert(0, str(src))
    try:
        __import__("builder.responses.stage")
        __import__("builder.responses.verify")
        __import__("builder.tokens")
        return {k: sys.modules.pop(k) for k in [k for k in sys.modules if _own(k)]}
    finally:
        sys.path.remove(str(src))
        sys.modules.update(saved)


@contextlib.contextmanager
def using(mods: dict[str, Any]) -> Iterator[None]:
    saved = {k: sys.modules.pop(k) for k in [k for k in sys.modules if _own(k)]}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for k in [k for k in sys.modules if _own(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


def trace_batches(limit: int | None) -> list[Batch]:
    from responses import load_real_traces

    from tests.fixtures.adversarial_replies import build_cases, real_triples

    raw = list(load_real_traces()) + [c.row for c in build_cases(real_triples(), seed=23)]
    raw = raw[:limit] if limit is not None else raw
    out: list[Batch] = []
    for lo in range(0, len(raw), SLICE):
        rows, prompts = [], {}
        for i, r in enumerate(raw[lo : lo + SLICE], lo):
            category, reference, verifier = KINDS[i % len(KINDS)]
            rows.append({
                "generation_id": f"g{i}", "prompt_id": f"p{i}", "teacher_role": "control" if i % 17 == 5 else "reasoning",
                "sample_index": 0, "teacher": "t", "teacher_model": "m", "served_model": None, "endpoint_kind": "openai",
                "prompt_template_id": None, "prompt_template_hash": None, "status": "ok", "tool_calls_json": None,
                **{k: r.get(k) for k in ("content", "reasoning_content", "reasoning", "finish_reason", "reasoning_format",
                                         "completion_tokens", "max_tokens")},
            })  # fmt: skip
            prompts[f"p{i}"] = {"prompt_id": f"p{i}", "category": category, "reference_answer": reference,
                                "tests_json": None, "verifier": verifier, "source": "s", "prompt_text": r.get("prompt") or ""}  # fmt: skip
        out.append((rows, prompts))
    return out


def work_batches(work: Path) -> list[Batch]:
    import pyarrow.parquet as pq

    from builder.responses.stage import PromptIndex
    from builder.workdir import WorkDir

    index = PromptIndex(WorkDir(work))
    out: list[Batch] = []
    for f in sorted(glob.glob(str(work / "generate" / "replies" / "*.parquet"))):
        for b in pq.ParquetFile(f).iter_batches(batch_size=SLICE):
            rows = b.to_pylist()
            out.append((rows, index.subset([r["prompt_id"] for r in rows])))
    return out


def _cpu() -> float:
    return time.process_time()


def run_side(mods: dict[str, Any], batches: list[Batch]) -> tuple[float, list[list[dict[str, Any]]]]:
    with using(mods):
        stage = mods["builder.responses.stage"]
        cfg, student = mods["builder.config.responses"].ResponsesConfig(), mods["builder.config.student"].StudentConfig()
        start = _cpu()
        out = [stage.process_batch(rows, prompts, cfg, student) for rows, prompts in batches]
        return _cpu() - start, out


def compare(name: str, batches: list[Batch], old: dict[str, Any], new: dict[str, Any], rounds: int) -> dict[str, Any]:
    n = sum(len(b) for b, _ in batches)
    best_old = best_new = float("inf")
    for _ in range(rounds):
        t_old, out_old = run_side(old, batches)
        t_new, out_new = run_side(new, batches)
        best_old, best_new = min(best_old, t_old), min(best_new, t_new)
        bad = [(b[i]["generation_id"], k) for a, b in zip(out_old, out_new) for i in range(len(a))
               for k in a[i] if a[i][k] != b[i][k]]  # fmt: skip
        if bad or len(out_old) != len(out_new):
            sys.exit(f"responses_checks_speed: {name}: {len(bad)} fields differ, e.g. {bad[:5]}")
    return {"replies": n, "old_cpu_s": round(best_old, 3), "new_cpu_s": round(best_new, 3),
            "us_per_reply_old": round(1e6 * best_old / n, 1), "us_per_reply_new": round(1e6 * best_new / n, 1),
            "speedup": round(best_old / best_new, 3), "same": True}  # fmt: skip


def base_tree(rev: str, into: Path) -> Path:
    """`rev`'s builder/ package, unpacked under `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "builder"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--base-rev", default=BASE_REV, help=f"the old code's revision (default {BASE_REV})")
    ap.add_argument("--work", type=Path, default=None, help="also a work dir's stored replies (generate/replies)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per side; the least CPU counts")
    ap.add_argument("--limit", type=int, default=None, help="first N trace rows only (0: none)")
    args = ap.parse_args(argv)
    warm: Callable[[dict[str, Any]], None] = lambda m: m["builder.language"].identify("warm the models " * 8)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        old = load_side(base_tree(args.base_rev, Path(tmp)))
        new = load_side(ROOT)
        for side in (old, new):
            with using(side):
                warm(side)
        sets = {"traces": trace_batches(args.limit)} if args.limit != 0 else {}
        if args.work:
            with using(new):
                sets["work"] = work_batches(args.work)
        out: dict[str, Any] = {"base_rev": args.base_rev}
        for name, batches in sets.items():
            out[name] = compare(name, batches, old, new, args.rounds)
            print(name, out[name], flush=True)
    old_s = sum(v["old_cpu_s"] for v in out.values() if isinstance(v, dict))
    new_s = sum(v["new_cpu_s"] for v in out.values() if isinstance(v, dict))
    out.update(old_cpu_s=round(old_s, 3), new_cpu_s=round(new_s, 3), speedup=round(old_s / new_s, 3), same=True)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
