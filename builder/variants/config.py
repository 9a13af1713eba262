"""The recipe's `variants:` section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from builder.rows import VARIANTS
from builder.workdir import SHARD_ROWS


class SummarizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # "extractive" runs offline and is deterministic; "llm" uses a teacher backend
    # (paper: Qwen2.5-7B-Instruct) with our versioned prompt in recipes/prompts/.
    kind: Literal["extractive", "llm"] = "extractive"
    template: str = "summarize_think"
    max_ratio: float = Field(default=0.35, gt=0, le=1)  # summary chars ≤ this × thinking chars
    max_chars: int = Field(default=2_000, ge=1)  # extractive budget cap
    teacher: dict[str, Any] | None = None  # for kind=llm: a teacher config (backend, model, …)


class VariantsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    build: list[str] = Field(default_factory=lambda: list(VARIANTS))
    summarizer: SummarizerConfig = Field(default_factory=SummarizerConfig)
    max_student_tokens: int = Field(default=16_384, ge=1)
    student_tokenizer: str = "qwen2.5"
    # Prompts joined with their replies at a time; more than this many prompts are first
    # hash-partitioned on disk so memory stays bounded.
    bucket_rows: int = Field(default=200_000, ge=1)
    shard_rows: int = Field(default=SHARD_ROWS, ge=1)
