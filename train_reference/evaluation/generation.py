"""Chat generations for the judge benchmarks, through the same lm-eval LM (HF or vLLM)."""

from __future__ import annotations

from typing import Any


def chat_generate(
    lm: Any,
    conversations: list[list[dict[str, str]]],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
) -> list[str]:
    """One reply per conversation. Using the LM's own chat template and generate_until
    keeps one code path for both backends and the same decoding as the lm-eval tasks."""
    from lm_eval.api.instance import Instance

    gen: dict[str, Any] = {"until": [], "max_gen_toks": max_new_tokens}
    if temperature > 0:
        gen.update(do_sample=True, temperature=temperature, top_p=top_p)
    else:
        gen.update(do_sample=False, temperature=0.0)
    requests = [
        Instance(
            request_type="generate_until",
            doc={},
            arguments=(lm.apply_chat_template(conv, add_generation_prompt=True), dict(gen)),
            idx=i,
        )
        for i, conv in enumerate(conversations)
    ]
    return [str(r) for r in lm.generate_until(requests, disable_tqdm=True)]


def contexts_cut(lm: Any, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> int | None:
    """How many of these prompts lm-eval cuts from the left to leave room for
    max_new_tokens (its HF and vLLM backends both do, with only a log warning); None for a
    served model, whose server applies the template and the limit itself."""
    if getattr(lm, "tokenizer", None) is None or not hasattr(lm, "max_length"):
        return None
    room = int(lm.max_length) - max_new_tokens
    prompts = [lm.apply_chat_template(conv, add_generation_prompt=True) for conv in conversations]
    return sum(len(lm.tok_encode(p)) > room for p in prompts)
