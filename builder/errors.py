"""User-facing errors: one line, no traceback, secrets redacted."""

from __future__ import annotations

import os
import re

# Env vars whose values must never be printed; extended by stages that read keys by name.
SECRET_ENV_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
_TOKEN_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|hf_[A-Za-z0-9]{6,})\b")


class UserError(Exception):
    """Bad input or configuration: the CLI prints str(e) on one line and exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(" ".join(message.split())))


def secret_values() -> list[str]:
    return [
        v
        for k, v in os.environ.items()
        if v and len(v) >= 6 and any(h in k.upper() for h in SECRET_ENV_HINTS)
    ]


def redact(text: str) -> str:
    """Remove any secret from text: env var values named like keys, and token shapes."""
    for value in secret_values():
        text = text.replace(value, "***")
    return _TOKEN_SHAPES.sub("***", text)
