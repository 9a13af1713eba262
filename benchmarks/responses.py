"""Responses + variants throughput, end to end: the real stages vs a pandas + `re` baseline.

Headline workload (issue 4): a work dir of curated prompts and stored teacher replies, built
from the real curate stage on recipes/sample.yaml and the sample's real traces
(tests/fixtures/stages.py: DeepSeek-API pcmb MCQ with reasoning_content, R1 Bangla-MMLU inline
<think> MCQ, Marco-o1, o3-mini control answers, GSM8K R1-style replies with \\boxed{} against
the references, planted broken replies), replicated to --rows replies with unique prompt and
generation ids, written shard by shard. Then `run_responses` (parse, validate, verify) and
`run_variants` (all five variants, extractive summarizer) run exactly as `answer-distill
variants` runs them, in a fresh process whose peak RSS (self + workers) is measured.
Code replies are left out of the replicated set: sandboxed code verification is its own
figure (`code_tests_per_s`, MBPP / HumanEval canonical solutions).

The baseline does the same checks, verification and variant building the obvious way
(pandas, `re`, apply(), tokenizer.encode per text) on a prefix of the same replies, in the
same run; `speedup_vs_naive` compares replies per second. A parse + validate sub-figure on
the raw shared-corpus traces (load_real_traces) is kept as `parse_validate_replies_per_s`.

    python benchmarks/responses.py --quick          # 10,000 replies, < 60 s on 2 idle cores
    python benchmarks/responses.py [--rows 1300000]
    python benchmarks/responses.py --quick --only truncation   # the truncation keys alone (~1 min)

Truncation and language figures (issue: imported replies without a finish reason; vLLM's
reasoning shapes; language identification): the seeded adversarial corpus of
tests/fixtures/adversarial_replies.py (real R1 / Sky-T1 / Marco-o1 traces cut at token-like
boundaries in their thinking and in their answer, with a finish reason, with token counts at
the budget, with nothing but the text; clean replies; vLLM's misrouted answer) is judged by the
stage's own normalize + validate: `truncation_recall_*` (right code), `clean_truncation_reject_rate`
(a truncation code on a complete reply). `language_id_accuracy` / `language_label_accuracy`: rows
whose language their source states (English / Chinese / Bangla questions), strict identify()
and the rows' `language` label; `language_id_us_per_reply` against the script pass alone
(`script_pass_us_per_reply`), same run. Timings on a shared 2-core machine are noisy.

Scaling (issue 16): the same stages again as 1 task and as 2 tasks, back to back, on a work
dir of --scaling-rows replies (40,000; a task's start-up is paid once per run, so a small
workload measures the start-up). A task is one process, one core: no responses pool, no summary
processes (`variants.workers: 1`), the 1-task run in the driver alone, pinned to one core (CPU
affinity: the tokenizer's threads follow it, builder/cpus.py), the 2-task run on both; variants in 8 buckets in
both runs, so the two write the same rows (`scaling_same_outputs`: every table row for row).
Each count runs `--scaling-repeats` times (2), interleaved 1, 2, 1, 2, and its fastest run is its
figure, since a shared machine only ever slows a run down (every run's wall and CPU are in
`scaling_runs`). `scaling_2_tasks` is their wall-time ratio (read it beside `load_avg_1m`); `scaling_2_tasks_responses_idle_estimate` is what 2 idle cores
would give the responses stage, from each process's CPU (tasks in parallel, the rest serial).
CPU figures leave out the benchmark's own memory sampler (`sampler_cpu_s` of the stages' run).
`replies_per_cpu_s` counts every process of the tree; `variants_cpu_share` is the part of it
after responses. `--no-scaling` skips these runs. The `floor_*` keys (benchmarks/cpu_floor.py, same
work dir, this process) are what the published exact token counts and the extractive summaries
cost alone; `replies_per_cpu_s_ceiling` is the rate if nothing else cost anything.

The last line printed is one JSON object: replies_per_s, peak_rss_mb, speedup_vs_naive,
code_tests_per_s, rows, wall_s, …, truncation_recall_*, clean_truncation_reject_rate,
language_id_accuracy, language_id_us_per_reply.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bounded import bounded  # noqa: E402
from memtree import descendants  # noqa: E402

from builder import language, tables  # noqa: E402
from builder.generate.export import ROW_GROUP_ROWS  # noqa: E402
from builder.reasoning_format import PRESETS  # noqa: E402
from builder.responses.grammar import validate  # noqa: E402
from builder.responses.shapes import normalize  # noqa: E402
from builder.rows import REPLY_FEATURES  # noqa: E402
from builder.workdir import WorkDir, read_table  # noqa: E402
from tests.corpus import corpus_dir  # noqa: E402

CORPUS = corpus_dir()
# The truncation corpus's cuts are drawn with this seed; the rules were developed on seeds 0, 5 and
# 11 (the later ones on half A of benchmarks/truncation_split.py's traces only), so the reported
# figures come from draws they were not tuned on; truncation_split.py reports the held-out half.
HELD_OUT_SEED = 23
Row = dict[str, Any]


# ---------- workload ----------


def _read(rel: str) -> list[dict]:
    path = CORPUS / rel
    if not path.is_file():
        sys.exit(f"benchmarks/responses.py: {path} is missing; put shared/corpus beside the repo")
    with path.open(encoding="utf-8") as fh:
        if path.suffix == ".json":
            return json.load(fh)
        return [json.loads(line) for line in fh if line.strip()]


def _row(content: Any, prompt: str, fmt: str = "r1", **extra: Any) -> Row:
    row: Row = {"content": content, "reasoning_content": None, "reasoning": None, "finish_reason": None}
    row.update(extra, reasoning_format=fmt, prompt=prompt)
    return row


def load_real_traces() -> list[Row]:
    """Every staged real reply as a stored generation row (+ its prompt)."""
    rows: list[Row] = []
    for r in _read("r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl"):
        rows.append(_row(r["reason"] + "\n\n" + r["gen_ans"], r["formated_question"], finish_reason="stop"))
    for r in _read("r1-mmlupro-pcmb-traces/pcmb_traces.jsonl"):
        rows.append(_row(r["answer_text"], r["question"], reasoning_content=r["reasoning"], finish_reason="stop"))
    for r in _read("r1distill-llama8b-thinking-llms-interp/responses_deepseek-r1-distill-llama-8b.json"):
        text = r["full_response"].split("<｜Assistant｜>", 1)[1]
        rows.append(_row(text, r["question"], finish_reason="stop" if "</think>" in text else "length"))
    for name in ("math500_sky-t1-27b", "aime24_sky-t1-14b"):
        for r in _read(f"skythought-skyt1-outputs/{name}.jsonl"):
            rows.append(_row(r["code"][0], r["question"], "skythought"))
    for r in _read("marco-o1-cot-demo/CoT_demo.json"):
        rows.append(_row(r["response"], r["instruction"], "marco"))
    for r in _read("llamafactory-demo-data/reason_tool_use_demo_50.jsonl"):
        prompt = ""
        for m in r["messages"]:
            parts = m["content"]
            if m["role"] == "user":
                prompt = " ".join(p["value"] for p in parts if p["type"] == "text")
            elif m["role"] == "assistant":
                thinking = "\n".join(p["value"] for p in parts if p["type"] == "reasoning") or None
                text = "\n".join(p["value"] for p in parts if p["type"] != "reasoning")
                rows.append(_row(text, prompt, reasoning=thinking, finish_reason="stop"))
    return rows


def replicate(rows: list[Row], n: int, seed: int = 0) -> Iterator[Row]:
    """n replies cycling over the real ones in a fixed shuffled order, so any prefix has
    the full mix (shared objects: no copies, bounded memory)."""
    order = list(rows)
    random.Random(seed).shuffle(order)
    return itertools.islice(itertools.cycle(order), n)


def _chunks(it: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(it)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


# ---------- ours ----------


def run_ours(rows: Iterable[Row]) -> Counter[str]:
    """Parse + validate each reply with builder.responses; counts of shapes and codes."""
    counts: Counter[str] = Counter()
    for row in rows:
        parsed = normalize(
            row["content"],
            row["reasoning_content"],
            row["reasoning"],
            row["finish_reason"],
            PRESETS[row["reasoning_format"]],
        )
        # Uncached: replication repeats prompts far more often than a real build does.
        allowed = language.prompt_languages(row["prompt"], cached=False)
        result = validate(parsed, row["finish_reason"], allowed, None, infer_truncation=True,
                          prompt_scripts=language.prompt_scripts(row["prompt"]))  # fmt: skip
        counts["rows"] += 1
        counts["shape:" + parsed.shape] += 1
        counts.update(result.codes)
        counts["kept"] += result.ok
    return counts


# ---------- naive baseline ----------

_SCRIPTS = {"zh": r"\p{Han}", "en": r"\p{Latin}", "bn": r"\p{Bengali}", "ru": r"\p{Cyrillic}"}


def _naive_language(text: Any) -> str:
    import regex  # the baseline's own straightforward per-script counting

    if not isinstance(text, str) or not text:
        return "unknown"
    text = re.sub(r"```[\s\S]*?```|\$[\s\S]*?\$|\\[A-Za-z]+", " ", text)
    counts = {k: len(regex.findall(p, text)) * (3 if k == "zh" else 1) for k, p in _SCRIPTS.items()}
    total = sum(counts.values())
    if total < 4:
        return "unknown"
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] / total >= 0.75 else "mixed"


def _naive_repetition(text: Any) -> float:
    if not isinstance(text, str) or len(text) < 21:
        return 0.0
    tail = text[-8192:]
    grams = [tail[i : i + 20] for i in range(len(tail) - 19)]
    return 1.0 - len(set(grams)) / len(grams)


_FLAGS = [
    "missing_think", "unclosed_think", "duplicate_think", "text_outside_answer", "empty_think",
    "empty_answer", "think_tag_in_answer", "content_null", "truncated", "repetition_loop",
    "language_mismatch_answer",
]  # fmt: skip


def run_naive(rows: Iterable[Row]) -> Counter[str]:
    """The same checks written the obvious way: a DataFrame, `re` extracts, apply()."""
    import pandas as pd

    out = _naive_checks(pd.DataFrame(list(rows)))
    counts: Counter[str] = Counter(rows=len(out))
    for flag in _FLAGS:
        counts[flag] = int(out[flag].sum())
    counts["kept"] = int((~out[_FLAGS].any(axis=1)).sum())
    return counts


def _naive_checks(df: Any) -> Any:
    """Shape split, grammar flags, repetition and languages as DataFrame columns."""
    import pandas as pd

    parts = []
    for fmt, group in df.groupby("reasoning_format", sort=False):
        d = PRESETS[fmt]
        to, tc, ao, ac = (re.escape(s) for s in d.all())
        g = group.copy()
        content = g["content"].where(g["content"].map(lambda v: isinstance(v, str)), None)
        field = g["reasoning_content"].fillna(g["reasoning"])
        inline = content.str.extract(rf"{to}([\s\S]*?){tc}([\s\S]*)")
        no_open = content.str.extract(rf"^([\s\S]*?){tc}([\s\S]*)")
        unclosed = content.str.extract(rf"{to}([\s\S]*)$")
        g["think"] = field.fillna(inline[0]).fillna(no_open[0]).fillna(unclosed[0]).str.strip()
        body = inline[1].fillna(no_open[1])
        no_tags = ~content.str.contains(f"{to}|{tc}", regex=True, na=True)
        body = body.where(field.isna() & ~no_tags, content)  # no thinking tags: all of it is the answer
        tagged = body.str.extract(rf"{ao}([\s\S]*?){ac}")[0]
        g["answer"] = tagged.fillna(body).str.strip()
        g["missing_think"] = g["think"].isna() & ~content.str.contains(to, regex=False, na=False)
        g["unclosed_think"] = content.str.contains(to, regex=False, na=False) & ~content.str.contains(
            tc, regex=False, na=False
        )
        g["duplicate_think"] = content.str.count(to).fillna(0) > 1
        g["text_outside_answer"] = body.str.contains(rf"\S[\s\S]*{ao}|{ac}[\s\S]*\S", regex=True, na=False)
        g["empty_think"] = g["think"].fillna("x").eq("")
        g["empty_answer"] = g["answer"].fillna("x").eq("")
        g["think_tag_in_answer"] = g["answer"].str.contains("|".join([to, tc, ao, ac]), regex=True, na=False)
        g["content_null"] = g["content"].isna()
        g["truncated"] = g["finish_reason"].eq("length")
        parts.append(g)
    out = pd.concat(parts)
    out["repetition"] = [
        max(_naive_repetition(t), _naive_repetition(a)) for t, a in zip(out["think"], out["answer"], strict=True)
    ]
    out["repetition_loop"] = out["repetition"] >= 0.5
    out["prompt_language"] = out["prompt"].map(_naive_language)
    out["think_language"] = out["think"].map(_naive_language)
    out["answer_language"] = out["answer"].map(_naive_language)
    definite = ~out["prompt_language"].isin(["mixed", "unknown"])
    out["language_mismatch_answer"] = (
        definite
        & ~out["answer_language"].isin(["mixed", "unknown"])
        & (out["answer_language"] != out["prompt_language"])
    )
    return out


# ---------- the end-to-end workload: a replicated work dir ----------


def build_base(root: Path) -> tuple[pa.Table, pa.Table]:
    """(curated prompts, replies) of the sample: the fixtures' real replies, code replies left
    out, plus an R1-style \\boxed{} reply around every other GSM8K worked solution."""
    from tests.fixtures.stages import _by_source, _jsonl, build_curated, build_replies, reply_row

    work = build_curated(root)
    planted = build_replies(work)
    src = {pid: p["source"] for pid, p in planted.prompts.items()}
    replies = [r for r in planted.replies if src.get(r["prompt_id"]) != "mbpp"]
    have = {r["prompt_id"] for r in replies}
    gsm = _by_source(list(planted.prompts.values()), "gsm8k-train")
    for lineno, t in enumerate(_jsonl("gsm8k_train.jsonl"), start=1):
        p = gsm.get(str(lineno))
        if p is not None and p["prompt_id"] not in have:
            steps, gold = (x.strip() for x in t["answer"].split("####"))
            text = f"<think>\n{steps}\n</think>\n\n<answer>\nThe answer is \\boxed{{{gold}}}.\n</answer>"
            replies.append(reply_row(p["prompt_id"], text))
            have.add(p["prompt_id"])
    prompts = read_table(work.shards(tables.PROMPTS))
    prompts = prompts.filter(pc.is_in(prompts.column("prompt_id"), value_set=pa.array(sorted(have))))
    reply_table = pa.Table.from_pylist(
        [{k: r[k] for k in REPLY_FEATURES} for r in replies], schema=REPLY_FEATURES.arrow_schema
    )
    return prompts, reply_table


def _reid(table: pa.Table, cols: tuple[str, ...], k: int) -> pa.Table:
    """Copy k of a table: each id keeps 24 chars of the original and gets k as 8 hex digits."""
    for c in cols:
        col = table.column(c)
        new = pc.binary_join_element_wise(pc.utf8_slice_codeunits(col, 0, 24), f"{k:08x}", "")
        table = table.set_column(table.schema.get_field_index(c), c, new)
    return table


def write_replicated(root: Path, prompts: pa.Table, replies: pa.Table, n: int, shard_rows: int) -> tuple[int, int]:
    """Write n replies (and their prompts) as copies of the base, one shard at a time."""
    copies = -(-n // replies.num_rows)
    per_shard = max(1, shard_rows // replies.num_rows)
    pdir, rdir = WorkDir(root).path(tables.PROMPTS), WorkDir(root).path(tables.REPLIES)
    for d in (pdir, rdir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    n_prompts = 0
    for shard, first in enumerate(range(0, copies, per_shard)):
        ps, rs = [], []
        for k in range(first, min(first + per_shard, copies)):
            r = _reid(replies, ("generation_id", "prompt_id"), k)
            rs.append(r.slice(0, n - k * replies.num_rows))  # the last copy may be partial
            p = _reid(prompts, ("prompt_id",), k)
            ps.append(
                p.set_column(
                    p.schema.get_field_index("source_row_id"),
                    "source_row_id",
                    pc.binary_join_element_wise(p.column("source_row_id"), f"#{k}", ""),
                )
            )
        pt, rt = pa.concat_tables(ps), pa.concat_tables(rs)
        n_prompts += pt.num_rows
        pq.write_table(pt, pdir / f"part-{shard:05d}.parquet", compression="zstd", row_group_size=16_384)
        # Row groups as generate's export writes them (a responses task's unit is one).
        pq.write_table(rt, rdir / f"part-{shard:05d}.parquet", compression="zstd", row_group_size=ROW_GROUP_ROWS)
    for stage in ("curate", "generate"):  # as finished runs would leave them (the stages check)
        WorkDir(root).mark_complete(stage)
    return n_prompts, n


# ---------- ours: the stages, as `answer-distill variants` runs them ----------


class _TreeRss:
    """Samples the summed RSS of this process and all its descendants (workers, forkserver)."""

    def __init__(self, every_s: float = 0.2) -> None:
        import psutil

        self.proc, self.every_s, self.peak = psutil.Process(), every_s, 0
        self.child_cpu: dict[int, float] = {}  # pid -> last seen CPU seconds (forkserver workers)
        self.own_cpu_s = 0.0  # this sampling thread's CPU, left out of the stages' figure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for p in descendants(self.proc):
                with contextlib.suppress(Exception):  # a worker that just exited
                    total += p.memory_info().rss
                    if p.pid != self.proc.pid:
                        t = p.cpu_times()
                        self.child_cpu[p.pid] = t.user + t.system
            self.peak = max(self.peak, total)
            self.own_cpu_s = time.thread_time()  # the sampler's own CPU, not the stages'
            self._stop.wait(self.every_s)

    def __enter__(self) -> _TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


SCALING_ROWS = 40_000  # replies of the scaling runs (see main)
# Buckets of the variants stage in the scaling runs: a task owns whole buckets, so 2 tasks need
# several (the default bucket_rows makes one bucket of a 10k workload; at 1.3M it makes 23).
SCALING_BUCKETS = 8


def _with_tasks(recipe: Any, tasks: int, prompts: int) -> Any:
    """The recipe with `tasks` datatrove tasks of one process (one core) each, all running at once on
    the local executor: responses and variants with no process pool of their own (1 task: the
    driver alone), and the same buckets for any task count, so every run writes the same rows."""
    updates: dict[str, Any] = {
        "responses": recipe.responses.model_copy(update={"tasks": tasks, "workers": 1}),
        "variants": recipe.variants.model_copy(
            update={"tasks": tasks, "workers": 1, "bucket_rows": max(1, -(-prompts // SCALING_BUCKETS))}),
    }  # fmt: skip
    updates["executor"] = recipe.executor.model_copy(update={"kind": "local", "workers": tasks, "cpus_per_task": 1})
    return recipe.model_copy(update=updates)


def run_stages(work_root: Path, tasks: int | None = None) -> dict[str, Any]:
    """run_responses + run_variants on the work dir, exactly as the CLI's `variants` command
    (with `tasks`: as `_with_tasks` configures them, for the scaling figure)."""
    from builder.recipe import load_recipe
    from builder.responses.stage import run_responses
    from builder.variants.stage import run_variants

    recipe = load_recipe(ROOT / "recipes" / "sample.yaml")
    if tasks is not None:
        prompts = sum(pq.ParquetFile(f).metadata.num_rows for f in WorkDir(work_root).require(tables.PROMPTS))
        recipe = _with_tasks(recipe, tasks, prompts)
    wd = WorkDir(work_root)
    own_cpu = _own_cpu_s()
    with _TreeRss() as tree:
        start = time.perf_counter()
        res = run_responses(recipe, wd)
        mid = time.perf_counter()
        resp_kids, resp_own, resp_peak = dict(tree.child_cpu), _own_cpu_s() - own_cpu - tree.own_cpu_s, tree.peak
        var = run_variants(recipe, wd)
        end = time.perf_counter()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "responses_s": mid - start,
        "variants_s": end - mid,
        "cpu_s": _own_cpu_s() - own_cpu - tree.own_cpu_s + sum(tree.child_cpu.values()),
        "sampler_cpu_s": tree.own_cpu_s,
        # responses alone: this process, and each child's CPU (largest first: with tasks, the tasks)
        "responses_cpu_s": resp_own + sum(resp_kids.values()),
        "responses_children_cpu_s": sorted(resp_kids.values(), reverse=True),
        "responses_rss_tree_peak_mb": resp_peak / 2**20,
        "rows_in": res.rows_in,
        "kept": res.kept,
        "quarantined": res.quarantined,
        "reasons": res.reasons,
        "verify": res.verify,
        "variant_rows": var.counts,
        "rss_self_mb": own,
        "rss_children_max_mb": kids,
        "rss_tree_peak_mb": tree.peak / 2**20,
    }


def _run_stages_subprocess(work_root: Path, profile: Path | None, tasks: int | None = None) -> dict[str, Any]:
    """The stages in a fresh interpreter, so its peak RSS is the stages' own."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stages-only", str(work_root)]
    if tasks is not None:
        # One core per task: the 1-task run is pinned to one core (its tokenizer threads and
        # every process it starts with it), the 2-task run has the machine's two.
        cmd += ["--tasks", str(tasks), "--cores", str(tasks)]
    if profile:
        cmd[1:1] = ["-m", "cProfile", "-o", str(profile)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"stages failed:\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # The interpreter itself and any grandchildren it reaped.
    out["rss_subprocess_tree_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def outputs_digest(work_root: Path) -> str:
    """sha256 over every row of the responses and variants tables and both ledgers, in order
    (each file's rows by responses_memory.table_digest)."""
    from responses_memory import table_digest

    h = hashlib.sha256()
    for stage in ("responses", "variants"):
        for f in sorted((work_root / stage).glob("**/*.parquet")):
            if not any(part.startswith((".", "_")) for part in f.relative_to(work_root / stage).parts):
                h.update(f"{f.relative_to(work_root).as_posix()} {table_digest([f])}".encode())
    return h.hexdigest()


def scaling_figures(work_root: Path, repeats: int = 2) -> dict[str, Any]:
    """The same stages as 1 task and as 2 tasks (one process each, datatrove's local executor),
    on the same work dir, `repeats` times each, interleaved (1, 2, 1, 2, …) so a slow spell of this
    shared machine falls on both. Each count's fastest run is its figure (the one the machine
    disturbed least; every run is listed). `scaling_2_tasks`: wall(1 task) / wall(2 tasks);
    `scaling_2_tasks_cpu_bound`: 2 × CPU(1 task) / CPU(2 tasks), what 2 idle cores would give
    (only the splitting's own CPU cost lowers it)."""
    tried: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
    digests: set[str] = set()
    for _ in range(repeats):
        for tasks in (1, 2):
            r = _run_stages_subprocess(work_root, None, tasks)
            wall = r["responses_s"] + r["variants_s"]
            tried[str(tasks)].append({
                "wall_s": round(wall, 2), "cpu_s": round(r["cpu_s"], 2),
                "responses_s": round(r["responses_s"], 2), "variants_s": round(r["variants_s"], 2),
                "responses_cpu_s": round(r["responses_cpu_s"], 2),
                "responses_children_cpu_s": [round(c, 2) for c in r["responses_children_cpu_s"][:4]],
                "responses_peak_rss_mb": round(r["responses_rss_tree_peak_mb"], 1),
                "peak_rss_mb": round(r["rss_tree_peak_mb"], 1), "load_avg_1m": round(os.getloadavg()[0], 2)})  # fmt: skip
            digests.add(outputs_digest(work_root))
    runs: dict[str, Any] = {k: min(v, key=lambda r: r["wall_s"]) for k, v in tried.items()}
    for k, v in tried.items():
        runs[k] = {**runs[k], "walls_s": [r["wall_s"] for r in v], "cpus_s": [r["cpu_s"] for r in v]}
    one, two = runs["1"], runs["2"]
    # Responses on 2 idle cores, from the CPU each process used: the 1-task run is one process;
    # in the 2-task run the two largest children are the tasks (in parallel), the rest (driver,
    # merge, forkserver) is serial. Sampled every 0.2 s, so a task's last moments may be missed.
    tasks_cpu = two["responses_children_cpu_s"][:2]
    critical = two["responses_cpu_s"] - sum(tasks_cpu) + max(tasks_cpu, default=0.0)
    out = {
        "scaling_2_tasks": round(one["wall_s"] / two["wall_s"], 3),
        "scaling_2_tasks_cpu_bound": round(2 * one["cpu_s"] / two["cpu_s"], 3),
        "scaling_2_tasks_responses_wall": round(one["responses_s"] / two["responses_s"], 3),
        "scaling_2_tasks_responses_idle_estimate": round(one["responses_cpu_s"] / critical, 3) if critical else None,
        "scaling_same_outputs": len(digests) == 1,  # every run, row for row, ledgers included
        "runs": runs,
    }
    print(f"scaling: 1 task {one['wall_s']:.1f} s wall / {one['cpu_s']:.1f} CPU s, 2 tasks {two['wall_s']:.1f} s "
          f"wall / {two['cpu_s']:.1f} CPU s: x{out['scaling_2_tasks']:.2f} (cpu-bound x{out['scaling_2_tasks_cpu_bound']:.2f})")  # fmt: skip
    return out


# ---------- naive baseline of the same stages ----------

_N_BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_N_LETTER = re.compile(r"answer(?:\s+is|:)\s*\**\s*\(?([A-J])\)?\b", re.I)
_N_SENT = re.compile(r"(?<=[.!?。！？])\s+|\n+")


def _naive_verify(answer: Any, verifier: Any, reference: Any) -> str:
    if not isinstance(answer, str) or not isinstance(reference, str) or not reference:
        return "unverifiable"
    if verifier == "math":
        got = _N_BOXED.findall(answer)
        if not got:
            return "fail"
        norm = lambda x: re.sub(r"[\s,$]|\\!", "", x).rstrip(".")  # noqa: E731
        return "pass" if norm(got[-1]) == norm(reference) else "fail"
    if verifier == "mcq":
        got = _N_LETTER.findall(answer)
        return "pass" if got and got[-1].upper() == reference.strip().upper() else "fail"
    return "unverifiable"


def _naive_summary(think: str, answer: str, max_ratio: float = 0.35, max_chars: int = 2000) -> str:
    sents = [x.strip() for x in _N_SENT.split(re.sub(r"```[\s\S]*?```", "\n", think)) if x.strip()]
    if not sents:
        return ""
    vocab = {w.lower() for w in re.findall(r"\w{3,}", answer)}
    budget = min(max_chars, int(len(think) * max_ratio))

    def score(i: int) -> float:
        words = [w.lower() for w in re.findall(r"\w{3,}", sents[i])]
        return sum(w in vocab for w in words) / (len(words) or 1) + (i in (0, len(sents) - 1))

    chosen, used = [], 0
    for i in sorted(range(len(sents)), key=lambda i: (-score(i), i)):
        if used + len(sents[i]) + 1 <= budget:
            chosen.append(i)
            used += len(sents[i]) + 1
    return " ".join(sents[i] for i in sorted(chosen))


def _naive_timed(work_root: str, n: int, out_dir: str) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    counts = run_naive_stages(Path(work_root), n, Path(out_dir))
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "counts": dict(counts)}


def run_naive_stages(work_root: Path, n: int, out_dir: Path) -> Counter[str]:
    """Read, check, verify, select and build the five variants with pandas + `re`, then write them."""
    import pandas as pd

    from builder.tokens import load_tokenizer

    student, teacher = load_tokenizer("qwen2.5"), load_tokenizer("deepseek-r1")
    rfile = WorkDir(work_root).shards(tables.REPLIES)[0]
    pfile = WorkDir(work_root).shards(tables.PROMPTS)[0]
    df = pd.read_parquet(rfile).head(n)
    prompts = pd.read_parquet(pfile)
    prompts["prompt"] = prompts["messages"].map(
        lambda ms: next((m["content"] or "" for m in reversed(list(ms)) if m["role"] == "user"), "")
    )
    df = df.merge(
        prompts[["prompt_id", "prompt", "reference_answer", "verifier", "category"]], on="prompt_id", how="left"
    )
    df["unknown_prompt"] = df["prompt"].isna()
    df["prompt"] = df["prompt"].fillna("")
    df["bad_format"] = ~df["reasoning_format"].isin(list(PRESETS))
    df.loc[df["bad_format"], "reasoning_format"] = "r1"
    out = _naive_checks(df)
    out["failed"] = out["status"] != "ok"
    out["bad_role"] = ~out["teacher_role"].isin(["reasoning", "control"])
    control = out["teacher_role"] == "control"
    out.loc[control, "missing_think"] = False
    out["answer"] = out["answer"].where(out["answer"].map(lambda v: isinstance(v, str)), "")
    out["think"] = out["think"].where(out["think"].map(lambda v: isinstance(v, str)), "")
    out["student_tokens"] = out["answer"].map(lambda t: len(student.encode(t).ids))
    out["think_tokens"] = out["think"].map(lambda t: len(teacher.encode(t).ids))
    out["answer_tokens"] = out["answer"].map(lambda t: len(teacher.encode(t).ids))
    out["verify"] = out.apply(lambda r: _naive_verify(r["answer"], r["verifier"], r["reference_answer"]), axis=1)
    flags = [*_FLAGS, "failed", "bad_role", "unknown_prompt", "bad_format"]
    out["kept"] = ~out[flags].any(axis=1) & (out["verify"] != "fail") & (out["student_tokens"] <= 16_384)
    kept = out[out["kept"]].sort_values(["prompt_id", "teacher_role", "sample_index"])
    chosen = kept.drop_duplicates(["prompt_id", "teacher_role"])
    counts: Counter[str] = Counter(rows=len(out), kept=int(out["kept"].sum()))

    used = prompts[prompts["prompt_id"].isin(out["prompt_id"])]
    reasoning = chosen[chosen["teacher_role"] == "reasoning"].set_index("prompt_id")
    ctrl = chosen[chosen["teacher_role"] == "control"].set_index("prompt_id")
    texts: dict[str, pd.Series] = {
        "original": used.set_index("prompt_id")["original_response"],
        "answer": reasoning["answer"],
        "think_summary": reasoning.apply(
            lambda r: _naive_summary(r["think"], r["answer"]) + "\n\n" + r["answer"], axis=1
        ),
        "full": "<think>\n" + reasoning["think"] + "\n</think>\n\n" + reasoning["answer"],
        "control": ctrl["answer"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    by_id = used.set_index("prompt_id")
    for name, series in texts.items():
        series = series.dropna()
        series = series[series.str.len() > 0]
        v = by_id.loc[series.index, ["messages", "source", "category"]].copy()
        v["variant"] = name
        v["messages"] = [[*list(ms), {"role": "assistant", "content": t}] for ms, t in zip(v["messages"], series)]
        v["student_tokens"] = [sum(len(student.encode(m["content"] or "").ids) + 5 for m in ms) for ms in v["messages"]]
        v = v[v["student_tokens"] <= 16_384]
        v.reset_index().to_parquet(out_dir / f"{name}.parquet")
        counts[f"variant:{name}"] = len(v)
    return counts


# ---------- sandboxed code verification ----------


def code_tests_per_s(n: int, workers: int) -> tuple[float, int, int]:
    """(items per second, passed, items): MBPP / HumanEval canonical solutions in the sandbox."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("code_verify_bench", ROOT / "benchmarks" / "code_verify.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    items = mod.load_items()
    items = items[:: max(1, len(items) // n)][:n]  # HumanEval and MBPP both
    from builder.responses.verify import verify_code_batch

    start = time.perf_counter()
    verdicts = verify_code_batch(items, workers=workers)
    return len(items) / (time.perf_counter() - start), sum(v.status == "pass" for v in verdicts), len(items)


# ---------- driver ----------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _parse_validate_rate(n: int) -> float:
    """Sub-figure: parse + validate alone on the shared corpus's raw traces (replies/s)."""
    real = load_real_traces()
    run_ours(real[:200])  # warm imports and caches outside the timing
    start = time.perf_counter()
    for rows in _chunks(replicate(real, n), 20_000):
        run_ours(rows)
    return n / (time.perf_counter() - start)


def truncation_figures(max_triples: int | None, seed: int = HELD_OUT_SEED) -> dict[str, Any]:
    """The adversarial corpus judged by the stage's normalize + validate (see the docstring)."""
    from tests.fixtures.adversarial_replies import build_cases, real_triples, score

    triples = real_triples()
    random.Random(seed).shuffle(triples)
    cases = build_cases(triples[:max_triples] if max_triples else triples, seed=seed)
    start, cpu = time.perf_counter(), time.process_time()
    result = score(cases)
    result["cases"] = len(cases)
    result["triples"] = min(len(triples), max_triples or len(triples))
    result["us_per_case"] = round((time.perf_counter() - start) / len(cases) * 1e6, 1)
    result["cpu_us_per_case"] = round((time.process_time() - cpu) / len(cases) * 1e6, 1)
    result.update(find_cut_cost(cases))
    return result


def find_cut_cost(cases: list[Any], rounds: int = 3) -> dict[str, float]:
    """CPU µs per reply of `truncation.find_cut` alone (parsing done beforehand), with and
    without the rules of unfinished.py, same process, best of `rounds` each."""
    from builder.reasoning_format import resolve_delimiters
    from builder.responses import truncation

    rows = []
    for case in cases:
        r = case.row
        parsed = normalize(r["content"], r.get("reasoning_content"), r.get("reasoning"), r.get("finish_reason"),
                           resolve_delimiters(r["reasoning_format"]))  # fmt: skip
        rows.append((parsed, r.get("finish_reason"), r.get("completion_tokens"), r.get("max_tokens"), r["prompt"]))

    def once() -> float:
        cpu = time.process_time()
        for parsed, finish, used, budget, prompt in rows:
            truncation.find_cut(parsed, finish, used, budget, prompt=prompt)
        return (time.process_time() - cpu) / len(rows) * 1e6

    real = truncation.unfinished
    with_rules, without = [], []
    try:
        for _ in range(rounds):  # interleaved, so a busy spell on the shared machine hits both
            truncation.unfinished = real
            with_rules.append(once())
            truncation.unfinished = lambda *a, **k: None  # type: ignore[assignment]
            without.append(once())
    finally:
        truncation.unfinished = real
    return {"find_cut_cpu_us": round(min(with_rules), 1), "find_cut_cpu_us_without_unfinished": round(min(without), 1)}


def print_truncation(trunc: dict[str, Any]) -> None:
    rc = trunc["right_code"]
    print(f"truncation corpus: {trunc['cases']:,} cases from {trunc['triples']:,} real traces, "
          f"{trunc['us_per_case']:.0f} us/case; right code (rate, n):")  # fmt: skip
    for key in ("truncated:with_finish", "truncated:tokens", "truncated:text_only", "truncated:text_only:evident",
                "cut_think:none",
                "cut_answer:none", "cut_answer:none:mid_sentence", "cut_answer:none:after_sentence",
                "cut_answer:none:in_math", "cut_answer:none:in_code", "misrouted_all", "clean"):  # fmt: skip
        if key in rc:
            print(f"   {key:34s} {rc[key]['rate']:.4f}  n={rc[key]['n']}")


def truncation_keys(trunc: dict[str, Any]) -> dict[str, Any]:
    """The truncation figures of the JSON line (the same keys with or without `--only truncation`)."""
    rc = trunc["right_code"]
    return {
        "truncation_recall_with_finish": rc["truncated:with_finish"]["rate"],
        "truncation_recall_no_finish_tokens": rc["truncated:tokens"]["rate"],
        "truncation_recall_no_finish_text_only": rc["truncated:text_only"]["rate"],
        "truncation_recall_text_only_evident": rc["truncated:text_only:evident"]["rate"],
        "truncation_text_only_looks_complete_share": round(
            rc["cut_answer:none:after_sentence"]["n"] / rc["truncated:text_only"]["n"], 4
        ),
        "truncation_recall_text_only_think": rc["cut_think:none"]["rate"],
        "truncation_recall_text_only_answer": {
            k.rsplit(":", 1)[1]: rc[k]["rate"] for k in rc if k.startswith("cut_answer:none:")
        },
        "misrouted_recall": rc["misrouted_all"]["rate"],
        "clean_truncation_reject_rate": rc["clean"]["rate"],
        "clean_any_reject_rate": trunc["clean_any_reject"]["clean"]["rate"],
        "truncation_cases": trunc["cases"],
        "truncation_us_per_case": trunc["us_per_case"],
        "truncation_cpu_us_per_case": trunc["cpu_us_per_case"],
        "truncation_find_cut_cpu_us_per_reply": trunc["find_cut_cpu_us"],
        "truncation_find_cut_cpu_us_per_reply_without_unfinished": trunc["find_cut_cpu_us_without_unfinished"],
    }


def language_figures(n_replies: int = 3000) -> dict[str, Any]:
    """Accuracy on labelled rows, and the language work's cost per reply vs the script pass alone."""
    from tests.fixtures.adversarial_replies import labelled_language_rows, language_accuracy

    rows = labelled_language_rows()
    acc = language_accuracy(rows)
    label = {}
    for lang, texts in rows.items():
        labels = [language.prompt_language_label(t) for t in texts]
        named = [lab for lab in labels if lab != language.UNKNOWN]
        label[lang] = {
            "accuracy": round(sum(lang in lab.split("+") for lab in labels) / len(labels), 4),
            "accuracy_claimed": round(sum(lang in lab.split("+") for lab in named) / max(1, len(named)), 4),
        }
    replies = [(r["reasoning_content"] or "", r["content"] or "", r["prompt"]) for r in load_real_traces()]
    replies = [replies[i % len(replies)] for i in range(0, n_replies * 7, 7)]
    language.identify("warm the model up: bonjour tout le monde, comment allez-vous aujourd'hui ?")
    start = time.perf_counter()
    for think, content, prompt in replies:
        language.identify(think or content)
        language.identify(content)
        language.prompt_languages(prompt, cached=False)
    ours = (time.perf_counter() - start) / len(replies)
    start = time.perf_counter()
    for think, content, prompt in replies:
        for text in (think or content, content, prompt):
            language._counts(language.strip_code_and_math(language._sample(text, language.SAMPLE_CHARS)))
    script = (time.perf_counter() - start) / len(replies)
    return {"accuracy": acc, "label": label, "us_per_reply": ours * 1e6, "script_us_per_reply": script * 1e6}


def consistency_figures() -> dict[str, Any]:
    """Think–answer consistency on every real trace (builder/responses/consistency.py):
    verdict counts and the mismatch rate among checkable rows, per source; µs per reply."""
    from builder.responses.consistency import MISMATCH, NOT_CHECKABLE, check
    from tests.fixtures.adversarial_replies import real_triples

    counts: dict[str, Counter[str]] = {}
    triples = real_triples()
    start = time.perf_counter()
    for t in triples:
        v = check(t.think, t.answer, t.prompt, "math" if t.source == "sky-t1" else "")
        counts.setdefault(t.source, Counter())[v.verdict] += 1
    us = (time.perf_counter() - start) / max(1, len(triples)) * 1e6
    rate = {
        src: round(c[MISMATCH] / max(1, sum(c.values()) - c[NOT_CHECKABLE]), 4) for src, c in sorted(counts.items())
    }
    return {"rate": rate, "counts": {k: dict(v) for k, v in sorted(counts.items())}, "us_per_reply": round(us, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_300_000, help="replies to process (default 1,300,000)")
    ap.add_argument("--naive-rows", type=int, default=None, help="replies for the baseline (default min(rows, 10000))")
    ap.add_argument("--parse-rows", type=int, default=None, help="replies for the parse+validate sub-figure")
    ap.add_argument("--code-items", type=int, default=100, help="code problems for code_tests_per_s")
    ap.add_argument("--work", type=Path, default=None, help="work dir (default: a temporary one, removed after)")
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile of the stages' process here")
    ap.add_argument(
        "--quick", action="store_true", help="10,000 replies, 1,000 for the baseline (< 60 s on 2 idle cores)"
    )
    ap.add_argument("--triples", type=int, default=None, help="real traces for the truncation corpus (default all)")
    ap.add_argument("--baseline-timeout", type=float, default=60.0,
                    help="seconds the naive baseline may run before it is stopped and reported")  # fmt: skip
    ap.add_argument("--no-scaling", action="store_true", help="skip the 1-task vs 2-task runs (scaling_2_tasks)")
    ap.add_argument("--scaling-rows", type=int, default=SCALING_ROWS,
                    help=f"replies of the 1-task vs 2-task runs (default {SCALING_ROWS:,}, --quick included)")  # fmt: skip
    ap.add_argument("--only", choices=("truncation",), default=None,
                    help="run only this part and print its keys of the JSON line (same names)")  # fmt: skip
    ap.add_argument("--scaling-repeats", type=int, default=2,
                    help="runs of each task count, interleaved; the fastest of each is the figure (default 2)")
    ap.add_argument("--stages-only", type=Path, default=None, help=argparse.SUPPRESS)  # the timed child
    ap.add_argument("--tasks", type=int, default=None, help=argparse.SUPPRESS)  # the child's task count
    ap.add_argument("--cores", type=int, default=None, help=argparse.SUPPRESS)  # the child's CPUs (affinity)
    args = ap.parse_args(argv)
    if args.stages_only:
        if args.cores and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
        out = run_stages(args.stages_only, args.tasks)
        print(json.dumps(out))
        return out
    if args.quick:
        args.rows = 10_000
        args.naive_rows = args.naive_rows or 1_000
        args.parse_rows = args.parse_rows or 10_000
        args.code_items = min(args.code_items, 40)
        args.triples = args.triples or 600
    if args.only == "truncation":
        trunc = truncation_figures(args.triples)
        print_truncation(trunc)
        out = {**truncation_keys(trunc), "load_avg_1m": round(os.getloadavg()[0], 2)}
        print(json.dumps(out))
        return out
    naive_rows = min(args.rows, args.naive_rows or 10_000)
    parse_rows = min(args.rows, args.parse_rows or 50_000)
    t_all = time.perf_counter()
    root = args.work or Path(tempfile.mkdtemp(prefix="bench-responses-"))
    try:
        t = time.perf_counter()
        prompts, replies = build_base(root / "base")
        # At least 8 reply shards, so 2 tasks get equal halves (a task owns whole shards).
        n_prompts, _ = write_replicated(root / "work", prompts, replies, args.rows, min(100_000, -(-args.rows // 8)))
        print(
            f"work dir: {args.rows:,} replies ({replies.num_rows} real base replies x copies), "
            f"{n_prompts:,} prompts, written in {time.perf_counter() - t:.1f} s"
        )

        ours = _run_stages_subprocess(root / "work", args.profile)
        ours_s = ours["responses_s"] + ours["variants_s"]
        rate = args.rows / ours_s
        peak = max(ours["rss_tree_peak_mb"], ours["rss_self_mb"] + ours["rss_children_max_mb"])
        print(
            f"ours : {args.rows:,} replies in {ours_s:.1f} s (responses {ours['responses_s']:.1f} s, "
            f"variants {ours['variants_s']:.1f} s) = {rate:,.0f} replies/s; {ours['cpu_s']:.1f} CPU s; "
            f"kept {ours['kept']:,}, quarantined {ours['quarantined']:,}; variants {ours['variant_rows']}"
        )
        print(
            f"       peak RSS: tree (sampled) {ours['rss_tree_peak_mb']:,.0f} MB, self {ours['rss_self_mb']:,.0f} MB, "
            f"largest child {ours['rss_children_max_mb']:,.0f} MB"
        )
        print(f"       verification: {ours['verify']}")
        # What the published counts and summaries cost alone, on the same work dir (benchmarks/cpu_floor.py;
        # imported here: the timed child must import the stages' modules inside its measured window).
        from cpu_floor import floor_figures

        floor = floor_figures(root / "work", stages_cpu_s=ours["cpu_s"])
        print(f"floor: exact counts {floor['floor_count_cpu_s']:.1f} + summaries {floor['floor_summary_cpu_s']:.1f} CPU s "
              f"= {floor['floor_share']:.0%} of the stages' CPU; ceiling {floor['replies_per_cpu_s_ceiling']:,.0f} replies/CPU s")
        scaling = None
        if not args.no_scaling:
            # Its own work dir, of --scaling-rows replies: a task's start-up (its forkserver's
            # imports, tokenizers and language models, ~3 CPU-s) is paid once per run whatever the
            # size, so on 10k replies it is a fifth of a task's work and the ratio measures it.
            scale_root = root / "work" if args.scaling_rows == args.rows else root / "scaling"
            if scale_root != root / "work":
                write_replicated(scale_root, prompts, replies, args.scaling_rows, -(-args.scaling_rows // 8))
            scaling = scaling_figures(scale_root, args.scaling_repeats)
            scaling["rows"] = args.scaling_rows

        # The baseline runs in its own process, bounded in time (benchmarks/bounded.py).
        naive = bounded(_naive_timed, str(root / "work"), naive_rows, str(root / "naive"),
                        timeout_s=args.baseline_timeout)  # fmt: skip
        naive_note = naive.get("error")
        if naive_note:
            naive_rate = cpu_speedup = float("nan")
            print(f"naive baseline could not run: {naive_note}")
        else:
            naive_s, naive_cpu = naive["wall_s"], naive["cpu_s"]
            naive_rate = naive_rows / naive_s
            print(f"naive: {naive_rows:,} replies in {naive_s:.1f} s = {naive_rate:,.0f} replies/s (1 process); "
                  f"{naive['counts']}")  # fmt: skip
            cpu_speedup = (args.rows / ours["cpu_s"]) / (naive_rows / naive_cpu)
            print(f"speedup vs naive: {rate / naive_rate:.1f}x replies/s, {cpu_speedup:.1f}x replies per CPU-second")

        pv_rate = _parse_validate_rate(parse_rows)
        print(f"parse + validate only (raw corpus traces, 1 process): {pv_rate:,.0f} replies/s over {parse_rows:,}")

        code_rate, passed, items = code_tests_per_s(args.code_items, workers=4)
        print(f"code verification: {items} problems, {passed} passed, {code_rate:.1f} tests/s (4 sandboxes)")

        trunc = truncation_figures(args.triples)
        print_truncation(trunc)
        langs = language_figures()
        print(f"language id: strict {json.dumps({k: v['accuracy'] for k, v in langs['accuracy'].items()})}, "
              f"row label {json.dumps({k: v['accuracy'] for k, v in langs['label'].items()})}; "
              f"{langs['us_per_reply']:.0f} us/reply (script pass alone {langs['script_us_per_reply']:.0f} us)")
        cons = consistency_figures()
        print(f"think-answer consistency: mismatch rate {json.dumps(cons['rate'])}, {json.dumps(cons['counts'])}, "
              f"{cons['us_per_reply']:.0f} us/reply")  # fmt: skip
    finally:
        if args.work is None:
            shutil.rmtree(root, ignore_errors=True)

    out = {
        "replies_per_s": round(rate, 1),
        "peak_rss_mb": round(peak, 1),
        "speedup_vs_naive": None if naive_note else round(rate / naive_rate, 2),
        "naive_note": naive_note,
        "code_tests_per_s": round(code_rate, 2),
        "rows": args.rows,
        "wall_s": round(ours_s, 2),
        "responses_s": round(ours["responses_s"], 2),
        "variants_s": round(ours["variants_s"], 2),
        "cpu_s": round(ours["cpu_s"], 2),
        "replies_per_cpu_s": round(args.rows / ours["cpu_s"], 1),
        **{k: v for k, v in floor.items() if k != "replies"},
        "replies_per_s_2_idle_cores": round(2 * args.rows / ours["cpu_s"], 1),  # if both cores were ours alone
        "scaling_2_tasks": scaling and scaling["scaling_2_tasks"],
        "scaling_2_tasks_cpu_bound": scaling and scaling["scaling_2_tasks_cpu_bound"],
        "scaling_2_tasks_responses_wall": scaling and scaling["scaling_2_tasks_responses_wall"],
        "scaling_2_tasks_responses_idle_estimate": scaling and scaling["scaling_2_tasks_responses_idle_estimate"],
        "responses_cpu_s": round(ours["responses_cpu_s"], 2),
        "variants_cpu_share": round(1 - ours["responses_cpu_s"] / ours["cpu_s"], 3),
        "responses_peak_rss_mb": round(ours["responses_rss_tree_peak_mb"], 1),
        "scaling_same_outputs": scaling and scaling["scaling_same_outputs"],
        "scaling_rows": scaling and scaling["rows"],
        "scaling_runs": scaling and scaling["runs"],
        "speedup_per_cpu_s": None if naive_note else round(cpu_speedup, 2),
        "naive_replies_per_s": None if naive_note else round(naive_rate, 1),
        "naive_rows": naive_rows,
        "parse_validate_replies_per_s": round(pv_rate, 1),
        "kept": ours["kept"],
        **truncation_keys(trunc),
        "language_id_accuracy": {k: v["accuracy"] for k, v in langs["accuracy"].items()},
        "language_label_accuracy": {k: v["accuracy"] for k, v in langs["label"].items()},
        "language_label_accuracy_claimed": {k: v["accuracy_claimed"] for k, v in langs["label"].items()},
        "language_id_us_per_reply": round(langs["us_per_reply"], 1),
        "script_pass_us_per_reply": round(langs["script_us_per_reply"], 1),
        "think_answer_mismatch_rate": cons["rate"],
        "think_answer_verdicts": cons["counts"],
        "consistency_us_per_reply": cons["us_per_reply"],
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "bench_total_s": round(time.perf_counter() - t_all, 1),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
