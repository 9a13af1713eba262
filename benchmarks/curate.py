"""Benchmark: the whole curate stage on a 1M-prompt corpus built from real prompts.

Corpus (benchmarks/near_dedupe.py's generator, real prompts from ../shared/corpus) plus:
- exact duplicates (case / whitespace changes of an existing row) → must go (exact_dup);
- near duplicates (word edits, punctuation, casing, whitespace; Chinese character edits)
  → must go (near_dup), each to a row of its own family;
- number-only variants → must stay (different problems);
- benchmark leaks: GSM8K-test / HumanEval / MMLU-test / MT-Bench items, verbatim or wrapped
  in an instruction → must go (contaminated).

The stage runs exactly as `answer-distill curate` does (read → exact → MinHash → decontaminate
→ balance, ledger written). The baseline is datatrove's default MinHash configuration
(spaCy words, 5-grams, 14×8 bands, numbers normalized) on a subsample, in the same process,
compared per prompt: `speedup_vs_datatrove_defaults` = our end-to-end prompts/s ÷ its
near-dedupe-only prompts/s.

Usage: python benchmarks/curate.py [--n 1000000] [--quick] [--baseline-n 10000]
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from near_dedupe import datatrove_defaults, make_corpus, peak_rss_mb, write_shards  # noqa: E402

from builder.curate.near_dedupe import near_dedupe  # noqa: E402
from builder.curate.stage import run_curate  # noqa: E402
from builder.executors import ExecutorConfig  # noqa: E402
from builder.recipe import load_recipe  # noqa: E402
from builder.workdir import WorkDir  # noqa: E402

BENCH = ROOT / "data/benchmarks"
LEAK_SOURCES = [("gsm8k_test.jsonl", "question"), ("humaneval.jsonl", "prompt"),
                ("mmlu_test.jsonl", "question"), ("mt_bench.jsonl", "turns")]
WRAPS = ["{}", "Please solve the following problem.\n\n{}", "{}\n\nExplain your reasoning.", "Q: {}\nA:"]


def leaks(n: int, rng: random.Random) -> list[str]:
    items: list[str] = []
    for name, field in LEAK_SOURCES:
        for line in (BENCH / name).open(encoding="utf-8"):
            v = json.loads(line)[field]
            text = v[0] if isinstance(v, list) else v
            if len(text.split()) >= 12:  # long enough to hold the 8-grams the rule looks for
                items.append(text)
    return [rng.choice(WRAPS).format(t) for t in rng.sample(items, n)]


def build(n: int, seed: int, out: Path) -> tuple[list[dict], list[int], list[str]]:
    """Rows {id, text, lang} plus each row's family and kind; written as one JSONL source."""
    rng = random.Random(seed + 1)
    n_exact, n_leak = n // 50, max(10, n // 1000)
    rows, truth = make_corpus(n - n_exact - n_leak, seed)
    family, kind = list(truth.family), list(truth.kind)
    next_family = max(family) + 1
    for _ in range(n_exact):
        i = rng.randrange(len(rows))
        t = rows[i]["text"]
        t = t.upper() if rng.random() < 0.5 else "  " + t.replace(" ", "   ") + "\n"
        rows.append({"id": f"x{len(rows):015x}", "text": t, "lang": rows[i]["lang"]})
        family.append(family[i])
        kind.append("exact_dup")
    for t in leaks(n_leak, rng):
        rows.append({"id": f"l{len(rows):015x}", "text": t, "lang": "en"})
        family.append(next_family)
        next_family += 1
        kind.append("leak")
    with out.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return rows, family, kind


