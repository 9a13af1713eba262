"""The recipe's `responses:` section: how replies are parsed, validated, verified and kept.

The student's tokenizer and length limit live in the `student:` section (builder/config/student.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from builder.config.base import SHARD_ROWS, Strict


class ResponsesConfig(Strict):
    teacher_tokenizer: str = Field("deepseek-r1", description="pinned tokenizer that counts the teacher's tokens")
    repetition_threshold: float | None = Field(None, gt=0, le=1, description="None: the calibrated default")
    keep_verify: list[Literal["pass", "fail", "unverifiable", "error"]] = Field(
        default_factory=lambda: ["pass", "unverifiable"],
        description="verification outcomes a kept reply may have; unverifiable: nothing to check against; "
        "error: the verifier failed or timed out (not kept by default)",
    )
    code_inproc_pass: Literal["unverifiable", "trust"] = Field(
        "unverifiable",
        description="a pass from tests that had to run in the answer's own interpreter (method code_inproc), "
        "where a hostile answer can forge it: recorded as unverifiable, or trusted as pass",
    )
    reject_info: list[str] = Field(
        default_factory=list, description="info codes that also quarantine (e.g. answer_tags_absent for a strict build)"
    )
    verify_code: bool = Field(True, description="run code answers against the source's tests in a sandbox")
    code_workers: int = Field(4, ge=1, le=256, description="sandboxes at once per batch (threads; each is a process)")
    workers: int = Field(2, ge=1, le=256, description="processes parsing batches; 1 runs in this process")
    batch_rows: int = Field(4096, ge=1, description="replies per batch (memory is about this × workers × 2 replies)")
    shard_rows: int = Field(SHARD_ROWS, ge=1, description="rows per output parquet shard")
    tasks: int | None = Field(
        None,
        ge=1,
        description="datatrove tasks over the reply shards on the recipe's executor (each owns every tasks-th "
        "shard); None: executor.tasks on slurm/ray, 1 (this process, `workers` processes) on local",
    )
