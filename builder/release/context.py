"""What the release says about itself: the quality.json payload, the context the dataset card
is rendered from, and the manifest's fields — all assembled from the recipe, the variants'
specs (as the variants stage declared them) and statistics, and the earlier stages'
summaries. Nothing here reads shards or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from builder import __version__ as TOOLKIT_VERSION
from builder.config.curate import PAPER_MIX
from builder.language import iso_codes
from builder.recipe import Recipe
from builder.release import licenses
from builder.release.redact_recipe import published_recipe
from builder.release.versions import read_manifest, tag_for
from builder.rows import SCHEMA_VERSION
from builder.tables import SUMMARIES, CurateSummary, GenerateSummary, ResponsesSummary, VariantInfo, VariantsSummary
from builder.workdir import WorkDir
from quality.stats import VariantStats, costs, rejections, spend_by_role

DEFAULT_CITATION = """@article{answer_distill_2025,
  title   = {Leveraging Reasoning Model Answers to Enhance Non-Reasoning Model Capability},
  journal = {arXiv preprint arXiv:2504.09639},
  year    = {2025}
}"""


@dataclass(frozen=True)
class Summaries:
    """The earlier stages' summary.json, typed; None where that stage has not run."""

    curate: CurateSummary | None
    generate: GenerateSummary | None
    responses: ResponsesSummary | None
    variants: VariantsSummary | None

    @classmethod
    def read(cls, work: WorkDir) -> Summaries:
        return cls(work.read_summary(CurateSummary), work.read_summary(GenerateSummary),
                   work.read_summary(ResponsesSummary), work.read_summary(VariantsSummary))


def teacher_roles(spec: VariantInfo) -> tuple[str, ...]:
    """The teacher roles whose spend a variant's rows stand on."""
    return (*((spec.reply,) if spec.reply else ()), *(("summarizer",) if spec.needs_summary else ()))


def teacher_variants(specs: list[VariantInfo]) -> list[str]:
    """Variants built from the reasoning reply, the one with its thinking first: the teacher
    token figure reads the first released."""
    return [s.name for s in sorted(specs, key=lambda s: not s.think) if s.reply == "reasoning"]


def quality_payload(recipe: Recipe, work: WorkDir, specs: list[VariantInfo], stats: dict[str, VariantStats],
                    summaries: Summaries, built_at: str) -> dict[str, Any]:
    """quality.json's own part (the checks are added by `quality.report`)."""
    # Every teacher's spend: generate's and the variants stage's LLM summarizer (think_summary).
    spend = spend_by_role(summaries.generate, summaries.variants)
    return {
        "version": recipe.version, "built_at": built_at,
        "variants": {v: s.summary() for v, s in stats.items()},
        "rejections": rejections(work, summaries.responses),
        "spend_usd_by_role": spend,
        # The format survival gate and the adaptive variant's mix (variants stage summary).
        "format_survival": summaries.variants.format_survival if summaries.variants else {},
        "adaptive_mix": summaries.variants.adaptive_mix if summaries.variants else {},
        "cost_per_kept_row": costs(spend, {v: s.rows for v, s in stats.items()},
                                   {s.name: teacher_roles(s) for s in specs}),
    }


def row_licenses(stats: dict[str, VariantStats]) -> dict[str, set[str]]:
    """Per source, the licenses its released rows carry."""
    out: dict[str, set[str]] = {}
    for s in stats.values():
        for src, lics in s.licenses_by_source.items():
            out.setdefault(src, set()).update(lics)
    return out


def languages(recipe: Recipe, stats: dict[str, VariantStats]) -> list[str]:
    """The card's `language:` list: the recipe's, else the detected codes of released rows."""
    # "en+bn" rows count for both languages: a Bangla third of the rows must not vanish from the card.
    return recipe.release.language or iso_codes([lab for s in stats.values() for lab in s.by_language if lab])


