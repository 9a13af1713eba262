"""Every field of a 200 reply checked before it is stored, and every stored row before export.

A server can answer 200 with anything: `usage` as a string, token counts as strings or past
int64, `finish_reason: 5`, `reasoning_content: 123`, a list for `model`. Stored as is, such a
reply crashed the run or every later export. Here it becomes a failed row with the code
`bad_reply_shape` and what was wrong, like any other failure: counted, visible in the ledger,
asked again on a re-run (it is not a permanent code), and never a crash.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

BAD_SHAPE = "bad_reply_shape"
INTERRUPTED = "insufficient_system_resource"  # a finish_reason of DeepSeek's API
# What an API key echoed in a reply becomes before the reply is stored; the responses stage
# quarantines a reply holding it (`secret_in_reply`).
SECRET_MARKER = "[REDACTED-SECRET]"
_TEXT_FIELDS = ("content", "reasoning_content", "reasoning", "tool_calls_json", "served_model", "error_message")
INT64_MAX = 2**63 - 1
_MAX_SHORT = 512  # finish_reason, model: short strings, not documents

# REPLY_FEATURES columns by the Python type a row must hold (None allowed everywhere).
_STR_COLS = (
    "generation_id", "prompt_id", "teacher_role", "teacher", "teacher_model", "served_model", "endpoint_kind",
    "prompt_template_id", "prompt_template_hash", "sampling_json", "reasoning_format", "content",
    "reasoning_content", "reasoning", "tool_calls_json", "finish_reason", "status", "error_code", "error_message", "created_at",
    "schema_version", "toolkit_version",
)  # fmt: skip
_INT_COLS = ("sample_index", "prompt_tokens", "completion_tokens", "reasoning_tokens", "attempts", "max_tokens")
_FLOAT_COLS = ("latency_s",)
_INT32_COLS = ("sample_index", "attempts")


class BadShape(ValueError):
    """One field of a reply is not what the protocol allows."""


def _text(value: Any, what: str, short: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and (not short or len(value) <= _MAX_SHORT)):
        return value
    raise BadShape(f"{what} is {type(value).__name__}{' (too long)' if isinstance(value, str) else ''}, not text")


def _count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise BadShape(f"{what} is {value!r:.40}, not a token count")
    return value


def _content(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):  # typed content parts: kept whole, as JSON text
        try:
            return orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):
            raise BadShape("content parts are not JSON") from None
    raise BadShape(f"content is {type(value).__name__}, not text or parts")


def _tool_calls(value: Any) -> str | None:
    """The teacher's own tool calls, kept whole as JSON text (ids, names, argument strings as sent)."""
    if not value:
        return None
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise BadShape("message.tool_calls is not a list of objects")
    return orjson.dumps(value).decode()


def reply_fields(body: Any) -> dict[str, Any]:
    """The reply part of a row from a chat.completion body, every reasoning field kept.

    Never raises: a body that breaks the protocol gives a failed row (`bad_reply_shape`)."""
    try:
        if not isinstance(body, dict):
            raise BadShape(f"the body is {type(body).__name__}, not an object")
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise BadShape("choices is not a non-empty list of objects")
        choice = choices[0]
        msg = choice.get("message")
        if msg is None:
            msg = {}
        if not isinstance(msg, dict):
            raise BadShape(f"message is {type(msg).__name__}, not an object")
        usage = body.get("usage")
        if usage is None:
            usage = {}
        if not isinstance(usage, dict):
            raise BadShape(f"usage is {type(usage).__name__}, not an object")
        details = usage.get("completion_tokens_details")
        if details is None:
            details = {}
        if not isinstance(details, dict):
            raise BadShape("usage.completion_tokens_details is not an object")
        fields: dict[str, Any] = {
            "content": _content(msg.get("content")),
            "reasoning_content": _text(msg.get("reasoning_content"), "reasoning_content"),
            "reasoning": _text(msg.get("reasoning"), "reasoning"),
            "finish_reason": _text(choice.get("finish_reason"), "finish_reason", short=True),
            "served_model": _text(body.get("model"), "model", short=True),
            "prompt_tokens": _count(usage.get("prompt_tokens"), "usage.prompt_tokens"),
            "completion_tokens": _count(usage.get("completion_tokens"), "usage.completion_tokens"),
            "reasoning_tokens": _count(details.get("reasoning_tokens"), "usage.completion_tokens_details.reasoning_tokens"),
            "tool_calls_json": _tool_calls(msg.get("tool_calls")),
            "status": "ok",
        }
    except BadShape as e:
        # The usage of a refused body is still what the provider bills: kept, so the cost adds up.
        return {"status": "failed", "error_code": BAD_SHAPE, "error_message": str(e)[:300], **_billed(body)}
    if fields["finish_reason"] == "content_filter":
        fields.update(status="failed", error_code="content_filter",
                      error_message="the endpoint's content filter stopped the reply")  # fmt: skip
    elif fields["finish_reason"] == INTERRUPTED:
        # DeepSeek's API: the inference system ran short and cut the reply. Transient, not an
        # answer: a failed row (its usage kept, it is billed) that the next run asks again.
        fields.update(status="failed", error_code=INTERRUPTED,
                      error_message="the endpoint ran short of resources and interrupted the reply")  # fmt: skip
    return fields


