"""What the release says about itself: the quality.json payload, the context the dataset card
is rendered from, and the manifest's fields — all assembled from the recipe, the variants'
specs (as the variants stage declared them) and statistics, and the earlier stages'
summaries. Nothing here reads shards or writes files.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from builder import __version__ as TOOLKIT_VERSION
from builder.config.curate import PAPER_MIX
from builder.language import iso_codes
from builder.recipe import Recipe
from builder.release import licenses, verified
from builder.release.redact_recipe import published_recipe
from builder.release.versions import read_manifest, tag_for
from builder.rows import SCHEMA_VERSION
from builder.tables import SUMMARIES, CurateSummary, GenerateSummary, ResponsesSummary, VariantInfo, VariantsSummary
from builder.workdir import WorkDir
from quality.stats import VariantStats, costs, rejections, spend_by_role

# Authors as printed on the paper (the a-m-team's own PDF of arXiv 2504.09639).
PAPER_CITATION = """@misc{wang2025leveraging,
  title         = {Leveraging Reasoning Model Answers to Enhance Non-Reasoning Model Capability},
  author        = {Haotian Wang and Han Zhao and Shuaiting Chen and Xiaoyu Tian and Sitong Zhao and
                   Yunjie Ji and Yiping Peng and Xiangang Li},
  year          = {2025},
  eprint        = {2504.09639},
  archivePrefix = {arXiv},
  primaryClass  = {cs.CL},
  url           = {https://arxiv.org/abs/2504.09639}
}"""
# Every field a card template may name (tests/test_card.py checks it is exactly what
# card_context returns, plus the front matter): checked before the gates run.
CARD_FIELDS = frozenset((
    "front_matter", "pretty_name", "version", "tag", "description", "repo_id", "repo_placeholder", "total_rows",
    "toolkit_version", "schema_version", "built_at", "size_note", "max_student_tokens", "variants", "mix_variant",
    "mix", "paper_total", "mix_total", "curate", "teachers", "summarizers", "benchmarks", "decontam_methods", "decontam_hits",
    "decontam_skipped", "decontam_partial", "sources", "tokens", "verification", "rejections", "costs", "checks",
    "checks_failed",
    "blocking_failed", "spend", "figures", "license_label", "license_statement", "attributions", "limitations",
    "paper_citation", "citation", "columns", "fill", "examples", "three_ways", "funnel", "recipe_name",
    "recipe_sha256", "self_checks", "pairs", "teacher_terms",
))
PLACEHOLDER_ORG = "YOUR-ORG"  # the load snippet's marked stand-in when no repo id was given


def repo_id(recipe: Recipe) -> tuple[str, bool]:
    """(the Hub id the card names, whether it is a placeholder)."""
    if recipe.release.repo_id:
        return recipe.release.repo_id, False
    return f"{PLACEHOLDER_ORG}/{recipe.name}", True


def dataset_citation(recipe: Recipe, built_at: str) -> str:
    """The recipe's `release.citation`, else a @misc entry for this release of the dataset."""
    if recipe.release.citation:
        return recipe.release.citation.strip()
    repo, _ = repo_id(recipe)
    key = re.sub(r"[^a-z0-9]+", "_", f"{recipe.name}_{recipe.version}".lower()).strip("_")
    title = recipe.release.pretty_name or recipe.name
    return (f"@misc{{{key},\n  title        = {{{title} (v{recipe.version})}},\n"
            f"  author       = {{{repo.split('/')[0]}}},\n  year         = {{{built_at[:4]}}},\n"
            f"  howpublished = {{\\url{{https://huggingface.co/datasets/{repo}}}}},\n"
            f"  note         = {{Hugging Face dataset, revision {tag_for(recipe.version)}; built with "
            f"answer-distill {TOOLKIT_VERSION}}}\n}}")


def license_name(recipe: Recipe) -> str:
    """The card's `license_name` for a release labelled `other` (a lowercase id)."""
    return re.sub(r"[^a-z0-9.+-]+", "-", f"{recipe.name}-source-licenses".lower()).strip("-")


def source_link(hub_id: str | None) -> str:
    return f"https://huggingface.co/datasets/{hub_id}" if hub_id else ""


def source_datasets(recipe: Recipe, names: list[str]) -> list[str]:
    """The card's `source_datasets`: `extended|<hub id>` per released source taken from the Hub."""
    by_name = {s.name: s for s in recipe.sources}
    ids = sorted({by_name[n].hub_id for n in names if n in by_name and by_name[n].hub_id})
    return [f"extended|{i}" for i in ids] or ["original"]


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
                    summaries: Summaries, built_at: str, failed: Counter[str]) -> dict[str, Any]:
    """quality.json's own part (the checks are added by `quality.report`); `failed`:
    verified.failed_left_out(work), as the verification gates read it."""
    # Every teacher's spend: generate's and the variants stage's LLM summarizer (think_summary).
    spend = spend_by_role(summaries.generate, summaries.variants)
    reasoning = {s.name for s in specs if s.reply == "reasoning"}
    variants = {v: s.summary() for v, s in stats.items()}
    for v in reasoning & set(variants):  # the verification failures the rows cannot show
        variants[v]["verification"] = verified.shown(verified.rates(stats[v].verify, failed))
    return {
        "version": recipe.version, "built_at": built_at,
        "variants": variants,
        "rejections": rejections(work, summaries.responses),
        "spend_usd_by_role": spend,
        # The format survival gate and the adaptive variant's mix (variants stage summary).
        "format_survival": summaries.variants.format_survival if summaries.variants else {},
        "adaptive_mix": summaries.variants.adaptive_mix if summaries.variants else {},
        "cost_per_kept_row": costs(spend, {v: s.rows for v, s in stats.items()},
                                   {s.name: teacher_roles(s) for s in specs}),
        # Think–answer agreement of the kept reasoning replies, per "source | teacher model".
        "consistency": summaries.responses.consistency if summaries.responses else {},
        **_self_checks(summaries),
    }


