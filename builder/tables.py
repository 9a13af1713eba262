"""Every inter-stage table once: where it lies under the work dir, its schema, who writes it.

    table             path under <work>                   features                  producer
    prompts           curate/prompts/part-*.parquet       PROMPT_FEATURES           curate
    curate ledger     curate/ledger.parquet               LEDGER_FEATURES           curate
    decontamination   curate/decontamination.parquet      DECONTAMINATION_FEATURES  curate
    replies           generate/replies/part-*.parquet     REPLY_FEATURES            generate
    generate ledger   generate/ledger.parquet             LEDGER_FEATURES           generate
    parsed            responses/parsed/part-*.parquet     PARSED_FEATURES           responses
    quarantine        responses/quarantine/part-*.parquet PARSED_FEATURES           responses
    responses ledger  responses/ledger.parquet            LEDGER_FEATURES           responses
    variant <v>       variants/<v>/part-*.parquet         VARIANT_FEATURES          variants
    pairs             variants/pairs/part-*.parquet       PAIR_FEATURES             variants
    variants ledger   variants/ledger.parquet             LEDGER_FEATURES           variants

Each stage also writes `<stage>/summary.json`, typed below (CurateSummary … VariantsSummary)
with `extra="forbid"`: a field a stage forgets or misspells fails when it is written, not
when the release reads it. Stages reach each other's outputs only through these
declarations and `builder.workdir.WorkDir` (path, shards, require, writer, read_summary),
and declare what they read and write (`READS` / `WRITES`), which `answer-distill plan` prints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from builder.config.generate import Price
from builder.rows import (
    DECONTAMINATION_FEATURES,
    LEDGER_FEATURES,
    PAIR_FEATURES,
    PARSED_FEATURES,
    PROMPT_FEATURES,
    REPLY_FEATURES,
    VARIANT_FEATURES,
)
from builder.schema import Features


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    path: str  # relative to the work dir; "{variant}" in a parametrized family (see `variant`)
    features: Features
    producer: str  # the stage, and the `answer-distill` command, that writes it
    sharded: bool  # True: a folder of part-*.parquet; False: one parquet file

    @property
    def label(self) -> str:
        return self.path.replace("{", "<").replace("}", ">") + ("/" if self.sharded else "")


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder a stage writes that is not a table (a reply store, the release folder)."""

    name: str
    path: str  # relative to the work dir, or "<out>/…" for the release's output folder
    producer: str

    @property
    def label(self) -> str:
        return self.path + "/"


def _ledger(stage: str) -> Table:
    # builder.ledger.Ledger.close(<work>/<stage>) writes exactly this file.
    return Table(f"{stage} ledger", f"{stage}/ledger.parquet", LEDGER_FEATURES, stage, sharded=False)


PROMPTS = Table("prompts", "curate/prompts", PROMPT_FEATURES, "curate", sharded=True)
DECONTAMINATION = Table("decontamination", "curate/decontamination.parquet", DECONTAMINATION_FEATURES, "curate",
                        sharded=False)  # fmt: skip
CURATE_LEDGER = _ledger("curate")
REPLIES = Table("replies", "generate/replies", REPLY_FEATURES, "generate", sharded=True)
GENERATE_LEDGER = _ledger("generate")
PARSED = Table("parsed", "responses/parsed", PARSED_FEATURES, "responses", sharded=True)
QUARANTINE = Table("quarantine", "responses/quarantine", PARSED_FEATURES, "responses", sharded=True)
RESPONSES_LEDGER = _ledger("responses")
VARIANT = Table("variant", "variants/{variant}", VARIANT_FEATURES, "variants", sharded=True)  # the family
# Preference pairs: a variants table of its own schema; the release publishes chat configs only.
PAIRS = Table("pairs", "variants/pairs", PAIR_FEATURES, "variants", sharded=True)
VARIANTS_LEDGER = _ledger("variants")
LEDGERS = {t.producer: t for t in (CURATE_LEDGER, GENERATE_LEDGER, RESPONSES_LEDGER, VARIANTS_LEDGER)}

# Reply stores (builder/teachers/store.py), one folder per teacher under each.
GENERATE_STORE = Folder("reply store", "generate/store", "generate")
SUMMARY_STORE = Folder("summary store", "variants/summaries", "variants")
RELEASE_FOLDER = Folder("release", "<out>", "release")
QUALITY_REPORT = Folder("quality report", "quality", "release")  # a blocked release's report


def variant(name: str) -> Table:
    """The table of one variant (HF config), e.g. variant("answer") → variants/answer/."""
    return dataclasses.replace(VARIANT, name=f"variant {name}", path=VARIANT.path.format(variant=name))


# ---- typed stage summaries (<work>/<stage>/summary.json) ----


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StageSummary(_Model):
    STAGE: ClassVar[str]

    @classmethod
    def label(cls) -> str:  # a classmethod, not a property: READS / WRITES hold the class
        return f"{cls.STAGE}/summary.json"


class StepRow(_Model):
    """One ledger step: rows in, kept, and dropped per reason (builder.ledger.Ledger.summary)."""

    step: str
    in_: int = Field(alias="in")
    kept: int
    dropped: dict[str, int]

    @classmethod
    def rows(cls, steps: list[tuple[str, int, int, dict[str, int]]]) -> list[StepRow]:
        return [cls(step=s, in_=i, kept=k, dropped=d) for s, i, k, d in steps]


