"""The release stage: quality gates on every variant, then a Hub-ready dataset folder.

READS / WRITES below (builder/tables.py): every variant, curate's decontamination report, the
ledgers and every stage's summary (the mix, the teachers' and the summarizer's spend).
Writes <out>/data/<variant>/train-0000k-of-0000n.parquet, README.md (the dataset card),
       quality.json, quality/ (GX results and Data Docs pages), figures/, CHANGELOG.md,
       recipe.yaml and manifest.json — only when every blocking check passes. A blocked
       release leaves its report in <work>/quality/ and no release folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from builder import tables
from builder.errors import UserError, secret_values
from builder.progress import Progress, report
from builder.recipe import Recipe
from builder.release import card, changelog, context, gates, licenses, staging
from builder.release.folder import staging as staging_dir
from builder.release.manifest import write_manifest
from builder.release.versions import find_previous, read_manifest, refuse_existing
from builder.workdir import WorkDir
from quality.report import checks_table, one_line, write_quality_json

READS = (tables.VARIANT, tables.DECONTAMINATION, *tables.LEDGERS.values(), *tables.SUMMARIES.values())
WRITES = (tables.RELEASE_FOLDER, tables.QUALITY_REPORT)


@dataclass
class ReleaseResult:
    out_dir: Path
    version: str
    counts: dict[str, int]
    warnings: list[str]
    license: str | list[str]
    seconds: float
    bytes_in: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)


def _refuse_secret_recipe(recipe: Recipe) -> None:
    recipe_bytes = recipe.path.read_bytes() if recipe.path is not None else b""
    if any(v.encode() in recipe_bytes for v in secret_values()):
        raise UserError(f"{recipe.path}: contains the value of a secret environment variable; keep tokens "
                        "in the environment only (the recipe is published with the release)")


def fingerprint(recipe: Recipe, work: WorkDir) -> dict[str, Any]:
    """What a release's content depends on: its recipe sections and every stage's output digest."""
    return work.fingerprint({"name": recipe.name, "version": recipe.version, "description": recipe.description,
                             "quality": recipe.quality, "release": recipe.release},
                            ("curate", "generate", "responses", "variants"))  # fmt: skip


def unchanged(recipe: Recipe, work: WorkDir, out_dir: Path) -> bool:
    """True when `out_dir` already holds this exact release (same fingerprint): nothing to do.
    A folder holding this version built from other content is refused (bump the version)."""
    built = read_manifest(out_dir)
    if built is not None and built.get("build_fingerprint") == fingerprint(recipe, work):
        return True
    refuse_existing(out_dir, recipe.version)
    return False


def run_release(recipe: Recipe, work: WorkDir | Path, out_dir: Path, progress: Progress | None = None,
                previous: Path | None = None) -> ReleaseResult:
    t0 = time.perf_counter()
    work = work if isinstance(work, WorkDir) else WorkDir(work)
    out_dir = Path(out_dir)
    refuse_existing(out_dir, recipe.version)
    build_fingerprint = fingerprint(recipe, work)
    variants = staging.published(work)  # the variants stage's specs, as data
    _refuse_secret_recipe(recipe)
    prev = find_previous(out_dir, recipe.name, recipe.version, previous)
    built_at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    summaries = context.Summaries.read(work)
    with staging_dir(out_dir) as tmp:
        known: dict[str, str] = {}  # release-relative path → sha256, taken while staging
        stats, outcomes, bytes_in = gates.check_variants(recipe, work, variants, tmp, progress, known,
                                                         summaries.curate)
        blocking = recipe.quality.blocking
        quality = context.quality_payload(recipe, work, variants, stats, summaries, built_at)
        write_quality_json(tmp / "quality.json", quality, outcomes, blocking)
        warn = gates.verdict(outcomes, blocking, tmp, work, out_dir)
        quality["checks"] = checks_table(outcomes, blocking)
        report(progress, "statistics, figures and the dataset card")
        from quality.plots import all_figures  # matplotlib only once the gates passed

        figures = all_figures(stats, tmp / "figures", context.teacher_variants(variants))
        decision = licenses.decide(recipe, context.row_licenses(stats))
        configs = staging.data_configs(tmp, stats)
        ctx = context.card_context(recipe, variants, stats, summaries, quality, decision, figures, built_at)
        ctx["front_matter"] = card.front_matter(configs, decision.license, context.languages(recipe, stats),
                                                recipe.release.task_categories, recipe.release.tags, ctx["pretty_name"])
        staging.write_documents(tmp, recipe, {
            "README.md": card.render(ctx),
            "CHANGELOG.md": changelog.render(recipe.version, built_at[:10], quality, prev),
        })
        write_manifest(tmp, {**context.manifest_fields(recipe, work, stats, configs, summaries, decision, built_at, prev),
                             "build_fingerprint": build_fingerprint}, known)
        staging.refuse_leaks(tmp)
    return ReleaseResult(out_dir, recipe.version, {v: s.rows for v, s in stats.items()}, [one_line(o) for o in warn],
                         decision.license, time.perf_counter() - t0, bytes_in, quality["checks"])