def card_context(recipe: Recipe, specs: list[VariantInfo], stats: dict[str, VariantStats], summaries: Summaries,
                 quality: dict[str, Any], decision: licenses.LicenseDecision, figures: dict[str, str],
                 built_at: str) -> dict[str, Any]:
    """Everything `dataset_card.md` is rendered with (front matter added by the caller)."""
    blurbs = {s.name: s.blurb for s in specs}
    mix_variant = next(iter(stats))  # the exact-answer variant when released: it leads
    ms = stats[mix_variant]
    curate = summaries.curate
    by_name = {s.name: s for s in recipe.sources}
    total = sum(s.rows for s in stats.values())
    source_names = sorted({src for s in stats.values() for src in s.by_source})
    size_note = ""
    if total < 100_000:
        size_note = (f"This is a small release ({total:,} rows across configs, from {len(source_names)} sources); "
                     "it demonstrates the method and the toolkit, not the paper's 1.3M-row scale.")
    teachers = sorted({t.replace("|", " via ") for s in stats.values() for t in s.teachers})
    return {
        "pretty_name": recipe.release.pretty_name or recipe.name, "version": recipe.version, "tag": tag_for(recipe.version),
        "description": (recipe.description or "").strip(), "repo_id": recipe.release.repo_id or f"<org>/{recipe.name}",
        "total_rows": total, "toolkit_version": TOOLKIT_VERSION, "schema_version": SCHEMA_VERSION,
        "built_at": built_at[:10], "size_note": size_note, "max_student_tokens": recipe.student.max_tokens,
        "variants": [{"name": v, "description": blurbs.get(v) or v, "rows": s.rows, "num_bytes": s.num_bytes}
                     for v, s in stats.items()],
        "mix_variant": mix_variant,
        "mix": [{"category": c, "paper": n, "ours": ms.by_category.get(c, 0)} for c, n in PAPER_MIX.items()]
        + [{"category": c, "paper": None, "ours": n} for c, n in sorted(ms.by_category.items()) if c not in PAPER_MIX],
        "paper_total": sum(PAPER_MIX.values()), "mix_total": ms.rows,
        "curate": {"rows_in": curate.rows_in, "rows_out": curate.rows_out,
                   "steps": [{**s.model_dump(by_alias=True), "dropped_total": sum(s.dropped.values())}
                             for s in curate.steps]} if curate else None,
        "teachers": teachers, "summarizers": sorted({x for s in stats.values() for x in s.summarizers}),
        "benchmarks": list(dict.fromkeys(curate.decontamination.benchmarks)) if curate else [],
        "decontam_hits": curate.decontamination.hits_per_benchmark if curate else {},
        "sources": [{"name": n, "license": next((lic for name, lic, _ in decision.attributions if name == n), ""),
                     "attribution": by_name[n].attribution if n in by_name else "",
                     "rows": [stats[v].by_source.get(n, 0) for v in stats]}
                    for n in source_names],
        "tokens": quality["variants"][mix_variant]["tokens"], "verification": quality["variants"][mix_variant]["verification"],
        "rejections": quality["rejections"]["ledgers"], "costs": quality["cost_per_kept_row"],
        "checks": quality["checks"], "figures": figures,
        "license_label": decision.license if isinstance(decision.license, str) else ", ".join(decision.license),
        "license_statement": decision.statement, "attributions": decision.attributions,
        "limitations": [size_note] if size_note else [],
        "citation": recipe.release.citation or DEFAULT_CITATION,
        "recipe_name": recipe.name, "recipe_sha256": recipe.sha256,
    }


def _seeds(node: Any, path: str = "") -> dict[str, Any]:
    """Every `seed` key in the recipe, by its key path."""
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if k == "seed" and not isinstance(v, (dict, list)):
                out[p] = v
            else:
                out |= _seeds(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out |= _seeds(v, f"{path}[{i}]")
    return out


def _stage_dates(work: WorkDir) -> dict[str, str]:
    """When each earlier stage last finished (its summary.json's write time, UTC)."""
    out = {}
    for stage, model in SUMMARIES.items():
        path = work.summary_path(model)
        if path.is_file():
            ts = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            out[f"{stage}_finished_at"] = ts.isoformat(timespec="seconds").replace("+00:00", "Z")
    return out


def manifest_fields(recipe: Recipe, work: WorkDir, stats: dict[str, VariantStats], configs: dict[str, dict[str, int]],
                    summaries: Summaries, decision: licenses.LicenseDecision, built_at: str,
                    prev: Path | None) -> dict[str, Any]:
    """manifest.json's fields (its `files` list is added by `write_manifest`)."""
    decon = summaries.curate.decontamination if summaries.curate else None
    teachers = sorted({t for s in stats.values() for t in s.teachers})
    # recipe.yaml is published with local paths and private endpoints replaced by markers:
    # `sha256` is that file's, `source_sha256` the builder's own file's (the one the earlier
    # stages' summaries name), and `redacted` each original's hash, so the builder can prove
    # which path or endpoint was used without the release naming it.
    published = published_recipe(recipe)
    return {
        "recipe_name": recipe.name, "version": recipe.version, "tag": tag_for(recipe.version),
        "built_at": built_at, "toolkit_version": TOOLKIT_VERSION, "schema_version": SCHEMA_VERSION,
        "recipe": {"file": "recipe.yaml", "sha256": published.sha256 if published else recipe.sha256,
                   "source_sha256": recipe.sha256},
        "redacted": [r.as_dict() for r in published.redacted] if published else [],
        "configs": {v: {"num_examples": c["num_examples"], "num_bytes": c["num_bytes"]} for v, c in configs.items()},
        "teachers": [{"model": t.split("|")[0], "endpoint_kind": t.split("|")[1]} for t in teachers],
        "summarizers": sorted({x for s in stats.values() for x in s.summarizers}),
        "prompt_templates": sorted({f"{i}:{h}" for s in stats.values() for i, h in s.templates}),
        "summary_templates": sorted({f"{i}:{h}" for s in stats.values() for i, h in s.summary_templates}),
        "seeds": _seeds(recipe.model_dump(mode="json")),
        "dates": {"built_at": built_at, **_stage_dates(work)},
        "decontamination": {"benchmarks": decon.benchmarks if decon else [],
                            "skipped_absent": decon.skipped_absent if decon else []},
        "license": decision.license,
        "previous_version": (read_manifest(prev) or {}).get("version") if prev else None,
    }