def _self_checks(summaries: Summaries) -> dict[str, Any]:
    """The variants stage's self-check figures (issue 14): summary quality and faithfulness, the
    thinking-length z-score histogram, and the configs built but not published (with why)."""
    v = summaries.variants
    if v is None:
        return {"self_checks": self_check_rows(summaries)}
    return {
        "summary_quality": {**v.summary_quality, "think_summary_absent": v.absent.get("think_summary", {})},
        "overthinking": {"threshold_z": v.overthinking_z, "histogram": v.overthinking_histogram},
        "omitted_configs": v.omitted,
        "self_checks": self_check_rows(summaries),
    }


def self_check_rows(summaries: Summaries) -> dict[str, Any]:
    """The card's "Self-checks" section: the figures above as small tables (plain values)."""
    v, r = summaries.variants, summaries.responses
    consistency = [{"source": k.split(" | ", 1)[0], "teacher": k.split(" | ", 1)[-1], **c}
                   for k, c in sorted((r.consistency if r else {}).items())]  # fmt: skip
    survival = [{"variant": name, "category": cat, **t}
                for name, cats in sorted((v.format_survival if v else {}).items())
                for cat, t in sorted(cats.items(), key=lambda kv: (kv[0] != "*", kv[0]))]  # fmt: skip
    mix = [{"category": cat, "summary": m.get("summary", 0), "answer": m.get("answer", 0)}
           for cat, m in sorted((v.adaptive_mix if v else {}).items())]  # fmt: skip
    hist = v.overthinking_histogram if v else {}
    peak = max(hist.values(), default=0) or 1
    bars = [{"bin": b, "n": n, "bar": "█" * round(20 * n / peak)} for b, n in hist.items() if b != "none"]
    return {"summary": v.summary_quality if v else {}, "consistency": consistency, "survival": survival,
            "adaptive_mix": mix, "overthinking": bars, "overthinking_z": v.overthinking_z if v else None,
            "omitted": v.omitted if v else {}}


def output_models(stats: dict[str, VariantStats]) -> list[str]:
    """The models whose outputs are this release's assistant turns: teachers and an LLM summarizer."""
    teachers = {t.split("|")[0] for s in stats.values() for t in s.teachers}
    summarizers = {x.removeprefix("llm:") for s in stats.values() for x in s.summarizers if x.startswith("llm:")}
    return sorted(teachers | summarizers)


