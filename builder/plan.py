"""`answer-distill plan` (face): what a recipe would read, keep, request and cost — without reading data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from builder import tables
from builder.config.base import CATEGORIES
from builder.config.curate import PAPER_MIX
from builder.curate.balance import allocate
from builder.generate.estimate import print_estimate
from builder.recipe import Recipe


def expected_mix(recipe: Recipe) -> dict[str, int] | None:
    """Per-category targets implied by the balance settings, when a target total is set."""
    b = recipe.curate.balance
    if b.target_total is None:
        return None
    weights = dict(b.category_weights) or ({k: float(v) for k, v in PAPER_MIX.items()} if b.preset == "paper" else {})
    if not weights:
        return None
    caps = {c: b.category_caps.get(c, b.target_total) for c in CATEGORIES}
    return allocate(b.target_total, caps, {c: weights.get(c, 0.0) for c in CATEGORIES})


def flow() -> list[dict[str, Any]]:
    """Per stage, in build order, the work-dir tables it reads and writes: each stage module's own
    READS / WRITES (builder/tables.py), so the printed flow cannot drift from the code."""
    from builder.curate import stage as curate
    from builder.generate import stage as generate
    from builder.release import stage as release
    from builder.responses import stage as responses
    from builder.variants import stage as variants

    return [
        {"stage": name, "reads": [tables.label(t) for t in mod.READS], "writes": [tables.label(t) for t in mod.WRITES]}
        for name, mod in (("curate", curate), ("generate", generate), ("responses", responses),
                          ("variants", variants), ("release", release))
    ]  # fmt: skip


def flow_lines(steps: list[dict[str, Any]]) -> list[str]:
    return [f"{s['stage']}: reads {', '.join(s['reads']) or 'nothing from the work dir'} → writes {', '.join(s['writes'])}"
            for s in steps]  # fmt: skip


def plan_data(recipe: Recipe) -> dict[str, Any]:
    sources = []
    for s in recipe.sources:
        where = s.path if s.kind == "local" else f"{s.dataset}" + (f" [{s.config}]" if s.config else "") + f" split={s.split}" + (f" @{s.revision}" if s.revision else "")
        mapped = {k: v for k, v in s.fields.model_dump().items() if v}
        sources.append({"name": s.name, "kind": s.kind, "where": where, "category": s.category,
                        "limit": s.limit, "license": s.license, "fields": mapped})
    d = recipe.curate.decontaminate
    out: dict[str, Any] = {
        "recipe": recipe.name,
        "version": recipe.version,
        "sources": sources,
        "dedupe": {"exact": True, "near": recipe.curate.near_dedupe.model_dump()},
        # An absent optional file is skipped by curate: listed apart, never as if it were used.
        "decontaminate": {"ngram": d.ngram,
                          "benchmarks": list(dict.fromkeys(b.name for b in d.benchmarks if recipe.resolve(b.path).is_file())),
                          "skipped": list(dict.fromkeys(b.name for b in d.benchmarks
                                                        if b.optional and not recipe.resolve(b.path).is_file()))},
        "balance": recipe.curate.balance.model_dump(),
        "expected_mix": expected_mix(recipe),
        "executor": recipe.executor.model_dump(),
        "flow": flow(),
    }
    return out


def print_plan(recipe: Recipe, console: Console, work: Path | None = None) -> None:
    data = plan_data(recipe)
    console.print(f"[bold]{recipe.name}[/] v{recipe.version}  ({len(recipe.sources)} sources)")
    console.print("flow (paths under the work dir):")
    for line in flow_lines(data["flow"]):
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    t = Table(title="sources (read in priority order)", title_justify="left")
    for col in ("name", "kind", "where", "category", "limit", "license"):
        t.add_column(col)
    for s in data["sources"]:
        t.add_row(s["name"], s["kind"], str(s["where"]), s["category"], str(s["limit"] or "all"), s["license"])
    console.print(t)
    console.print(f"dedupe: exact + MinHash {recipe.curate.near_dedupe.ngram}-grams, "
                  f"{recipe.curate.near_dedupe.buckets}×{recipe.curate.near_dedupe.hashes_per_bucket} bands")
    dec = data["decontaminate"]
    console.print(f"decontaminate: {dec['ngram']}-grams vs {', '.join(dec['benchmarks']) or 'nothing'}", highlight=False)
    if dec["skipped"]:
        console.print(f"decontaminate: [bold yellow]SKIPPED[/] (file absent, optional): {', '.join(dec['skipped'])}; "
                      "the curate summary, manifest and card will say so", highlight=False)  # fmt: skip
    mix = data["expected_mix"]
    if mix:
        m = Table(title=f"target mix ({recipe.curate.balance.target_total:,} prompts)", title_justify="left")
        m.add_column("category")
        m.add_column("prompts", justify="right")
        m.add_column("share", justify="right")
        total = sum(mix.values()) or 1
        for c, n in mix.items():
            m.add_row(c, f"{n:,}", f"{n / total:.1%}")
        console.print(m)
    print_estimate(recipe, console, work)
