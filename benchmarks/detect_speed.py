"""Benchmark: the constraint detector's CPU per prompt, new code vs a baseline commit, same process.

`builder/constraints/detect.py::detect` runs on every prompt curate keeps (~0.84M of the 1M
benchmark). The baseline is the detector as it was at `--base` (default 97f5084, before the
single-pass literal finder), loaded from git into a private package so both run in this process on
the same prompts. Outputs must be identical: compared (gated, as curate calls it) on
(a) the curate benchmark's corpus prompts (benchmarks/curate.py's `build`, same seed),
(b) IFEval's 541 prompts (../shared/corpus/ifeval), (c) tests/fixtures/constraints_*.jsonl,
(d) a seeded mutation set: trigger literals, IFEval instruction sentences and Chinese phrases
inserted at random places, in mixed case, with look-alike letters (İ ı ſ K) that `re.I` folds.
Also compared: the new code's `gated=False` output with its gated one (the gates only skip work)
and with the baseline's `gated=False` one (`identical` needs all three); reported: the single-pass
literal finder against plain `in` tests (the alternative it replaced), µs per prompt.

Usage: python benchmarks/detect_speed.py [--n 100000] [--quick] [--mutants 20000] [--base REF] [--seed 0]
CPU figures are process CPU seconds (time.process_time), the two detectors run 2,000 prompts at a
time in turn; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from builder.constraints import detect as new  # noqa: E402
from builder.constraints.detect import LITERALS  # noqa: E402
from tests.corpus import corpus_dir  # noqa: E402

_FILES = ("checks", "detect", "detect_en", "detect_words", "detect_zh", "numbers", "spec")


def load_base(ref: str, into: Path) -> Any:
    """The detector at git `ref`, importable as `_det_base.constraints.detect` (imports rewritten)."""
    pkg = into / "_det_base" / "constraints"
    pkg.mkdir(parents=True)
    (into / "_det_base" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    for f in _FILES:
        src = subprocess.run(["git", "show", f"{ref}:builder/constraints/{f}.py"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        (pkg / f"{f}.py").write_text(src.replace("builder.constraints", "_det_base.constraints"))
    sys.path.insert(0, str(into))
    return importlib.import_module("_det_base.constraints.detect")


def fixture_prompts() -> list[str]:
    out = []
    for name in ("rephrased", "heldout"):
        lines = (ROOT / "tests" / "fixtures" / f"constraints_{name}.jsonl").read_text(encoding="utf-8").splitlines()
        out += [json.loads(x)["prompt"] for x in lines if x.strip()]
    return out


def ifeval_prompts() -> list[str]:
    p = corpus_dir() / "ifeval" / "input_data.jsonl"
    return [json.loads(x)["prompt"] for x in p.read_text(encoding="utf-8").splitlines() if x.strip()] if p.is_file() else []


_ODD = {"i": "İı", "I": "İı", "s": "ſ", "S": "ſ", "k": "K", "K": "K"}


def _recase(rng: random.Random, s: str) -> str:
    r = rng.random()
    if r < 0.25:
        return s.upper()
    if r < 0.4:
        return s.title()
    if r < 0.55:
        return "".join(c.upper() if rng.random() < 0.5 else c for c in s)
    if r < 0.7:
        return "".join(rng.choice(_ODD[c]) if c in _ODD and rng.random() < 0.5 else c for c in s)
    return s


def mutants(n: int, seed: int, bases: list[str], sentences: list[str], zh: list[str]) -> list[str]:
    """Prompts with trigger literals / instruction sentences / Chinese phrases inserted at random places."""
    rng = random.Random(seed)
    lits = sorted(LITERALS)
    out = []
    for _ in range(n):
        text = rng.choice(bases)
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            piece = rng.choice(lits) if r < 0.5 else rng.choice(sentences) if r < 0.8 else rng.choice(zh)
            piece = _recase(rng, piece)
            at = rng.randint(0, len(text))
            if rng.random() < 0.6:  # at a word boundary, most of the time
                sp = text.find(" ", at)
                at = len(text) if sp < 0 else sp + 1
            sep = rng.choice(["", " ", " ", "\n", ". ", ", "])
            text = text[:at] + piece + sep + text[at:]
        out.append(text)
    return out


def _detect_all(fn: Any, prompts: list[str]) -> list[Any]:
    """fn on each prompt; the exception instead where it raises (the baseline did on some look-alike letters)."""
    out: list[Any] = []
    for p in prompts:
        try:
            out.append(fn(p))
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


def _outputs(results: list[Any]) -> list[str]:
    """Each prompt's detections as JSON (order kept), or "raised <Error>"."""
    return [f"raised {type(r).__name__}" if isinstance(r, Exception) else json.dumps([c.as_dict() for c in r], ensure_ascii=False)
            for r in results]  # fmt: skip


