"""The release stage: quality gates on every variant, then a Hub-ready dataset folder.

READS / WRITES below (builder/tables.py): every variant, curate's decontamination report, the
ledgers and every stage's summary (the mix, the teachers' and the summarizer's spend).
Writes <out>/data/<variant>/train-0000k-of-0000n.parquet, README.md (the dataset card),
       quality.json, quality/ (GX results and Data Docs pages), figures/, CHANGELOG.md,
       recipe.yaml and manifest.json — only when every blocking check passes. A blocked
       release leaves its report in <work>/quality/ and no release folder.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from builder import tables
from builder.errors import UserError, secret_values
from builder.progress import Progress, report
from builder.recipe import Recipe
from builder.release import card, card_data, changelog, columns, context, gates, licenses, pairs, staging, tasks
from builder.release.content import compare
from builder.release.folder import staging as staging_dir
from builder.release.manifest import write_manifest
from builder.release.redact_recipe import published_recipe
from builder.release.verified import failed_left_out
from builder.release.versions import find_previous, read_manifest, refuse_existing
from builder.rows import PAIR_FEATURES, VARIANT_FEATURES, stable_hash
from builder.workdir import WorkDir
from quality.report import checks_table, one_line, write_quality_json

READS = (tables.VARIANT, tables.DECONTAMINATION, tables.PROMPTS, tables.PARSED, tables.QUARANTINE,
         *tables.LEDGERS.values(), *tables.SUMMARIES.values())
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


def card_template(recipe: Recipe) -> Path:
    """The card body's template: the recipe's `release.card_template` (relative to the recipe
    file), else the toolkit's dataset_card.md."""
    given = recipe.release.card_template
    if not given:
        return card.TEMPLATE
    base = recipe.path.parent if recipe.path is not None else Path.cwd()
    path = (base / given).resolve()
    if not path.is_file():
        raise UserError(f"{recipe.path}: release.card_template: {path} is not a file; fix the path "
                        "(relative to the recipe) or remove the key to use the default card")
    return path


def fingerprint(recipe: Recipe, work: WorkDir) -> dict[str, Any]:
    """What a release's content depends on: its recipe sections and every stage's output digest."""
    release = recipe.release.model_copy(update={"tasks": None})  # how many tasks never changes the content
    return work.fingerprint({"name": recipe.name, "version": recipe.version, "description": recipe.description,
                             "quality": recipe.quality, "release": release},
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
    template = card_template(recipe)
    card.check_fields(template, context.CARD_FIELDS)  # a bad template fails before the gates run
    n_tasks = tasks.task_count(recipe, len(tasks.units(work, variants)))
    key = stable_hash(build_fingerprint, 16)
    scratch = None
    if n_tasks > 1 or recipe.executor.kind != "local":  # else: staged in this process (threads)
        report(progress, f"staging shards in {n_tasks} {recipe.executor.kind} task(s)")
        scratch = tasks.run_tasks(recipe, work, variants, n_tasks, key)
    with staging_dir(out_dir) as tmp:
        known: dict[str, str] = {}  # release-relative path → sha256, taken while staging
        taken: dict[str, Any] = {}  # config → its content hash, taken while staging
        failed = failed_left_out(work)  # read once: the verification gates and quality.json
        stats, outcomes, bytes_in = gates.check_variants(recipe, work, variants, tmp, progress, known,
                                                         summaries.curate, failed, taken, scratch, prev is not None)
        blocking = recipe.quality.blocking
        quality = context.quality_payload(recipe, work, variants, stats, summaries, built_at, failed)
        write_quality_json(tmp / "quality.json", quality, outcomes, blocking)
        warn = gates.verdict(outcomes, blocking, tmp, work, out_dir)
        quality["checks"] = checks_table(outcomes, blocking)
        report(progress, "statistics, figures and the dataset card")
        from quality.plots import all_figures  # matplotlib only once the gates passed

        figures = all_figures(stats, tmp / "figures", context.teacher_variants(variants))
        decision = licenses.decide(recipe, context.row_licenses(stats))
        configs = staging.data_configs(tmp, stats)
        # Its own schema: staged apart, off by default; its content is hashed like every config's.
        staged_pairs = pairs.stage_pairs(work, tmp, known, prev is not None)
        if staged_pairs is not None:
            configs[pairs.NAME] = staged_pairs.config
            taken[pairs.NAME] = staged_pairs.taken
        names = list(stats)
        evidence = {"columns": columns.table(VARIANT_FEATURES), "fill": card_data.fill_rates(tmp, names),
                    "examples": card_data.example_rows(tmp, names), "three_ways": card_data.three_ways(tmp),
                    "funnel": card_data.funnel(work),
                    "summary": card_data.summary_figures(tmp, int((quality.get("summary_quality") or {}).get("scored", 0)))}
        ctx = context.card_context(recipe, variants, stats, summaries, quality, decision, figures, built_at, evidence)
        ctx["pairs"] = pairs.card_section(staged_pairs)
        ctx["front_matter"] = card.front_matter(
            configs, decision.license, context.languages(recipe, stats), recipe.release.task_categories,
            recipe.release.tags, ctx["pretty_name"], context.source_datasets(recipe, [s["name"] for s in ctx["sources"]]),
            license_name=context.license_name(recipe), features={pairs.NAME: PAIR_FEATURES})
        readme = card.render(ctx, template)
        bad = card.problems(readme)
        if bad:
            raise UserError(f"release refused: the card breaks the Hub's metadata rules: {bad[0]}"
                            f"{f' (+{len(bad) - 1} more)' if len(bad) > 1 else ''}; fix the recipe's release: section")
        content = compare(tmp, prev, list(configs), changelog.old_configs(prev), taken)
        fields = context.manifest_fields(recipe, work, stats, configs, summaries, decision, built_at, prev,
                                         {c: x.content_sha256 for c, x in content.items() if x.content_sha256})
        published = published_recipe(recipe)
        documents = {"README.md": readme,
                     "CHANGELOG.md": changelog.render(recipe.version, built_at[:10], quality, prev, content,
                                                      fields, published.text if published else None)}
        if decision.license == "other" or (isinstance(decision.license, list) and "other" in decision.license):
            documents[card.LICENSE_FILE] = licenses.license_file(decision, ctx["pretty_name"], context.output_models(stats))
        staging.write_documents(tmp, recipe, documents)
        write_manifest(tmp, {**fields, "build_fingerprint": build_fingerprint}, known)
        staging.refuse_leaks(tmp)
    if scratch is not None:
        shutil.rmtree(tasks.scratch_root(work), ignore_errors=True)  # committed: the task outputs are spent
    notes = [one_line(o) for o in warn]
    if ctx["repo_placeholder"]:
        notes.append(f"the card's load snippet and citation name {ctx['repo_id']}: no repo id was given; "
                     "pass `release --repo org/name` or set release.repo_id, then release a new version")
    return ReleaseResult(out_dir, recipe.version, {v: s.rows for v, s in stats.items()}, notes,
                         decision.license, time.perf_counter() - t0, bytes_in, quality["checks"])
