"""The recipe's `quality:` and `release:` sections (pydantic only: importing this stays cheap)."""

from __future__ import annotations

from pydantic import Field, field_validator

from builder.config.base import Strict

# Check names our code gates on. GX's own `severity` is informational only.
ALL_CHECKS = (
    "schema",
    "not_null",
    "unique_row_id",
    "tag_grammar",
    "summary_ends_with_answer",
    "student_tokens_within_max",
    "language_consistent",
    "not_contaminated",
    "tools_kept",  # a tool-use row carries its tool definitions in `tools`
    "category_mix",
    "source_mix",
    "verification_rate",
)
# Warnings only by default: mix and language drift are judgement calls, not broken rows.
ADVISORY = ("language_consistent", "category_mix", "source_mix")
DEFAULT_BLOCKING = [c for c in ALL_CHECKS if c not in ADVISORY]


class MixCheck(Strict):
    """Share of each category / source in a variant vs its target share (absolute tolerance).

    Empty targets mean "the curated prompt mix" (from <work>/curate/summary.json)."""

    variants: list[str] = Field(default_factory=lambda: ["answer"], description="variants whose mix is checked")
    tolerance: float = Field(0.10, ge=0, le=1, description="absolute tolerance on each share")
    category_targets: dict[str, float] = Field(default_factory=dict, description="category → target share")
    source_targets: dict[str, float] = Field(default_factory=dict, description="source → target share")


class QualityConfig(Strict):
    blocking: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKING), description="checks that stop a release when they fail"
    )
    language_mostly: float = Field(0.95, ge=0, le=1, description="share of rows whose answer language must match")
    mix: MixCheck = Field(default_factory=MixCheck, description="category / source mix check")
    verification_floor: dict[str, float] = Field(
        default_factory=lambda: {"*": 0.0},
        description="pass rate among verifiable rows (pass + fail), per category; '*' is the default floor",
    )
    verification_variants: list[str] = Field(default_factory=lambda: ["answer"], description="variants the floor applies to")

    @field_validator("blocking")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in ALL_CHECKS]
        if bad:
            raise ValueError(f"unknown check(s) {bad}; known: {list(ALL_CHECKS)}")
        return v


class ReleaseConfig(Strict):
    pretty_name: str | None = Field(None, description="the card's title")
    license: str | None = Field(None, description="force a license id; refused if a source forbids it")
    language: list[str] = Field(default_factory=list, description="default: languages seen in the rows")
    task_categories: list[str] = Field(default_factory=lambda: ["text-generation"], description="card metadata")
    tags: list[str] = Field(
        default_factory=lambda: ["reasoning", "distillation", "sft", "synthetic"], description="card metadata"
    )
    repo_id: str | None = Field(None, description="Hub id (org/name): the card's load snippet and push's default --repo")
    citation: str | None = Field(None, description="BibTeX for the dataset; default: the paper's")
