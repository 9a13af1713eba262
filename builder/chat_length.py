"""A conversation's length as the student is trained on it: rendered with the student
tokenizer's own chat template, then counted with builder/tokens.py.

Counting the turns' texts alone misses what the template adds: Qwen2.5's default system prompt
("You are Qwen, created by Alibaba Cloud…", 21 tokens with its markers) on every conversation
without a system turn, and the tool block (its instructions and each definition as JSON) on
tool-use rows. A trainer (train_reference/sft.py, TRL) formats rows with that template, so a row
counted without them could pass `student.max_tokens` and still be cut at `max_length` — losing
the end of its reply and its stop token.

The template is rendered as `transformers.apply_chat_template` renders it (a sandboxed Jinja
environment, trim_blocks / lstrip_blocks, a `tojson` that keeps non-ASCII), without importing
transformers; tests/test_chat_length.py checks the counts against transformers itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from typing import Any

from builder.tokens import SOURCES, TIKTOKEN_PROVEN, TokenizerFilesError, count_tokens, source_files

Render = Callable[..., str]

# Names whose count of `head + text` is count(head) + count(text) when `joins_additively` says so
# (tests/test_tokens_additive.py proves it on the corpus against `tokenizers`): a head ending in a
# line break ends a pre-token there (every pattern alternative that can hold a line break ends at
# one unless more whitespace follows), no added token holds whitespace, and NFC composes nothing
# onto a line break.
ADDITIVE_PROVEN: frozenset[str] = TIKTOKEN_PROVEN  # builder/tokens.py's tiktoken patterns


def joins_additively(name: str, head: str, text: str) -> bool:
    """Whether count(head + text) == count(head) + count(text) for `name`, by the rule above."""
    if not head:
        return True
    return name in ADDITIVE_PROVEN and head.endswith("\n") and text[:1] != "" and not text[0].isspace()


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _token_text(value: Any) -> str | None:
    """A tokenizer_config special token: a string or an AddedToken mapping."""
    return value.get("content") if isinstance(value, dict) else value


@cache
def template(name: str) -> Render | None:
    """`render(messages, tools=None, add_generation_prompt=False) -> str` for tokenizer `name`;
    None when its files carry no chat template."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    cfg = json.loads(source_files(name)["tokenizer_config.json"].read_text(encoding="utf-8"))
    pinned = SOURCES[name]
    if pinned.chat_template is not None:  # the derivation's own template, pinned by its sha256
        if hashlib.sha256(pinned.chat_template.encode()).hexdigest() != pinned.chat_template_sha256:
            raise TokenizerFilesError(f"{name}: chat template differs from its pinned sha256; restore it in builder/tokens.py")
        cfg["chat_template"] = pinned.chat_template
    source = cfg.get("chat_template")
    if isinstance(source, list):  # named templates: the default one
        source = next((t.get("template") for t in source if t.get("name") == "default"), None)
    if not isinstance(source, str):
        return None

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = raise_exception
    compiled = env.from_string(source)
    specials = {k: _token_text(cfg.get(k)) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}

    def render(messages: list[dict[str, Any]], tools: list[Any] | None = None, add_generation_prompt: bool = False) -> str:
        return compiled.render(messages=messages, tools=tools, add_generation_prompt=add_generation_prompt, **specials)

    return render


