"""The Qwen2.5 training chat template and its checks against the model's own template.

Qwen2.5's template has no {% generation %} markers, so `return_assistant_tokens_mask`
returns all zeros and assistant-only loss would silently train on nothing. The training
template renders the same text as Qwen2.5's for system/user/assistant/tool turns, tool
definitions (`tools=`, listed in the system turn) and assistant tool calls, and wraps each
assistant reply — its text, its <tool_call> blocks *and its <|im_end|>* — in generation
markers: the model is trained to emit the calls and the stop token, while the
"<|im_start|>assistant\\n" header (the generation prompt) and the "\\n" after <|im_end|> stay
out of the loss. DEFAULT_SYSTEM is filled in from the model's own template.
"""

from __future__ import annotations

import json
from typing import Any

from train_reference.config import QWEN_EOS, QWEN_EOS_ID

Messages = list[dict[str, Any]]
Tools = list[dict[str, Any]] | None


class SetupError(Exception):
    """Bad input found before training (release, revision, model, template): one line, exit 2."""


_TOOLS_HEAD = (
    "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>"
)
_TOOLS_TAIL = (
    "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": '
    "<args-json-object>}\\n</tool_call><|im_end|>\\n"
)

_TRAINING_TEMPLATE = """\
{%- set default_system = DEFAULT_SYSTEM %}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content }}
    {%- elif default_system is not none %}
        {{- default_system }}
    {%- endif %}
    {{- "TOOLS_HEAD" }}
    {%- for tool in tools %}
        {{- '\\n' }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "TOOLS_TAIL" }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- elif default_system is not none %}
    {{- '<|im_start|>system\\n' + default_system + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'assistant' %}
        {{- '<|im_start|>assistant\\n' }}
        {%- generation %}
            {%- if not message.tool_calls %}
                {{- message.content }}
            {%- else %}
                {%- if message.content %}
                    {{- message.content + '\\n' }}
                {%- endif %}
                {%- for tool_call in message.tool_calls %}
                    {%- if tool_call.function is defined %}
                        {%- set tool_call = tool_call.function %}
                    {%- endif %}
                    {%- if not loop.first %}
                        {{- '\\n' }}
                    {%- endif %}
                    {{- '<tool_call>\\n{"name": "' + tool_call.name + '", "arguments": ' }}
                    {{- tool_call.arguments | tojson }}
                    {{- '}\\n</tool_call>' }}
                {%- endfor %}
            {%- endif %}
            {{- '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.index0 == 0 or messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- elif message.role == 'user' or (message.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}""".replace("TOOLS_HEAD", _TOOLS_HEAD).replace("TOOLS_TAIL", _TOOLS_TAIL)

_PROBE_TOOLS: list[dict[str, Any]] = [{
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather of a city.",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
}]
_PROBE_CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}}

# (messages, tools): plain turns, a system turn, and a tool round trip with two calls.
_PROBES: list[tuple[Messages, Tools]] = [
    ([{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], None),
    (
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Name a prime.\n\nOnly one."},
            {"role": "assistant", "content": "7\n"},
        ],
        None,
    ),
    (
        [
            {"role": "user", "content": "Weather in Zürich and Bern?"},
            {"role": "assistant", "content": "", "tool_calls": [_PROBE_CALL, _PROBE_CALL]},
            {"role": "tool", "content": "8°C, rain"},
            {"role": "tool", "content": "6°C, cloudy"},
            {"role": "assistant", "content": "Checking once more.", "tool_calls": [_PROBE_CALL]},
            {"role": "tool", "content": "8°C, rain"},
            {"role": "assistant", "content": "Zürich 8°C and rain, Bern 6°C and cloudy."},
        ],
        _PROBE_TOOLS,
    ),
]


def default_system_prompt(tokenizer: Any, original: str) -> str | None:
    """The system turn the model's template inserts when a conversation has none."""
    probe = "\u2063probe\u2063"
    text = tokenizer.apply_chat_template([{"role": "user", "content": probe}], chat_template=original, tokenize=False)
    head = "<|im_start|>system\n"
    tail = "<|im_end|>\n<|im_start|>user\n" + probe
    if text.startswith(head) and text.endswith(tail + "<|im_end|>\n"):
        return text[len(head) : text.index(tail)]
    return None


def training_chat_template(tokenizer: Any, original: str) -> str:
    system = default_system_prompt(tokenizer, original)
    # json.dumps gives a double-quoted literal with backslash escapes, which Jinja reads alike.
    return _TRAINING_TEMPLATE.replace("DEFAULT_SYSTEM", "none" if system is None else json.dumps(system))


def render(tokenizer: Any, messages: Messages, tools: Tools, template: str, **kwargs: Any) -> Any:
    """apply_chat_template with the row's tools (None: no tool block, as TRL passes it)."""
    return tokenizer.apply_chat_template(messages, tools=tools or None, chat_template=template, **kwargs)


def check_training_template(
    tokenizer: Any, original: str, training: str, conversations: list[Messages], tools: list[Tools] | None = None
) -> None:
    """Same text as the model's template (tool definitions and calls included), and an
    assistant mask whose every span ends on <|im_end|>. `tools[i]` goes with `conversations[i]`."""
    rows = list(zip(conversations, tools or [None] * len(conversations)))
    for i, (messages, row_tools) in enumerate([*_PROBES, *rows]):
        want = render(tokenizer, messages, row_tools, original, tokenize=False)
        got = render(tokenizer, messages, row_tools, training, tokenize=False)
        if want != got:
            where = f"probe {i}" if i < len(_PROBES) else f"dataset row {i - len(_PROBES)}"
            at = next((k for k, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
            raise SetupError(
                f"chat template check: the training template renders {where} differently from the model's "
                f"template at character {at} ({want[at : at + 40]!r} vs {got[at : at + 40]!r}); "
                "the model's template is not Qwen2.5's — pass model.tokenizer pointing at a Qwen2.5 tokenizer"
            )
    for i, (messages, row_tools) in enumerate([*_PROBES, *rows[:4]]):
        out = render(tokenizer, messages, row_tools, training, tokenize=True, return_dict=True,
                     return_assistant_tokens_mask=True)
        ids, mask = out["input_ids"], out["assistant_masks"]
        if not any(mask):
            raise SetupError(
                "assistant mask is all zeros: the chat template has no {% generation %} markers the tokenizer "
                "understands, so assistant-only loss would train on nothing"
            )
        n_turns = sum(m["role"] == "assistant" for m in messages)
        ends = [k for k in range(len(ids)) if mask[k] and (k + 1 == len(ids) or not mask[k + 1])]
        if len(ends) != n_turns or any(ids[k] != QWEN_EOS_ID for k in ends):
            raise SetupError(
                f"assistant mask check (conversation {i}): every assistant span must end on {QWEN_EOS} "
                f"(id {QWEN_EOS_ID}); got span ends {[ids[k] for k in ends]}"
            )
