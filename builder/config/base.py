"""The one base class of every recipe section, and the vocabulary sections share."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

# Prompt categories of the paper's mix (Figure 2).
CATEGORIES = ("chat", "math", "tool_use", "multi_turn", "code", "instruction_following")


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("is empty; give it a name (the rows, ledgers and card carry it)")
    return v


# A name the rows, ledgers and card carry: something other than blanks.
Name = Annotated[str, AfterValidator(_not_blank)]
# Rows per parquet shard written by a stage (a stage may override it in its section).
SHARD_ROWS = 50_000


class Strict(BaseModel):
    """Unknown keys are errors: a typo must fail when the recipe loads, not after a paid stage."""

    # inf / nan pass a `ge=0` bound (inf) or fail it with a puzzling message (nan); no setting means either.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