def _loads(value: Any) -> Any:
    """A Json cell as stored in our tables (JSON text) → the object `datasets` would decode."""
    return json.loads(value) if isinstance(value, str) else value


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our message dicts as a trainer passes them to the template: tool calls decoded, keys
    without a value left out (a template testing `'tool_calls' in message` sees none)."""
    out = []
    for m in messages:
        turn = {k: v for k, v in m.items() if v is not None and k != "tool_calls"}
        if m.get("tool_calls"):
            turn["tool_calls"] = [_loads(c) for c in m["tool_calls"]]
        out.append(turn)
    return out


def tools_of(tools_json: str | None) -> list[Any] | None:
    tools = json.loads(tools_json) if tools_json else None
    return tools or None


@cache
def turn_end(name: str) -> tuple[str, int] | None:
    """What the template writes after an assistant reply's text, and its tokens (Qwen2.5:
    "<|im_end|>\\n", 2); None when it does not render a reply as generation prompt + text + end."""
    render = template(name)
    if render is None:
        return None
    head = render([{"role": "user", "content": "q"}], add_generation_prompt=True)
    full = render([{"role": "user", "content": "q"}, {"role": "assistant", "content": "A"}])
    if not full.startswith(head + "A"):
        return None
    tail = full[len(head) + 1:]
    return tail, count_tokens(name, [tail])[0]


def prompt_tokens(name: str, prompts: list[dict[str, Any]]) -> list[int] | None:
    """Tokens of each prompt rendered up to the reply (generation prompt included); None when
    `name` has no usable template."""
    render = template(name)
    if render is None or turn_end(name) is None:
        return None
    return count_tokens(name, [render(chat_messages(p["messages"]), tools_of(p.get("tools_json")),
                                      add_generation_prompt=True) for p in prompts])


# Assistant texts a template might edit or fold into its markers: if every one renders as the
# generation prompt + the text + the fixed end, after a plain prompt and after a tool result, the
# template never touches a reply's text and plain turns are counted without rendering them.
_PROBES = ("A", "<think>\nx\n</think>\n\ny", "a</think>b", "x\n\n", "<tool_call>\n{}\n</tool_call>", "é")
_PROBE_PROMPTS = ([{"role": "user", "content": "q"}],
                  [{"role": "user", "content": "q"}, {"role": "assistant", "content": "c"}, {"role": "tool", "content": "r"}])


@cache
def plain_turns_append(name: str) -> bool:
    """Whether `name`'s template renders a reply without tool calls as generation prompt + text + end
    (and the generation prompt ends in a line break), whatever the text: then a conversation's count
    is its prompt's + its reply's + the end's wherever `joins_additively` holds."""
    render, end = template(name), turn_end(name)
    if render is None or end is None:
        return False
    for msgs in _PROBE_PROMPTS:
        head = render(msgs, add_generation_prompt=True)
        if not head.endswith("\n") or any(render([*msgs, {"role": "assistant", "content": p}]) != head + p + end[0]
                                          for p in _PROBES):  # fmt: skip
            return False
    return True


def conversation_tokens(name: str, prompts: list[dict[str, Any]], turns: list[tuple[str, list[Any] | None] | None],
                        prompt_counts: list[int], turn_counts: list[int]) -> list[int | None]:
    """Tokens of each whole conversation (prompt + its final assistant turn (text, tool calls)) as
    the template renders it; None where a turn is None. A reply without tool calls that joins the
    generation prompt additively (it does not start with whitespace) under a template that
    appends replies as they are (`plain_turns_append`) is the prompt's count + the text's + the
    end's; any other (tool calls, a template that edits replies) is rendered and counted whole."""
    render, end = template(name), turn_end(name)
    assert render is not None and end is not None, "prompt_tokens returned counts for this tokenizer"
    plain = plain_turns_append(name)
    out: list[int | None] = [None] * len(turns)
    whole: dict[int, str] = {}
    for i, (p, turn) in enumerate(zip(prompts, turns)):
        if turn is None:
            continue
        text, calls = turn
        if plain and not calls and joins_additively(name, "\n", text):
            out[i] = prompt_counts[i] + turn_counts[i] + end[1]
            continue
        reply: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            reply["tool_calls"] = [_loads(c) for c in calls]
        whole[i] = render([*chat_messages(p["messages"]), reply], tools_of(p.get("tools_json")))
    for i, n in zip(whole, count_tokens(name, list(whole.values()))):
        out[i] = n
    return out
