"""Apply a source's field mapping to a raw row: → a prompt record or a reason it can't be one."""

from __future__ import annotations

import json
from typing import Any

import orjson
import regex

from builder.config.sources import SourceConfig
from builder.rows import json_text

ROLES = {"system", "user", "assistant", "tool"}
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "tool": "tool", "function_call": "assistant", "observation": "tool",
                  "function": "tool"}


class RowProblem(Exception):
    """The row cannot become a prompt; `code` goes in the ledger's reason column."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


_MISSING = object()


def get_path(row: dict[str, Any], path: str) -> Any:
    """Dotted lookup (`info.answer`, `messages.0.content`); _MISSING when absent."""
    if "." not in path and type(row) is dict:  # the usual top-level field, a dict lookup
        return row.get(path, _MISSING)
    node: Any = row
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _text(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        # A parquet/Arrow `binary` column: text stored as bytes is still text when it
        # decodes (strict UTF-8 also refuses surrogates); anything else is not a prompt.
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as e:
            raise RowProblem("not_text", f"field `{field}` holds binary data, not UTF-8 text (byte {e.start}); "
                                         "store the column as a string") from None
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        # OpenAI typed content parts: keep text parts; a reasoning part is not prompt text.
        # (LLaMA-Factory writes the text under "value" instead of "text".)
        return "".join(str(p.get("text", p.get("value", ""))) for p in value if p.get("type", "text") == "text")
    raise RowProblem("wrong_type", f"field `{field}` is a {type(value).__name__}, expected text")


def _as_json_string(value: Any) -> str | None:
    if value is None or value is _MISSING:
        return None
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as e:  # nested past orjson's limit, bytes, lone surrogates…
        raise RowProblem("not_serializable", f"a mapped field cannot be stored as JSON ({e})") from None


def _json_value(value: Any, code: str, where: str) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise RowProblem(code, f"{where} is a string that is not JSON") from None
    return value


def _tool_call(call: Any, where: str) -> str:
    """One tool call in TRL's shape, as JSON text: {"type": "function", "function": {"name",
    "arguments": {...}}} (+ "id" when given). Read from OpenAI's `tool_calls` items (arguments
    a JSON string), bare {"name", "arguments"} objects (LLaMA-Factory, ShareGPT function_call)."""
    call = _json_value(call, "bad_tool_call", where)
    if not isinstance(call, dict):
        raise RowProblem("bad_tool_call", f"{where} is a {type(call).__name__}, expected an object")
    fn = call["function"] if isinstance(call.get("function"), dict) else call
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise RowProblem("bad_tool_call", f"{where} has no function name")
    args = _json_value(fn.get("arguments", {}), "bad_tool_call", f"{where}.arguments")
    if not isinstance(args, dict):
        raise RowProblem("bad_tool_call", f"{where}.arguments is a {type(args).__name__}, expected an object")
    out: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": args}}
    if isinstance(call.get("id"), str):
        out["id"] = call["id"]
    return json_text(out)


def _tool_calls(m: dict[str, Any], sharegpt_call: bool, where: str) -> list[str] | None:
    """A turn's tool calls: OpenAI `tool_calls`, typed `tool_call` content parts, or a ShareGPT
    `function_call` turn (its value is the call). None when the turn calls nothing."""
    if sharegpt_call:
        value = _json_value(m.get("value"), "bad_tool_call", where)
        calls = value if isinstance(value, list) else [value]
    elif m.get("tool_calls"):
        calls = m["tool_calls"] if isinstance(m["tool_calls"], list) else [m["tool_calls"]]
    elif isinstance(m.get("content"), list):
        calls = [p.get("value", p.get("text")) for p in m["content"]
                 if isinstance(p, dict) and p.get("type") in ("tool_call", "function_call")]
    else:
        calls = []
    return [_tool_call(c, f"{where}.tool_calls[{k}]") for k, c in enumerate(calls)] or None


def _tools_json(value: Any, field: str) -> str | None:
    """Tool definitions in TRL's / OpenAI's shape, canonical JSON text of the list: bare
    function specs ({"name", "parameters"}) are wrapped as {"type": "function", "function": …}."""
    if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
        return None
    value = _json_value(value, "bad_tools", f"field `{field}`")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise RowProblem("bad_tools", f"field `{field}` must be a list of function definitions")
    tools = [t if isinstance(t.get("function"), dict) else {"type": "function", "function": t} for t in value]
    for i, t in enumerate(tools):
        if not isinstance(t["function"].get("name"), str) or not t["function"]["name"]:
            raise RowProblem("bad_tools", f"field `{field}`[{i}] has no function name")
    try:
        return json_text(tools) if tools else None
    except orjson.JSONEncodeError as e:
        raise RowProblem("not_serializable", f"field `{field}` cannot be stored as JSON ({e})") from None


def _messages(value: Any, field: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowProblem("wrong_type", f"field `{field}` is a string, not a message list") from None
    if not isinstance(value, list) or not value:
        raise RowProblem("wrong_type", f"field `{field}` must be a non-empty list of messages")
    out: list[dict[str, Any]] = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise RowProblem("wrong_type", f"{field}[{i}] is a {type(m).__name__}, expected an object")
        sharegpt_call = False
        if "role" in m:
            role, content = m.get("role"), m.get("content")
        elif "from" in m:
            role, content = SHAREGPT_ROLES.get(str(m.get("from")), m.get("from")), m.get("value")
            sharegpt_call = m.get("from") == "function_call"
        else:
            raise RowProblem("bad_message", f"{field}[{i}] has neither role/content nor from/value")
        if role not in ROLES:
            raise RowProblem("bad_message", f"{field}[{i}].role is {role!r}; expected one of {sorted(ROLES)}")
        calls = _tool_calls(m, sharegpt_call, f"{field}[{i}]") if role == "assistant" else None
        if content is None or sharegpt_call:
            content = ""
        out.append({"role": str(role), "content": _text(content, f"{field}[{i}].content"), "tool_calls": calls})
    return out


def _tests_json(fmt: str, row: dict[str, Any], value: Any) -> str | None:
    """Wrap a source's native test layout into the verifier's tests schema."""
    if value is _MISSING or value is None:
        return None
    if fmt == "raw":
        return _as_json_string(value)
    if isinstance(value, str) and fmt in ("mbpp", "asserts", "ifeval"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [value]
    if not (isinstance(value, list) and all(isinstance(t, str) for t in value)) and fmt != "humaneval":
        what = "instruction ids" if fmt == "ifeval" else "assert strings"
        raise RowProblem("wrong_type", f"tests for format {fmt} must be a list of {what}")
    if fmt == "mbpp":
        spec: dict[str, Any] = {"format": "mbpp", "test_list": value, "test_setup_code": row.get("test_setup_code") or ""}
    elif fmt == "asserts":
        spec = {"format": "asserts", "asserts": value}
    elif fmt == "humaneval":
        if not isinstance(row.get("entry_point"), str):
            raise RowProblem("missing_field", "humaneval tests need an `entry_point` field in the row")
        spec = {"format": "humaneval", "test": value, "entry_point": row["entry_point"], "prompt": row.get("prompt", "")}
    else:  # ifeval: the instruction ids, with their kwargs beside them
        spec = {"format": "ifeval", "instruction_id_list": value, "kwargs": row.get("kwargs") or [{} for _ in value]}
    return orjson.dumps(spec, option=orjson.OPT_SORT_KEYS).decode()


def map_row(src: SourceConfig, row: dict[str, Any], reference_re: regex.Pattern[str] | None) -> dict[str, Any]:
    """Build the un-normalized prompt record. Raises RowProblem with a ledger code."""
    f = src.fields
    original: str | None = None
    original_calls: list[str] | None = None
    if f.messages:
        value = get_path(row, f.messages)
        if value is _MISSING:
            raise RowProblem("missing_field", f"mapped field `{f.messages}` is absent")
        msgs = _messages(value, f.messages)
        # A conversation that ends with an assistant turn: that turn is the community's
        # response (the `original` variant), the rest is the prompt.
        if msgs[-1]["role"] == "assistant":
            original, original_calls = msgs[-1]["content"], msgs[-1]["tool_calls"]
            msgs = msgs[:-1]
        if not msgs or msgs[-1]["role"] not in ("user", "tool"):
            raise RowProblem("no_user_turn", "conversation has no user (or tool) turn to answer")
    else:
        assert f.prompt is not None
        value = get_path(row, f.prompt)
        if value is _MISSING or value is None:
            raise RowProblem("missing_field", f"mapped field `{f.prompt}` is absent")
        prompt = _text(value, f.prompt)
        if f.options:
            opts = get_path(row, f.options)
            if isinstance(opts, str):
                try:
                    opts = json.loads(opts)
                except json.JSONDecodeError:
                    opts = None
            if not isinstance(opts, list) or not opts:
                raise RowProblem("wrong_type", f"field `{f.options}` must be a non-empty list of options")
            letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            if len(opts) > len(letters):
                # Letters past Z ("AA.") would not parse as an MCQ answer, so the row goes.
                raise RowProblem("too_many_options", f"field `{f.options}` has {len(opts)} options; "
                                                     f"at most {len(letters)} (A-Z) can be lettered")
            prompt = prompt.rstrip() + "\n\n" + "\n".join(f"{letters[i]}. {o}" for i, o in enumerate(opts))
        msgs = []
        if f.system:
            sys_v = get_path(row, f.system)
            if isinstance(sys_v, str) and sys_v.strip():
                msgs.append({"role": "system", "content": sys_v, "tool_calls": None})
        msgs.append({"role": "user", "content": prompt, "tool_calls": None})
    if src.prompt_suffix:
        msgs[-1] = {**msgs[-1], "content": msgs[-1]["content"].rstrip() + src.prompt_suffix}

    if f.response:
        resp = get_path(row, f.response)
        if resp is not _MISSING and resp is not None:
            original = _text(resp, f.response)
    if f.tool_calls:
        calls = _json_value(get_path(row, f.tool_calls), "bad_tool_call", f"field `{f.tool_calls}`")
        if calls is not _MISSING and calls:
            calls = calls if isinstance(calls, list) else [calls]
            original_calls = [_tool_call(c, f"field `{f.tool_calls}`[{k}]") for k, c in enumerate(calls)]
    reference = None
    if f.reference:
        ref = get_path(row, f.reference)
        if ref is not _MISSING and ref is not None:
            reference = ref if isinstance(ref, str) else _as_json_string(ref)
            if reference_re is not None and reference is not None:
                m = reference_re.search(reference)
                reference = m.group(1).strip() if m else reference
    category = src.category
    if f.category:
        raw = get_path(row, f.category)
        if raw is not _MISSING and raw is not None:
            category = src.category_map.get(str(raw), category if src.category_map else str(raw))
    language = src.language
    if f.language:
        raw = get_path(row, f.language)
        if isinstance(raw, str) and raw:
            language = raw
    tests = _tests_json(src.tests_format, row, get_path(row, f.tests)) if f.tests else None
    tools = _tools_json(get_path(row, f.tools), f.tools) if f.tools else None
    row_id = None
    if f.id:
        rid = get_path(row, f.id)
        row_id = None if rid is _MISSING or rid is None else str(rid)
    return {
        "messages": msgs,
        "tools_json": tools,
        "original_response": original,
        "original_tool_calls": original_calls,
        "reference_answer": reference,
        "tests_json": tests,
        "category": category,
        "language": language,
        "row_id": row_id,
        # Raw, validated by curate (builder.constraints.spec.parse): a bad list is a quarantine code.
        "constraints": None if not f.constraints or (c := get_path(row, f.constraints)) is _MISSING else c,
    }
