"""Training recipes: the 32B recipes map onto a real TRL SFTConfig with the paper's values,
and recipe mistakes are caught as one-line ConfigErrors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from train_reference.config import (  # noqa: E402
    ConfigError,
    gradient_accumulation,
    load_recipe,
    parse_recipe,
    to_sft_config,
)

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "recipes" / "train").glob("qwen2.5-32b-*.yaml"))
VARIANTS = {"original", "answer", "think_summary", "full", "control"}


def test_one_recipe_per_variant() -> None:
    assert {p.stem.removeprefix("qwen2.5-32b-") for p in RECIPES} == VARIANTS


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_maps_to_paper_hyperparameters(path: Path) -> None:
    from trl import SFTConfig

    recipe = load_recipe(path)
    assert recipe.model.name_or_path == "Qwen/Qwen2.5-32B"
    assert recipe.model.dtype == "bfloat16"
    assert recipe.dataset.config == path.stem.removeprefix("qwen2.5-32b-")
    assert recipe.global_batch_size == 64
    for world, accum in ((8, 8), (16, 4)):
        cfg = to_sft_config(recipe, world_size=world, output_dir=str(Path("/tmp") / path.stem))
        assert isinstance(cfg, SFTConfig)
        # global batch = per-device batch x accumulation x world size
        assert cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * world == 64
        assert cfg.gradient_accumulation_steps == accum
    assert isinstance(cfg.learning_rate, float) and cfg.learning_rate == pytest.approx(8e-6)
    assert getattr(cfg.lr_scheduler_type, "value", cfg.lr_scheduler_type) == "cosine"
    assert cfg.warmup_steps == pytest.approx(0.05)  # a float < 1 is a ratio of total steps in transformers 5
    assert cfg.num_train_epochs == 3
    assert cfg.max_length == 16384
    assert cfg.bf16 is True
    assert cfg.activation_checkpointing is True
    assert cfg.assistant_only_loss is True
    assert cfg.completion_only_loss is True  # last assistant turn only
    assert cfg.eos_token == "<|im_end|>"


@pytest.mark.parametrize(
    ("key", "section", "hint"),
    [
        ("max_seq_length", "training", "max_length"),
        ("warmup_ratio", "training", "warmup_steps"),
        ("gradient_checkpointing", "training", "activation_checkpointing"),
        ("torch_dtype", "model", "model.dtype"),
    ],
)
def test_renamed_keys_name_their_replacement(key: str, section: str, hint: str) -> None:
    data = {"model": {"name_or_path": "m"}, "dataset": {"path": "p", "config": "answer"}, "training": {}}
    data[section][key] = 1
    with pytest.raises(ConfigError) as err:
        parse_recipe(data, source="r.yaml")
    msg = str(err.value)
    assert "\n" not in msg and f"'{key}'" in msg and hint in msg


def test_unknown_key_suggests_close_match() -> None:
    data = {
        "model": {"name_or_path": "m"},
        "dataset": {"path": "p", "config": "answer"},
        "training": {"learning_rat": 1e-5},
    }
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        parse_recipe(data)


def test_trainer_owned_keys_are_refused() -> None:
    data = {
        "model": {"name_or_path": "m"},
        "dataset": {"path": "p", "config": "answer"},
        "training": {"eos_token": "<|endoftext|>"},
    }
    with pytest.raises(ConfigError, match="eos_token cannot be set"):
        parse_recipe(data)


def test_overrides_parse_yaml_scalars_and_exponent_floats(tmp_path: Path) -> None:
    src = RECIPES[0]
    recipe = load_recipe(src, ["training.learning_rate=1e-5", "training.packing=true", "dataset.revision=v1.0.0"])
    assert recipe.training["learning_rate"] == 1e-5
    assert recipe.training["packing"] is True
    assert recipe.dataset.revision == "v1.0.0"
    with pytest.raises(ConfigError, match="expected key=value"):
        load_recipe(src, ["training.learning_rate"])


def test_global_batch_must_divide(tmp_path: Path) -> None:
    recipe = load_recipe(RECIPES[0], ["training.per_device_train_batch_size=3"])
    with pytest.raises(ConfigError, match="not a multiple"):
        gradient_accumulation(recipe, 8)
