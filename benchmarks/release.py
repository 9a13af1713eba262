"""Benchmark: the release stage (quality gates + Hub folder) on paper-scale variant shards.

Workload: N rows x 3 variants (answer ~1.5 kB, think_summary ~2 kB, full ~13.5 kB of
assistant text, built by repeating real DeepSeek-R1 traces from data/sample/pcmb_traces.jsonl),
written shard by shard as the variants stage writes them. Then, each in a fresh process so
peak RSS is the stage's own:

  release    run_release: read every shard, GX suites, stats, figures, card, manifest
  load back  verify_release (sha256 of every file, counts) + load_dataset of configs
  baseline   what Dataset.push_to_hub does to make its parquet shards (Dataset from the
             same shards, embed_table_storage map, shard(contiguous) + to_parquet at
             500 MB), into a local folder, on the same data subset as a release rerun;
             bounded by --baseline-timeout (60 s): past it, stopped and reported with the reason

What is timed, on each side (both exclude their own module imports: the release's
`builder.release.stage`, which imports `datasets`, and the baseline's `datasets`):
  release    everything run_release does from the variants' parquet shards on disk: decoding
             them, GX (its import, ~3 CPU-s, and its validations, in the GX process the release
             starts), matplotlib's import and the figures, card, manifest. CPU seconds are the
             whole tree's: every thread of the release's process plus its reaped children.
  baseline   the conversion only, from a Dataset already decoded into datasets' Arrow cache;
             Dataset.from_parquet (decoding the same shards) is reported apart, and
             `cpu_speedup_vs_push_to_hub_from_shards` counts it (both sides from the same shards).
So at small sizes the release's fixed costs (GX's import and validations, matplotlib: ~7 CPU-s,
`gx_import_cpu_s` and `subset_release_gx_process_cpu_s`) outweigh the baseline's whole
conversion (~2 CPU-s at --quick's 12,000 rows x 3); the per-row costs decide the full run.

Prints figures, then one JSON object as the last line: the speedup in wall time and, steadier
on a shared machine, in CPU seconds. `--quick` finishes in under 60 s on an idle machine.
Usage: python benchmarks/release.py [--quick] [--rows N] [--keep DIR [--reuse]]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bounded import bounded  # noqa: E402

VARIANTS = ("answer", "think_summary", "full")
THINK_CHARS, ANSWER_CHARS, SUMMARY_CHARS = 12_000, 1_500, 500


def _pools(size: int = 1_500, seed: int = 0) -> dict[str, list[str]]:
    """`size` distinct texts of realistic length, drawn word by word from real R1 traces.

    Word sampling keeps the vocabulary and length of real traces while making each text
    distinct, so zstd cannot shrink a page by matching whole repeated traces (repeating
    traces verbatim compressed 13x, real text compresses ~3x)."""
    import numpy as np

    rows = [json.loads(line) for line in (ROOT / "data/sample/pcmb_traces.jsonl").read_text().splitlines()]
    rng = np.random.default_rng(seed)
    think_words = np.array(" ".join(r["reasoning"] for r in rows).split())
    answer_words = np.array(" ".join(r["answer_text"] for r in rows).split())

    def draw(words: np.ndarray, chars: int) -> str:
        n = max(1, chars // 6)  # ~6 chars per word with its space
        return " ".join(words[rng.integers(0, len(words), n)])[:chars]

    think = [draw(think_words, THINK_CHARS) for _ in range(size)]
    answer = [draw(answer_words, ANSWER_CHARS) for _ in range(size)]
    return {
        "prompt": [rows[i % len(rows)]["question"] for i in range(size)],
        "answer": answer,
        "think_summary": [t[:SUMMARY_CHARS] + "\n\n" + a for t, a in zip(think, answer)],
        "full": [f"<think>\n{t}\n</think>\n\n{a}" for t, a in zip(think, answer)],
    }


def _shard(variant: str, start: int, n: int, pools: dict[str, list[str]]) -> Any:
    import pyarrow as pa

    from builder.rows import VARIANT_FEATURES, provenance_defaults

    P = len(pools["prompt"])
    ids = [f"{i:032x}" for i in range(start, start + n)]
    prompts = [f"[{i}] {pools['prompt'][i % P]}" for i in range(start, start + n)]
    replies = [pools[variant][(i * 7) % P] for i in range(start, start + n)]
    contents = [x for pair in zip(prompts, replies) for x in pair]
    roles = pa.array(["user", "assistant"] * n)
    schema = VARIANT_FEATURES.arrow_schema
    calls_type = schema.field("messages").type.value_type.field("tool_calls").type
    messages = pa.ListArray.from_arrays(
        pa.array(range(0, 2 * n + 1, 2), pa.int32()),
        pa.StructArray.from_arrays([roles, pa.array(contents, pa.large_string()).cast(pa.string()),
                                    pa.nulls(2 * n, calls_type)],
                                   names=["role", "content", "tool_calls"]))
    prov = provenance_defaults()

    def const(v: Any, t: Any = None) -> Any:
        return pa.array([v] * n, t or pa.string())

    student = [len(r) // 4 + len(p) // 4 + 15 for p, r in zip(prompts, replies)]
    cols = {
        "prompt_id": pa.array(ids), "variant": const(variant), "messages": messages, "tools": pa.nulls(n, schema.field("tools").type),
        "category": pa.array(["math" if i % 3 == 0 else "chat" for i in range(start, start + n)]),
        "language": const("en"), "num_turns": const(1, pa.int32()),
        "generation_id": pa.array([f"g{x}" for x in ids]), "teacher_model": const("deepseek-reasoner"),
        "endpoint_kind": const("openai"), "prompt_template_id": const("r1_think_answer@1"),
        "prompt_template_hash": const("0123456789abcdef"),
        "summarizer": const("extractive" if variant == "think_summary" else None),
        "summary_template_id": const(None), "summary_template_hash": const(None),
        "reply_shape": const("reasoning_content"), "verify_status": const("pass"), "verify_method": const("mcq"),
        "verify_reason": const(""), "quality_codes": const([], pa.list_(pa.string())),
        "repetition_score": const(0.01, pa.float32()), "think_language": const("en"), "answer_language": const("en"),
        "teacher_think_tokens": const(THINK_CHARS // 4, pa.int32()),
        "teacher_answer_tokens": const(ANSWER_CHARS // 4, pa.int32()),
        "student_tokens": pa.array(student, pa.int32()),
        "assistant_student_tokens": pa.array([len(r) // 4 for r in replies], pa.int32()),
        "source": pa.array([f"src-{i % 5}" for i in range(start, start + n)]), "source_license": const("mit"),
        "source_row_id": pa.array([str(i) for i in range(start, start + n)]),
        "schema_version": const(prov["schema_version"]), "toolkit_version": const(prov["toolkit_version"]),
    }
    cols.update({f.name: pa.nulls(n, f.type) for f in schema if f.name not in cols})  # e.g. summary scores
    return pa.table({f.name: cols[f.name] for f in schema}, schema=schema)


def generate(work: Path, rows: int, shard_rows: int) -> dict[str, int]:
    """Write <work>/variants/<v>/part-*.parquet one shard at a time (bounded memory)."""
    import pyarrow.parquet as pq

    from builder import tables
    from builder.tables import CurateSummary, VariantsSummary
    from builder.variants.registry import declare
    from builder.workdir import WorkDir

    pools = _pools()
    arrow_bytes = {}
    for v in VARIANTS:
        out = WorkDir(work).path(tables.variant(v))
        out.mkdir(parents=True, exist_ok=True)
        total = 0
        for k, start in enumerate(range(0, rows, shard_rows)):
            t = _shard(v, start, min(shard_rows, rows - start), pools)
            total += t.nbytes
            pq.write_table(t, out / f"part-{k:05d}.parquet", compression="zstd")  # as workdir.write_shards
        arrow_bytes[v] = total
    WorkDir(work).write_summary(CurateSummary.model_validate({  # what the release reads: mix, benchmarks
        "recipe": "release-benchmark", "version": "0.1.0", "recipe_sha256": "", "rows_in": 5, "rows_out": 5,
        "steps": [], "category_quota": {}, "warnings": [], "seconds": 0.0, "step_seconds": {},
        "balance": [{"category": c, "source": f"src-{s}", "before": 1, "after": 1} for c in ("chat",) for s in range(5)]
        + [{"category": "math", "source": "src-0", "before": 0, "after": 0}],
        "decontamination": {"benchmarks": ["gsm8k", "mmlu"], "skipped_absent": []}}))
    WorkDir(work).write_summary(VariantsSummary(  # what the release reads: which variants, their specs
        counts=dict.fromkeys(VARIANTS, rows), absent={}, summarizer="extractive", variants=list(VARIANTS),
        specs=declare(VARIANTS), seconds=0.0))
    for stage in ("curate", "variants"):
        WorkDir(work).mark_complete(stage)  # as finished runs leave them (the release refuses half-written ones)
    return arrow_bytes


RECIPE = """name: release-benchmark
version: 0.1.0
sources:
  - {name: src-0, path: x.jsonl, fields: {prompt: q}, license: mit, attribution: "benchmark rows"}
