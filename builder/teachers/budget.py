"""A teacher's spending cap (`limits.max_cost_usd`): no request is sent that could take its spend past it.

Spend is counted as the cost report counts it (teachers/accounting.py: every stored record's
usage at the recipe's price, earlier runs included), so a re-run with the same cap asks nothing
more and one with a higher cap resumes. A request in flight holds its worst case (its prompt's
byte count, worst_prompt_tokens, plus its whole max_tokens) until its usage settles it; with several
datatrove tasks each gets its share of what the cap leaves, like the rate limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.config.generate import Price, TeacherConfig
from builder.errors import UserError

STOP = "spending cap reached"
# Chat-template tokens a message may add around its text (role markers, separators): generous.
TEMPLATE_TOKENS_PER_MESSAGE = 16


def worst_prompt_tokens(body: bytes, messages: int) -> int:
    """An upper bound on a request's prompt tokens: a byte-level BPE token covers at least one byte,
    so the body's UTF-8 bytes (texts, tools, and JSON around them) bound its texts' tokens. The
    rate limiter's chars/4 guess is no bound: CJK text and code tokenize denser."""
    return len(body) + TEMPLATE_TOKENS_PER_MESSAGE * messages  # how a budget stop's message starts, after "teacher NAME: "


@dataclass
class Budget:
    price: Price
    allowed: float  # USD this caller may still spend
    spent: float = 0.0  # settled this run
    held: float = 0.0  # worst case of the requests in flight
    before: float = 0.0  # the store's spend when this run began

    def reserve(self, prompt_tokens: int, max_tokens: int) -> float | None:
        """Hold a request's worst case; None when it could take the spend past the cap (send nothing)."""
        worst = self.price.cost(prompt_tokens, max_tokens)
        if self.spent + self.held + worst > self.allowed:
            return None
        self.held += worst
        return worst

    def settle(self, held: float, fields: dict[str, Any] | None) -> None:
        """Release a request's hold and count what its reply's usage says it cost (a refusal: nothing)."""
        self.held -= held
        if fields:
            self.spent += self.price.cost(fields.get("prompt_tokens") or 0, fields.get("completion_tokens") or 0)


def budget_for(teacher: TeacherConfig, price: Price | None, folder: Path, share: float) -> Budget | None:
    """This caller's budget: its `share` of what the cap leaves after the store's spend; None without a cap."""
    cap = teacher.limits.max_cost_usd
    if cap is None:
        return None
    if price is None:  # the recipe check refuses this; a caller that skipped it must not spend unbounded
        raise UserError(f"teacher {teacher.name}: limits.max_cost_usd needs a price for {teacher.model} in generate.prices")
    from builder.teachers.accounting import accounting

    stored = accounting(folder, teacher, price)["total"]["cost_usd"]
    return Budget(price, max(0.0, cap - stored) * share, before=stored)


def stop_message(teacher: TeacherConfig, spent: float, key: str = "") -> str:
    """One line: what was spent, that the store is kept, how to go on. `spent`: the teacher's whole
    stored spend; `key`: where the cap sits in the recipe (default: a generate teacher's)."""
    cap = teacher.limits.max_cost_usd or 0.0
    key = key or f"generate.teachers[{teacher.name}].limits.max_cost_usd"
    return (f"teacher {teacher.name}: {STOP}: ${spent:,.4f} spent of limits.max_cost_usd ${cap:,.4f} and the next "
            f"request could cost more than is left; stored replies are kept: raise {key} and re-run to ask the rest")


def is_stop(message: str, teacher: TeacherConfig) -> bool:
    return message.startswith(f"teacher {teacher.name}: {STOP}")
