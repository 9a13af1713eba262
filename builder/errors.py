"""User-facing errors: one line, no traceback, secrets redacted."""

from __future__ import annotations

import os
import re

# Env vars whose values must never be printed: any named like a key, and every variable a
# loaded recipe names as an `api_key_env`, whatever its name (register_secret_env).
SECRET_ENV_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CRED", "AUTH")
# The registered names travel in this variable (names only, never values), so worker
# processes and cluster tasks started from here redact the same values.
SECRET_ENVS_VAR = "ANSWER_DISTILL_SECRET_ENVS"
_TOKEN_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|hf_[A-Za-z0-9]{6,})\b")
# A key written into an endpoint URL (https://user:KEY@host/v1, …/v1?api_key=KEY) is shown in
# every error that names the endpoint: the user info and key-like query values are hidden.
_URL_USERINFO = re.compile(r"(?<=://)[^\s/@]+@")
_URL_KEY_PARAM = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|secret|password)=)[^&\s#]+")


class UserError(Exception):
    """Bad input or configuration: the CLI prints str(e) on one line and exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(" ".join(message.split())))


def register_secret_env(name: str) -> None:
    """Treat the value of env var `name` as a secret from now on (a recipe's api_key_env)."""
    names = set(filter(None, os.environ.get(SECRET_ENVS_VAR, "").split(",")))
    if name not in names:
        os.environ[SECRET_ENVS_VAR] = ",".join(sorted(names | {name}))


def secret_values() -> list[str]:
    named = set(filter(None, os.environ.get(SECRET_ENVS_VAR, "").split(",")))
    out: set[str] = set()
    for k, v in os.environ.items():
        if k != SECRET_ENVS_VAR and v and (k in named or any(h in k.upper() for h in SECRET_ENV_HINTS)):
            for value in (v, v.strip()):
                if len(value) >= 6:
                    out.add(value)
    return sorted(out, key=len, reverse=True)  # longest first: a key never half-redacted


def unset_state(value: str | None) -> str:
    """How an env var without a usable value is said: never set, or set to whitespace only."""
    return "is blank (only whitespace), which counts as not set" if value else "is not set"


def redact(text: str) -> str:
    """Remove any secret from text: env var values named like keys, and token shapes."""
    for value in secret_values():
        text = text.replace(value, "***")
    text = _URL_KEY_PARAM.sub(r"\1***", _URL_USERINFO.sub("***@", text))
    return _TOKEN_SHAPES.sub("***", text)
