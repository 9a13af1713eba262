"""The one base class of every recipe section, and the vocabulary sections share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# Prompt categories of the paper's mix (Figure 2).
CATEGORIES = ("chat", "math", "tool_use", "multi_turn", "code", "instruction_following")
# Rows per parquet shard written by a stage (a stage may override it in its section).
SHARD_ROWS = 50_000


class Strict(BaseModel):
    """Unknown keys are errors: a typo must fail when the recipe loads, not after a paid stage."""

    model_config = ConfigDict(extra="forbid")
