"""The recipe's `variants:` section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from builder.config.base import CATEGORIES, SHARD_ROWS, Strict
from builder.config.generate import TeacherConfig
from builder.constraints.spec import KNOWN_IDS

# What a summarizer teacher gets unless the recipe says otherwise: a folder name, near-greedy
# short replies, and no reasoning parser (an instruct model's whole reply is the summary).
SUMMARIZER_DEFAULTS: dict[str, Any] = {
    "name": "summarizer",
    "sampling": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 1024},
    "vllm": {"reasoning_parser": None},
}


class SummarizerConfig(Strict):
    kind: Literal["extractive", "llm"] = Field(
        "extractive",
        description="extractive: offline and deterministic; llm: a teacher backend (paper: Qwen2.5-7B-Instruct) "
        "with our versioned prompt in recipes/prompts/",
    )
    template: str = Field("summarize_think", description="summary prompt template id (kind=llm)")
    prompts_dir: str | None = Field(
        None, description="where `template`.yaml lives, relative to the recipe file; default: generate.prompts_dir"
    )
    max_ratio: float = Field(0.35, gt=0, le=1, description="summary chars ≤ this × thinking chars")
    max_chars: int = Field(2_000, ge=1, description="extractive budget cap in characters")
    max_sentences: int = Field(8, ge=1, description="extractive: at most this many sentences (a summary, not a digest)")
    # Quality thresholds (builder/variants/summary_quality.py), applied to every summary, extractive
    # or LLM: a summary past one is left out of think_summary with the code in parentheses.
    max_fragment_rate: float = Field(
        0.0, ge=0, le=1,
        description="share of incomplete sentences allowed (cut at a colon, no final stop, list debris) "
        "(summary_fragment)",
    )  # fmt: skip
    max_filler_rate: float = Field(
        0.0, ge=0, le=1,
        description="share of self-talk / hesitation sentences allowed ('Okay, let's see.', 'wait', questions, "
        "我需要…) (summary_filler)",
    )  # fmt: skip
    max_repetition: float = Field(
        0.0, ge=0, le=1, description="share of sentences repeating an earlier one allowed (summary_repetitive)"
    )
    require_final_result: bool = Field(
        True,
        description="the summary must state the thinking's final result (option letter, boxed value, 'answer is …') "
        "when the thinking states one (summary_missing_result)",
    )
    min_faithfulness: float = Field(
        1.0, ge=0, le=1,
        description="share of the summary's numbers, formulas and named entities that must occur in the thinking or "
        "prompt (summary_unfaithful_number | _formula | _entity); a contradicting final answer, another language "
        "or a summary over max_ratio always fail (summary_unfaithful_answer | _language | _length)",
    )  # fmt: skip
    teacher: TeacherConfig | None = Field(
        None, description="kind=llm: a teacher of the generate schema (kind openai | vllm, model, endpoints…)"
    )

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
        if t is not None and (t.mode != "all" or t.sources.include or t.sources.exclude):
            raise ValueError("mode and sources choose generate's prompts; the summarizer summarizes every kept reply")
        return t


def _known_ids(ids: list[str]) -> list[str]:
    unknown = sorted(set(ids) - KNOWN_IDS)
    if unknown:
        raise ValueError(f"unknown constraint id(s) {unknown}; known: IFEval's ids, e.g. punctuation:no_comma")
    return ids


class FormatGateConfig(Strict):
    """The format survival gate: a row whose prompt carries constraints is checked on its whole
    assistant turn; a turn that breaks a constraint its bare answer keeps gets `on_break`."""

    enabled: bool = Field(True, description="check every variant row whose prompt carries constraints")
    variants: list[str] | None = Field(
        None, description="variants the policy applies to (registry names); unset: every variant that adds a summary"
    )
    on_break: Literal["fallback_answer", "drop", "rewrite"] = Field(
        "fallback_answer",
        description="fallback_answer: emit the bare answer (recorded in quality_codes and choice_reason); "
        "drop: leave the row out with the broken id as ledger reason; rewrite: apply the constraints to the "
        "summary (case, commas, forbidden words, length) and re-check, dropping what still breaks",
    )


class AdaptivePolicy(Strict):
    """The `adaptive` variant: per row, answer only or summary + answer. Rules in this order; the first
    that fires says `answer` with its reason, else the row gets the summary."""

    answer_only_constraints: list[str] = Field(
        default_factory=lambda: ["detectable_format:json_format", "startend:quotation", "combination:repeat_prompt",
                                 "combination:two_responses", "detectable_format:constrained_response",
                                 "length_constraints:nth_paragraph_first_word", "length_constraints:number_paragraphs"],
        description="IFEval ids that constrain the whole reply's shape: a summary in front would break them",
    )  # fmt: skip
    answer_only_codes: list[str] = Field(
        default_factory=lambda: ["think_answer_mismatch*", "summary_unfaithful*", "summary_not_faithful*"],
        description="quality codes (fnmatch patterns) on the reply that make its summary untrustworthy",
    )
    answer_categories: list[str] = Field(
        default_factory=list, description="categories that always get the answer only (e.g. tool_use)"
    )
    summary_verify: list[Literal["pass", "fail", "unverifiable", "error"]] = Field(
        default_factory=lambda: ["pass", "unverifiable"],
        description="verification statuses that may get a summary (a failed reply's reasoning is not taught)",
    )
    min_think_tokens: int = Field(
        200, ge=0, description="thinking shorter than this (teacher tokens) has nothing worth summarizing"
    )
    max_think_tokens: int | None = Field(
        None, ge=1, description="thinking longer than this (teacher tokens) gets the answer only; unset: no cap"
    )

    _ids = field_validator("answer_only_constraints")(classmethod(lambda cls, v: _known_ids(v)))

    @field_validator("answer_categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {sorted(CATEGORIES)}")
        return v


class VariantsConfig(Strict):
    # None, not a list: which variants are built by default is the registry's to say
    # (builder/variants/registry.py), and config may not import a stage.
    build: list[str] | None = Field(
        None, description="variants to build, by registry name; unset: every variant the registry builds by default"
    )
    summarizer: SummarizerConfig = Field(default_factory=SummarizerConfig, description="who writes S_think")
    bucket_rows: int = Field(
        50_000, ge=1,
        description="prompts joined with their replies at a time (one bucket; a task's memory grows with it, about "
        "20 KB per prompt, 60 KB with the two forked summary workers of a one-task run); more are first "
        "hash-partitioned on disk by prompt_id",
    )  # fmt: skip
    tasks: int | None = Field(
        None,
        ge=1,
        description="datatrove tasks over the buckets on the recipe's executor (each owns every tasks-th bucket; "
        "at most one per bucket); None: executor.tasks on slurm/ray, 1 (this process) on local. The llm "
        "summarizer always runs in this process (its reply store has one writer)",
    )
    workers: int = Field(
        2, ge=1, le=256,
        description="extractive summary processes per bucket when the buckets run in this process (local, one "
        "task); 1 summarizes in this process. A datatrove task uses min(2, executor.cpus_per_task) on slurm/ray "
        "and 1 on local, where tasks already share the cores",
    )  # fmt: skip
    shard_rows: int = Field(SHARD_ROWS, ge=1, description="rows per output parquet shard")
    overthinking_z: float = Field(
        2.0, gt=0,
        description="a reply whose thinking length (log teacher tokens) is more than this many standard deviations "
        "above its category's mean (and its verified difficulty's, when n samples give a pass rate) gets the "
        "`overthinking` info code; the z-score is the `overthinking_z` column",
    )  # fmt: skip
    format_gate: FormatGateConfig = Field(default_factory=FormatGateConfig, description="the format survival gate")
    adaptive: AdaptivePolicy = Field(default_factory=AdaptivePolicy, description="the `adaptive` variant's policy")

    @model_validator(mode="after")
    def _summarizer_teacher(self) -> VariantsConfig:
        # Required whatever is built: which variants need a summary is the registry's to say.
        if self.summarizer.kind == "llm" and self.summarizer.teacher is None:
            raise ValueError(
                "summarizer.teacher is required when summarizer.kind is 'llm' (a teacher: kind openai | vllm, model, endpoints)"
            )
        return self