def recipe_for(src: Path, folder: Path, start_method: str = "forkserver") -> Path:
    data = {
        "name": "bench",
        "version": "0.0.1",
        "sources": [{"name": "bench", "path": str(src), "fields": {"prompt": "text", "id": "id", "language": "lang"}}],
        "curate": {
            "decontaminate": {"benchmarks": [
                {"name": "gsm8k", "path": str(BENCH / "gsm8k_test.jsonl"), "text_fields": ["question"], "id_field": "id"},
                {"name": "humaneval", "path": str(BENCH / "humaneval.jsonl"), "text_fields": ["prompt"], "id_field": "id"},
                {"name": "mmlu", "path": str(BENCH / "mmlu_test.jsonl"), "text_fields": ["question"], "id_field": "id"},
                {"name": "mt_bench", "path": str(BENCH / "mt_bench.jsonl"), "text_fields": ["turns"], "id_field": "id"},
                {"name": "ifeval", "path": str(BENCH / "ifeval.jsonl"), "text_fields": ["prompt"], "id_field": "id"},
                {"name": "math500", "path": str(BENCH / "math500.jsonl"), "text_fields": ["problem"], "id_field": "id"},
            ]},
        },
        "executor": {"kind": "local", "tasks": 2, "workers": 2, "start_method": start_method},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def scores(work: Path, rows: list[dict], family: list[int], kind: list[str]) -> dict[str, float]:
    by_id = {r["id"]: i for i, r in enumerate(rows)}
    led = pq.read_table(work / "curate/ledger.parquet", columns=["step", "status", "reason", "source_row_id", "prompt_id", "detail"]).to_pydict()
    pid_row: dict[str, int] = {}
    for step, rid, pid in zip(led["step"], led["source_row_id"], led["prompt_id"]):
        if step == "read" and pid:
            pid_row[pid] = by_id[rid]
    removed: dict[int, tuple[str, str]] = {}
    for reason, rid, detail in zip(led["reason"], led["source_row_id"], led["detail"]):
        if reason:
            removed[by_id[rid]] = (reason, detail)
    dup_kinds = {"near_dup", "zh_dup", "short_dup", "exact_dup"}
    planted = [i for i, k in enumerate(kind) if k in dup_kinds]
    found = sum(1 for i in planted if removed.get(i, ("",))[0] in ("near_dup", "exact_dup"))
    merged = [(i, d) for i, (r, d) in removed.items() if r in ("near_dup", "exact_dup")]
    right = sum(1 for i, d in merged if d in pid_row and family[pid_row[d]] == family[i])
    leak_rows = [i for i, k in enumerate(kind) if k == "leak"]
    # A leak is caught when it is not in the output: dropped as contaminated, or as a duplicate
    # of another leak (MMLU repeats some questions verbatim) that was itself dropped.
    caught = sum(1 for i in leak_rows if i in removed and removed[i][0] != "over_quota")
    how = {}
    for i in leak_rows:
        r = removed.get(i, ("kept",))[0]
        how[r] = how.get(r, 0) + 1
    print("leaks by fate:", how)
    numbers = [i for i, k in enumerate(kind) if k == "number_variant"]
    return {
        "near_dup_recall": found / len(planted),
        "near_dup_precision": right / len(merged) if merged else 1.0,
        "contamination_recall": caught / len(leak_rows),
        "number_variants_kept": sum(1 for i in numbers if i not in removed) / max(1, len(numbers)),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 prompts, under a minute")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-method", default="forkserver", choices=["forkserver", "fork", "spawn"])
    ap.add_argument("--baseline-n", type=int, default=10_000, help="subsample for datatrove's defaults (~600 prompts/s)")
    args = ap.parse_args(argv)
    n = 100_000 if args.quick else args.n
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        rows, family, kind = build(n, args.seed, folder / "prompts.jsonl")
        print(f"corpus: {len(rows):,} prompts in {time.perf_counter() - t0:.1f}s; "
              + ", ".join(f"{k} {kind.count(k):,}" for k in sorted(set(kind))))
        recipe = load_recipe(recipe_for(folder / "prompts.jsonl", folder, args.start_method))
        t0 = time.perf_counter()
        res = run_curate(recipe, WorkDir(folder / "work"))
        secs = time.perf_counter() - t0
        rss = max(peak_rss_mb())  # this process (holds the corpus) or its largest worker
        print("step seconds:", res.step_seconds)
        for step, n_in, kept, dropped in res.steps:
            print(f"  {step:14s} in {n_in:>9,} kept {kept:>9,} dropped {dict(dropped)}")
        sc = scores(folder / "work", rows, family, kind)
        ours_pps = len(rows) / secs
        print(f"ours: {ours_pps:,.0f} prompts/s end to end ({secs:.1f}s), peak RSS {rss:,.0f} MB, {sc}")
        speedup = None
        m = min(args.baseline_n, len(rows))
        sub = folder / "sub"
        write_shards(rows[:m], sub)
        try:
            t1 = time.perf_counter()
            near_dedupe(sub, folder / "base", datatrove_defaults(), ExecutorConfig(tasks=2, workers=2, skip_completed=False))
            base_pps = m / (time.perf_counter() - t1)
            speedup = ours_pps / base_pps
            print(f"datatrove defaults (near-dedupe only, {m:,} prompts): {base_pps:,.0f} prompts/s")
        except ImportError as e:  # the default tokenizer needs spaCy
            print(f"datatrove defaults could not run: {e}")
    out = {
        "prompts": len(rows),
        "prompts_per_s": round(ours_pps, 1),
        "wall_s": round(secs, 1),
        "peak_rss_mb": round(rss, 1),
        "near_dup_recall": round(sc["near_dup_recall"], 5),
        "near_dup_precision": round(sc["near_dup_precision"], 5),
        "contamination_recall": round(sc["contamination_recall"], 5),
        "number_variants_kept": round(sc["number_variants_kept"], 5),
        "speedup_vs_datatrove_defaults": round(speedup, 2) if speedup else None,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