def _billed(body: Any) -> dict[str, int]:
    """The well-formed token counts of a body's usage, whatever else is wrong with it."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return {}
    details = usage.get("completion_tokens_details")
    found = {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
             "reasoning_tokens": details.get("reasoning_tokens") if isinstance(details, dict) else None}  # fmt: skip
    out = {}
    for k, v in found.items():
        try:
            if (n := _count(v, k)) is not None:
                out[k] = n
        except BadShape:
            pass
    return out


def _problem(col: str, v: Any) -> str:
    """Why `v` cannot sit in REPLY column `col` ("" when it can)."""
    if v is None:
        return ""
    if col in _STR_COLS:
        return "" if isinstance(v, str) else f"{col} is {type(v).__name__}, not text"
    if col in _INT_COLS:
        limit = 2**31 - 1 if col in _INT32_COLS else INT64_MAX
        ok = isinstance(v, int) and not isinstance(v, bool) and -limit <= v <= limit
        return "" if ok else f"{col} is {v!r:.40}, not an integer in range"
    if col in _FLOAT_COLS:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return "" if ok else f"{col} is {v!r:.40}, not a finite number"
    return ""


def _well_typed(row: dict[str, Any]) -> bool:
    """The common case, decided with exact type checks only (export runs this once per reply); any
    doubt (a str subclass, a huge int) goes to the column-by-column check."""
    get = row.get
    for col in _STR_COLS:
        if type(get(col)) not in _STR_OK:
            return False
    for col in _INT_COLS:
        v = get(col)
        if v is not None and (type(v) is not int or not 0 <= v <= 2**31 - 1):
            return False
    v = get("latency_s")
    return v is None or (type(v) is float and math.isfinite(v))


_STR_OK = (str, type(None))


# What a failed row keeps of an unusable record: who and what it answered, never its text.
_KEPT = ("generation_id", "prompt_id", "teacher_role", "teacher", "teacher_model", "endpoint_kind", "prompt_template_id",
         "prompt_template_hash", "created_at", "schema_version", "toolkit_version", *_INT_COLS)  # fmt: skip


def checked_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored REPLY row made safe to export: any value of the wrong type makes it a failed
    `bad_reply_shape` row (text fields dropped, ids kept), so one bad record never stops export."""
    if _well_typed(row):
        return row
    problem = next((p for col in (*_STR_COLS, *_INT_COLS, *_FLOAT_COLS) if (p := _problem(col, row.get(col)))), "")
    if not problem:
        return row
    safe = {k: (row.get(k) if k in _KEPT and not _problem(k, row.get(k)) else None) for k in row}
    safe.update(status="failed", error_code=BAD_SHAPE, error_message=f"stored reply unusable: {problem}"[:300])
    return safe


def scrub_secrets(fields: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    """The reply with every occurrence of a key replaced by SECRET_MARKER (before it is stored)."""
    keys = sorted({k for k in secrets if k and len(k) >= 6 and k != "EMPTY"}, key=len, reverse=True)
    if not keys:  # keyless endpoints (vLLM, local servers): nothing to look for
        return fields
    for col in _TEXT_FIELDS:
        v = fields.get(col)
        if isinstance(v, str):
            for k in keys:
                if k in v:
                    v = v.replace(k, SECRET_MARKER)
            fields[col] = v
    return fields
