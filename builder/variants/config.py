"""The recipe's `variants:` section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from builder.rows import VARIANTS
from builder.teachers.config import TeacherConfig
from builder.workdir import SHARD_ROWS

# What a summarizer teacher gets unless the recipe says otherwise: a folder name, near-greedy
# short replies, and no reasoning parser (an instruct model's whole reply is the summary).
SUMMARIZER_DEFAULTS: dict[str, Any] = {
    "name": "summarizer",
    "sampling": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 1024},
    "vllm": {"reasoning_parser": None},
}


class SummarizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # "extractive" runs offline and is deterministic; "llm" uses a teacher backend
    # (paper: Qwen2.5-7B-Instruct) with our versioned prompt in recipes/prompts/.
    kind: Literal["extractive", "llm"] = "extractive"
    template: str = "summarize_think"
    # Where `template`.yaml lives, relative to the recipe file; default: generate.prompts_dir.
    prompts_dir: str | None = None
    max_ratio: float = Field(default=0.35, gt=0, le=1)  # summary chars ≤ this × thinking chars
    max_chars: int = Field(default=2_000, ge=1)  # extractive budget cap
    # For kind=llm: a teacher of the generate schema (kind openai | vllm, model, endpoints…).
    teacher: TeacherConfig | None = None

    @field_validator("teacher", mode="before")
    @classmethod
    def _summarizer_defaults(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out = {"name": SUMMARIZER_DEFAULTS["name"], **v}
        for key in ("sampling", "vllm"):
            given = out.get(key)
            if given is None or isinstance(given, dict):  # anything else: let the schema say what is wrong
                out[key] = {**SUMMARIZER_DEFAULTS[key], **(given or {})}
        return out

    @field_validator("teacher")
    @classmethod
    def _requestable(cls, t: TeacherConfig | None) -> TeacherConfig | None:
        if t is not None and t.kind == "import":
            raise ValueError("kind must be openai or vllm: summaries are requested, not imported")
        if t is not None and t.samples != 1:
            raise ValueError("samples must be 1: one summary per reasoning reply")
        return t


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


class VariantsSection(BaseModel):
    """The section under its own key, so a validation error's location reads `variants.…`."""

    variants: VariantsConfig = Field(default_factory=VariantsConfig)
