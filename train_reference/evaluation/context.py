"""How long a context the vLLM engine gets: the longest conversation this run builds.

MT-Bench's second turn carries the first question, the first answer (up to the generation
cap) and the second question, then generates up to the cap again. lm-eval cuts a prompt
that does not fit from the left, so a window sized as "cap + a fixed prompt allowance" lost
the start of long second-turn conversations (the question being answered) without a word.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from train_reference.evaluation.config import BenchmarkConfig, EvalConfig, EvalUserError

log = logging.getLogger(__name__)

# lm-eval builds the automatic benchmarks' prompts itself (few-shot GSM8K/MMLU are the
# longest, ~1-2k tokens): room for them, as before.
LMEVAL_PROMPT_ROOM = 4096
# An answer re-read inside the chat template may tokenize a few tokens longer than it was
# generated, and lm-eval may add a BOS token.
SLACK = 64

Conversation = list[dict[str, str]]


def conversations(b: BenchmarkConfig) -> list[Conversation]:
    """The prompt of every request the judge benchmark makes, answers left empty (needed_len counts
    each answer as the full generation cap)."""
    path = b.resolved_files()["questions"]
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()][: b.limit]
    if b.name == "mt_bench":
        return [
            [{"role": "user", "content": r["turns"][0]}, {"role": "assistant", "content": ""},
             {"role": "user", "content": r["turns"][1]}]
            for r in rows
        ]  # fmt: skip
    return [[{"role": "user", "content": r["question"]}] for r in rows]


def needed_len(benches: list[BenchmarkConfig], cfg: EvalConfig, count: Callable[[Conversation], int]) -> int:
    """Prompt plus generation of the longest request of any benchmark in the run; `count`
    gives a conversation's prompt tokens with the model's chat template."""
    need = 0
    for b in benches:
        cap = b.max_new_tokens or cfg.max_new_tokens
        if b.kind == "lmeval":
            need = max(need, LMEVAL_PROMPT_ROOM + cap)
            continue
        answers = 2 if b.name == "mt_bench" else 1  # turn 2 holds answer 1 and generates answer 2
        longest = max((count(c) for c in conversations(b)), default=0)
        need = max(need, longest + answers * cap + SLACK)
    return need


def max_model_len(need: int, positions: int | None, benches: list[BenchmarkConfig], cfg: EvalConfig) -> int:
    """`need`, capped by the model's position embeddings (vLLM refuses a longer window);
    a generation cap that leaves no room for a prompt is a user error."""
    if positions is None or need <= positions:
        return need
    for b in benches:
        cap = b.max_new_tokens or cfg.max_new_tokens
        if cap >= positions:
            where = f"benchmarks[{b.name}].max_new_tokens" if b.max_new_tokens else "--max-new-tokens or the recipe's max_new_tokens"
            raise EvalUserError(f"{b.name}: a generation cap of {cap} tokens does not fit the model's {positions} "
                                f"positions; lower {where}")  # fmt: skip
    names = ", ".join(b.name for b in benches)
    log.warning("room for the longest request of %s (%d tokens) exceeds the model's %d positions; a prompt "
                "that does not fit is cut from the left (MT-Bench counts them: contexts_cut)", names, need, positions)  # fmt: skip
    return positions


def model_positions(config: Any) -> int | None:
    """max_position_embeddings of a transformers config (the text model's, if multimodal)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def vllm_max_model_len(model: str, benches: list[BenchmarkConfig], cfg: EvalConfig) -> int:
    """The engine's context length for this run, counted with the model's own tokenizer
    and chat template and capped by its config."""
    from transformers import AutoConfig, AutoTokenizer

    remote = bool(cfg.vllm_args.get("trust_remote_code", False))
    tok = AutoTokenizer.from_pretrained(str(cfg.vllm_args.get("tokenizer", model)), trust_remote_code=remote)

    def count(conv: Conversation) -> int:  # text then tokens, as lm-eval encodes a chat prompt
        text = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    need = needed_len(benches, cfg, count)
    positions = model_positions(AutoConfig.from_pretrained(model, trust_remote_code=remote))
    return max_model_len(need, positions, benches, cfg)
