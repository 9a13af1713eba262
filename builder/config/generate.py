"""The recipe's `generate:` section: teachers, their backends, sampling, limits and prices.

Kept free of heavy imports (no openai / vllm) so loading a recipe stays fast.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from builder.config.base import CATEGORIES, Strict
from builder.config.sources import FileFormat
from builder.reasoning_format import resolve_delimiters

ROLES = ("reasoning", "control")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Beyond these a recipe value is a mistake, not a plan: no model answers 10M tokens, and
# 100k requests in flight per task exhausts memory before any server could serve them.
MAX_TOKENS_CAP = 1_048_576
CONCURRENCY_CAP = 100_000


class Sampling(Strict):
    """Paper (R1) defaults: temperature 0.6, top-p 0.95."""

    temperature: float = Field(0.6, ge=0, le=5, description="sampling temperature")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus sampling mass")
    max_tokens: int = Field(32768, ge=1, le=MAX_TOKENS_CAP, description="completion budget of a first attempt")
    truncation_ladder: list[int] = Field(
        default_factory=list, description="larger budgets tried, in order, when a reply ends with finish_reason 'length'"
    )
    seed: int | None = Field(None, description="sample i is sent seed + i (where supported); part of the generation id")
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens", description="OpenAI's o-series wants max_completion_tokens; DeepSeek and vLLM take max_tokens"
    )
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra request fields, e.g. {top_k: 40} for vLLM")

    @field_validator("truncation_ladder")
    @classmethod
    def _ladder(cls, v: list[int]) -> list[int]:
        bad = [x for x in v if not 1 <= x <= MAX_TOKENS_CAP]
        if bad:
            raise ValueError(f"truncation_ladder values must be in 1..{MAX_TOKENS_CAP:,}; got {bad}")
        return v

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

    concurrency: int = Field(64, ge=1, le=CONCURRENCY_CAP, description="requests in flight at once")
    requests_per_minute: float | None = Field(None, gt=0, description="request rate cap")
    tokens_per_minute: float | None = Field(None, gt=0, description="prompt + max_tokens per minute, settled on usage")
    timeout_s: float = Field(1800.0, gt=0, description="per request; long reasoning replies take many minutes")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect timeout")
    max_attempts: int = Field(8, ge=1, le=100, description="HTTP attempts per request (first try included)")
    backoff_base_s: float = Field(1.0, ge=0, description="full-jitter backoff base")
    backoff_max_s: float = Field(60.0, ge=0, description="full-jitter backoff ceiling")
    retry_after_max_s: float = Field(
        120.0, ge=0, description="longest Retry-After honoured (it may exceed backoff_max_s); a longer one waits this "
        "long, with a warning, and a request still refused after max_attempts is failed, asked again on a re-run"
    )
    fail_fast_after: int = Field(8, ge=1, description="consecutive auth/not-found/unreachable errors, no success, then stop")
    max_cost_usd: float | None = Field(
        None, gt=0, description="openai teachers: stop before a request that could take this teacher's spend (every "
        "stored reply at generate.prices, earlier runs included) past this many USD; a re-run with a higher cap resumes"
    )


class Endpoint(Strict):
    base_url: str = Field(description="OpenAI-compatible base URL, e.g. https://api.deepseek.com/v1")
    api_key_env: str | None = Field(None, description="the NAME of the env var holding the key, never the key")

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, v: str) -> str:
        # user:KEY@host would be printed in every error naming the endpoint, and the default
        # aiohttp client refuses it beside the Authorization header (a ValueError mid-generate).
        if "@" in v.split("://", 1)[-1].split("/", 1)[0]:
            raise ValueError("base_url holds credentials (…@host); remove them and name the key's variable in api_key_env")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("api_key_env must be the NAME of an environment variable (e.g. DEEPSEEK_API_KEY), not a key")
        return v


class ImportSpec(Strict):
    """Existing reasoning outputs, matched to curated prompts by (source, source_row_id)."""

    source: str = Field(description="a recipe source name; its prompts are the ones these replies answer")
    path: str | None = Field(None, description="replies in another file (relative to the recipe); default: the source's file")
    format: FileFormat = Field("auto", description="file format of `path`")
    id_field: str | None = Field(None, description="with `path`: the field matching the source's row id")
    layout: Literal["fields", "am", "openr1", "openthoughts"] = Field("fields", description="a known public layout, or fields")
    think: str | None = Field(None, description="dotted path of the thinking text")
    answer: str | None = Field(None, description="dotted path of the final answer")
    content: str | None = Field(None, description="dotted path of raw text holding both (give reasoning_format)")
    reasoning_format: str | None = Field(None, description="'r1' | 'skythought' | 'marco': delimiters in the text")
    model_field: str | None = Field(None, description="dotted path of the model name in each row")
    served_model: str | None = Field(None, description="who wrote these replies, when the rows do not say")
    finish_reason: str | None = Field(
        None,
        description="dotted path of each reply's finish reason ('stop' / 'length' …; a list gives one per sample). "
        "Layout openr1 reads `finish_reasons` without it; am and openthoughts data carry none, so the responses "
        "stage judges truncation from the text",
    )
    completion_tokens: str | None = Field(
        None, description="dotted path of each reply's completion token count (a list gives one per sample)"
    )
    max_tokens: int | None = Field(
        None, ge=1, description="the teacher's completion budget when these replies were generated, for all rows"
    )
    max_tokens_field: str | None = Field(
        None, description="dotted path of the teacher's completion budget in each row (instead of `max_tokens`)"
    )

    @model_validator(mode="after")
    def _what(self) -> ImportSpec:
        if self.layout == "fields" and not (self.answer or self.content):
            raise ValueError("layout `fields` needs `answer` (with optional `think`) or `content`")
        if self.content and (self.answer or self.think):
            raise ValueError("give either `content` (raw text) or `think`/`answer`, not both")
        if self.path and not self.id_field:
            raise ValueError("an import with its own `path` needs `id_field` to match the source's row ids")
        if self.reasoning_format is not None:
            resolve_delimiters(self.reasoning_format)
        if self.max_tokens is not None and self.max_tokens_field:
            raise ValueError("give either `max_tokens` (one budget) or `max_tokens_field` (a path), not both")
        return self

    def mapped_paths(self) -> dict[str, str]:
        """Every key of this import that names a dotted path into the rows, with its path."""
        keys = ("think", "answer", "content", "model_field", "finish_reason", "completion_tokens", "max_tokens_field")
        return {k: getattr(self, k) for k in keys if getattr(self, k)}


class VllmSettings(Strict):
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model replica")
    data_parallel_size: int = Field(1, ge=1, description="model replicas")
    reasoning_parser: str | None = Field("deepseek_r1", description="vLLM reasoning parser; None for instruct models")
    max_model_len: int | None = Field(None, ge=1, description="context length; default: the model's")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="share of GPU memory vLLM may take")
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict, description="passed to the chat template")
    batch_size: int = Field(1024, ge=1, description="prompts handed to LLM.chat at once (a crash loses at most one batch)")


class Price(Strict):
    input_per_1m: float = Field(ge=0, description="USD per 1M prompt tokens")
    output_per_1m: float = Field(ge=0, description="USD per 1M completion tokens")

    def cost(self, prompt_tokens: Any, completion_tokens: Any) -> Any:
        """USD for these token counts (numbers or numpy arrays)."""
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


class SourceSelect(Strict):
    """Which curated prompts a teacher is asked, by source name (checked against `sources:`)."""

    include: list[str] = Field(default_factory=list, description="only prompts of these sources; empty: every source")
    exclude: list[str] = Field(default_factory=list, description="never prompts of these sources")

    def admits(self, source: str) -> bool:
        return (not self.include or source in self.include) and source not in self.exclude


# Keys of generate.precedence, in the order a recipe lists them; see builder/responses/stage.py.
PRECEDENCE_KEYS = ("verified_pass", "finish_stop", "teacher_order", "sample_index")
PrecedenceKey = Literal["verified_pass", "finish_stop", "teacher_order", "sample_index"]


def template_keys(v: dict[str, str]) -> dict[str, str]:
    """A templates map is keyed by category or 'default': a misspelt key ("maths") would send
    those prompts the default template, paid for, without a word."""
    bad = [k for k in v if k != "default" and k not in CATEGORIES]
    if bad:
        raise ValueError(f"unknown category {bad}; use 'default' or one of {CATEGORIES}")
    return v


class TeacherConfig(Strict):
    name: str = Field(description="store folder and ledger step; unique")
    role: Literal["reasoning", "control"] = Field("reasoning", description="reasoning teacher or non-reasoning control")
    kind: Literal["openai", "vllm", "import"] = Field(description="backend: an OpenAI-compatible API, vLLM offline, or existing outputs")
    model: str = Field(description="the model requested (or, for import, the model that wrote the replies)")
    description: str = Field("", description="free text for the card")
    endpoints: list[Endpoint] = Field(default_factory=list, description="openai: endpoints, load-balanced")
    client: Literal["openai", "aiohttp"] = Field(
        "aiohttp",
        description="aiohttp (default): the OpenAI chat-completions request over aiohttp, ~1/3 of the openai "
        "client's CPU per request; openai: AsyncOpenAI (honours HTTP(S)_PROXY; aiohttp here does not)",
    )
    endpoint_per_task: bool = Field(False, description="True: task r talks to endpoints[r % n] only (one server per node)")
    samples: int = Field(1, ge=1, le=1024, description="replies per prompt (sample_index 0..samples-1)")
    sampling: Sampling = Field(default_factory=Sampling, description="sampling parameters")
    limits: Limits = Field(default_factory=Limits, description="concurrency, rates, timeouts, retries")
    templates: dict[str, str] = Field(default_factory=dict, description="category or 'default' → prompt template id")
    imports: list[ImportSpec] = Field(default_factory=list, description="kind=import: where the replies are")
    vllm: VllmSettings = Field(default_factory=VllmSettings, description="kind=vllm: engine settings")
    tasks: int | None = Field(None, ge=1, description="datatrove tasks for this teacher (default: generate.tasks, executor.tasks)")
    sources: SourceSelect = Field(default_factory=SourceSelect, description="which sources' prompts this teacher gets")
    mode: Literal["all", "fallback"] = Field(
        "all",
        description="fallback: ask only for prompts no earlier teacher of the same role answered well: an "
        "import's stored reply, or a requested reply that ended with finish_reason stop and holds an answer "
        "(builder/generate/todo.py); replies this teacher already stored keep being exported",
    )

    @field_validator("templates")
    @classmethod
    def _template_keys(cls, v: dict[str, str]) -> dict[str, str]:
        return template_keys(v)

    @model_validator(mode="after")
    def _backend(self) -> TeacherConfig:
        if not re.match(r"^(?!\.)[A-Za-z0-9_.-]+$", self.name):  # not "..", not a hidden folder
            raise ValueError(f"teacher name {self.name!r}: use letters, digits, . _ -, not starting with . (it names a folder)")
        if self.kind == "openai" and not self.endpoints:
            raise ValueError("an openai teacher needs `endpoints` (a list of {base_url, api_key_env})")
        if self.kind == "import" and not self.imports:
            raise ValueError("an import teacher needs `imports` (which source's file holds the replies)")
        if self.kind != "import" and self.imports:
            raise ValueError("`imports` belongs to kind: import")
        if self.kind != "openai" and self.endpoints:  # unused there, yet `check` would demand their keys
            raise ValueError(f"`endpoints` belongs to kind: openai; remove them from this {self.kind} teacher")
        return self


def cap_problem(teacher: TeacherConfig, prices: dict[str, Price]) -> str | None:
    """Why `teacher`'s spending cap cannot be kept (None when it can, or there is none)."""
    if teacher.limits.max_cost_usd is None:
        return None
    if teacher.kind != "openai":
        return f"a {teacher.kind} teacher is not billed per request; remove the cap"
    if teacher.model not in prices:
        return f"no price for model {teacher.model!r} in generate.prices, so spend cannot be counted; add one " \
               "(input_per_1m, output_per_1m) or remove the cap"
    return None


