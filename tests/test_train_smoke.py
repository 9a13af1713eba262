"""CPU smoke run of the reference SFT trainer: a tiny random Qwen2 model with the real Qwen2.5
tokenizer, trained on the `answer` rows with the shortest replies of the sample release (built
once per session by `answer-distill build recipes/sample.yaml`, see conftest.py).

Checks: labels are exactly the last assistant reply + <|im_end|> (earlier assistant and tool
turns of the release's multi-turn rows stay masked); loss goes down; the saved model has EOS
<|im_end|> in config and generation config, the original chat template, and greedy generation
halts at <|im_end|> because of the saved generation config.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

torch = pytest.importorskip("torch")
# 20 real optimizer steps on 2 cores: about a minute alone, but past the suite's 300 s per test
# when the cores are shared (a loaded CI host); a hang still ends here.
pytestmark = pytest.mark.timeout(900)

from train_reference import sft  # noqa: E402
from train_reference.config import QWEN_EOS_ID, QWEN_PAD_ID, load_recipe  # noqa: E402
from train_reference.tiny_model import build_tiny_qwen2, subset_release  # noqa: E402

STEPS = 20  # training.max_steps of recipes/train/cpu_smoke.yaml
# The sample's `answer` rows with the shortest replies (one token: "No", "yes", "2", "是", ...):
# cheap steps, and a reply a 10M-parameter model learns to end with <|im_end|> in 20 steps.
N_ROWS = 16

# The recipe of train_reference/README.md's CPU smoke command; only its paths are replaced here.
SMOKE_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "train" / "cpu_smoke.yaml"


def _paths(model: Path, release: Path, out: Path) -> list[str]:
    return [f"model.name_or_path={model}", f"dataset.path={release}", f"training.output_dir={out}"]


def tokenizer_dir() -> Path:
    from builder.tokens import hf_tokenizer_dir

    return hf_tokenizer_dir("qwen2.5")


def first_batch(trainer: Any, prepared: dict[str, Any], n: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The collated batch of the first `n` training rows, and those rows as loaded."""
    n = min(n, len(trainer.train_dataset))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(n)])
    return batch, [prepared["dataset"][i] for i in range(n)]


@pytest.fixture(scope="module")
def trained(sample_release: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import datasets

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("sft")
    with pytest.MonkeyPatch.context() as mp:
        # load_dataset keys a local folder's cache by folder name and card, not by its shards:
        # a private cache makes it read these shards, not an older "release" folder's.
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf-datasets")
        return train_tiny(sample_release, root)


def train_tiny(sample_release: Path, root: Path) -> dict[str, Any]:
    model_dir = build_tiny_qwen2(root / "tiny", tokenizer_dir(), max_position_embeddings=2048)
    release = subset_release(sample_release, root / "release", "answer", N_ROWS)
    # The sample's multi-turn rows (tool use) are in `original`: their earlier assistant turns
    # must stay out of the loss. Collated only, not trained.
    subset_release(sample_release, release, "original", 4, min_assistant_turns=2)
    multi = load_recipe(SMOKE_RECIPE, [*_paths(model_dir, release, root / "out-original"), "dataset.config=original"])
    prepared_multi = sft.prepare(multi, root / "work-original")
    multi_batch = first_batch(sft.build_trainer(multi, prepared_multi), prepared_multi, 4)

    recipe = load_recipe(SMOKE_RECIPE, _paths(model_dir, release, root / "out"))
    prepared = sft.prepare(recipe, root / "work")
    trainer = sft.build_trainer(recipe, prepared)
    batch, rows = first_batch(trainer, prepared, 8)
    trainer.train()
    out = Path(prepared["sft_config"].output_dir)
    sft.save(trainer, prepared, out)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "out": out,
        "batches": [(batch, rows), multi_batch],
        "rows": rows,
        "losses": losses,
        "prepared": prepared,
        "base": model_dir,
    }