def row_licenses(stats: dict[str, VariantStats]) -> dict[str, set[str]]:
    """Per source, the licenses its released rows carry."""
    out: dict[str, set[str]] = {}
    for s in stats.values():
        for src, lics in s.licenses_by_source.items():
            out.setdefault(src, set()).update(lics)
    return out


def languages(recipe: Recipe, stats: dict[str, VariantStats]) -> list[str]:
    """The card's `language:` list: the ISO codes detected in the released rows, plus any the
    recipe names (release.language adds to what the rows hold; it never hides a language)."""
    # "en+bn" rows count for both languages: a Bangla third of the rows must not vanish from the card.
    detected = iso_codes([lab for s in stats.values() for lab in s.by_language if lab])
    return sorted({*recipe.release.language, *detected})


def card_context(recipe: Recipe, specs: list[VariantInfo], stats: dict[str, VariantStats], summaries: Summaries,
                 quality: dict[str, Any], decision: licenses.LicenseDecision, figures: dict[str, str],
                 built_at: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """Everything `dataset_card.md` is rendered with (front matter added by the caller).
    `evidence`: what `card_data` read from the staged folder and the ledgers (columns, fill
    rates, examples, three_ways, funnel)."""
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
    repo, placeholder = repo_id(recipe)
    checks = quality["checks"]
    failed = [c for c in checks if not c["success"]]
    return {
        "pretty_name": recipe.release.pretty_name or recipe.name, "version": recipe.version, "tag": tag_for(recipe.version),
        "description": (recipe.description or "").strip(), "repo_id": repo, "repo_placeholder": placeholder,
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
        "benchmarks": curate.decontamination.benchmarks if curate else [],
        "decontam_methods": (curate.decontamination.methods if curate else None) or ["n-gram", "fuzzy match"],
        "decontam_hits": curate.decontamination.hits_per_benchmark if curate else {},
        # A benchmark with several files can be checked on some and skipped on others: "partly".
        "decontam_skipped": [b for b in curate.decontamination.skipped_absent
                             if b not in curate.decontamination.benchmarks] if curate else [],
        "decontam_partial": [b for b in curate.decontamination.skipped_absent
                             if b in curate.decontamination.benchmarks] if curate else [],
        "sources": [{"name": n, "license": next((lic for name, lic, _ in decision.attributions if name == n), ""),
                     "attribution": by_name[n].attribution if n in by_name else "",
                     "link": source_link(by_name[n].hub_id if n in by_name else None),
                     "rows": [stats[v].by_source.get(n, 0) for v in stats]}
                    for n in source_names],
        "tokens": quality["variants"][mix_variant]["tokens"], "verification": quality["variants"][mix_variant]["verification"],
        "rejections": quality["rejections"]["ledgers"], "costs": quality["cost_per_kept_row"],
        "checks": checks, "checks_failed": failed, "blocking_failed": [c for c in failed if c["blocking"]],
        "spend": quality["spend_usd_by_role"], "figures": figures,
        "license_label": decision.license if isinstance(decision.license, str) else ", ".join(decision.license),
        "license_statement": decision.statement, "attributions": decision.attributions,
        "teacher_terms": licenses.teacher_terms(output_models(stats)),
        "limitations": [size_note] if size_note else [],
        "paper_citation": PAPER_CITATION, "citation": dataset_citation(recipe, built_at),
        "columns": evidence["columns"], "fill": evidence["fill"], "examples": evidence["examples"],
        "three_ways": evidence["three_ways"], "funnel": evidence["funnel"],
        "recipe_name": recipe.name, "recipe_sha256": recipe.sha256,
        # Summary figures of the published rows (card_data.summary_figures), not of every summary scored.
        "self_checks": {**quality["self_checks"], "summary": evidence.get("summary") or {}},
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
                    prev: Path | None, content: dict[str, str]) -> dict[str, Any]:
    """manifest.json's fields (its `files` list is added by `write_manifest`); `content`: each
    config's content_sha256 (see content.py)."""
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
        "repo_id": recipe.release.repo_id,
        "configs": {v: {"num_examples": c["num_examples"], "num_bytes": c["num_bytes"],
                        "content_sha256": content.get(v)} for v, c in configs.items()},
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
