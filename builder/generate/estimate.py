"""Generation estimates for `answer-distill plan`: requests, tokens, cost and wall time.

From the prompt count (the curated prompts when a work dir is given, else the recipe's
balance target or source limits), each teacher's samples and limits, and the reply lengths
and latencies observed so far in the store. Where nothing was observed yet, stated
assumptions fill in (R1-like replies of ~4k tokens at ~30 tokens/s per stream).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from builder import tables
from builder.recipe import Recipe
from builder.workdir import WorkDir

ASSUMED_PROMPT_TOKENS = 300
ASSUMED_COMPLETION = {"reasoning": 4000, "control": 800}
ASSUMED_TOKENS_PER_S = 30.0  # one stream's decode speed, for latency when none was observed
CHARS_PER_TOKEN = 4

def _prompt_count(recipe: Recipe, work: Path | None) -> tuple[int | None, str, float | None]:
    """(prompts, where the number came from, mean prompt chars when known)."""
    if work is not None:
        files = WorkDir(work).shards(tables.PROMPTS)
        if files:
            import pyarrow.parquet as pq

            n, chars = 0, 0
            for f in files:
                for msgs in pq.read_table(f, columns=["messages"]).column(0).to_pylist():
                    n += 1
                    chars += sum(len(m["content"] or "") for m in msgs)
            return n, f"curated prompts in {work}", chars / max(n, 1)
    target = recipe.curate.balance.target_total
    if target:
        return target, "balance.target_total", None
    limits = [s.limit for s in recipe.sources]
    if all(limits):
        return sum(limits), "sum of source limits (before dedupe)", None  # type: ignore[arg-type]
    return None, "unknown until curate has run (pass --work)", None


def _observed(work: Path | None, teacher: str) -> dict[str, float]:
    if work is None:
        return {}
    from builder.teachers.store import RecordReader, latest

    stats = {"n": 0.0, "pt": 0.0, "ct": 0.0, "lat": 0.0}
    stored = latest(WorkDir(work).store(tables.GENERATE_STORE, teacher))
    reader = RecordReader()
    try:
        for got in itertools.islice(stored.values(), 2000):  # a sample is enough for means
            e = got.entry
            if e.status != "ok" or not e.completion_tokens:
                continue
            stats["n"] += 1
            stats["pt"] += e.prompt_tokens
            stats["ct"] += e.completion_tokens
            stats["lat"] += reader.read(e).get("latency_s") or 0.0
    finally:
        reader.close()
    n = stats["n"]
    return {"stored": float(len(stored)), **({k: v / n for k, v in stats.items() if k != "n"} if n else {})}


def estimate(recipe: Recipe, work: Path | None = None) -> dict[str, Any]:
    cfg = recipe.generate
    prompts, where, mean_chars = _prompt_count(recipe, work)
    out: dict[str, Any] = {"prompts": prompts, "prompts_from": where, "teachers": []}
    if cfg is None:
        return out
    for t in cfg.teachers:
        obs = _observed(work, t.name)
        requests = prompts * t.samples if prompts is not None else None
        pt = obs.get("pt") or (mean_chars / CHARS_PER_TOKEN if mean_chars else ASSUMED_PROMPT_TOKENS)
        ct = obs.get("ct") or min(ASSUMED_COMPLETION[t.role], t.sampling.max_tokens)
        lat = obs.get("lat") or ct / ASSUMED_TOKENS_PER_S
        row: dict[str, Any] = {"teacher": t.name, "role": t.role, "kind": t.kind, "model": t.model,
                               "requests": requests, "stored": int(obs.get("stored", 0)),
                               "prompt_tokens_each": round(pt), "completion_tokens_each": round(ct),
                               "latency_s_each": round(lat, 1), "observed": "ct" in obs}  # fmt: skip
        if requests is not None and t.kind != "import":
            todo = max(0, requests - row["stored"])
            row["prompt_tokens"] = round(todo * pt)
            row["completion_tokens"] = round(todo * ct)
            price = cfg.prices.get(t.model)
            row["cost_usd"] = (
                round((row["prompt_tokens"] * price.input_per_1m + row["completion_tokens"] * price.output_per_1m) / 1e6, 2)
                if price else None
            )  # fmt: skip
            lim = t.limits
            rates = [lim.concurrency / max(lat, 1e-3)]  # requests per second
            if lim.requests_per_minute:
                rates.append(lim.requests_per_minute / 60)
            if lim.tokens_per_minute:
                rates.append(lim.tokens_per_minute / 60 / max(pt + ct, 1))
            row["wall_hours"] = round(todo / min(rates) / 3600, 2)
            row["bound_by"] = ["concurrency", "requests_per_minute", "tokens_per_minute"][rates.index(min(rates))]
        out["teachers"].append(row)
    return out


def print_estimate(recipe: Recipe, console: Console, work: Path | None = None) -> None:
    if recipe.generate is None or not recipe.generate.teachers:
        console.print("generate: no teachers configured")
        return
    est = estimate(recipe, work)
    n = est["prompts"]
    console.print(f"generate: {n:,} prompts ({est['prompts_from']})" if n else f"generate: prompts {est['prompts_from']}")
    t = Table(title="generation estimate", title_justify="left")
    for col in ("teacher", "requests", "stored", "tok in/out each", "cost USD", "wall h", "bound by"):
        t.add_column(col, justify="left" if col in ("teacher", "bound by") else "right")
    for r in est["teachers"]:
        each = f"{r['prompt_tokens_each']:,}/{r['completion_tokens_each']:,}" + ("" if r["observed"] else "*")
        cost = "-" if r.get("cost_usd") is None else f"{r['cost_usd']:,.2f}"
        t.add_row(f"{r['teacher']} ({r['kind']} {r['model']})", f"{r['requests']:,}" if r["requests"] else "?",
                  f"{r['stored']:,}", each, cost, str(r.get("wall_hours", "-")), r.get("bound_by", "-"))  # fmt: skip
    console.print(t)
    if any(not r["observed"] for r in est["teachers"]):
        console.print(f"* assumed: ~{ASSUMED_COMPLETION['reasoning']:,} tokens per R1 reply, "
                      f"~{ASSUMED_TOKENS_PER_S:.0f} tokens/s per stream; run a little and plan again with --work")  # fmt: skip