def interleaved(old_fn: Any, new_fn: Any, prompts: list[str], chunk: int = 2_000) -> tuple[float, float, list[str], list[str]]:
    """CPU seconds of the baseline and the new detector over `prompts`, run chunk by chunk in turn (a
    shared machine's load then weighs on both alike), and their outputs (made outside the timing)."""
    t_old = t_new = 0.0
    res_old: list[Any] = []
    res_new: list[Any] = []
    for i in range(0, len(prompts), chunk):
        part = prompts[i : i + chunk]
        t = time.process_time()
        res_old += _detect_all(old_fn, part)
        t_old += time.process_time() - t
        t = time.process_time()
        res_new += _detect_all(new_fn, part)
        t_new += time.process_time() - t
    return t_old, t_new, _outputs(res_old), _outputs(res_new)


def literal_pass_cost(prompts: list[str]) -> dict[str, float]:
    """µs per prompt: the one-pass finder vs one `in` test per literal (what the rules did before)."""
    lows = [p.lower() for p in prompts]
    lits = sorted(LITERALS)
    t = time.process_time()
    a = [LITERALS.find(x) for x in lows]
    t_ac = time.process_time() - t
    t = time.process_time()
    b = [{w for w in lits if w in x} for x in lows]
    t_in = time.process_time() - t
    assert a == b, "literal finder disagrees with `in`"
    return {"finder_us": round(t_ac / len(lows) * 1e6, 2), "plain_in_us": round(t_in / len(lows) * 1e6, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="10k corpus prompts, 5k mutants")
    ap.add_argument("--mutants", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base", default="97f5084")
    a = ap.parse_args()
    if a.quick:
        a.n, a.mutants = 10_000, 5_000
    import curate as cb

    with tempfile.TemporaryDirectory() as td:
        old = load_base(a.base, Path(td))
        rows, *_ = cb.build(max(a.n, 1000), a.seed, Path(td) / "prompts.jsonl")
    corpus = [r["text"] for r in rows][: a.n]
    ife, fx = ifeval_prompts(), fixture_prompts()
    zh = [p for p in fx + corpus[:20_000] if any("\u4e00" <= c <= "\u9fff" for c in p)]
    zh = [z[i : i + 12] for z in zh for i in range(0, min(len(z), 60), 12)]
    sents = [s for p in ife + fx for s in new.detect_en.sentences(p) if len(s) < 200]
    muts = mutants(a.mutants, a.seed, corpus[:5000] + ife + fx, sents, zh)
    sets = {"corpus": corpus, "ifeval": ife, "fixtures": fx, "mutants": muts}
    figures: dict[str, Any] = {"bench": "detect_speed", "base": a.base}
    identical, diffs = True, []
    for name, prompts in sets.items():
        t_old, t_new, o, n_ = interleaved(old.detect, new.detect, prompts)
        raised = [i for i in range(len(prompts)) if o[i].startswith("raised")]
        bad = [i for i in range(len(prompts)) if o[i] != n_[i] and i not in raised]
        ung = _outputs(_detect_all(lambda p: new.detect(p, gated=False), prompts))
        ung_old = _outputs(_detect_all(lambda p: old.detect(p, gated=False), prompts))
        ungated = [i for i in range(len(prompts)) if ung[i] != n_[i]]
        ungated_base = [i for i in range(len(prompts)) if ung[i] != ung_old[i] and i not in raised]
        identical &= not bad and not ungated and not ungated_base
        diffs += [prompts[i][:200] for i in bad[:3]]
        figures.setdefault("base_raised_examples", []).extend(prompts[i][:120] for i in raised[:2])
        figures[name] = {"n": len(prompts), "differ": len(bad), "base_raised": len(raised),
                         "new_raised": sum(x.startswith("raised") for x in n_), "ungated_differ": len(ungated), "ungated_vs_base_differ": len(ungated_base),
                         "with_constraints": sum(x != "[]" for x in n_),
                         "old_us_per_prompt": round(t_old / max(1, len(prompts)) * 1e6, 2),
                         "new_us_per_prompt": round(t_new / max(1, len(prompts)) * 1e6, 2)}  # fmt: skip
        print(name, json.dumps(figures[name]), flush=True)
    figures["literal_pass"] = literal_pass_cost(corpus[:20_000])
    c = figures["corpus"]
    figures.update({"n": c["n"], "us_per_prompt_old": c["old_us_per_prompt"], "us_per_prompt_new": c["new_us_per_prompt"],
                    "ratio": round(c["old_us_per_prompt"] / max(c["new_us_per_prompt"], 1e-9), 2),
                    "identical": identical, "first_diffs": diffs})  # fmt: skip
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
