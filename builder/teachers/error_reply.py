"""A 200 answer whose JSON body is an error object, read as the HTTP error it stands for.

Some OpenAI-compatible providers (OpenRouter, gateways in front of several backends) answer a
rate limit, an overload or an empty balance with status 200 and `{"error": {...}}`. Stored as a
malformed reply (`bad_reply_shape`) it was neither retried in the run nor stopped it; here it
becomes the HTTPFailure the status would have raised, so `classify` treats it the same way.
"""

from __future__ import annotations

from typing import Any

import orjson

from builder.teachers.aiohttp_transport import HTTPFailure

# Words of the error's code / type / status / message, first match wins: a DeepSeek balance
# refusal says "Insufficient Balance" with the code invalid_request_error, so balance comes first.
_WORDS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (402, ("insufficient balance", "insufficient_balance", "insufficient_quota", "insufficient credits",
           "payment required", "billing")),  # fmt: skip
    (400, ("context_length", "context length")),
    (429, ("rate_limit", "rate limit", "too many requests", "resource_exhausted")),
    (503, ("overload", "server_error", "unavailable", "capacity", "internal error", "internal_error", "timeout")),
    (401, ("invalid_api_key", "authentication", "unauthorized", "permission_denied")),
    (404, ("model_not_found", "model not found")),
    (400, ("invalid_request", "invalid request", "invalid_argument", "invalid_parameter", "bad request",
           "not supported", "unsupported")),  # fmt: skip
)
UNKNOWN_STATUS = 500  # an error object of no known kind: transient until it shows otherwise


class ErrorReply(HTTPFailure):
    """A 200 carrying an error object; `status_code` is the status it stands for."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        text = orjson.dumps(error).decode("utf-8", "replace")
        super().__init__(status, {"error": error}, {}, text)
        self.args = (f"HTTP 200 with an error object, read as {status}: {text[:400]}",)


def _status(error: dict[str, Any]) -> int:
    code = error.get("code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code  # OpenRouter puts the HTTP status it means in `code`
    text = " ".join(str(error.get(k) or "") for k in ("code", "type", "status", "message")).lower()
    return next((status for status, words in _WORDS if any(w in text for w in words)), UNKNOWN_STATUS)


def error_reply(body: Any) -> ErrorReply | None:
    """The error a 200 body stands for, or None when it is a reply (it has choices, or no error)."""
    if not isinstance(body, dict) or body.get("choices") or not body.get("error"):
        return None
    error = body["error"]
    if not isinstance(error, dict):  # {"error": "Rate limit exceeded"}
        error = {"message": str(error)}
    return ErrorReply(_status(error), error)
