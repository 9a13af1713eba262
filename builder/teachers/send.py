"""The one way to ask a teacher: `schedule` what the store lacks, then `send` it by backend kind.

Used by the generate stage (its datatrove tasks) and by the LLM summarizer, so both get the
same concurrency, rate limits, retries, fail-fast and append-only store. Importing kinds
(existing outputs) are the generate stage's business, not a service: `send` refuses them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from builder.config.generate import Endpoint, Price, TeacherConfig
from builder.teachers.budget import budget_for
from builder.teachers.items import PERMANENT_CODES, WorkItem
from builder.teachers.openai_backend import RunState, run_requests
from builder.teachers.store import StoreIndex, StoreWriter


def schedule(teacher: TeacherConfig, items: list[WorkItem], stored: StoreIndex) -> list[WorkItem]:
    """Items still to request, each with the max_tokens of its next attempt. Decided in numpy over
    all items at once (a 1.3M-item resume does no per-item lookups); only pending items are touched."""
    steps = np.asarray(teacher.sampling.steps(), dtype=np.int64)  # ascending
    pos = stored.positions([it.generation_id for it in items])
    have = pos >= 0
    p = pos[have]
    status, finish, code, m = (stored.column(k)[p] for k in ("s", "f", "c", "m"))

    def is_(col: np.ndarray, name: str, values: Iterable[str]) -> np.ndarray:
        hits = [i for i, v in enumerate(stored.strings(name)) if v in values]
        return np.isin(col, hits)

    ok = is_(status, "s", ("ok",))
    nxt = np.searchsorted(steps, m, side="right")  # the first step above the stored budget
    # ok but cut by `length` with a longer step left: the ladder picks up where it stopped
    # (imports cannot be asked again); failed and not permanent: retried with its budget.
    # A permanent failure is final for the request that got it: once the recipe's max_tokens
    # changed (the fix the ledger suggests for a 400 or an over-long context), its budget is no
    # step any more and it is asked again, like a transient failure, at the first step.
    moved = (m > 0) & ~np.isin(m, steps)
    again = np.where(ok, is_(finish, "f", ("length",)) & (nxt < len(steps)) & (teacher.kind != "import"),
                     ~is_(code, "c", PERMANENT_CODES) | moved)  # fmt: skip
    budget = np.where(ok, steps[np.minimum(nxt, len(steps) - 1)], np.where((m > 0) & ~moved, m, steps[0]))
    want = np.full(len(items), steps[0], dtype=np.int64)
    todo_mask = ~have
    todo_mask[np.flatnonzero(have)[again]] = True
    want[np.flatnonzero(have)] = budget
    todo: list[WorkItem] = []
    for i in np.flatnonzero(todo_mask).tolist():
        it = items[i]
        it.max_tokens = int(want[i])
        todo.append(it)
    return todo


def send(
    items: Iterable[WorkItem],
    teacher: TeacherConfig,
    folder: Path,
    run_id: str,
    *,
    segment: str | None = None,
    endpoints: list[Endpoint] | None = None,
    share: float = 1.0,
    seed: int = 0,
    price: Price | None = None,
) -> RunState:
    """Request every item from `teacher` and append each outcome to the store in `folder`;
    the returned state's `abort` is a whole-run failure (bad key, unknown model, unreachable,
    the spending cap reached).

    `segment` names this writer's store segment (one per concurrent writer); `share` is this
    caller's part of the teacher's whole-run limits (a datatrove task's 1/world); `price` prices
    its requests against `limits.max_cost_usd`."""
    if teacher.kind == "vllm":
        from builder.teachers.vllm_backend import run_vllm

        batch = list(items)
        with StoreWriter(folder, segment or "vllm") as writer:
            stored = run_vllm(teacher, batch, writer, run_id)
        return RunState(ok=stored, requests=len(batch))
    if teacher.kind == "openai":
        budget = budget_for(teacher, price, folder, share)
        with StoreWriter(folder, segment or "openai") as writer:
            state = asyncio.run(run_requests(items, teacher, endpoints or list(teacher.endpoints), writer, run_id,
                                             share=share, seed=seed, budget=budget))  # fmt: skip
        return state
    raise ValueError(
        f"teacher {teacher.name!r} is kind {teacher.kind!r}: only openai and vllm teachers are sent requests"
    )
