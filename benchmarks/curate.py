"""Benchmark: the whole curate stage on a 1M-prompt corpus built from real prompts.

Corpus (benchmarks/near_dedupe.py's generator, real prompts from ../shared/corpus) plus
benchmarks/adversarial.py's rows, each with the fate it must get:
- exact duplicates (case / whitespace changes of an existing row) → must go (exact_dup);
- near duplicates (word edits, punctuation, casing, whitespace; Chinese character edits),
  Unicode look-alikes of a row (full-width, digits, spaces, quotes, dashes, CJK punctuation,
  zero-width, NFD, mixed), "3个" ↔ "三个", CJK + Latin prompts with an edit → must go, each to
  a row of its own family;
- number changes (digits, full-width digits, Chinese numerals) → must stay;
- benchmark leaks of every benchmark the paper recipe names (GSM8K test, MATH-500, HumanEval,
  IFEval, MT-Bench, MMLU; GPQA-Diamond, AIME 24/25, AlignBench from ../shared): verbatim,
  embedded in a longer instruction, lightly edited → must go (contaminated); rephrased →
  scored apart;
- clean prompts: real prompts of non-benchmark sets (English and Chinese), look-alikes with a
  generic span of an item spliced in, IFEval boilerplate on other prompts → must stay.

The stage runs exactly as `answer-distill curate` does (read → exact → MinHash → decontaminate
→ balance, ledger written). Baselines measured in the same run: datatrove's default MinHash
configuration (spaCy words, 5-grams, 14×8 bands, numbers normalized) on a subsample
(`speedup_vs_datatrove_defaults`, needs spaCy), and the previous decontamination rule (any
one shared 8-gram, benchmarks/decontam_legacy.py) on the texts the stage decontaminated
(`decontam_speed_vs_legacy`). Decontamination precision and recall are also measured
directly on the whole adversarial set (every attributable item, all clean prompts), for the
new and the legacy rule; `--semantic` adds the optional embedding pass there, and its cost.
Scored apart there (benchmarks/adversarial_mcq.py): MMLU leaks with their choices reordered and
relabelled (`direct_reordered_mcq_recall`) and real MCQs of other sets (`direct_fp_clean_mcq`).

Usage: python benchmarks/curate.py [--n 1000000] [--quick] [--baseline-n 10000] [--semantic]
The last line printed is one JSON object. Timings on a shared machine are noisy: `step_cpu_s` (CPU
seconds per step, the whole process tree, sampled by benchmarks/memtree.py) and `prompts_per_cpu_s`
do not grow with the machine's load the way `step_s` and `prompts_per_s` do (on this project's VM they
still grow when its two vCPUs are busy at once). `cores_free_before_after`: how many of 2 cores two
spinning processes got just before and after the timed run (the VM does not always give both).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import adversarial as adv  # noqa: E402
import adversarial_mcq as adv_mcq  # noqa: E402
from decontam_legacy import LegacyIndex  # noqa: E402
from memtree import TreePeak, cores_free  # noqa: E402
from near_dedupe import datatrove_defaults, make_corpus, write_shards  # noqa: E402

from builder.curate.near_dedupe import near_dedupe  # noqa: E402
from builder.curate.stage import run_curate  # noqa: E402
from builder.executors import ExecutorConfig  # noqa: E402
from builder.recipe import load_recipe  # noqa: E402
from builder.workdir import WorkDir  # noqa: E402

LEAK_KINDS = ("leak_verbatim", "leak_embedded", "leak_edited")
CLEAN_KINDS = ("clean_real", "clean_lookalike", "clean_boilerplate")


def build(n: int, seed: int, out: Path) -> tuple[list[dict], list[int], list[str], list[str]]:
    """Rows {id, text, lang} plus each row's family, kind and source; written as one JSONL source."""
    rng = random.Random(seed + 1)
    n_exact, n_fold = n // 50, n // 25
    clean_n, per_class = n // 10, max(10, n // 2000)
    drows = adv.decontam_set(seed, per_class=per_class, clean_limit=clean_n)
    rows, truth = make_corpus(n - n_exact - n_fold - len(drows), seed)
    family, kind = list(truth.family), list(truth.kind)
    source = ["synthetic"] * len(rows)
    bases = [(family[i], r["text"], r["lang"]) for i, r in enumerate(rows) if kind[i] == "base"]
    en_vocab = [w for _, t, lang in bases[:5000] if lang == "en" for w in t.split() if w.isalpha()]
    zh_chars = [c for _, t, lang in bases[:5000] if lang == "zh" for c in t if "\u4e00" <= c <= "\u9fff"]
    next_family = max(family) + 1
    seen = {r["text"] for r in rows}

    def add(text: str, lang: str, fam: int, k: str, src: str) -> None:
        rows.append({"id": f"{k[0]}{len(rows):015x}", "text": text, "lang": lang})
        family.append(fam)
        kind.append(k)
        source.append(src)

    new_families: dict[tuple, int] = {}
    for key, text, lang, k in adv.dedupe_variants(bases, seed, n_fold, zh_chars, en_vocab):
        if text in seen:
            continue
        seen.add(text)
        if isinstance(key, tuple):  # a changed number: a new problem (one per base, place and value)
            key = new_families.setdefault(key, next_family + len(new_families))
        add(text, lang, key, k, "adversarial")
    next_family += len(new_families)
    for _ in range(n_exact):
        i = rng.randrange(len(rows))
        t = rows[i]["text"]
        t = t.upper() if rng.random() < 0.5 else "  " + t.replace(" ", "   ") + "\n"
        add(t, rows[i]["lang"], family[i], "exact_dup", source[i])
    for r in sorted(drows, key=lambda r: r.kind.startswith("leak")):  # clean rows first: they win ties
        add(r.text, r.lang, next_family, r.kind, r.source)
        next_family += 1
    with out.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return rows, family, kind, source


