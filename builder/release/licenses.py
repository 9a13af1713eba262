"""The release license, derived from the sources whose rows are in the release.

A release is labelled with a permissive license only when every contributing source is
declared permissive. Any non-commercial (cc-by-nc-*), research-only, undeclared or
unrecognised source makes the label "other", with a statement naming those sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.errors import UserError
from builder.recipe import Recipe

PERMISSIVE = {
    "mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-4.0", "cc-by-3.0",
    "cc-by-sa-4.0", "cc-by-sa-3.0", "odc-by", "pddl", "unlicense", "isc", "odbl",
}
UNDECLARED = {"", "undeclared", "unknown", "none", "other"}


def table_cell(value: object) -> str:
    """Text from the recipe or the data (a source's name, license or attribution, a model name)
    as one Markdown table cell: a "|" or a line break in it would end the cell or the row and
    shift every figure after it into the wrong column."""
    return "" if value is None else " ".join(str(value).split()).replace("|", "\\|")


def why_restricted(license_id: str) -> str | None:
    lic = (license_id or "").strip().lower()
    if lic in UNDECLARED:
        return "license undeclared"
    if "-nc" in lic or "noncommercial" in lic or "non-commercial" in lic:
        return f"non-commercial ({lic})"
    if "research" in lic:
        return f"research-only ({lic})"
    if lic not in PERMISSIVE:
        return f"not a recognised permissive license ({lic})"
    return None


@dataclass
class LicenseDecision:
    license: str | list[str]  # the card's `license:` (a Hub id, or a list of ids)
    statement: str
    restricted: list[tuple[str, str, str]] = field(default_factory=list)  # (source, license, why)
    attributions: list[tuple[str, str, str]] = field(default_factory=list)  # (source, license, attribution)


def decide(recipe: Recipe, row_licenses: dict[str, set[str]]) -> LicenseDecision:
    """row_licenses: source name → the `source_license` values its released rows carry."""
    by_name = {s.name: s for s in recipe.sources}
    restricted: list[tuple[str, str, str]] = []
    attributions: list[tuple[str, str, str]] = []
    licenses: set[str] = set()
    for name in sorted(row_licenses):
        src = by_name.get(name)
        declared = {src.license} if src else set()
        lics = sorted({lic.lower() for lic in (row_licenses[name] | declared)}) or ["undeclared"]
        licenses |= set(lics)
        attributions.append((name, ", ".join(lics), src.attribution if src else ""))
        reasons = [w for w in (why_restricted(lic) for lic in lics) if w]
        if reasons:
            restricted.append((name, ", ".join(lics), "; ".join(reasons)))
    forced = recipe.release.license
    if restricted:
        if forced and why_restricted(forced) is None:
            names = ", ".join(r[0] for r in restricted)
            raise UserError(
                f"{recipe.path}: release.license: {forced!r} is permissive but source(s) {names} are not; "
                "remove release.license (the release will be labelled 'other') or drop those sources"
            )
        listed = "; ".join(f"{n} ({why})" for n, _, why in restricted)
        statement = (
            "This release is labelled `other`: it contains rows from sources that are not under a permissive "
            f"license: {listed}. Each row's `source` and `source_license` columns say where it came from; "
            "filter on them to keep only rows whose terms suit your use."
        )
        return LicenseDecision(forced or "other", statement, restricted, attributions)
    label: str | list[str] = forced or (sorted(licenses)[0] if len(licenses) == 1 else sorted(licenses))
    statement = (
        "Every source in this release is under a permissive license: "
        + ", ".join(sorted(licenses))
        + ". Keep the attributions below; each row's `source_license` column names its terms."
    )
    return LicenseDecision(label, statement, [], attributions)


def license_file(decision: LicenseDecision, title: str, models: list[str]) -> str:
    """LICENSE.md for a release labelled `other` (the card's `license_link`): the statement,
    then every source with its license and attribution, then the terms of the models' outputs."""
    lines = [f"# License of {title}", "", decision.statement, "", "| source | license | attribution |",
             "|---|---|---|"]
    lines += [f"| {table_cell(name)} | {table_cell(lic)} | {table_cell(attribution) or '—'} |"
              for name, lic, attribution in decision.attributions]
    terms = teacher_terms(models)
    return "\n".join([*lines, *(["", terms] if terms else [])]) + "\n"


def teacher_terms(models: list[str]) -> str:
    """The sentence on the terms that come with model outputs, naming the models that wrote this
    release's assistant turns (teachers, an LLM summarizer): "" for a release of community
    responses only. It named DeepSeek-R1 alone, also over other models' outputs (the sample's
    o3-mini control replies, under OpenAI's terms)."""
    if not models:
        return ""
    named = ", ".join(f"`{m}`" for m in sorted(set(models)))
    return (f"Teacher outputs (the assistant turns of every config but `original`) are also subject to the terms of "
            f"the models that wrote them: {named}; see each model's license or its provider's terms (DeepSeek-R1 "
            "is released under MIT).")
