"""Bad input to train_reference/sft.py is caught before any weights load: one line on stderr,
exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from train_reference import sft  # noqa: E402
from train_reference.tiny_model import build_tiny_qwen2, build_tiny_release  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The GSM8K slice the repo ships for the sample build (MIT; data/sample/ATTRIBUTION.md).
GSM8K = ROOT / "data" / "sample" / "gsm8k_train.jsonl"

RECIPE = """\
model:
  name_or_path: {model}
  revision: null
  dtype: float32
dataset:
  path: {release}
  config: answer
global_batch_size: 4
training:
  output_dir: {out}
  per_device_train_batch_size: 4
  max_length: 1024
  bf16: false
  report_to: none
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd, check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from builder.tokens import hf_tokenizer_dir

    root = tmp_path_factory.mktemp("sft-errors")
    model = build_tiny_qwen2(
        root / "tiny",
        hf_tokenizer_dir("qwen2.5"),
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        num_kv_heads=1,
        intermediate_size=32,
        max_position_embeddings=2048,
    )
    release = build_tiny_release(root / "release", GSM8K, variants=("answer", "original"), n_rows=8)
    # A local clone of a release repository, tagged like a published version.
    _git(release, "init", "-q")
    _git(release, "add", "-A")
    _git(release, "commit", "-q", "-m", "release")
    _git(release, "tag", "v0.1.0")
    recipe = root / "recipe.yaml"
    recipe.write_text(RECIPE.format(model=model, release=release, out=root / "out"))
    return {"recipe": recipe, "root": root}


def _fails_with(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    assert sft.main(argv) == 2
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_dry_run_passes_on_good_input_and_existing_tag(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert sft.main(["--config", str(setup["recipe"]), "--dry-run", "--set", "dataset.revision=v0.1.0"]) == 0
    assert '"ok": true' in capsys.readouterr().out


def test_release_without_the_config(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _fails_with(
        capsys,
        ["--config", str(setup["recipe"]), "--dry-run", "--set", "dataset.config=think_summary"],
        "'think_summary'",
        "answer, original",
    )


@pytest.fixture
def quiet_loads() -> Any:
    """datasets' own "Generating train split" bars off (they share stderr with the error line)."""
    import datasets

    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


def test_a_split_the_release_does_not_have(setup: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                           quiet_loads: None) -> None:
    """A release has one split: `dataset.split: validation` ended in datasets' traceback."""
    line = _fails_with(
        capsys,
        ["--config", str(setup["recipe"]), "--dry-run", "--set", "dataset.split=validation"],
        "dataset.split 'validation'",
        "train",
    )
    assert "Unknown split" in line


def test_the_pairs_config_is_refused_as_not_sft_rows(setup: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str], quiet_loads: None) -> None:
    """A release's `pairs` config (prompt / chosen / rejected) is named as preference pairs, not
    as a release missing a column."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    release = tmp_path / "release"
    shutil.copytree(setup["recipe"].parent / "release", release, ignore=shutil.ignore_patterns(".git"))
    turn = [{"role": "user", "content": "2+2?"}]
    pairs = pa.table({"prompt_id": ["p1"], "prompt": [turn], "chosen": [[{"role": "assistant", "content": "4"}]],
                      "rejected": [[{"role": "assistant", "content": "5"}]], "rejection_reason": ["verified_fail"]})
    (release / "data" / "pairs").mkdir(parents=True)
    pq.write_table(pairs, release / "data" / "pairs" / "train-00000-of-00001.parquet")
    readme = (release / "README.md").read_text()
    _, meta, body = readme.split("---", 2)
    front = yaml.safe_load(meta)
    front["configs"].append({"config_name": "pairs", "data_files": [{"split": "train", "path": "data/pairs/train-*.parquet"}]})
    front.pop("dataset_info", None)
    (release / "README.md").write_text(f"---\n{yaml.safe_dump(front)}---{body}")
    _fails_with(
        capsys,
        ["--config", str(setup["recipe"]), "--dry-run", "--set", f"dataset.path={release}", "--set", "dataset.config=pairs"],
        "dataset.config 'pairs'",
        "preference pairs",
    )


def test_revision_that_does_not_exist(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _fails_with(
        capsys,
        ["--config", str(setup["recipe"]), "--dry-run", "--set", "dataset.revision=v9.9.9"],
        "'v9.9.9' does not exist",
        "v0.1.0",
    )


def test_unknown_key_names_its_replacement(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _fails_with(
        capsys,
        ["--config", str(setup["recipe"]), "--set", "training.warmup_ratio=0.05"],
        "'warmup_ratio'",
        "warmup_steps",
    )


def test_max_length_above_model_context(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _fails_with(
        capsys,
        ["--config", str(setup["recipe"]), "--set", "training.max_length=16384"],
        "16384",
        "max_position_embeddings 2048",
    )


def test_hub_dataset_offline_is_one_line(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _fails_with(
        capsys,
        ["--config", str(setup["recipe"]), "--dry-run", "--set", "dataset.path=no-org/no-such-release"],
        "no-org/no-such-release",
    )


def test_cli_exit_status_and_no_traceback(setup: dict[str, Path]) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train_reference" / "sft.py"),
            "--config",
            str(setup["recipe"]),
            "--set",
            "training.max_seq_length=4096",
        ],
        capture_output=True,
        text=True,
        cwd=setup["root"],
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("(TRL renamed max_seq_length to max_length)")


def _qwen_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from builder.tokens import hf_tokenizer_dir

    return AutoTokenizer.from_pretrained(hf_tokenizer_dir("qwen2.5"))


CONVERSATION = [
    {"role": "user", "content": "What is 6 x 7?"},
    {"role": "assistant", "content": "42"},
]


def test_training_template_matches_qwen25_and_masks_reply_plus_im_end() -> None:
    tok = _qwen_tokenizer()
    original = tok.chat_template
    assert (
        sft.default_system_prompt(tok, original)
        == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    )
    training = sft.training_chat_template(tok, original)
    sft.check_training_template(tok, original, training, [CONVERSATION])
    out = tok.apply_chat_template(
        CONVERSATION, chat_template=training, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert masked == [*tok("42", add_special_tokens=False)["input_ids"], 151645]


def test_template_without_generation_markers_is_refused() -> None:
    tok = _qwen_tokenizer()
    with pytest.raises(sft.SetupError, match="all zeros"):
        sft.check_training_template(tok, tok.chat_template, tok.chat_template, [CONVERSATION])


def test_template_that_renders_differently_is_refused() -> None:
    tok = _qwen_tokenizer()
    # Plain ChatML (no default system turn), as some tokenizer packages ship: not Qwen2.5's text.
    chatml = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    )
    training = sft.training_chat_template(tok, tok.chat_template)
    with pytest.raises(sft.SetupError, match="renders probe 0 differently"):
        sft.check_training_template(tok, chatml, training, [CONVERSATION])