class Tally(_Model):
    records: int
    requests: int
    ok: int
    failed: int
    retried: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cost_usd: float  # 0.0 when the model has no price


class TeacherAccounting(_Model):
    """Tokens, requests and cost over every record a teacher's store holds (teachers/accounting.py)."""

    teacher: str
    model: str
    price: Price | None
    total: Tally
    by_run: dict[str, Tally]
    by_source: dict[str, Tally]
    by_category: dict[str, Tally]

    @property
    def spend_usd(self) -> float | None:
        """What the store cost; None when the model has no price (unknown, not free)."""
        return self.total.cost_usd if self.price is not None else None


class SummarizerAccounting(TeacherAccounting):
    sent_this_run: int


class BalanceRow(_Model):
    category: str
    source: str
    before: int
    after: int


class DecontaminationSummary(_Model):
    benchmarks: list[str]
    skipped_absent: list[str]
    # Absent when decontamination is off.
    ngram: int | None = None
    fuzzy_threshold: float | None = None
    hits_per_benchmark: dict[str, int] = Field(default_factory=dict)
    items: int | None = None
    common_ngrams_ignored: int | None = None
    # What was compared, in words, for the card (older summaries lack it: the card says n-gram and fuzzy).
    methods: list[str] = Field(default_factory=list)


class CurateSummary(StageSummary):
    STAGE: ClassVar[str] = "curate"
    recipe: str
    version: str
    recipe_sha256: str
    rows_in: int
    rows_out: int
    steps: list[StepRow]
    balance: list[BalanceRow]
    category_quota: dict[str, int]
    decontamination: DecontaminationSummary
    warnings: list[str]
    seconds: float
    step_seconds: dict[str, float]


class TeacherRun(_Model):
    name: str
    role: str
    kind: str
    model: str
    items: int
    already_stored: int
    sent: int
    ok: int
    failed: dict[str, int]
    covered_by_earlier: int = 0  # mode fallback: prompts an earlier teacher answered well, not asked


class GenerateSummary(StageSummary):
    STAGE: ClassVar[str] = "generate"
    recipe: str
    version: str
    recipe_sha256: str
    run_id: str
    teachers: list[TeacherRun]
    accounting: list[TeacherAccounting]
    steps: list[StepRow]
    rows: int
    warnings: list[str]
    seconds: float
    error: str  # "" unless the run aborted


class ResponsesSummary(StageSummary):
    STAGE: ClassVar[str] = "responses"
    rows_in: int
    kept: int
    quarantined: int
    selected: int
    reasons: dict[str, int]
    verify: dict[str, int]  # "<role>:<method>:<status>" → rows
    shapes: dict[str, int]
    seconds: float
    # "<source> | <teacher model>" → rows per think–answer verdict (match / mismatch /
    # not_checkable) and mismatch_rate among checkable rows, kept rows only (the card's table).
    consistency: dict[str, dict[str, int | float]] = Field(default_factory=dict)
    # The student tokenizer that counted `parsed.student_answer_tokens`: variants reuses those
    # counts when its own student tokenizer is this one (None: a summary from before it was kept).
    student_tokenizer: str | None = None


class VariantInfo(_Model):
    """A built variant's registry spec as data (builder/variants/registry.py): the release and
    quality read these, not the registry (no stage imports another)."""

    name: str
    reply: Literal["reasoning", "control"] | None  # the teacher reply its rows are built from
    needs_summary: bool  # S_think ⊕ answer: checked to end with the exact answer
    think: bool  # opens with one <think>…</think> block; otherwise no tags at all
    exact_answer: bool  # the reasoning answer byte for byte: the summary check's reference
    blurb: str  # the dataset card's description of the assistant turn


class VariantsSummary(StageSummary):
    STAGE: ClassVar[str] = "variants"
    counts: dict[str, int]
    absent: dict[str, dict[str, int]]
    summarizer: str
    # The LLM summarizer's spend (kind: llm only): a teacher like generate's, paid per think_summary.
    summarizer_accounting: SummarizerAccounting | None = None
    variants: list[str]
    specs: list[VariantInfo]  # the built variants' specs, in registry order
    seconds: float
    # Built but not published by the release, with the reason (the `pairs` config's own schema).
    omitted: dict[str, str] = {}
    # Thinking length z-scores of the reasoning replies (builder/variants/overthinking.py), binned.
    overthinking_histogram: dict[str, int] = {}
    overthinking_z: float | None = None  # the recipe's threshold for the `overthinking` code
    # Run-wide summary quality (builder/variants/summary_quality.Tally): every scored summary,
    # kept or quarantined; the per-row scores are the think_summary columns.
    summary_quality: dict[str, float | int] = {}
    # The format survival gate (variants/format_gate.py): variant → category ("*": all) → counts and rates.
    format_survival: dict[str, dict[str, dict[str, int | float]]] = Field(default_factory=dict)
    # The adaptive variant's mix: category → choice ("answer" | "summary") → rows; and reasons → rows.
    adaptive_mix: dict[str, dict[str, int]] = Field(default_factory=dict)
    adaptive_reasons: dict[str, int] = Field(default_factory=dict)


SUMMARIES: dict[str, type[StageSummary]] = {
    m.STAGE: m for m in (CurateSummary, GenerateSummary, ResponsesSummary, VariantsSummary)
}


def label(item: Any) -> str:
    """How `plan` names a table, folder or summary class."""
    return item.label() if isinstance(item, type) else item.label
