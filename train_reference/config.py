"""Training recipe schema (pydantic) and its mapping onto TRL's `SFTConfig`.

A recipe has three sections, each checked before any model or GPU is touched:

    model:    what to fine-tune (Hub id or local folder, revision, dtype)
    dataset:  which release, which variant (HF config name) and which revision
    training: keyword arguments of `trl.SFTConfig` (TRL 1.16 / transformers 5 names)

plus `global_batch_size`, from which the gradient-accumulation steps are derived for the
world size at launch time (per-device batch × accumulation × world size = global batch).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Keys that older TRL/transformers recipes use and that TRL 1.16 / transformers 5.23 either
# dropped or only keep as deprecated aliases. We reject them (rather than silently
# translate) so that a recipe always states the value it runs with under the current name.
RENAMED: dict[str, str] = {
    "max_seq_length": "training.max_length (TRL renamed max_seq_length to max_length)",
    "warmup_ratio": "training.warmup_steps as a float fraction, e.g. 0.05 "
    "(transformers 5 removed warmup_ratio; warmup_steps < 1 is a ratio of total steps)",
    "gradient_checkpointing": "training.activation_checkpointing "
    "(transformers 5.23 keeps gradient_checkpointing only as a deprecated alias)",
    "gradient_checkpointing_kwargs": "training.activation_checkpointing_kwargs (deprecated alias in transformers 5.23)",
    "torch_dtype": "model.dtype (transformers 5 renamed torch_dtype to dtype)",
    "dataset_name": "dataset.path (a Hub id or a local release folder)",
    "dataset_config": "dataset.config (the release variant)",
    "model_name_or_path": "model.name_or_path",
    "evaluation_strategy": "training.eval_strategy (renamed in transformers 4.46)",
    "overwrite_output_dir": "nothing: transformers 5 removed it; pick a fresh training.output_dir",
}

# SFTConfig fields the trainer owns: a recipe may not set them because the trainer's
# correctness (loss mask, stop token, model loading) depends on their values.
OWNED_BY_TRAINER: dict[str, str] = {
    "eos_token": "the trainer pins EOS to <|im_end|> (id 151645)",
    "pad_token": "the trainer pins PAD to <|endoftext|> (id 151643)",
    "model_init_kwargs": "use the model: section (name_or_path, revision, dtype, attn_implementation)",
    "chat_template_path": "the trainer supplies the Qwen2.5 training template itself",
    "completion_only_loss": "set dataset.train_on instead (last_turn or all_assistant_turns)",
    "gradient_accumulation_steps": "set global_batch_size; accumulation is derived from it",
    "dataset_text_field": "releases are conversational (messages column)",
}

QWEN_EOS = "<|im_end|>"
QWEN_EOS_ID = 151645
QWEN_PAD = "<|endoftext|>"
QWEN_PAD_ID = 151643


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `8e-6` as a string; recipes mean a float (SFTConfig would not coerce it)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class ConfigError(Exception):
    """A user error in a recipe or its overrides: printed as one line, exit status 2."""


class ModelSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name_or_path: str
    revision: str | None = "main"
    # The tokenizer comes from the model unless given (e.g. a local copy of the real files).
    tokenizer: str | None = None
    dtype: Literal["bfloat16", "float16", "float32", "auto"] = "bfloat16"
    attn_implementation: str | None = None


class DatasetSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Hub dataset id or local release folder")
    config: str = Field(description="release variant = HF config name, e.g. answer")
    revision: str | None = None
    split: str = "train"
    # Only the final assistant turn is the teacher's reply; earlier assistant turns of a
    # multi-turn row are the community dataset's own and are context, not targets.
    train_on: Literal["last_turn", "all_assistant_turns"] = "last_turn"
    max_rows: int | None = Field(default=None, ge=1)
    # How many rows the start-up check renders with both chat templates.
    template_check_rows: int = Field(default=64, ge=1)
    # Rows longer than training.max_length (the release's student_tokens: the conversation as the
    # chat template renders it): left out (drop), kept for TRL to cut at max_length, which trains
    # on a reply without its end and stop token (truncate), or a start-up error (error).
    over_length: Literal["drop", "truncate", "error"] = "drop"


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelSection
    dataset: DatasetSection
    global_batch_size: int = Field(default=64, ge=1)
    training: dict[str, Any] = Field(default_factory=dict)


def sft_config_fields() -> set[str]:
    from trl import SFTConfig

    return {f.name for f in dataclasses.fields(SFTConfig) if f.init}


def _unknown_key_message(where: str, key: str, known: set[str]) -> str:
    if key in RENAMED:
        return f"{where}: unknown key '{key}'; use {RENAMED[key]}"
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{where}: unknown key '{key}'{hint}"


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `--set section.key=value` overrides; values are parsed as YAML scalars."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. training.learning_rate=1e-5")
        _set_dotted(data, key.strip(), yaml_load(raw))
    return data


def parse_recipe(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a recipe mapping; every problem is reported as one ConfigError line."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with model, dataset and training sections")
    top = set(Recipe.model_fields)
    sections = {"model": set(ModelSection.model_fields), "dataset": set(DatasetSection.model_fields)}
    for key in data:
        if key not in top:
            raise ConfigError(_unknown_key_message(source, key, top))
    for name, known in sections.items():
        section = data.get(name)
        if isinstance(section, dict):
            for key in section:
                if key not in known:
                    raise ConfigError(_unknown_key_message(f"{source}: {name}", key, known))
    training = data.get("training") or {}
    if not isinstance(training, dict):
        raise ConfigError(f"{source}: training must be a mapping of SFTConfig arguments")
    known_training = sft_config_fields()
    for key in training:
        if key in RENAMED:
            raise ConfigError(_unknown_key_message(f"{source}: training", key, known_training))
        if key in OWNED_BY_TRAINER:
            raise ConfigError(f"{source}: training.{key} cannot be set; {OWNED_BY_TRAINER[key]}")
        if key not in known_training:
            raise ConfigError(_unknown_key_message(f"{source}: training", key, known_training))
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{source}: {loc}: {err['msg']}") from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recipe file not found")
    try:
        data = yaml_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_recipe(apply_overrides(data, overrides or []), source=str(path))


def world_size_from_env() -> int:
    """Processes in the job: accelerate/torchrun export WORLD_SIZE; Slurm alone does not."""
    if "WORLD_SIZE" in os.environ:
        return int(os.environ["WORLD_SIZE"])
    import torch

    # A plain `python sft.py` on a multi-GPU host runs DataParallel over every visible GPU,
    # which multiplies the per-device batch by the GPU count.
    return max(1, torch.cuda.device_count())


def gradient_accumulation(recipe: Recipe, world_size: int) -> int:
    per_device = int(recipe.training.get("per_device_train_batch_size", 8))
    per_step = per_device * world_size
    if recipe.global_batch_size % per_step:
        raise ConfigError(
            f"global_batch_size {recipe.global_batch_size} is not a multiple of "
            f"per_device_train_batch_size {per_device} x world size {world_size} = {per_step}"
        )
    return recipe.global_batch_size // per_step


def to_sft_config(recipe: Recipe, world_size: int | None = None, **extra: Any):  # -> SFTConfig
    """Build the real `trl.SFTConfig` for this recipe at the given world size."""
    import torch
    from trl import SFTConfig

    world_size = world_size or world_size_from_env()
    kwargs: dict[str, Any] = dict(recipe.training)
    kwargs.update(extra)
    kwargs["gradient_accumulation_steps"] = gradient_accumulation(recipe, world_size)
    kwargs["eos_token"] = QWEN_EOS
    kwargs["completion_only_loss"] = recipe.dataset.train_on == "last_turn"
    kwargs.setdefault("assistant_only_loss", True)
    # TRL defaults the deprecated alias to True; state the current name instead so that
    # transformers does not warn and a recipe's activation_checkpointing is what runs.
    kwargs.setdefault("activation_checkpointing", True)
    kwargs["gradient_checkpointing"] = None
    kwargs.setdefault("output_dir", f"out/train/{Path(recipe.model.name_or_path).name}-{recipe.dataset.config}")
    if os.environ.get("ACCELERATE_USE_FSDP") == "true" and os.environ.get("FSDP_ACTIVATION_CHECKPOINTING") == "true":
        # FSDP checkpoints the layers itself; the training argument would add a redundant all-gather.
        kwargs["activation_checkpointing"] = False
    if not torch.cuda.is_available():
        # transformers refuses bf16 without an accelerator unless told it runs on CPU;
        # this lets CPU hosts validate and smoke-test the same recipe.
        kwargs.setdefault("use_cpu", True)
    try:
        return SFTConfig(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"training: SFTConfig rejected the recipe: {' '.join(str(exc).split())}") from None
