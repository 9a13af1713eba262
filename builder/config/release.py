"""The recipe's `quality:` and `release:` sections (pydantic only: importing this stays cheap)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from builder.config.base import CATEGORIES, Strict

# org/name, as the Hub spells dataset ids (ASCII only); push adds the client's other rules.
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+", re.ASCII)
# The Hub's license ids (huggingface.co/docs/hub/repositories-licenses) a card may carry.
HUB_LICENSES = frozenset((
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0",
    "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1",
    "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research",
    "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl", "openrail++",
    "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license",
    "fair-noncommercial-research-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma",
    "unknown", "other",
))
# The Hub's dataset task categories (the card's `task_categories:`).
HUB_TASKS = frozenset((
    "text-classification", "token-classification", "table-question-answering", "question-answering",
    "zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation", "fill-mask",
    "sentence-similarity", "text-to-speech", "text-to-audio", "automatic-speech-recognition", "audio-to-audio",
    "audio-classification", "voice-activity-detection", "depth-estimation", "image-classification",
    "object-detection", "image-segmentation", "text-to-image", "image-to-text", "image-to-image", "image-to-video",
    "unconditional-image-generation", "video-classification", "reinforcement-learning", "robotics",
    "tabular-classification", "tabular-regression", "tabular-to-text", "table-to-text", "multiple-choice",
    "text-ranking", "text-retrieval", "time-series-forecasting", "text-to-video", "image-text-to-text",
    "visual-question-answering", "document-question-answering", "zero-shot-image-classification", "graph-ml",
    "mask-generation", "zero-shot-object-detection", "text-to-3d", "image-to-3d", "image-feature-extraction",
    "video-text-to-text", "keypoint-detection", "visual-document-retrieval", "any-to-any", "other",
))
ISO_639 = re.compile(r"[a-z]{2,3}")


def repo_id_problem(repo_id: str) -> str | None:
    """Why `repo_id` is not a Hub dataset id (None when it is one)."""
    if not REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id or repo_id.endswith(".git"):
        return "is not a Hub dataset id; use org/name (letters, digits, '-', '_', '.'; no '--' or '..')"
    if len(repo_id.split("/")[1]) > 96:
        return "has a name longer than 96 characters"
    return None


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


def _shares_in_range(v: dict[str, float]) -> dict[str, float]:
    bad = {k: x for k, x in v.items() if not 0 <= x <= 1}
    if bad:
        raise ValueError(f"shares are between 0 and 1; got {bad}")
    return v


def _shares_by_category(v: dict[str, float], allow: tuple[str, ...]) -> dict[str, float]:
    """Shares keyed by category: a misspelt category would silently check nothing."""
    bad = [k for k in v if k not in CATEGORIES and k not in allow]
    if bad:
        raise ValueError(f"unknown category {bad}; use one of {(*allow, *CATEGORIES)}")
    return _shares_in_range(v)


class MixCheck(Strict):
    """Share of each category / source in a variant vs its target share (absolute tolerance).

    Empty targets mean "the curated prompt mix" (from <work>/curate/summary.json)."""

    variants: list[str] = Field(default_factory=lambda: ["answer"], description="variants whose mix is checked; "
                                "unset: `answer`, or when it is not published the first published reasoning variant")
    tolerance: float = Field(0.10, ge=0, le=1, description="absolute tolerance on each share")
    category_targets: dict[str, float] = Field(default_factory=dict, description="category → target share")
    source_targets: dict[str, float] = Field(default_factory=dict, description="source → target share")

    @field_validator("category_targets")
    @classmethod
    def _category_shares(cls, v: dict[str, float]) -> dict[str, float]:
        return _shares_by_category(v, allow=())

    @field_validator("source_targets")
    @classmethod
    def _source_shares(cls, v: dict[str, float]) -> dict[str, float]:
        # Source names are checked against the recipe's sources when it loads (builder/recipe.py).
        return _shares_in_range(v)


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
    verification_variants: list[str] | None = Field(
        None, description="variants the floor applies to; unset: `answer`, or when it is not published the first "
        "published variant built from the reasoning reply (the floor is never skipped for want of `answer`)")

    @field_validator("verification_floor")
    @classmethod
    def _floors(cls, v: dict[str, float]) -> dict[str, float]:
        return _shares_by_category(v, allow=("*",))

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
    language: list[str] = Field(
        default_factory=list, description="ISO 639 codes added to the card's languages (those seen in the rows are always listed)")
    task_categories: list[str] = Field(default_factory=lambda: ["text-generation"], description="card metadata")
    tags: list[str] = Field(
        default_factory=lambda: ["reasoning", "distillation", "sft", "synthetic"], description="card metadata"
    )
    repo_id: str | None = Field(
        None, description="Hub id (org/name): the card's load snippet, citation and push's default --repo; "
        "`release --repo` overrides it; unset: the card shows a marked placeholder and the release warns")
    citation: str | None = Field(None, description="BibTeX for the dataset; default: one built from the recipe")
    card_template: str | None = Field(
        None, description="jinja2 template of the card body, relative to the recipe file; default: the "
        "toolkit's dataset_card.md (an unknown field in it stops the release with one line)")
    tasks: int | None = Field(
        None, ge=1, description="datatrove tasks over the variants' shards on the recipe's executor (each "
        "stages and checks every tasks-th shard); None: executor.tasks on slurm/ray, 1 (this process) on local")

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, v: str | None) -> str | None:
        problem = repo_id_problem(v) if v is not None else None
        if problem:
            raise ValueError(f"{v!r} {problem}")
        return v

    @field_validator("task_categories")
    @classmethod
    def _tasks(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if t not in HUB_TASKS]
        if bad:
            raise ValueError(f"{bad} are not Hub task categories (e.g. text-generation, question-answering)")
        return v

    @field_validator("license")
    @classmethod
    def _license(cls, v: str | None) -> str | None:
        if v is not None and v not in HUB_LICENSES:
            raise ValueError(f"{v!r} is not a Hub license id (see huggingface.co/docs/hub/repositories-licenses)")
        return v

    @field_validator("language")
    @classmethod
    def _languages(cls, v: list[str]) -> list[str]:
        bad = [code for code in v if not ISO_639.fullmatch(code)]
        if bad:
            raise ValueError(f"{bad} are not ISO 639 codes (two or three lowercase letters, e.g. en, zh)")
        return v
