"""`student_tokens` is the conversation's length as the student is trained on it: the student
tokenizer's chat template (Qwen2.5's default system prompt, its tool block) rendered and counted.
Before, the turns' texts were counted with 5 tokens a message, 20-21 tokens short on every row
without a system turn and up to ~250 short on tool-use rows: a row under `student.max_tokens` by
that count could still be cut at the trainer's `max_length`, losing its reply's end and stop token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builder.chat_length import conversation_tokens, prompt_tokens
from builder.tokens import count_tokens, hf_tokenizer_dir

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Météo d'une ville",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}}


@pytest.fixture(scope="module")
def tok() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(hf_tokenizer_dir("qwen2.5")))


def _real(tok: Any, messages: list[dict[str, Any]], tools: list[Any] | None) -> int:
    msgs = [{k: v for k, v in m.items() if v is not None} for m in messages]
    return len(tok.apply_chat_template(msgs, tools=tools or None, tokenize=True, return_dict=False))


def _prompt(messages: list[dict[str, Any]], tools: list[Any] | None = None) -> dict[str, Any]:
    """A prompt row as the variants stage reads it (tool calls and tools as JSON text)."""
    stored = [{**m, "tool_calls": [json.dumps(c) for c in m["tool_calls"]] if m.get("tool_calls") else None}
              for m in messages]
    return {"messages": stored, "tools_json": json.dumps(tools) if tools else None}


CASES = [
    ([{"role": "user", "content": "What is 2+2?"}], None, "4", None),
    ([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "你好"}], None, "你好！有什么可以帮你？", None),
    ([{"role": "user", "content": "Weather in Zürich?"}], TOOLS, "", [CALL]),
    ([{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [CALL]},
      {"role": "tool", "content": "{\"temp\": 3}"}], TOOLS, "It is 3 °C.", None),
    ([{"role": "user", "content": "indent"}], None, "\n\n    def f():\n        pass", None),
    ([{"role": "user", "content": "q"}], None, " leading space", None),
]


@pytest.mark.parametrize("messages,tools,reply,calls", CASES)
def test_counts_equal_the_rendered_template(tok: Any, messages: list[dict[str, Any]], tools: list[Any] | None,
                                            reply: str, calls: list[Any] | None) -> None:
    p = _prompt(messages, tools)
    (p_tok,) = prompt_tokens("qwen2.5", [p]) or [None]
    assert p_tok == _real(tok, messages, tools) + len(tok("<|im_start|>assistant\n")["input_ids"])
    (n,) = count_tokens("qwen2.5", [reply])
    (total,) = conversation_tokens("qwen2.5", [p], [(reply, [json.dumps(c) for c in calls] if calls else None)],
                                   [p_tok], [n])
    assert total == _real(tok, [*messages, {"role": "assistant", "content": reply, "tool_calls": calls}], tools)


def test_every_published_row_counts_as_the_trainer_renders_it(sample_release: Path, tmp_path: Path, tok: Any) -> None:
    import datasets

    configs = sorted(p.name for p in (sample_release / "data").iterdir())
    assert {"answer", "original", "full"} <= set(configs)
    for config in configs:
        ds = datasets.load_dataset(str(sample_release), config, cache_dir=str(tmp_path / "ds"))["train"]
        got = [r["student_tokens"] for r in ds]
        want = [_real(tok, r["messages"], r["tools"]) for r in ds]
        bad = [(r["prompt_id"], g, w) for r, g, w in zip(ds, got, want) if g != w]
        assert not bad, (config, len(bad), bad[:3])


def test_a_template_that_edits_replies_is_rendered_whole() -> None:
    """DeepSeek-R1's template drops a reply's thinking (up to "</think>"): its conversations are
    rendered and counted whole, never prompt + reply, and equal transformers' count."""
    from transformers import AutoTokenizer

    from builder.chat_length import plain_turns_append

    tok = AutoTokenizer.from_pretrained(str(hf_tokenizer_dir("deepseek-r1")))
    assert plain_turns_append("qwen2.5") and not plain_turns_append("deepseek-r1")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
    p = _prompt(messages)
    (p_tok,) = prompt_tokens("deepseek-r1", [p]) or [None]
    for reply in ("4", "<think>\nAdd.\n</think>\n\n4"):
        (n,) = count_tokens("deepseek-r1", [reply])
        (total,) = conversation_tokens("deepseek-r1", [p], [(reply, None)], [p_tok], [n])
        assert total == _real(tok, [*messages, {"role": "assistant", "content": reply}], None), reply
