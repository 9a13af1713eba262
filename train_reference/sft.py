"""Reference SFT trainer (TRL) for Qwen2.5 on one variant of an answer-distill release.

    python train_reference/sft.py --config recipes/train/qwen2.5-32b-answer.yaml [--set key=value ...]
    accelerate launch --config_file train_reference/accelerate/fsdp2.yaml train_reference/sft.py --config ...

Everything a user can get wrong (recipe keys, release config, revision, max length vs the
model's context, chat template) is checked before any weights are loaded; each problem is
one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `train_reference` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from train_reference.chat_template import (  # re-exported: sft.SetupError, sft.check_training_template, …
    SetupError,
    check_training_template,
    default_system_prompt,
    training_chat_template,
)
from train_reference.config import (
    QWEN_EOS,
    QWEN_EOS_ID,
    QWEN_PAD,
    QWEN_PAD_ID,
    ConfigError,
    DatasetSection,
    Recipe,
    load_recipe,
    to_sft_config,
)

__all__ = ["SetupError", "check_training_template", "default_system_prompt", "training_chat_template"]

logger = logging.getLogger("train_reference.sft")
TRL_MAX_LENGTH = 1024  # SFTConfig.max_length when the recipe sets none


# --- the release ---------------------------------------------------------------------------
def _front_matter_configs(readme: Path) -> list[str]:
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return []
    block = text.split("---", 2)[1]
    meta = yaml.safe_load(block) or {}
    return [c.get("config_name", "default") for c in meta.get("configs", []) if isinstance(c, dict)]


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=False)


def _local_revision(folder: Path, revision: str | None, workdir: Path) -> Path:
    """The folder itself, or the release as of `revision` when the folder is a git clone."""
    is_git = (folder / ".git").exists()
    if revision in (None, "main") and not is_git:
        return folder
    if not is_git:
        raise SetupError(
            f"dataset.revision {revision!r}: local release {folder} is not a git clone, so it has no revisions; "
            "drop dataset.revision or clone the release repository"
        )
    rev = revision or "HEAD"
    found = _git(folder, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        tags = _git(folder, "tag", "--list").stdout.split()
        raise SetupError(f"dataset.revision {rev!r} does not exist in {folder} (tags: {', '.join(tags) or 'none'})")
    commit = found.stdout.strip()
    head = _git(folder, "rev-parse", "HEAD").stdout.strip()
    dirty = _git(folder, "status", "--porcelain").stdout.strip()
    if commit == head and not dirty:
        return folder
    # Materialise that revision's files without touching the user's checkout.
    target = workdir / f"release-{commit[:12]}"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(folder), "archive", commit], capture_output=True, check=False)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def _hub_revision_check(ds: DatasetSection) -> list[str]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        HfApi().dataset_info(ds.path, revision=ds.revision)
    except RevisionNotFoundError:
        raise SetupError(f"dataset.revision {ds.revision!r} does not exist in Hub dataset {ds.path}") from None
    except RepositoryNotFoundError:
        raise SetupError(f"dataset.path {ds.path!r}: no such local folder or Hub dataset") from None
    except Exception as exc:  # offline mode, network, auth: all end the run the same way
        raise SetupError(
            f"dataset.path {ds.path!r}: cannot query the Hugging Face Hub ({type(exc).__name__})"
        ) from None
    import datasets

    return datasets.get_dataset_config_names(ds.path, revision=ds.revision)


def resolve_release(ds: DatasetSection, workdir: Path) -> tuple[str, str | None]:
    """Check revision and config exist; return what to pass to `load_dataset` (path, revision)."""
    folder = Path(ds.path).expanduser()
    if folder.is_dir():
        folder = _local_revision(folder, ds.revision, workdir)
        readme = folder / "README.md"
        configs = _front_matter_configs(readme) if readme.is_file() else []
        if not configs:
            raise SetupError(f"dataset.path {ds.path}: not a release folder (README.md has no 'configs:' front matter)")
        path, revision = str(folder), None
    else:
        configs = _hub_revision_check(ds)
        path, revision = ds.path, ds.revision
    if ds.config not in configs:
        raise SetupError(
            f"dataset.config {ds.config!r} is not in release {ds.path}"
            f"{'@' + ds.revision if ds.revision else ''} (it has: {', '.join(configs)})"
        )
    return path, revision


def _clean_messages(messages: Any, index: int) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise SetupError(f"dataset row {index}: 'messages' must be a non-empty list")
    out = []
    for turn in messages:
        role, content, calls = turn.get("role"), turn.get("content"), turn.get("tool_calls")
        if role not in ("system", "user", "assistant", "tool") or not isinstance(content, str):
            raise SetupError(
                f"dataset row {index}: turn {turn!r} needs role system/user/assistant/tool and string content"
            )
        if calls is not None and not (isinstance(calls, list) and all(isinstance(c, dict) for c in calls)):
            raise SetupError(f"dataset row {index}: tool_calls must be a list of objects, got {calls!r:.80}")
        out.append({"role": role, "content": content, "tool_calls": calls or None})
    if out[-1]["role"] != "assistant":
        raise SetupError(f"dataset row {index}: the last turn must be the assistant reply, got {out[-1]['role']!r}")
    return out


def _row_tools(row: dict[str, Any], index: int) -> list[dict[str, Any]] | None:
    """The row's tool definitions, for the chat template: `tools` (schema 2: List(Json()),
    decoded by `datasets`; a JSON string as TRL also accepts) or a schema-1 `tools_json`."""
    tools = row.get("tools", row.get("tools_json"))
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError:
            raise SetupError(f"dataset row {index}: tools is a string that is not JSON") from None
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise SetupError(f"dataset row {index}: tools must be a list of function definitions, got {tools!r:.80}")
    return tools or None


def _sft_features(train_on: str) -> Any:
    """What `load_release` maps rows to: TRL's tool-calling layout, tools and calls as Json
    (one Arrow type for any tool schema; TRL and the chat template get the dicts back)."""
    from datasets import Features, Json, List, Value

    message = List({"role": Value("string"), "content": Value("string"), "tool_calls": List(Json())})
    turns = {"prompt": message, "completion": message} if train_on == "last_turn" else {"messages": message}
    return Features({**turns, "tools": List(Json())})


def fit_length(data: Any, ds: DatasetSection, max_length: int | None) -> Any:
    """`data` less its rows longer than `max_length` by their `student_tokens` (dataset.over_length:
    drop), as it is (truncate), or a SetupError (error); each way says how many there are."""
    if max_length is None or "student_tokens" not in data.column_names:
        return data
    import pyarrow.compute as pc

    over = pc.fill_null(pc.greater(data.data.column("student_tokens"), max_length), False)
    n = pc.sum(over).as_py() or 0
    if not n:
        return data
    what = (f"{n:,} of {len(data):,} rows of {ds.path} config {ds.config!r} are longer than training.max_length "
            f"{max_length} (student_tokens, the conversation as the chat template renders it)")  # fmt: skip
    if ds.over_length == "error":
        raise SetupError(f"{what}; raise training.max_length or set dataset.over_length: drop")
    if ds.over_length == "truncate":
        logger.warning("%s: TRL cuts them at max_length, reply end and stop token included (dataset.over_length: truncate)", what)
        return data
    logger.warning("%s: left out (dataset.over_length: drop)", what)
    return data.select(pc.indices_nonzero(pc.invert(over)).to_pylist())


def load_release(ds: DatasetSection, path: str, revision: str | None, max_length: int | None = None) -> Any:
    """Load the variant and keep what SFT needs: the conversation and its tool definitions
    (TRL's SFTTrainer passes a row's `tools` to the chat template); provenance and quality
    columns are dropped."""
    import datasets

    # datasets caches a local folder by its name, config and card, not by its files: two
    # different folders called `release` would share rows. Local folders are re-read.
    local = Path(path).is_dir()
    try:
        data = datasets.load_dataset(path, name=ds.config, revision=revision, split=ds.split,
                                     download_mode="force_redownload" if local else None)
    except ValueError as exc:  # a split the release does not have ("Unknown split …"), a bad slice
        what = f"dataset.split {ds.split!r}" if "split" in str(exc).lower() else f"dataset {ds.path} config {ds.config!r}"
        raise SetupError(f"{what}: {_first_sentence(exc)} (releases publish one split, train)") from None
    if "messages" not in data.column_names:
        if {"chosen", "rejected"} <= set(data.column_names):  # the release's `pairs` config
            raise SetupError(f"dataset.config {ds.config!r} of {ds.path} holds preference pairs (prompt / chosen / "
                             "rejected) for preference training, not chat rows for SFT; pick a chat config such as "
                             "answer or think_summary")
        raise SetupError(f"dataset {ds.path} config {ds.config!r} has no 'messages' column")
    data = fit_length(data, ds, max_length)
    if ds.max_rows is not None:
        data = data.select(range(min(ds.max_rows, len(data))))

    def convert(row: dict[str, Any], index: int) -> dict[str, Any]:
        messages = _clean_messages(row["messages"], index)
        tools = _row_tools(row, index)
        if ds.train_on == "last_turn":
            # prompt/completion form: TRL's completion mask ∩ the assistant mask = last reply only.
            return {"prompt": messages[:-1], "completion": messages[-1:], "tools": tools}
        return {"messages": messages, "tools": tools}

    return data.map(convert, with_indices=True, remove_columns=data.column_names, features=_sft_features(ds.train_on))


# --- model checks --------------------------------------------------------------------------
def _first_sentence(exc: BaseException) -> str:
    return " ".join(str(exc).split()).split(". ")[0][:300]


def check_model(recipe: Recipe) -> tuple[Any, Any]:
    """Model config and tokenizer (no weights): context length, EOS and PAD ids."""
    from transformers import AutoConfig, AutoTokenizer

    m = recipe.model
    try:
        config = AutoConfig.from_pretrained(m.name_or_path, revision=m.revision)
    except (OSError, ValueError) as exc:
        raise SetupError(
            f"model.name_or_path {m.name_or_path!r}: cannot read its config ({_first_sentence(exc)})"
        ) from None
    context = getattr(config, "max_position_embeddings", None)
    max_length = recipe.training.get("max_length", TRL_MAX_LENGTH)
    if context is not None and max_length is not None and max_length > context:
        raise SetupError(
            f"training.max_length {max_length} exceeds the model's context: {m.name_or_path} has "
            f"max_position_embeddings {context}"
        )
    tok_src = m.tokenizer or m.name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_src, revision=None if m.tokenizer else m.revision)
    except (OSError, ValueError) as exc:
        raise SetupError(f"tokenizer {tok_src!r}: cannot load ({_first_sentence(exc)})") from None
    vocab = tokenizer.get_vocab()
    if vocab.get(QWEN_EOS) != QWEN_EOS_ID or vocab.get(QWEN_PAD) != QWEN_PAD_ID:
        raise SetupError(
            f"tokenizer {tok_src!r} is not a Qwen2.5 tokenizer: expected {QWEN_EOS}={QWEN_EOS_ID} and "
            f"{QWEN_PAD}={QWEN_PAD_ID}"
        )
    # PAD must differ from EOS: a collator that masks pad ids would otherwise mask the stop token.
    tokenizer.pad_token = QWEN_PAD
    tokenizer.eos_token = QWEN_EOS
    if not tokenizer.chat_template:
        raise SetupError(f"tokenizer {tok_src!r} has no chat template to train against")
    return config, tokenizer


def align_stop_tokens(model: Any) -> None:
    """EOS <|im_end|> first in config and generation config; PAD stays <|endoftext|>."""
    model.config.eos_token_id = QWEN_EOS_ID
    model.config.pad_token_id = QWEN_PAD_ID
    gen = model.generation_config
    gen.eos_token_id = [QWEN_EOS_ID, QWEN_PAD_ID]
    gen.pad_token_id = QWEN_PAD_ID


def verify_saved(out_dir: Path) -> None:
    from transformers import AutoConfig, GenerationConfig

    gen = GenerationConfig.from_pretrained(out_dir)
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    cfg = AutoConfig.from_pretrained(out_dir)
    if QWEN_EOS_ID not in eos or cfg.eos_token_id != QWEN_EOS_ID or gen.pad_token_id == QWEN_EOS_ID:
        raise RuntimeError(f"saved model in {out_dir} would not stop at {QWEN_EOS}: eos {eos}, pad {gen.pad_token_id}")


# --- driver --------------------------------------------------------------------------------
def prepare(recipe: Recipe, workdir: Path) -> dict[str, Any]:
    """All checks that need no weights; returns what `build_trainer` needs."""
    path, revision = resolve_release(recipe.dataset, workdir)
    _, tokenizer = check_model(recipe)
    sft_config = to_sft_config(recipe)
    dataset = load_release(recipe.dataset, path, revision, recipe.training.get("max_length", TRL_MAX_LENGTH))
    original = tokenizer.chat_template
    training = training_chat_template(tokenizer, original)
    # The first rows, plus a few with tool definitions: the tool block and calls are checked too.
    import pyarrow.compute as pc

    n_tools = pc.fill_null(pc.list_value_length(dataset.data.column("tools")), 0)
    with_tools = pc.indices_nonzero(pc.greater(n_tools, 0)).to_pylist()
    head = list(range(min(recipe.dataset.template_check_rows, len(dataset))))
    sample, tools = [], []
    for row in dataset.select(head + [i for i in with_tools if i >= len(head)][:4]):
        sample.append(row["prompt"] + row["completion"] if "prompt" in row else row["messages"])
        tools.append(row["tools"])
    check_training_template(tokenizer, original, training, sample, tools)
    return {
        "sft_config": sft_config,
        "tokenizer": tokenizer,
        "dataset": dataset,
        "original_template": original,
        "training_template": training,
    }


def build_trainer(recipe: Recipe, prepared: dict[str, Any]) -> Any:
    from trl import SFTTrainer

    tokenizer = prepared["tokenizer"]
    # A template that already has generation markers makes TRL use it as is (instead of
    # swapping in its own, which would also train the "\n" after <|im_end|>).
    tokenizer.chat_template = prepared["training_template"]
    m = recipe.model
    sft_config = prepared["sft_config"]
    sft_config.model_init_kwargs = {
        "revision": m.revision,
        "dtype": m.dtype,
        **({"attn_implementation": m.attn_implementation} if m.attn_implementation else {}),
    }
    trainer = SFTTrainer(
        model=m.name_or_path,
        args=sft_config,
        train_dataset=prepared["dataset"],
        processing_class=tokenizer,
    )
    align_stop_tokens(trainer.model)
    return trainer


def save(trainer: Any, prepared: dict[str, Any], out_dir: Path) -> None:
    tokenizer = prepared["tokenizer"]
    align_stop_tokens(trainer.model)
    # Ship the model's own template: the markers matter only for training.
    tokenizer.chat_template = prepared["original_template"]
    if getattr(trainer, "is_fsdp_enabled", False):
        # Trainer.save_model writes nothing for SHARDED_STATE_DICT (used for fast per-epoch
        # checkpoints); the final model must be one loadable HF checkpoint.
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(out_dir))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out_dir))
        verify_saved(out_dir)


def run(recipe: Recipe, dry_run: bool = False) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="sft-release-"))
    try:
        prepared = prepare(recipe, workdir)
        out_dir = Path(prepared["sft_config"].output_dir)
        if dry_run:
            print(json.dumps({"ok": True, "rows": len(prepared["dataset"]), "output_dir": str(out_dir)}))
            return out_dir
        trainer = build_trainer(recipe, prepared)
        trainer.train()
        save(trainer, prepared, out_dir)
        return out_dir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="training recipe YAML (recipes/train/*.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set training.learning_rate=1e-5 (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="run every check, load no weights, train nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    try:
        recipe = load_recipe(args.config, args.overrides)
        out_dir = run(recipe, dry_run=args.dry_run)
    except (ConfigError, SetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.dry_run:
        logger.info("model written to %s", out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
