"""The recipe's `curate:` section: normalize, exact + near dedupe, decontaminate, balance."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from builder.config.base import CATEGORIES, Name, Strict
from builder.config.sources import FileFormat

# The paper's mix (Figure 2): rows per category, 1,326,018 in all.
PAPER_MIX = {
    "chat": 546_526,
    "math": 290_496,
    "tool_use": 154_358,
    "multi_turn": 123_615,
    "code": 119_563,
    "instruction_following": 91_460,
}


class NormalizeConfig(Strict):
    unicode_form: Literal["NFC", "NFKC"] = Field("NFC", description="NFKC folds full-width forms; NFC never does")
    max_prompt_chars: int = Field(200_000, ge=1, description="longer prompts are quarantined, not truncated")
    min_prompt_chars: int = Field(1, ge=1, description="prompts with fewer non-space characters are quarantined")

    @model_validator(mode="after")
    def _range(self) -> NormalizeConfig:
        if self.min_prompt_chars > self.max_prompt_chars:
            raise ValueError("min_prompt_chars must not exceed max_prompt_chars")
        return self


class NearDedupeSettings(Strict):
    """MinHash settings. Defaults were chosen by measurement on planted near-duplicates:
    datatrove's 14×8 bands found 93% of them, 20×5 finds 99.7%."""

    enabled: bool = Field(True, description="run MinHash near-duplicate removal")
    ngram: int = Field(5, ge=1, le=64, description="word n-gram size of a shingle")
    buckets: int = Field(20, ge=1, le=1024, description="LSH bands")
    hashes_per_bucket: int = Field(5, ge=1, le=64, description="MinHash values per band")
    char_ngram: int = Field(5, ge=1, le=64, description="character n-gram size for Chinese/Japanese text")
    seed: int = Field(1, ge=0, le=2**32 - 1, description="MinHash seed (numpy's range)")
    numbers_must_match: bool = Field(True, description="'2+2' and '3+3' are different problems")
    verify_threshold: float | None = Field(
        0.5, ge=0, le=1, description="full-signature agreement a band collision must reach; None: none"
    )
    tokenizer: Literal["fast", "datatrove"] = Field(
        "fast", description="word splitter; datatrove's default (spaCy) is ~10× slower"
    )


class BenchmarkFile(Strict):
    name: Name = Field(description="benchmark name (recorded on every hit)")
    path: str = Field(description="relative to the recipe file; may point outside the repo (GPQA)")
    format: FileFormat = Field("auto", description="file format; auto: from the extension")
    text_fields: list[str] = Field(min_length=1, description="fields whose text is compared (question, prompt, turns…)")
    choice_fields: list[str] = Field(
        default_factory=list, description="fields holding a multiple-choice item's choices: matched in any order"
    )
    id_field: str | None = Field(None, description="field holding the item id")
    optional: bool = Field(False, description="skip with a warning when the file is absent (e.g. GPQA)")

    @model_validator(mode="after")
    def _stem_left(self) -> BenchmarkFile:
        # The question is text_fields less choice_fields: with none left every item's stem is
        # empty, the multiple-choice rule drops them all, and the card would still claim it ran.
        if self.choice_fields and not set(self.text_fields) - set(self.choice_fields):
            raise ValueError(f"text_fields {self.text_fields} are all choice_fields: add the field holding the "
                             "question to text_fields")  # fmt: skip
        return self


class SemanticConfig(Strict):
    """Optional pass for reworded leaks: sentence embeddings, confirmed by a lexical rule."""

    enabled: bool = Field(False, description="embed prompts and benchmark items; needs the `semantic` extra")
    model: Literal["all-MiniLM-L6-v2"] = Field(
        "all-MiniLM-L6-v2", description="pinned, sha256-checked model (builder/embeddings.py)"
    )
    threshold: float = Field(0.85, gt=0, le=1, description="cosine similarity a candidate must reach")
    min_shared_words: float = Field(
        0.5, ge=0, le=1, description="confirmation: share of the item's content words (numbers included) in the prompt"
    )
    max_prompt_words: int = Field(
        400, ge=8, le=4096, description="longer prompts are embedded in windows of this many words"
    )
    batch_size: int = Field(64, ge=1, le=4096, description="texts per embedding batch")


class DecontamConfig(Strict):
    enabled: bool = Field(True, description="drop prompts that overlap a benchmark")
    ngram: int = Field(8, ge=1, le=64, description="word n-gram size (open-r1 uses 8; GPT-3 used 13)")
    min_coverage: float = Field(
        0.5, gt=0, le=1, description="share of an item's words a prompt must hold in shared n-grams to be a leak"
    )
    min_shared_ngrams: int = Field(
        3, ge=1, le=64, description="and at least this many shared n-grams (or all of a short item's)"
    )
    min_number_share: float = Field(
        0.8, ge=0, le=1, description="share of the item's numbers the prompt must hold too (a new problem changes them)"
    )
    fuzzy_threshold: float = Field(90.0, ge=50, le=100, description="rapidfuzz score for short items and prompts")
    fuzzy_max_words: int = Field(
        12, ge=0, le=256, description="prompts shorter than ngram + this are compared whole with short items"
    )
    fuzzy_item_words: int = Field(
        48, ge=1, le=1024, description="items shorter than this are also aligned word by word inside prompts"
    )
    anchor_words: int = Field(
        4, ge=2, le=16, description="words a prompt must share in a row with a short item to be aligned with it"
    )
    common_ngram_items: int = Field(3, ge=1, description="n-grams found in more benchmark items are boilerplate")
    semantic: SemanticConfig = Field(default_factory=SemanticConfig, description="embedding pass for reworded leaks")
    benchmarks: list[BenchmarkFile] = Field(default_factory=list, description="benchmark files to compare with")


class BalanceConfig(Strict):
    enabled: bool = Field(True, description="apply weights and caps")
    target_total: int | None = Field(None, ge=0, description="None: keep everything the weights/caps allow")
    preset: Literal["none", "paper"] = Field("none", description="paper: the paper's category mix as weights")
    category_weights: dict[str, float] = Field(default_factory=dict, description="category → relative weight")
    source_weights: dict[str, float] = Field(default_factory=dict, description="source → relative weight")
    category_caps: dict[str, int] = Field(default_factory=dict, description="category → most prompts kept")
    source_caps: dict[str, int] = Field(default_factory=dict, description="source → most prompts kept")
    seed: int = Field(0, description="seed of the sampling within a quota")

    @field_validator("category_weights", "category_caps")
    @classmethod
    def _known_categories(cls, v: dict[str, Any]) -> dict[str, Any]:
        for k in v:
            if k not in CATEGORIES:
                raise ValueError(f"unknown category {k!r}; use one of {CATEGORIES}")
        return v

    @field_validator("category_weights", "source_weights", "category_caps", "source_caps")
    @classmethod
    def _not_negative(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k, x in v.items() if x < 0]
        if bad:
            raise ValueError(f"weights and caps must be ≥ 0; negative for {bad}")
        return v


class CurateConfig(Strict):
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig, description="text normalization")
    near_dedupe: NearDedupeSettings = Field(default_factory=NearDedupeSettings, description="MinHash dedupe")
    decontaminate: DecontamConfig = Field(default_factory=DecontamConfig, description="benchmark overlap removal")
    balance: BalanceConfig = Field(default_factory=BalanceConfig, description="source/category balancing")