def recipe_for(src: Path, folder: Path, start_method: str = "forkserver") -> Path:
    benchmarks = [{"name": b.name, "path": str(b.path), "text_fields": list(b.fields), "id_field": b.id_field}
                  | ({"choice_fields": list(b.choice_fields)} if b.choice_fields else {})
                  for b in adv.benchmark_specs()]  # fmt: skip
    data = {
        "name": "bench",
        "version": "0.0.1",
        "sources": [{"name": "bench", "path": str(src), "fields": {"prompt": "text", "id": "id", "language": "lang"}}],
        "curate": {"decontaminate": {"benchmarks": benchmarks}},
        "executor": {"kind": "local", "tasks": 2, "workers": 2, "start_method": start_method},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _char_jaccard(a: str, b: str) -> float:
    import unicodedata

    def grams(t: str) -> set[str]:
        t = " ".join(unicodedata.normalize("NFKC", t).casefold().split())
        return {t[k : k + 3] for k in range(max(1, len(t) - 2))}

    x, y = grams(a), grams(b)
    return len(x & y) / max(1, len(x | y))


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 5) if den else None


def scores(work: Path, rows: list[dict], family: list[int], kind: list[str]) -> dict:
    by_id = {r["id"]: i for i, r in enumerate(rows)}
    led = pq.read_table(
        work / "curate/ledger.parquet", columns=["step", "reason", "source_row_id", "prompt_id", "detail"]
    ).to_pydict()
    pid_row: dict[str, int] = {}
    reached: set[int] = set()
    for step, rid, pid in zip(led["step"], led["source_row_id"], led["prompt_id"]):
        if step == "read" and pid:
            pid_row[pid] = by_id[rid]
        if step == "decontaminate":
            reached.add(by_id[rid])
    removed: dict[int, tuple[str, str]] = {}
    for reason, rid, detail in zip(led["reason"], led["source_row_id"], led["detail"]):
        if reason and rid in by_id:  # a quarantined row (empty after normalization) has no id of ours
            removed[by_id[rid]] = (reason, detail)
    dup = ("near_dup", "exact_dup")
    merged = {i: d for i, (r, d) in removed.items() if r in dup}
    right = {i: d in pid_row and family[pid_row[d]] == family[i] for i, d in merged.items()}
    # Rows of different families can still be real near duplicates: a look-alike is its host prompt
    # plus a span, a synthetic base can keep a short real prompt almost whole, real sets repeat
    # themselves. Judged by an independent measure (character 3-gram Jaccard of NFKC text).
    textual = {i: ok or (d in pid_row and _char_jaccard(rows[i]["text"], rows[pid_row[d]]["text"]) >= 0.5)
               for i, (ok, d) in ((i, (right[i], merged[i])) for i in merged)}  # fmt: skip
    per_class: dict[str, dict] = {}
    for k in sorted(set(kind) & (adv.MERGE_KINDS | {"near_dup", "zh_dup", "short_dup", "exact_dup"})):
        rows_k = [i for i, x in enumerate(kind) if x == k]
        found = sum(1 for i in rows_k if right.get(i))
        gone = [i for i in rows_k if i in merged]
        per_class[k] = {"n": len(rows_k), "recall": _rate(found, len(rows_k)),
                        "precision": _rate(sum(right[i] for i in gone), len(gone)) if gone else 1.0}  # fmt: skip
    kept = {}
    for k in sorted(set(kind) & (adv.KEEP_KINDS | {"number_variant"})):
        rows_k = [i for i, x in enumerate(kind) if x == k]
        # kept: not merged into another problem's row (two variants with the same new number are one)
        kept[k] = {"n": len(rows_k), "kept": _rate(sum(1 for i in rows_k if right.get(i, True)), len(rows_k))}
    leaks = {}
    for k in (*LEAK_KINDS, "leak_rephrased"):
        rows_k = [i for i, x in enumerate(kind) if x == k]
        caught = sum(1 for i in rows_k if i in removed and removed[i][0] != "over_quota")
        leaks[k] = {"n": len(rows_k), "recall": _rate(caught, len(rows_k)),
                    "as_contaminated": _rate(sum(1 for i in rows_k if removed.get(i, ("",))[0] == "contaminated"), len(rows_k))}  # fmt: skip
    clean = [i for i, x in enumerate(kind) if x in CLEAN_KINDS and i in reached]
    fp = [i for i in clean if removed.get(i, ("",))[0] == "contaminated"]
    zh = [i for i in clean if rows[i]["lang"] == "zh"]
    fp_zh = [i for i in fp if rows[i]["lang"] == "zh"]
    planted_dups = [i for i, x in enumerate(kind) if x in adv.MERGE_KINDS]
    all_leaks = [i for i, x in enumerate(kind) if x in LEAK_KINDS]
    return {
        "near_dup_recall": _rate(sum(1 for i in planted_dups if right.get(i)), len(planted_dups)),
        "near_dup_precision": _rate(sum(textual.values()), len(textual)) if textual else 1.0,
        "near_dup_precision_family": _rate(sum(right.values()), len(right)) if right else 1.0,
        "near_dup_min_class_recall": min(v["recall"] for v in per_class.values()),
        "near_dup_min_class_precision": min(v["precision"] for v in per_class.values()),
        "number_variants_kept": min(v["kept"] for v in kept.values()),
        "contamination_recall": _rate(
            sum(1 for i in all_leaks if i in removed and removed[i][0] != "over_quota"), len(all_leaks)
        ),
        "contamination_fp_clean": _rate(len(fp), len(clean)),
        "contamination_fp_clean_zh": _rate(len(fp_zh), len(zh)),
        "classes": per_class,
        "numbers": kept,
        "leaks": leaks,
        "clean_reached": len(clean),
    }


