"""The recipe's `generate:` section: teachers, their backends, sampling, limits and prices.

Kept free of heavy imports (no openai / vllm) so loading a recipe stays fast.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ROLES = ("reasoning", "control")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sampling(Strict):
    """Paper (R1) defaults: temperature 0.6, top-p 0.95."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = Field(32768, ge=1)
    # Larger budgets tried, in order, when a reply ends with finish_reason "length".
    truncation_ladder: list[int] = Field(default_factory=list)
    seed: int | None = None  # sample i is sent seed + i (where supported); part of the generation id
    # OpenAI's o-series wants max_completion_tokens; DeepSeek and vLLM take max_tokens.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    extra_body: dict[str, Any] = Field(default_factory=dict)  # e.g. {"top_k": 40} for vLLM

    def steps(self) -> list[int]:
        return [self.max_tokens] + sorted({s for s in self.truncation_ladder if s > self.max_tokens})

    def identity(self) -> dict[str, Any]:
        """What enters generation_id. Not max_tokens: a truncation-ladder retry keeps its id."""
        out: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p}
        if self.seed is not None:
            out["seed"] = self.seed
        if self.extra_body:
            out["extra_body"] = self.extra_body
        return out


class Limits(Strict):
    """Whole-run limits; with several datatrove tasks each task gets an equal share."""

    concurrency: int = Field(64, ge=1)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)  # prompt + max_tokens, settled on usage
    timeout_s: float = Field(1800.0, gt=0)  # long reasoning replies take many minutes
    connect_timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(8, ge=1)  # HTTP attempts per request (first try included)
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    fail_fast_after: int = Field(8, ge=1)  # consecutive auth/not-found/unreachable errors, no success


class Endpoint(Strict):
    base_url: str
    api_key_env: str | None = None  # the NAME of the env var holding the key, never the key

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("api_key_env must be the NAME of an environment variable (e.g. DEEPSEEK_API_KEY), not a key")
        return v


class ImportSpec(Strict):
    """Existing reasoning outputs, matched to curated prompts by (source, source_row_id)."""

    source: str  # a recipe source name; its prompts are the ones these replies answer
    path: str | None = None  # replies in another file (relative to the recipe); default: the source's file
    format: Literal["auto", "jsonl", "json", "parquet", "csv"] = "auto"
    id_field: str | None = None  # with `path`: the field matching the source's row id
    layout: Literal["fields", "am", "openr1", "openthoughts"] = "fields"
    think: str | None = None  # dotted path of the thinking text
    answer: str | None = None  # dotted path of the final answer
    content: str | None = None  # dotted path of raw text holding both (give reasoning_format)
    reasoning_format: str | None = None  # "r1" | "skythought" | "marco": delimiters in the text
    model_field: str | None = None  # dotted path of the model name in each row
    served_model: str | None = None  # who wrote these replies, when the rows do not say

    @model_validator(mode="after")
    def _what(self) -> ImportSpec:
        if self.layout == "fields" and not (self.answer or self.content):
            raise ValueError("layout `fields` needs `answer` (with optional `think`) or `content`")
        if self.content and (self.answer or self.think):
            raise ValueError("give either `content` (raw text) or `think`/`answer`, not both")
        if self.path and not self.id_field:
            raise ValueError("an import with its own `path` needs `id_field` to match the source's row ids")
        if self.reasoning_format is not None:
            from builder.responses.shapes import resolve_delimiters

            resolve_delimiters(self.reasoning_format)
        return self


class VllmSettings(Strict):
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    reasoning_parser: str | None = "deepseek_r1"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = 1024  # prompts handed to LLM.chat at once (a crash loses at most one batch)


class Price(Strict):
    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)


class TeacherConfig(Strict):
    name: str  # store folder and ledger step; unique
    role: Literal["reasoning", "control"] = "reasoning"
    kind: Literal["openai", "vllm", "import"]
    model: str  # the model requested (or, for import, the model that wrote the replies)
    description: str = ""
    endpoints: list[Endpoint] = Field(default_factory=list)
    # openai: openai.AsyncOpenAI (default). aiohttp: the same request over aiohttp, ~4x less
    # client CPU per request (see builder/teachers/aiohttp_transport.py); for very high rates.
    client: Literal["openai", "aiohttp"] = "openai"
    endpoint_per_task: bool = False  # True: task r talks to endpoints[r % n] only (one server per node)
    samples: int = Field(1, ge=1)  # replies per prompt (sample_index 0..samples-1)
    sampling: Sampling = Field(default_factory=Sampling)
    limits: Limits = Field(default_factory=Limits)
    templates: dict[str, str] = Field(default_factory=dict)  # category or "default" → template id
    imports: list[ImportSpec] = Field(default_factory=list)
    vllm: VllmSettings = Field(default_factory=VllmSettings)
    tasks: int | None = Field(None, ge=1)  # datatrove tasks for this teacher (default: executor.tasks)

    @model_validator(mode="after")
    def _backend(self) -> TeacherConfig:
        if not re.match(r"^[A-Za-z0-9_.-]+$", self.name):
            raise ValueError(f"teacher name {self.name!r}: use letters, digits, . _ - (it names a folder)")
        if self.kind == "openai" and not self.endpoints:
            raise ValueError("an openai teacher needs `endpoints` (a list of {base_url, api_key_env})")
        if self.kind == "import" and not self.imports:
            raise ValueError("an import teacher needs `imports` (which source's file holds the replies)")
        if self.kind != "import" and self.imports:
            raise ValueError("`imports` belongs to kind: import")
        return self


class GenerateConfig(Strict):
    teachers: list[TeacherConfig] = Field(default_factory=list)
    prompts_dir: str = "prompts"  # template YAMLs, relative to the recipe file
    templates: dict[str, str] = Field(
        default_factory=lambda: {"default": "r1-system", "math": "r1-math", "code": "r1-code"}
    )
    prices: dict[str, Price] = Field(default_factory=dict)  # model → USD per 1M tokens
    tasks: int | None = Field(None, ge=1)  # datatrove tasks (default: executor.tasks)

    @model_validator(mode="after")
    def _unique(self) -> GenerateConfig:
        names = [t.name for t in self.teachers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"teacher names must be unique; repeated: {dup}")
        return self

    def templates_for(self, teacher: TeacherConfig) -> dict[str, str]:
        return {**self.templates, **teacher.templates}