def test_labels_are_the_last_assistant_reply_and_im_end(trained: dict[str, Any]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(trained["out"])  # carries the model's original template
    multi_turn = with_tools = 0
    for batch, rows in trained["batches"]:
        for b, row in enumerate(rows):
            multi_turn += check_labels(tok, batch, b, row)
            with_tools += bool(row["tools"])
    assert multi_turn >= 4  # the release's tool-use rows: earlier assistant turns stayed masked
    assert with_tools >= 4  # ... trained with their tool definitions in the system turn


def check_labels(tok: Any, batch: dict[str, Any], b: int, row: dict[str, Any]) -> bool:
    """Row `b` of `batch` trains on exactly its last reply (text and tool calls) + <|im_end|>,
    and its input holds the row's tool definitions; True if multi-turn."""
    messages = row["prompt"] + row["completion"]
    kw: dict[str, Any] = {"tokenize": True, "return_dict": True, "tools": row["tools"] or None}
    prompt_ids = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, **kw)["input_ids"]
    full_ids = tok.apply_chat_template(messages, **kw)["input_ids"]
    reply = row["completion"][0]
    target = full_ids[len(prompt_ids) : -1]
    # expected targets: the reply's tokens (its tool calls too), then <|im_end|>; not the trailing "\n"
    assert full_ids[-1:] == tok("\n")["input_ids"] and target[-1] == QWEN_EOS_ID
    if not reply["tool_calls"]:
        assert target == [*tok(reply["content"], add_special_tokens=False)["input_ids"], QWEN_EOS_ID]
    else:
        text = tok.decode(target)
        assert text.count("<tool_call>") == len(reply["tool_calls"])
        assert all(f'"name": "{c["function"]["name"]}"' in text for c in reply["tool_calls"])
    ids = batch["input_ids"][b].tolist()
    labels = batch["labels"][b].tolist()
    assert ids[: len(full_ids)] == full_ids
    if row["tools"]:  # TRL passed the row's tools to the template: the schemas are in the input
        system = tok.decode(ids[: ids.index(QWEN_EOS_ID)])
        assert "<tools>" in system and all(json.dumps(t["function"]["name"]) in system for t in row["tools"])
    trained_pos = [i for i, lab in enumerate(labels) if lab != -100]
    assert trained_pos == list(range(len(prompt_ids), len(full_ids) - 1))
    assert [labels[i] for i in trained_pos] == target
    return sum(m["role"] == "assistant" for m in messages) > 1


def test_loss_goes_down(trained: dict[str, Any]) -> None:
    losses = trained["losses"]
    assert len(losses) == STEPS
    first, last = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    assert last < first - 3.0, (first, last)  # ~11.9 (ln 152k) at random init


def test_saved_model_stops_at_im_end(trained: dict[str, Any]) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    out = trained["out"]
    cfg = AutoConfig.from_pretrained(out)
    gen = GenerationConfig.from_pretrained(out)
    assert cfg.eos_token_id == QWEN_EOS_ID and cfg.pad_token_id == QWEN_PAD_ID
    assert gen.eos_token_id[0] == QWEN_EOS_ID and gen.pad_token_id == QWEN_PAD_ID
    base_gen = GenerationConfig.from_pretrained(trained["base"])
    assert base_gen.eos_token_id == QWEN_PAD_ID  # the base model alone would not stop at <|im_end|>

    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == trained["prepared"]["original_template"]
    assert "endgeneration" not in tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    max_new = 12
    saved_cfg, base_cfg = copy.deepcopy(model.generation_config), copy.deepcopy(base_gen)
    for cfg_ in (saved_cfg, base_cfg):
        # min_new_tokens=1: an answer of at least one token (the first reply token is the least
        # certain after 20 steps; <|im_end|> there would say nothing about stopping).
        cfg_.max_new_tokens, cfg_.min_new_tokens, cfg_.do_sample = max_new, 1, False
    halted, outputs = 0, []
    for row in trained["rows"]:
        enc = tok.apply_chat_template(
            row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )
        n = enc["input_ids"].shape[1]
        with torch.no_grad():
            new = model.generate(**enc, generation_config=saved_cfg)[0, n:].tolist()
            # Same weights with the base model's generation config: must run past <|im_end|>.
            ctrl = model.generate(**enc, generation_config=base_cfg)[0, n:].tolist()
        outputs.append(new)
        if QWEN_EOS_ID in new:  # an answer, then the stop token
            assert new[-1] == QWEN_EOS_ID and len(new) < max_new  # halted right at <|im_end|>
            assert QWEN_EOS_ID in ctrl and len(ctrl) > len(new)
            halted += 1
    # The tiny model learned to end its short answers; the saved config makes generation halt.
    assert halted >= len(trained["rows"]) // 2, outputs
