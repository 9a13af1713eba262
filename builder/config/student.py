"""The recipe's `student:` section: the model the data is for, read by every stage that counts tokens."""

from __future__ import annotations

from pydantic import Field

from builder.config.base import Strict


class StudentConfig(Strict):
    tokenizer: str = Field(
        "qwen2.5", description="pinned tokenizer that counts student tokens (see builder/tokens.py)"
    )
    max_tokens: int = Field(
        16_384, ge=1, le=1_048_576,
        description="longest conversation the student trains on (paper: 16,384); longer rows are dropped",
    )  # fmt: skip
