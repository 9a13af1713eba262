"""The evaluation recipe schema (pydantic) and its loader with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parents[2]

# The paper's seven benchmarks, in Table 1's column order; the kind says who scores them.
BENCHMARK_KINDS: dict[str, Literal["lmeval", "judge"]] = {
    "gpqa_diamond": "lmeval",
    "gsm8k": "lmeval",
    "mmlu": "lmeval",
    "humaneval": "lmeval",
    "ifeval": "lmeval",
    "alignbench": "judge",
    "mt_bench": "judge",
}


# Benchmarks for which `samples` > 1 would not be honoured (see BenchmarkConfig._samples_used).
ONE_SAMPLE = frozenset({"mmlu", "mt_bench", "alignbench"})


class EvalUserError(Exception):
    """A user mistake (recipe, path, name): reported as one line, exit code 2."""


class JudgeConfig(BaseModel):
    """An OpenAI-compatible judge endpoint; the key is read from the env var named here."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = Field(8, ge=1)
    temperature: float = 0.0
    max_tokens: int = Field(2048, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(2, ge=0)

    @field_validator("base_url")
    @classmethod
    def _expand(cls, v: str) -> str:
        # Recipes may name the endpoint by env var (e.g. a loopback server's port).
        out = os.path.expandvars(v)
        if "$" in out:
            raise ValueError(f"{v!r}: environment variable not set")
        return out


class BenchmarkConfig(BaseModel):
    """One benchmark: which lm-eval task or judge data, its decoding settings, its data."""

    model_config = ConfigDict(extra="forbid")

    name: str
    task: str | None = None  # lm-eval task or group name (lmeval kind)
    metric: str | None = None  # lm-eval "metric,filter" key reported as the score
    num_fewshot: int | None = None
    samples: int = Field(1, ge=1)  # generations per item; the score averages them (pass@1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int | None = Field(None, ge=1)  # overrides the recipe-wide cap
    limit: int | None = Field(None, ge=1)  # first N items only (smoke runs)
    # Local files: lm-eval split name -> path (lmeval kind), or named inputs (judge kind:
    # questions, references, judge_prompts). Relative paths are from the repository root.
    data_files: dict[str, str] = Field(default_factory=dict)
    judge_prompt_file: str | None = None  # alignbench: a local copy of an official prompt
    optional: bool = False  # missing data -> "skipped", not a failure (smoke recipes)
    decontam_aliases: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in BENCHMARK_KINDS:
            raise ValueError(f"unknown benchmark {v!r}; known: {', '.join(BENCHMARK_KINDS)}")
        return v

    @model_validator(mode="after")
    def _samples_used(self) -> BenchmarkConfig:
        # MMLU is scored by likelihood and the judge benchmarks generate once per turn: the
        # results file would claim samples that were never drawn.
        if self.samples > 1 and self.name in ONE_SAMPLE:
            raise ValueError(f"samples: {self.name} draws one generation per item; remove `samples` or set it to 1")
        # Keys the judge benchmarks never read would still be recorded as if they had been used.
        unused = ["task", "metric", "num_fewshot"] if self.kind == "judge" else []
        unused += ["judge_prompt_file"] if self.name != "alignbench" else []
        for key in unused:
            if getattr(self, key) is not None:
                raise ValueError(f"{key}: {self.name} does not use it; remove it")
        return self

    @property
    def kind(self) -> Literal["lmeval", "judge"]:
        return BENCHMARK_KINDS[self.name]

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def resolved_files(self) -> dict[str, Path]:
        return {k: resolve_path(v) for k, v in self.data_files.items()}


class EvalConfig(BaseModel):
    """A whole evaluation run: backend, limits, judge, benchmarks, where results go."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "hf", "vllm"] = "auto"
    max_new_tokens: int = Field(16384, ge=1)
    apply_chat_template: bool = True
    batch_size: int | str = 1
    # Extra lm-eval model arguments per backend (e.g. vllm tensor_parallel_size).
    hf_args: dict[str, str | int | float | bool] = Field(default_factory=dict)
    vllm_args: dict[str, str | int | float | bool] = Field(default_factory=dict)
    include_default_tasks: bool = True  # scan lm-eval's built-in tasks (Hub ones, ~10 s)
    output_dir: str = "out/eval"
    release_manifest: str | None = None  # the training release's manifest.json
    seed: int = 1234
    judge: JudgeConfig | None = None
    benchmarks: list[BenchmarkConfig]

    @field_validator("benchmarks")
    @classmethod
    def _unique(cls, v: list[BenchmarkConfig]) -> list[BenchmarkConfig]:
        names = [b.name for b in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"benchmark listed twice: {', '.join(dup)}")
        return v


def resolve_path(p: str) -> Path:
    """Expand ~ and $VARS; relative paths are from the repository root, not the cwd."""
    path = Path(os.path.expandvars(os.path.expanduser(p)))
    return path if path.is_absolute() else (REPO_ROOT / path)


def load_config(path: str | Path) -> EvalConfig:
    """Load and validate a recipe; any problem becomes one EvalUserError line."""
    path = Path(path)
    if not path.is_file():
        raise EvalUserError(f"{path}: recipe not found; pass --config recipes/eval/paper.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise EvalUserError(f"{path}{where}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise EvalUserError(f"{path}: expected a mapping at the top level")
    try:
        return EvalConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _loc(raw, err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise EvalUserError(f"{path}: {loc}: {msg}") from None


def _loc(raw: dict, loc: tuple) -> str:
    """A readable key path; list indexes of benchmarks are shown with the benchmark name."""
    parts: list[str] = []
    node: object = raw
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            node = node[item]
            name = node.get("name") if isinstance(node, dict) else None
            parts.append(f"[{item}]" + (f"({name})" if name else ""))
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts) or "(top level)"
