"""The result type every verifier returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "fail", "unverifiable", "error"]  # error: the verifier itself failed or timed out


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one teacher answer.

    `reason` is a short machine-readable code ("ok", "mismatch", "no_boxed", "timeout", ...);
    `detail` is free text for humans (truncated, never contains secrets from the parent env).
    """

    status: Status
    method: str
    reason: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"
