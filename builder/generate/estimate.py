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
from builder.config.generate import TeacherConfig
from builder.recipe import Recipe
from builder.workdir import WorkDir

ASSUMED_PROMPT_TOKENS = 300
ASSUMED_COMPLETION = {"reasoning": 4000, "control": 800}
ASSUMED_SUMMARY = 300  # tokens of a summarizer's reply
ASSUMED_TOKENS_PER_S = 30.0  # one stream's decode speed, for latency when none was observed
CHARS_PER_TOKEN = 4

def _prompt_count(recipe: Recipe, work: Path | None) -> tuple[int | None, str, float | None, dict[str, int | None]]:
    """(prompts, where the number came from, mean prompt chars when known, prompts per source).
    Per source: counted in the curated prompts, else the source's `limit` / balance cap (an
    upper bound), else None (unknown until curate has run)."""
    if work is not None:
        files = WorkDir(work).shards(tables.PROMPTS)
        if files:
            import pyarrow.parquet as pq

            n, chars = 0, 0
            per: dict[str, int | None] = {s.name: 0 for s in recipe.sources}
            for f in files:
                t = pq.read_table(f, columns=["messages", "source"])
                for msgs, src in zip(t.column(0).to_pylist(), t.column(1).to_pylist()):
                    n += 1
                    chars += sum(len(m["content"] or "") for m in msgs)
                    per[src] = (per.get(src) or 0) + 1
            return n, f"curated prompts in {work}", chars / max(n, 1), per
    caps = recipe.curate.balance.source_caps
    per = {s.name: min([x for x in (s.limit, caps.get(s.name)) if x is not None], default=None) for s in recipe.sources}
    target = recipe.curate.balance.target_total
    if target:
        return target, "balance.target_total", None, per
    limits = [s.limit for s in recipe.sources]
    if all(limits):
        return sum(limits), "sum of source limits (before dedupe)", None, per  # type: ignore[arg-type]
    return None, "unknown until curate has run (pass --work)", None, per


def _scope(t: TeacherConfig, prompts: int | None, per: dict[str, int | None], names: list[str]) -> int | None:
    """Prompts of the sources `names` this teacher takes (every prompt without `sources:`)."""
    if not (t.sources.include or t.sources.exclude) and len(names) == len(per):
        return prompts
    counts = [per.get(n) for n in names if t.sources.admits(n)]
    if any(c is None for c in counts):
        return None
    return min(sum(c for c in counts if c is not None), prompts) if prompts is not None else sum(c or 0 for c in counts)


def _covered(recipe: Recipe, t: TeacherConfig, prompts: int | None, per: dict[str, int | None],
             work: Path | None) -> int | None:  # fmt: skip
    """Prompts of `t`'s scope an earlier teacher of its role answers (mode fallback): an import's
    stored replies when --work has them, else its sources' prompts (an upper bound)."""
    cfg = recipe.generate
    assert cfg is not None
    covered = 0
    for earlier in cfg.teachers[: cfg.teachers.index(t)]:
        if earlier.role != t.role:
            continue
        if earlier.kind == "import":
            ok = _stored_ok(work, earlier.name)
            names = [n for n in dict.fromkeys(s.source for s in earlier.imports) if t.sources.admits(n)]
            n = ok if ok else _scope(earlier, prompts, per, names)
        else:
            n = _scope(earlier, prompts, per, [n for n in per if t.sources.admits(n)])
        if n is None:
            return None
        covered += n
    full = _scope(t, prompts, per, list(per))
    return min(covered, full) if full is not None else covered


def _stored_ok(work: Path | None, teacher: str) -> int:
    if work is None:
        return 0
    from builder.teachers.store import latest

    return sum(1 for g in latest(WorkDir(work).store(tables.GENERATE_STORE, teacher)).values() if g.entry.status == "ok")


def _cost(price: Any, prompt_tokens: float, completion_tokens: float) -> float | None:
    return round(price.cost(prompt_tokens, completion_tokens), 2) if price else None
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
            rec = reader.try_read(e) or {}  # a damaged record only lacks its latency here
            stats["lat"] += rec.get("latency_s") or 0.0
    finally:
        reader.close()
    n = stats["n"]
    return {"stored": float(len(stored)), **({k: v / n for k, v in stats.items() if k != "n"} if n else {})}


