"""The recipe's `quality:` and `release:` sections (pydantic only: importing this stays cheap)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    "category_mix",
    "source_mix",
    "verification_rate",
)
# Warnings only by default: mix and language drift are judgement calls, not broken rows.
ADVISORY = ("language_consistent", "category_mix", "source_mix")
DEFAULT_BLOCKING = [c for c in ALL_CHECKS if c not in ADVISORY]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MixCheck(_Strict):
    """Share of each category / source in a variant vs its target share (absolute tolerance).

    Empty targets mean "the curated prompt mix" (from <work>/curate/summary.json)."""

    variants: list[str] = Field(default_factory=lambda: ["answer"])
    tolerance: float = Field(0.10, ge=0, le=1)
    category_targets: dict[str, float] = Field(default_factory=dict)
    source_targets: dict[str, float] = Field(default_factory=dict)


class QualityConfig(_Strict):
    blocking: list[str] = Field(default_factory=lambda: list(DEFAULT_BLOCKING))
    max_student_tokens: int | None = None  # default: variants.max_student_tokens or 16,384
    language_mostly: float = Field(0.95, ge=0, le=1)  # share of rows whose answer language matches
    mix: MixCheck = Field(default_factory=MixCheck)
    # Pass rate among verifiable rows (pass + fail), per category; "*" is the default floor.
    verification_floor: dict[str, float] = Field(default_factory=lambda: {"*": 0.0})
    verification_variants: list[str] = Field(default_factory=lambda: ["answer"])

    @field_validator("blocking")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in ALL_CHECKS]
        if bad:
            raise ValueError(f"unknown check(s) {bad}; known: {list(ALL_CHECKS)}")
        return v


class ReleaseConfig(_Strict):
    pretty_name: str | None = None
    license: str | None = None  # force a license id; refused if a source forbids it
    language: list[str] = Field(default_factory=list)  # default: languages seen in the rows
    task_categories: list[str] = Field(default_factory=lambda: ["text-generation"])
    tags: list[str] = Field(default_factory=lambda: ["reasoning", "distillation", "sft", "synthetic"])
    repo_id: str | None = None  # default --repo for `push`
    citation: str | None = None
