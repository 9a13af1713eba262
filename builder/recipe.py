"""The recipe: one YAML file that says what to read, how to curate, generate and release.

Every stage reads its own section. Unknown keys are errors (a typo must never be silently
ignored), and every error names the file, the key path and what to do, in one line.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from builder.errors import UserError
from builder.executors import ExecutorConfig
from builder.release.config import QualityConfig, ReleaseConfig
from builder.teachers.config import GenerateConfig

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
CATEGORIES = ("chat", "math", "tool_use", "multi_turn", "code", "instruction_following")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class FieldMap(Strict):
    """Where each logical field lives in a source row. Dotted paths reach into dicts."""

    prompt: str | None = None  # a single-turn user prompt
    messages: str | None = None  # a list of {role, content} (or ShareGPT {from, value})
    system: str | None = None  # optional system prompt for single-turn sources
    response: str | None = None  # the community's original response (the `original` variant)
    reference: str | None = None  # reference answer for verification
    tests: str | None = None  # code tests (JSON or dict)
    category: str | None = None
    language: str | None = None
    id: str | None = None  # source row id; default: file:line or the row index
    tools: str | None = None  # tool definitions (list/dict/JSON string)
    options: str | None = None  # MCQ options appended to the prompt as "A. …" lines

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> FieldMap:
        if not self.prompt and not self.messages:
            raise ValueError("give `prompt` (single turn) or `messages` (multi-turn) in fields")
        return self


class SourceConfig(Strict):
    name: str
    kind: Literal["local", "hf"] = "local"
    path: str | None = None  # local file or glob, relative to the recipe file
    format: Literal["auto", "jsonl", "json", "parquet", "csv"] = "auto"
    dataset: str | None = None  # Hub id, for kind=hf
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    fields: FieldMap
    reference_regex: str | None = None  # e.g. "#### (.+)$" for GSM8K-style references
    category: str = "chat"  # used when fields.category is absent
    category_map: dict[str, str] = Field(default_factory=dict)  # raw value → category
    language: str = "auto"  # a code like "en"/"zh", or "auto" to detect
    license: str = "undeclared"
    attribution: str = ""
    priority: int = 100  # lower wins exact/near-dup ties
    limit: int | None = None  # read at most this many rows
    verifier: Literal["auto", "math", "mcq", "code", "ifeval", "none"] = "auto"
    # How `fields.tests` is laid out in the source; wrapped into the verifier's JSON schema
    # (builder/responses/verify/codecheck.py). "raw": already in that schema.
    tests_format: Literal["raw", "mbpp", "asserts", "humaneval", "ifeval"] = "raw"
    prompt_suffix: str = ""  # appended to the last user turn (e.g. an MCQ instruction)

    @model_validator(mode="after")
    def _where(self) -> SourceConfig:
        if self.kind == "local" and not self.path:
            raise ValueError("a local source needs `path` (a file or glob)")
        if self.kind == "hf" and not self.dataset:
            raise ValueError("an hf source needs `dataset` (a Hub id like org/name)")
        for raw, cat in self.category_map.items():
            if cat not in CATEGORIES:
                raise ValueError(f"category_map[{raw!r}] = {cat!r}; use one of {CATEGORIES}")
        if self.category not in CATEGORIES:
            raise ValueError(f"category {self.category!r} is unknown; use one of {CATEGORIES}")
        return self


class NormalizeConfig(Strict):
    unicode_form: Literal["NFC", "NFKC"] = "NFC"  # NFKC folds full-width forms; NFC never
    max_prompt_chars: int = 200_000  # longer prompts are quarantined, not truncated
    min_prompt_chars: int = 1


class NearDedupeSettings(Strict):
    """MinHash settings (builder/curate/near_dedupe.py maps them onto its NearDedupeConfig).

    Defaults were chosen by measurement on planted near-duplicates: datatrove's 14×8 bands
    found 93% of them, 20×5 finds 99.7%."""

    enabled: bool = True
    ngram: int = 5
    buckets: int = 20
    hashes_per_bucket: int = 5
    char_ngram: int = 5  # Chinese/Japanese text gets character n-grams
    seed: int = 1
    numbers_must_match: bool = True  # "2+2" and "3+3" are different problems
    verify_threshold: float | None = 0.5  # full-signature agreement a band collision must reach
    tokenizer: Literal["fast", "datatrove"] = "fast"  # datatrove's default (spaCy) is ~10× slower


class BenchmarkFile(Strict):
    name: str
    path: str  # relative to the recipe file; may point outside the repo (GPQA)
    format: Literal["auto", "jsonl", "json", "parquet", "csv"] = "auto"
    text_fields: list[str]  # fields whose text is compared (question, prompt, turns…)
    id_field: str | None = None
    optional: bool = False  # skip with a warning when the file is absent (e.g. GPQA)


class DecontamConfig(Strict):
    enabled: bool = True
    ngram: int = 8  # open-r1 uses 8; 13 is the GPT-3 paper's choice
    fuzzy_threshold: float = 90.0  # rapidfuzz ratio for short prompts
    fuzzy_max_words: int = 12  # prompts shorter than ngram+this get the fuzzy pass
    common_ngram_items: int = 3  # n-grams found in more benchmark items are boilerplate
    benchmarks: list[BenchmarkFile] = Field(default_factory=list)


PAPER_MIX = {
    "chat": 546_526,
    "math": 290_496,
    "tool_use": 154_358,
    "multi_turn": 123_615,
    "code": 119_563,
    "instruction_following": 91_460,
}


class BalanceConfig(Strict):
    enabled: bool = True
    target_total: int | None = None  # None: keep everything the weights/caps allow
    preset: Literal["none", "paper"] = "none"
    category_weights: dict[str, float] = Field(default_factory=dict)
    source_weights: dict[str, float] = Field(default_factory=dict)
    category_caps: dict[str, int] = Field(default_factory=dict)
    source_caps: dict[str, int] = Field(default_factory=dict)
    seed: int = 0

    @field_validator("category_weights", "category_caps")
    @classmethod
    def _known_categories(cls, v: dict[str, Any]) -> dict[str, Any]:
        for k in v:
            if k not in CATEGORIES:
                raise ValueError(f"unknown category {k!r}; use one of {CATEGORIES}")
        return v


class CurateConfig(Strict):
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    near_dedupe: NearDedupeSettings = Field(default_factory=NearDedupeSettings)
    decontaminate: DecontamConfig = Field(default_factory=DecontamConfig)
    balance: BalanceConfig = Field(default_factory=BalanceConfig)


class Recipe(Strict):
    name: str
    version: str
    description: str = ""
    sources: list[SourceConfig]
    curate: CurateConfig = Field(default_factory=CurateConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)  # builder/executors.py
    # Later stages own their sections; they are validated by the stage's own schema.
    generate: GenerateConfig | None = None
    responses: dict[str, Any] | None = None
    variants: dict[str, Any] | None = None
    quality: QualityConfig = Field(default_factory=QualityConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)

    # Set by the loader, not by the YAML.
    path: Path | None = Field(default=None, exclude=True)
    sha256: str = Field(default="", exclude=True)

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str) -> str:
        if not SEMVER.match(v):
            raise ValueError(f"version {v!r} is not semver; write it like 0.1.0")
        return v

    @model_validator(mode="after")
    def _unique_sources(self) -> Recipe:
        names = [s.name for s in self.sources]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"source names must be unique; repeated: {sorted(dup)}")
        if not self.sources:
            raise ValueError("a recipe needs at least one source")
        return self

    def resolve(self, p: str) -> Path:
        """A path from the recipe, relative to the recipe file's folder."""
        path = Path(p).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic location as `sources[2].fields.prompt`, naming sources by name."""
    out: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and isinstance(node[part], dict) else None
            out[-1] = f"{out[-1]}[{part}{'=' + name if name else ''}]" if out else f"[{part}]"
        else:
            out.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(out) or "(top level)"


def format_validation_error(file: Path, err: ValidationError, data: Any) -> str:
    first = err.errors()[0]
    where = _key_path(tuple(first["loc"]), data)
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key; check its spelling against the recipe reference in README.md"
    elif first["type"] == "missing":
        msg = "required key is missing; add it"
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{file}: {where}: {msg}{more}"


def load_recipe(path: str | Path) -> Recipe:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{file}: recipe file not found; pass the path to a recipe YAML")
    raw = file.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{file}{line}: not valid YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{file}: a recipe must be a YAML mapping with name, version and sources")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise UserError(format_validation_error(file, e, data)) from None
    recipe.path = file.resolve()
    recipe.sha256 = hashlib.sha256(raw).hexdigest()
    return recipe