def estimate(recipe: Recipe, work: Path | None = None) -> dict[str, Any]:
    cfg = recipe.generate
    prompts, where, mean_chars, per = _prompt_count(recipe, work)
    out: dict[str, Any] = {"prompts": prompts, "prompts_from": where, "teachers": []}
    if cfg is None:
        return out
    teachers: list[tuple[TeacherConfig, str]] = [(t, "generate") for t in cfg.teachers]
    summ = recipe.variants.summarizer
    if summ.kind == "llm" and summ.teacher is not None:
        teachers.append((summ.teacher, "summarizer"))
    for t, stage in teachers:
        obs = _observed(work, t.name) if stage == "generate" else {}
        scope = _scope(t, prompts, per, list(per))
        covered = _covered(recipe, t, prompts, per, work) if t.mode == "fallback" else 0
        asked = None if scope is None or covered is None else max(0, scope - covered)
        requests = asked * t.samples if asked is not None else None
        pt = obs.get("pt") or (mean_chars / CHARS_PER_TOKEN if mean_chars else ASSUMED_PROMPT_TOKENS)
        ct = obs.get("ct") or min(ASSUMED_COMPLETION[t.role], t.sampling.max_tokens)
        if stage == "summarizer":  # it reads one thinking and writes a short summary
            pt, ct = ASSUMED_COMPLETION["reasoning"] + ASSUMED_PROMPT_TOKENS, min(ASSUMED_SUMMARY, t.sampling.max_tokens)
        lat = obs.get("lat") or ct / ASSUMED_TOKENS_PER_S
        row: dict[str, Any] = {"teacher": t.name, "role": t.role if stage == "generate" else "summarizer",
                               "kind": t.kind, "model": t.model, "mode": t.mode, "requests": requests,
                               "reused": covered * t.samples if covered else 0, "stored": int(obs.get("stored", 0)),
                               "prompt_tokens_each": round(pt), "completion_tokens_each": round(ct),
                               "latency_s_each": round(lat, 1), "observed": "ct" in obs}  # fmt: skip
        if requests is not None and t.kind != "import":
            todo = max(0, requests - row["stored"])
            row["prompt_tokens"] = round(todo * pt)
            row["completion_tokens"] = round(todo * ct)
            price = cfg.prices.get(t.model)
            row["priced"] = price is not None
            row["cost_usd"] = _cost(price, row["prompt_tokens"], row["completion_tokens"])
            if t.limits.max_cost_usd is not None and price is not None:  # the cap counts the store's spend too
                row["max_cost_usd"], row["spent_usd"] = t.limits.max_cost_usd, _spent(work, t, stage, price)
            if row["reused"]:  # the same teacher asked for every prompt of its scope
                every = max(0, (scope or 0) * t.samples - row["stored"])
                row["cost_without_reuse_usd"] = _cost(price, every * pt, every * ct)
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


def _spent(work: Path | None, teacher: TeacherConfig, stage: str, price: Any) -> float:
    """What the teacher's store (generate's, or the summarizer's) has cost so far, as the run's cap
    counts it (0 without --work)."""
    if work is None:
        return 0.0
    from builder.generate.todo import store_dir
    from builder.teachers.accounting import accounting

    wd = WorkDir(work)
    folder = store_dir(wd, teacher) if stage == "generate" else wd.store(tables.SUMMARY_STORE, teacher.name)
    return float(accounting(folder, teacher, price)["total"]["cost_usd"]) if folder.is_dir() else 0.0


def cost_lines(est: dict[str, Any]) -> list[str]:
    """One line per paid teacher (and the total): what this build would cost, with and without
    reusing imported public traces where a fallback teacher would otherwise ask."""
    lines: list[str] = []
    with_reuse, without, unknown = 0.0, 0.0, []
    for r in est["teachers"]:
        if r["kind"] == "import":
            continue
        name = f"{r['teacher']} ({r['role']}, {r['kind']} {r['model']})"
        if r.get("requests") is None:
            lines.append(f"cost {name}: unknown (prompt count unknown until curate has run; pass --work)")
            unknown.append(r["teacher"])
            continue
        if not r.get("priced"):
            lines.append(f"cost {name}: unknown, no price for {r['model']} in generate.prices "
                         f"({r['requests']:,} requests)")  # fmt: skip
            unknown.append(r["teacher"])
            continue
        cost = r["cost_usd"]
        full = r.get("cost_without_reuse_usd", cost)
        with_reuse, without = with_reuse + cost, without + full
        extra = (f"; without reusing public traces ${full:,.2f} ({r['reused']:,} imported replies reused)"
                 if "cost_without_reuse_usd" in r else "")  # fmt: skip
        lines.append(f"cost {name}: ${cost:,.2f} for {r['requests']:,} requests{extra}")
        if (cap := r.get("max_cost_usd")) is not None:
            spent, need = r["spent_usd"], r["spent_usd"] + cost
            fits = "within it" if need <= cap else "the run would stop at the cap before it is done; raise it to finish"
            lines.append(f"spending cap {r['teacher']}: ${cap:,.2f} (limits.max_cost_usd) for ${spent:,.2f} spent "
                         f"+ ${cost:,.2f} estimated: {fits}")  # fmt: skip
    if lines:
        tail = f" (+ unpriced: {', '.join(unknown)})" if unknown else ""
        lines.append(f"cost of this build: ${with_reuse:,.2f} reusing public traces, ${without:,.2f} without{tail}")
    return lines


def print_estimate(recipe: Recipe, console: Console, work: Path | None = None) -> None:
    if recipe.generate is None or not recipe.generate.teachers:
        console.print("generate: no teachers configured")
        return
    est = estimate(recipe, work)
    n = est["prompts"]
    console.print(f"generate: {n:,} prompts ({est['prompts_from']})" if n else f"generate: prompts {est['prompts_from']}")
    t = Table(title="generation estimate", title_justify="left")
    for col in ("teacher", "requests", "reused", "stored", "tok in/out each", "cost USD", "wall h", "bound by"):
        t.add_column(col, justify="left" if col in ("teacher", "bound by") else "right")
    for r in est["teachers"]:
        each = f"{r['prompt_tokens_each']:,}/{r['completion_tokens_each']:,}" + ("" if r["observed"] else "*")
        cost = "-" if r.get("cost_usd") is None else f"{r['cost_usd']:,.2f}"
        t.add_row(f"{r['teacher']} ({r['kind']} {r['model']})", "?" if r["requests"] is None else f"{r['requests']:,}",
                  f"{r['reused']:,}", f"{r['stored']:,}", each, cost, str(r.get("wall_hours", "-")), r.get("bound_by", "-"))  # fmt: skip
    console.print(t)
    for line in cost_lines(est):
        console.print(line, highlight=False, soft_wrap=True)
    if any(not r["observed"] for r in est["teachers"]):
        console.print(f"* assumed: ~{ASSUMED_COMPLETION['reasoning']:,} tokens per R1 reply, "
                      f"~{ASSUMED_TOKENS_PER_S:.0f} tokens/s per stream; run a little and plan again with --work")  # fmt: skip

