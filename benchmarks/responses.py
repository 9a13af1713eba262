"""Reply parse + validate throughput: builder.responses vs a straightforward pandas + `re` baseline.

Workload: every real reasoning trace staged in ../shared/corpus (R1 Bangla-MMLU inline
think, DeepSeek API reasoning_content, R1-Distill-Llama-8B with 226 unclosed traces,
Sky-T1 MATH-500 / AIME with malformed and looping traces, Marco-o1, tool-use reasoning
parts), replicated to --rows replies and streamed in chunks so memory stays bounded.
Both implementations run the same checks: shape split, tag grammar, truncation, empty
parts, delimiter leaks, a 20-gram repetition score over the tail, and prompt / think /
answer language. The baseline runs on a prefix (--naive-rows) because it is slow; the
ratio compares rates measured in the same run.

    python benchmarks/responses.py --quick          # < 60 s
    python benchmarks/responses.py [--rows 1300000] [--workers 2]

The last line printed is one JSON object: replies_per_s, peak_rss_mb, speedup_vs_naive, …
(the lead adds verification and variant building to this file later).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder.responses import language  # noqa: E402
from builder.responses.grammar import validate  # noqa: E402
from builder.responses.shapes import PRESETS, normalize  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
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
        result = validate(parsed, row["finish_reason"], allowed, None)
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


def run_naive(rows: Iterable[Row]) -> Counter[str]:
    """The same checks written the obvious way: a DataFrame, `re` extracts, apply()."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    counts: Counter[str] = Counter(rows=len(df))
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
        body = body.where(field.isna(), content)
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
    flags = [
        "missing_think", "unclosed_think", "duplicate_think", "text_outside_answer", "empty_think",
        "empty_answer", "think_tag_in_answer", "content_null", "truncated", "repetition_loop",
        "language_mismatch_answer",
    ]  # fmt: skip
    for flag in flags:
        counts[flag] = int(out[flag].sum())
    counts["kept"] = int((~out[flags].any(axis=1)).sum())
    return counts


# ---------- driver ----------

_WORKER_ROWS: list[Row] = []


def _init_worker() -> None:
    real = load_real_traces()
    _WORKER_ROWS.extend(replicate(real, len(real)))  # the same shuffled order


def _worker_chunk(span: tuple[int, int]) -> Counter[str]:
    start, size = span
    n = len(_WORKER_ROWS)
    return run_ours(_WORKER_ROWS[(start + i) % n] for i in range(size))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    """CPU seconds of this process and its reaped children (robust to a busy machine)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run_ours_streaming(real: list[Row], n: int, chunk: int, workers: int) -> tuple[Counter[str], float, float]:
    total: Counter[str] = Counter()
    cpu = _cpu_s()
    start = time.perf_counter()
    if workers <= 1:
        for rows in _chunks(replicate(real, n), chunk):
            total += run_ours(rows)
    else:
        spans = [(s, min(chunk, n - s)) for s in range(0, n, chunk)]
        with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
            for counts in pool.map(_worker_chunk, spans):
                total += counts
    return total, time.perf_counter() - start, _cpu_s() - cpu


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_300_000, help="replies to process (default 1,300,000)")
    ap.add_argument("--naive-rows", type=int, default=None, help="replies for the baseline (default min(rows, 20000))")
    ap.add_argument("--chunk", type=int, default=20_000, help="replies per streamed chunk")
    ap.add_argument("--workers", type=int, default=1, help="processes for our run (baseline: always 1)")
    ap.add_argument("--quick", action="store_true", help="30,000 replies, 3,000 for the baseline (< 60 s)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.naive_rows = 30_000, args.naive_rows or 3_000
    naive_rows = min(args.rows, args.naive_rows or 20_000)

    real = load_real_traces()
    chars = sum(len(r["content"] or "") + len(r["reasoning_content"] or r["reasoning"] or "") for r in real)
    print(f"real replies: {len(real):,} ({chars / 1e6:.1f} M chars, mean {chars / len(real):,.0f} chars)")

    run_ours(real[:200])  # warm imports and caches outside the timing
    ours, ours_s, ours_cpu = _run_ours_streaming(real, args.rows, args.chunk, args.workers)
    ours_rate = args.rows / ours_s
    ours_rss = peak_rss_mb()  # before the baseline builds its DataFrame
    print(
        f"ours : {args.rows:,} replies in {ours_s:.2f} s wall = {ours_rate:,.0f} replies/s "
        f"({args.workers} worker(s)); {ours_cpu:.2f} CPU s = {args.rows / ours_cpu:,.0f} replies per CPU-second"
    )

    sample = list(replicate(real, naive_rows))
    cpu, start = _cpu_s(), time.perf_counter()
    naive = run_naive(sample)
    naive_s, naive_cpu = time.perf_counter() - start, _cpu_s() - cpu
    naive_rate = naive_rows / naive_s
    print(
        f"naive: {naive_rows:,} replies in {naive_s:.2f} s wall = {naive_rate:,.0f} replies/s (1 process); "
        f"{naive_cpu:.2f} CPU s = {naive_rows / naive_cpu:,.0f} replies per CPU-second"
    )
    cpu_speedup = (args.rows / ours_cpu) / (naive_rows / naive_cpu)
    print(f"speedup vs naive: {ours_rate / naive_rate:.1f}x wall, {cpu_speedup:.1f}x per CPU-second")

    print("ours, shapes and codes per 1,000 replies:")
    for key, value in sorted(ours.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<28} {1000 * value / ours['rows']:8.1f}")
    print("naive, flags per 1,000 replies:")
    for key, value in sorted(naive.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<28} {1000 * value / naive['rows']:8.1f}")

    out = {
        "replies_per_s": round(ours_rate, 1),
        "peak_rss_mb": round(ours_rss, 1),
        "peak_rss_mb_with_naive": round(peak_rss_mb(), 1),
        "speedup_vs_naive": round(ours_rate / naive_rate, 2),
        "speedup_per_cpu_s": round(cpu_speedup, 2),
        "replies_per_cpu_s": round(args.rows / ours_cpu, 1),
        "naive_replies_per_s": round(naive_rate, 1),
        "rows": args.rows,
        "naive_rows": naive_rows,
        "workers": args.workers,
        "seconds": round(ours_s, 2),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