def direct_decontam(semantic: bool) -> dict:
    """Decontamination alone on the whole adversarial set: new rules, legacy rule, optional semantic pass."""
    from builder.config.curate import DecontamConfig
    from builder.curate.decontam import BenchmarkIndex

    rows = adv.decontam_set(0, per_class=300)
    texts = [r.text for r in rows]
    specs = adv.benchmark_specs()
    # scored apart: MMLU leaks with reordered, relabelled choices; real MCQs of other sets
    mcq_rows = adv_mcq.reordered_leaks(0, 400) + adv_mcq.clean_mcq(0, [t for b in specs for _, t in adv.load_items(b)])
    out: dict = {"rows": len(rows), "kinds": dict(Counter(r.kind for r in rows))}
    configs = [("new", DecontamConfig()), ("legacy", None)]
    if semantic:
        configs.append(("semantic", DecontamConfig(semantic={"enabled": True})))
    for name, cfg in configs:
        t0 = time.perf_counter()
        index = BenchmarkIndex(cfg) if cfg is not None else LegacyIndex()
        adv.add_items(index, specs, choices=cfg is not None)
        index.finish()
        t1 = time.perf_counter()
        hits = index.match_many(texts)
        t2 = time.perf_counter()
        res: dict = {
            "index_s": round(t1 - t0, 2),
            "match_s": round(t2 - t1, 2),
            "prompts_per_s": round(len(texts) / (t2 - t1), 1),
        }
        for k in sorted({r.kind for r in rows}):
            sel = [(r, h) for r, h in zip(rows, hits) if r.kind == k]
            for lang in ("en", "zh"):
                part = [(r, h) for r, h in sel if r.lang == lang]
                if part:
                    flagged = sum(h is not None for _, h in part)
                    res[f"{k}_{lang}"] = {"n": len(part), "flagged": flagged, "rate": _rate(flagged, len(part))}
        leak = [(r, h) for r, h in zip(rows, hits) if r.kind in LEAK_KINDS]
        res["leak_recall"] = _rate(sum(h is not None and h.benchmark == r.source for r, h in leak), len(leak))
        res["leak_recall_by_benchmark"] = {
            b: _rate(sum(h is not None and h.benchmark == r.source for r, h in leak if r.source == b),
                     sum(1 for r, _ in leak if r.source == b))
            for b in sorted({r.source for r, _ in leak})
        }  # fmt: skip
        clean = [(r, h) for r, h in zip(rows, hits) if r.kind in CLEAN_KINDS]
        res["fp_clean"] = _rate(sum(h is not None for _, h in clean), len(clean))
        zh = [(r, h) for r, h in clean if r.lang == "zh"]
        res["fp_clean_zh"] = _rate(sum(h is not None for _, h in zh), len(zh))
        reph = [(r, h) for r, h in zip(rows, hits) if r.kind == "leak_rephrased"]
        res["rephrased_recall"] = _rate(sum(h is not None for _, h in reph), len(reph))
        mcq_hits = index.match_many([r.text for r in mcq_rows])
        for k in ("leak_reordered", "clean_mcq"):
            sel = [h for r, h in zip(mcq_rows, mcq_hits) if r.kind == k]
            res[k] = {"n": len(sel), "flagged": sum(h is not None for h in sel),
                      "rate": _rate(sum(h is not None for h in sel), len(sel))}  # fmt: skip
        if name != "legacy":
            res["rules"] = dict(Counter(h.rule for h in hits if h is not None))
        if getattr(index, "semantic", None) is not None:
            res["semantic_work"] = index.semantic.stats
        out[name] = res
        print(f"decontam direct [{name}]: {json.dumps(res)}")
    return out