class GenerateConfig(Strict):
    teachers: list[TeacherConfig] = Field(default_factory=list, description="who answers the prompts")
    prompts_dir: str = Field("prompts", description="template YAMLs, relative to the recipe file")
    templates: dict[str, str] = Field(
        default_factory=lambda: {"default": "r1-system", "math": "r1-math", "code": "r1-code"},
        description="category or 'default' → prompt template id (the paper's system prompt and suffixes)",
    )
    prices: dict[str, Price] = Field(default_factory=dict, description="model → USD per 1M tokens")
    tasks: int | None = Field(None, ge=1, description="datatrove tasks (default: executor.tasks)")
    precedence: list[PrecedenceKey] = Field(
        default_factory=lambda: ["verified_pass", "teacher_order"],
        description="which kept reply of a prompt and role the variants use, when several teachers or samples "
        "answered it: keys compared in order (verified_pass: a passed verification first; finish_stop: "
        "finish_reason stop first; teacher_order: the teacher listed first; sample_index: the lowest sample), "
        "then the lowest sample and the generation id; each parsed row records the key that decided (`selected_by`)",
    )

    @field_validator("templates")
    @classmethod
    def _template_keys(cls, v: dict[str, str]) -> dict[str, str]:
        return template_keys(v)

    @model_validator(mode="after")
    def _unique(self) -> GenerateConfig:
        names = [t.name for t in self.teachers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"teacher names must be unique; repeated: {dup}")
        if len(set(self.precedence)) != len(self.precedence):
            raise ValueError(f"precedence lists a key twice: {self.precedence}")
        for t in self.teachers:
            if (problem := cap_problem(t, self.prices)) is not None:
                raise ValueError(f"teachers[{t.name}].limits.max_cost_usd: {problem}")
        for i, t in enumerate(self.teachers):
            if t.mode == "fallback" and not any(e.role == t.role for e in self.teachers[:i]):
                raise ValueError(f"teacher {t.name}: mode fallback needs an earlier {t.role} teacher to fall back from; "
                                 "list it after the teacher (or import) it backs up")  # fmt: skip
        return self

    def templates_for(self, teacher: TeacherConfig) -> dict[str, str]:
        return {**self.templates, **teacher.templates}