student: {max_tokens: 16384}
quality: {mix: {tolerance: 1.0}}
"""


def _in_child(fn: Any, *args: Any) -> dict[str, Any]:
    """Run fn in a fresh process; returns its result plus its own peak RSS (MB)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, fn, args))
    p.start()
    out = q.get()
    p.join()
    if "error" in out:
        raise RuntimeError(out["error"])
    return out


def _own_peak_rss_mb() -> float:
    """This process's own peak RSS. Linux's ru_maxrss carries the parent's peak across
    fork+exec, so it would report the generator's memory; VmHWM is the new image's own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(q: Any, fn: Any, args: tuple[Any, ...]) -> None:
    try:
        res = fn(*args)
        res["peak_rss_mb"] = _own_peak_rss_mb()
        q.put(res)
    except Exception as e:  # report, don't hang the parent
        q.put({"error": f"{type(e).__name__}: {e}"})


def do_release(work: str, recipe_path: str, out: str) -> dict[str, Any]:
    from memtree import TreePeak, reaped_cpu_s

    from builder.recipe import load_recipe
    from builder.release.stage import run_release

    with TreePeak() as tree:
        t0, c0, k0 = time.perf_counter(), time.process_time(), reaped_cpu_s()
        res = run_release(load_recipe(recipe_path), Path(work), Path(out))
        seconds, own, kids = time.perf_counter() - t0, time.process_time() - c0, reaped_cpu_s() - k0
    # CPU of the whole tree: this process (every thread) plus its reaped children (the GX process).
    return {"seconds": seconds, "cpu_s": own + kids, "children_cpu_s": kids, "tree_peak_rss_mb": tree.mb,
            "counts": res.counts, "bytes_in": res.bytes_in}


def do_fixed_imports() -> dict[str, Any]:
    """CPU seconds of what every release imports whatever its size (GX for the gates, matplotlib
    for the figures), in a fresh process after what the release's own modules import: the floor
    under release_s at small sizes."""
    import builder.release.stage  # noqa: F401  (imported before the release's clock starts)

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    c0 = time.process_time()
    import great_expectations  # noqa: F401
    c1 = time.process_time()
    from matplotlib import figure  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401
    return {"gx_import_cpu_s": c1 - c0, "matplotlib_import_cpu_s": time.process_time() - c1}


def do_load_back(out: str, configs: list[str], cache: str) -> dict[str, Any]:
    import datasets

    from builder.release.manifest import verify_release

    datasets.disable_progress_bars()
    t0 = time.perf_counter()
    problems = verify_release(Path(out))
    t_verify = time.perf_counter() - t0
    rows = {}
    for c in configs:
        rows[c] = datasets.load_dataset(out, c, cache_dir=cache)["train"].num_rows
    return {"seconds": time.perf_counter() - t0, "verify_s": t_verify, "problems": problems, "rows": rows}


def do_baseline(work: str, out: str, cache: str) -> dict[str, Any]:
    """push_to_hub's parquet conversion (datasets' own code path), into a local folder."""
    import datasets
    from datasets.table import embed_table_storage
    from datasets.utils.py_utils import convert_file_size_to_int

    datasets.disable_progress_bars()
    convert_s = load_s = convert_cpu = load_cpu = 0.0
    nbytes = 0
    for v in VARIANTS:
        files = sorted(str(p) for p in (Path(work) / "variants" / v).glob("part-*.parquet"))
        t0, c0 = time.perf_counter(), time.process_time()
        ds = datasets.Dataset.from_parquet(files, cache_dir=cache)  # push_to_hub starts from a Dataset
        load_s += time.perf_counter() - t0
        load_cpu += time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        nbytes += ds.data.nbytes
        num_shards = int(ds.data.nbytes / convert_file_size_to_int(datasets.config.MAX_SHARD_SIZE)) + 1
        (Path(out) / v).mkdir(parents=True, exist_ok=True)
        for i in range(num_shards):
            shard = ds.shard(num_shards=num_shards, index=i, contiguous=True).with_format("arrow")
            shard = shard.map(embed_table_storage, batched=True, batch_size=1000, keep_in_memory=True)
            shard.to_parquet(str(Path(out) / v / f"train-{i:05d}-of-{num_shards:05d}.parquet"), batch_size=1000)
        convert_s += time.perf_counter() - t0
        convert_cpu += time.process_time() - c0
    # Only the conversion counts as the baseline; building the Dataset is reported apart.
    return {"seconds": convert_s, "cpu_s": convert_cpu, "dataset_from_parquet_s": load_s,
            "dataset_from_parquet_cpu_s": load_cpu, "arrow_bytes": nbytes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (< 60 s)")
    ap.add_argument("--rows", type=int, default=None, help="rows per variant (default 1,300,000; quick 12,000)")
    ap.add_argument("--shard-rows", type=int, default=20_000)
    ap.add_argument("--subset-shards", type=int, default=0,
                    help="shards per variant for the baseline comparison (0: all, reusing the main release run)")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: reuse the variant shards a previous run of the same size left there")
    ap.add_argument("--baseline-timeout", type=float, default=60.0,
                    help="seconds the push_to_hub baseline may run before it is stopped and reported")  # fmt: skip
    args = ap.parse_args()
    rows = args.rows or (12_000 if args.quick else 1_300_000)
    shard_rows = min(args.shard_rows, 4_000) if args.quick else args.shard_rows
    base = args.keep or Path(tempfile.mkdtemp(prefix="release-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    try:
        recipe = base / "recipe.yaml"
        recipe.write_text(RECIPE)
        t0 = time.perf_counter()
        made = base / f"generated-{rows}-{shard_rows}.json"  # what a kept folder holds
        if args.reuse and args.keep and made.is_file() and (base / "work").is_dir():
            arrow_bytes = json.loads(made.read_text())
        else:
            made.unlink(missing_ok=True)
            shutil.rmtree(base / "work", ignore_errors=True)
            arrow_bytes = generate(base / "work", rows, shard_rows)
            made.write_text(json.dumps(arrow_bytes))
        for old in ("release", "subset-release", "baseline", "hf-cache", "hf-cache-baseline", "subset"):
            shutil.rmtree(base / old, ignore_errors=True)  # a kept folder's earlier run
        gen_s = time.perf_counter() - t0
        total_mb = sum(arrow_bytes.values()) / 1e6
        disk_mb = sum(p.stat().st_size for p in (base / "work").rglob("*.parquet")) / 1e6
        print(f"generated {rows:,} rows x {len(VARIANTS)} variants: {total_mb:,.0f} MB Arrow, "
              f"{disk_mb:,.0f} MB parquet, {gen_s:.1f}s", flush=True)

        rel = _in_child(do_release, str(base / "work"), str(recipe), str(base / "release"))
        mbps = total_mb / rel["seconds"]
        print(f"release: {rel['seconds']:.1f}s, {rel['cpu_s']:.1f} CPU-s ({rel['children_cpu_s']:.1f} in its GX process), "
              f"{mbps:,.0f} MB/s, peak RSS {rel['tree_peak_rss_mb']:,.0f} MB (tree; its own process "
              f"{rel['peak_rss_mb']:,.0f} MB)", flush=True)

        fixed = _in_child(do_fixed_imports)
        print(f"fixed imports: GX {fixed['gx_import_cpu_s']:.2f} CPU-s, matplotlib "
              f"{fixed['matplotlib_import_cpu_s']:.2f} CPU-s", flush=True)

        configs = list(VARIANTS) if args.quick else ["answer"]
        back = _in_child(do_load_back, str(base / "release"), configs, str(base / "hf-cache"))
        assert not back["problems"], back["problems"]
        assert all(n == rows for n in back["rows"].values()), back["rows"]
        print(f"load back: verify_release {back['verify_s']:.1f}s + load_dataset {configs} "
              f"{back['seconds'] - back['verify_s']:.1f}s", flush=True)

        # Same data for both sides: everything, or the first shards of each variant.
        if args.subset_shards:
            sub = base / "subset"
            for v in VARIANTS:
                (sub / "variants" / v).mkdir(parents=True, exist_ok=True)
                for p in sorted((base / "work" / "variants" / v).glob("part-*.parquet"))[: args.subset_shards]:
                    shutil.copyfile(p, sub / "variants" / v / p.name)
            shutil.copytree(base / "work" / "curate", sub / "curate")
            ours = _in_child(do_release, str(sub), str(recipe), str(base / "subset-release"))
        else:
            sub, ours = base / "work", rel
        theirs = bounded(do_baseline, str(sub), str(base / "baseline"), str(base / "hf-cache-baseline"),
                         timeout_s=args.baseline_timeout)  # fmt: skip
        if "error" in theirs:
            print(f"push_to_hub conversion baseline could not run: {theirs['error']}", flush=True)
            theirs = {"seconds": float("nan"), "dataset_from_parquet_s": float("nan"), "arrow_bytes": 0,
                      "dataset_from_parquet_cpu_s": float("nan"), "error": theirs["error"]}  # fmt: skip
            sub_mb, speedup = 0.0, None
        else:
            sub_mb = theirs["arrow_bytes"] / 1e6
            speedup = theirs["seconds"] / ours["seconds"]
            print(f"subset {sub_mb:,.0f} MB: release {ours['seconds']:.1f}s ({sub_mb / ours['seconds']:,.0f} MB/s) vs "
                  f"push_to_hub conversion {theirs['seconds']:.1f}s ({sub_mb / theirs['seconds']:,.0f} MB/s)",
                  flush=True)  # fmt: skip
        result = {
            "rows_per_variant": rows, "variants": len(VARIANTS), "arrow_mb": round(total_mb, 1),
            "parquet_mb": round(disk_mb, 1), "release_s": round(rel["seconds"], 2),
            "write_validate_mb_per_s": round(mbps, 1), "load_back_s": round(back["seconds"], 2),
            # The release's whole process tree (it and its GX process), sampled; then its own process alone.
            "peak_rss_mb": round(rel["tree_peak_rss_mb"], 1), "release_process_peak_rss_mb": round(rel["peak_rss_mb"], 1),
            "load_back_peak_rss_mb": round(back["peak_rss_mb"], 1),
            "subset_mb": round(sub_mb, 1), "subset_release_s": round(ours["seconds"], 2),
            "push_to_hub_conversion_s": None if speedup is None else round(theirs["seconds"], 2),
            "baseline_dataset_from_parquet_s": None if speedup is None else round(theirs["dataset_from_parquet_s"], 2),
            "speedup_vs_push_to_hub_conversion": None if speedup is None else round(speedup, 2),
            # The same ratio in CPU seconds (every thread): steadier than wall time on a shared machine.
            "subset_release_cpu_s": round(ours["cpu_s"], 2), "subset_release_gx_process_cpu_s": round(ours["children_cpu_s"], 2),
            "push_to_hub_conversion_cpu_s": None if speedup is None else round(theirs["cpu_s"], 2),
            "cpu_speedup_vs_push_to_hub_conversion": None if speedup is None else round(theirs["cpu_s"] / ours["cpu_s"], 2),
            # The release decodes the variants' parquet inside its time; the conversion above starts from a
            # Dataset already decoded into datasets' Arrow cache. From the same shards on disk, push_to_hub
            # pays Dataset.from_parquet too: this ratio counts it (CPU seconds, steadier than wall).
            "baseline_dataset_from_parquet_cpu_s": None if speedup is None else round(theirs["dataset_from_parquet_cpu_s"], 2),
            "cpu_speedup_vs_push_to_hub_from_shards": None if speedup is None else round(
                (theirs["cpu_s"] + theirs["dataset_from_parquet_cpu_s"]) / ours["cpu_s"], 2),
            "baseline_note": theirs.get("error"),
            # Paid by every release whatever its size (inside subset_release_cpu_s): the floor at small sizes.
            "gx_import_cpu_s": round(fixed["gx_import_cpu_s"], 2),
            "matplotlib_import_cpu_s": round(fixed["matplotlib_import_cpu_s"], 2),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "wall_s": round(time.perf_counter() - t_all, 1),
        }
        print(json.dumps(result))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
