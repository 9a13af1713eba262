"""The recipe's `responses:` section: how replies are parsed, validated, verified and kept."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from builder.workdir import SHARD_ROWS


class ResponsesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    student_tokenizer: str = "qwen2.5"
    teacher_tokenizer: str = "deepseek-r1"
    max_student_tokens: int = 16_384  # the paper's max length
    repetition_threshold: float | None = None  # None: the calibrated default
    # Which verification outcomes a kept reply may have. The paper kept verified replies
    # where a reference existed; "unverifiable" covers prompts without one.
    keep_verify: list[Literal["pass", "fail", "unverifiable"]] = Field(default_factory=lambda: ["pass", "unverifiable"])
    # Info codes that should also quarantine (e.g. "answer_tags_absent" for a strict build).
    reject_info: list[str] = Field(default_factory=list)
    verify_code: bool = True  # run code answers against the source's tests in a sandbox
    code_workers: int = Field(default=4, ge=1)  # sandboxes at once per batch (threads; each is a process)
    workers: int = Field(default=2, ge=1)  # processes parsing batches; 1 runs in this process
    batch_rows: int = Field(default=4096, ge=1)  # replies per batch (memory is about this many replies x workers x 2)
    shard_rows: int = Field(default=SHARD_ROWS, ge=1)