def legacy_speed(texts: list[str]) -> tuple[float, float]:
    """(new, legacy) prompts/s of decontamination alone on the same texts, one process each."""
    from builder.config.curate import DecontamConfig
    from builder.curate.decontam import BenchmarkIndex

    speeds = []
    for index in (BenchmarkIndex(DecontamConfig()), LegacyIndex()):
        adv.add_items(index, adv.benchmark_specs(), choices=isinstance(index, BenchmarkIndex))
        index.finish()
        t0 = time.perf_counter()
        index.match_many(texts)
        speeds.append(len(texts) / (time.perf_counter() - t0))
    return speeds[0], speeds[1]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 prompts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-method", default="forkserver", choices=["forkserver", "fork", "spawn"])
    ap.add_argument(
        "--baseline-n", type=int, default=10_000, help="subsample for datatrove's defaults (~600 prompts/s)"
    )
    ap.add_argument("--semantic", action="store_true", help="also run the embedding pass on the direct decontam set")
    ap.add_argument("--no-direct", action="store_true", help="skip the direct decontamination evaluation")
    args = ap.parse_args(argv)
    n = 100_000 if args.quick else args.n
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        rows, family, kind, _ = build(n, args.seed, folder / "prompts.jsonl")
        print(
            f"corpus: {len(rows):,} prompts in {time.perf_counter() - t0:.1f}s; "
            + ", ".join(f"{k} {kind.count(k):,}" for k in sorted(set(kind)))
        )
        recipe = load_recipe(recipe_for(folder / "prompts.jsonl", folder, args.start_method))
        free = [cores_free(2)]  # this VM's 2 vCPUs are not always both given: the speed's ceiling
        t0 = time.perf_counter()
        with TreePeak() as peak:  # the whole tree: this process (it holds the corpus) and every worker
            marks: list[tuple[str, float]] = []

            def mark(step: str, done: int | None = None, total: int | None = None) -> None:
                if done is None:  # a step starts (the stage's own tick): the tree's CPU so far
                    marks.append((step, peak.cpu_s()))

            res = run_curate(recipe, WorkDir(folder / "work"), mark)
            marks.append(("", peak.cpu_s()))
        secs = time.perf_counter() - t0
        free.append(cores_free(2))
        # CPU seconds per step, the whole process tree (load-independent, unlike step_s on a shared machine)
        step_cpu = {a: round(tb - ta, 2) for (a, ta), (_, tb) in zip(marks, marks[1:])}
        cpu_total = round(marks[-1][1] - marks[0][1], 1)
        rss = peak.mb
        print("step seconds:", res.step_seconds)
        print(f"step CPU seconds (process tree, {cpu_total}s in all):", step_cpu)
        for step, n_in, kept, dropped in res.steps:
            print(f"  {step:14s} in {n_in:>9,} kept {kept:>9,} dropped {dict(dropped)}")
        sc = scores(folder / "work", rows, family, kind)
        ours_pps = len(rows) / secs
        print(
            f"ours: {ours_pps:,.0f} prompts/s end to end ({secs:.1f}s), peak RSS {rss:,.0f} MB "
            f"(process tree, at most {peak.procs} processes)"
        )
        for key in ("classes", "numbers", "leaks"):
            print(f"{key}: {json.dumps(sc[key])}")
        reached = pq.read_table(folder / "work/curate/ledger.parquet", columns=["step", "source_row_id"]).to_pydict()
        by_id = {r["id"]: r["text"] for r in rows}
        dtexts = [by_id[r] for st, r in zip(reached["step"], reached["source_row_id"]) if st == "decontaminate"]
        new_pps, legacy_pps = legacy_speed(dtexts)
        print(
            f"decontaminate alone, one process, {len(dtexts):,} prompts: new {new_pps:,.0f}/s, "
            f"legacy rule {legacy_pps:,.0f}/s"
        )
        speedup = None
        m = min(args.baseline_n, len(rows))
        sub = folder / "sub"
        write_shards(rows[:m], sub)
        try:
            t1 = time.perf_counter()
            near_dedupe(
                sub, folder / "base", datatrove_defaults(), ExecutorConfig(tasks=2, workers=2, skip_completed=False)
            )
            base_pps = m / (time.perf_counter() - t1)
            speedup = ours_pps / base_pps
            print(f"datatrove defaults (near-dedupe only, {m:,} prompts): {base_pps:,.0f} prompts/s")
        except ImportError as e:  # the default tokenizer needs spaCy
            print(f"datatrove defaults could not run: {e}")
    direct = None if args.no_direct else direct_decontam(args.semantic)
    out = {
        "prompts": len(rows),
        "prompts_per_s": round(ours_pps, 1),
        "wall_s": round(secs, 1),
        "step_s": res.step_seconds,
        "step_cpu_s": step_cpu,
        "cpu_s": cpu_total,
        "prompts_per_cpu_s": round(len(rows) / cpu_total, 1),
        "peak_rss_mb": round(rss, 1),
        "max_processes": peak.procs,
        "near_dup_recall": sc["near_dup_recall"],
        "near_dup_precision": sc["near_dup_precision"],
        "near_dup_precision_family": sc["near_dup_precision_family"],
        "near_dup_min_class_recall": sc["near_dup_min_class_recall"],
        "near_dup_min_class_precision": sc["near_dup_min_class_precision"],
        "number_variants_kept": sc["number_variants_kept"],
        "contamination_recall": sc["contamination_recall"],
        "contamination_fp_clean": sc["contamination_fp_clean"],
        "contamination_fp_clean_zh": sc["contamination_fp_clean_zh"],
        "rephrased_recall": sc["leaks"]["leak_rephrased"]["recall"],
        "decontam_prompts_per_s": round(new_pps, 1),
        "decontam_speed_vs_legacy": round(new_pps / legacy_pps, 2),
        "speedup_vs_datatrove_defaults": round(speedup, 2) if speedup else None,
        "cores_free_before_after": free,
    }
    if direct is not None:
        new, old = direct["new"], direct["legacy"]
        out |= {
            "direct_rows": direct["rows"],
            "direct_leak_recall": new["leak_recall"],
            "direct_leak_recall_min_benchmark": min(new["leak_recall_by_benchmark"].values()),
            "direct_fp_clean": new["fp_clean"],
            "direct_fp_clean_zh": new["fp_clean_zh"],
            "direct_rephrased_recall": new["rephrased_recall"],
            "direct_reordered_mcq_recall": new["leak_reordered"]["rate"],
            "direct_fp_clean_mcq": new["clean_mcq"]["rate"],
            "legacy_leak_recall": old["leak_recall"],
            "legacy_fp_clean": old["fp_clean"],
            "legacy_fp_clean_zh": old["fp_clean_zh"],
        }
        if "semantic" in direct:
            sem = direct["semantic"]
            out |= {
                "semantic_rephrased_recall": sem["rephrased_recall"],
                "semantic_fp_clean": sem["fp_clean"],
                "semantic_fp_clean_zh": sem["fp_clean_zh"],
                "semantic_extra_s_per_1k_prompts": round((sem["match_s"] - new["match_s"]) / direct["rows"] * 1000, 2),
                "semantic_index_s": sem["index_s"],
                "semantic_embedded_texts": sem["semantic_work"]["embedded_items"]
                + sem["semantic_work"]["embedded_windows"],
            }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
