"""Prompt templates (recipes/prompts/*.yaml) and the messages a teacher is sent.

A template is a system prompt and a suffix for the last user turn, as the paper did (R1
system prompt; math and code suffixes). Its hash is computed from its content, so editing
a template changes every generation_id that used it and nothing stale is reused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from builder.errors import UserError


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    version: int
    system: str | None
    suffix: str
    hash: str


def template_hash(id_: str, version: int, system: str | None, suffix: str) -> str:
    body = {"id": id_, "version": version, "system": system, "suffix": suffix}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def template_version(data: dict[str, Any], path: Path) -> int:
    """A template's `version`: a whole number (int() of "v2" or a list was a traceback)."""
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise UserError(f"{path}: version {version!r} must be a whole number (bump it when the text changes)")
    return version


def load_template(path: Path) -> Template:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:  # not UTF-8: a ValueError, not an OSError
        raise UserError(f"{path}: cannot read prompt template ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise UserError(f"{path}: a prompt template is a mapping with id, version, system, suffix")
    extra = set(data) - {"id", "version", "system", "suffix"}
    if extra:
        raise UserError(f"{path}: unknown key(s) {sorted(extra)}; a template has id, version, system, suffix")
    if data["id"] != path.stem:
        raise UserError(f"{path}: id {data['id']!r} must equal the file name {path.stem!r}")
    system = data.get("system")
    suffix = data.get("suffix") or ""
    version = template_version(data, path)
    if system is not None and not isinstance(system, str) or not isinstance(suffix, str):
        raise UserError(f"{path}: `system` and `suffix` must be text")
    return Template(data["id"], version, system, suffix, template_hash(data["id"], version, system, suffix))


def load_templates(folder: Path, ids: set[str]) -> dict[str, Template]:
    out: dict[str, Template] = {}
    for tid in sorted(ids):
        path = folder / f"{tid}.yaml"
        if not path.is_file():
            raise UserError(f"{path}: prompt template {tid!r} not found; add it or fix generate.templates")
        out[tid] = load_template(path)
    return out


def template_for(category: str, mapping: dict[str, str]) -> str:
    return mapping.get(category) or mapping.get("default") or "plain"


def _wire(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored turns as the OpenAI API takes them: tool calls (stored in TRL's shape, JSON text
    per call) get an id and JSON-string arguments; a tool turn answers the next pending call."""
    out: list[dict[str, Any]] = []
    pending: list[str] = []
    for i, m in enumerate(messages):
        turn: dict[str, Any] = {"role": m["role"], "content": m["content"]}
        if m.get("tool_calls"):
            calls = [orjson.loads(c) for c in m["tool_calls"]]
            turn["tool_calls"] = [
                {"id": c.get("id") or f"call_{i}_{k}", "type": "function",
                 "function": {"name": c["function"]["name"], "arguments": orjson.dumps(c["function"]["arguments"]).decode()}}
                for k, c in enumerate(calls)]
            pending = [c["id"] for c in turn["tool_calls"]]
        elif m["role"] == "tool" and pending:
            turn["tool_call_id"] = pending.pop(0)
        out.append(turn)
    return out


def build_messages(messages: list[dict[str, Any]], template: Template) -> list[dict[str, Any]]:
    """The conversation up to its last user or tool turn, with the template's system prompt and
    the suffix on the last user turn.

    A multi-turn prompt gets a reply to its last user turn, or to the tool results that answer
    the calls made after it (the teacher goes on from the results): trailing assistant turns (a
    community answer) are cut. An existing system message keeps its text after ours.
    """
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    end = max((i for i, m in enumerate(messages) if m["role"] in ("user", "tool")), default=-1)
    convo = _wire(messages[: end + 1])
    if template.suffix and last_user >= 0:
        convo[last_user]["content"] = convo[last_user]["content"] + template.suffix
    if template.system:
        if convo and convo[0]["role"] == "system":
            convo[0]["content"] = f"{template.system}\n\n{convo[0]['content']}"
        else:
            convo.insert(0, {"role": "system", "content": template.system})
    return convo


def request_tools(tools_json: str | None) -> list[dict[str, Any]] | None:
    """Tool definitions in the OpenAI `tools` shape (bare function specs get wrapped)."""
    if not tools_json:
        return None
    try:
        tools = orjson.loads(tools_json)
    except orjson.JSONDecodeError:
        return None
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        return None
    return [t if t.get("type") == "function" else {"type": "function", "function": t} for t in tools]
