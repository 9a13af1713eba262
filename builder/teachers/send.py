"""The one way to ask a teacher: `schedule` what the store lacks, then `send` it by backend kind.

Used by the generate stage (its datatrove tasks) and by the LLM summarizer, so both get the
same concurrency, rate limits, retries, fail-fast and append-only store. Importing kinds
(existing outputs) are the generate stage's business, not a service: `send` refuses them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from builder.config.generate import Endpoint, TeacherConfig
from builder.teachers.items import PERMANENT_CODES, WorkItem
from builder.teachers.openai_backend import RunState, run_requests
from builder.teachers.store import Latest, StoreWriter


def schedule(teacher: TeacherConfig, items: list[WorkItem], stored: dict[str, Latest]) -> list[WorkItem]:
    """Items still to request, each with the max_tokens of its next attempt."""
    steps = teacher.sampling.steps()
    todo: list[WorkItem] = []
    for it in items:
        got = stored.get(it.generation_id)
        if got is None:
            it.max_tokens = steps[0]
            todo.append(it)
            continue
        e = got.entry
        if e.status == "ok":
            nxt = [s for s in steps if s > e.max_tokens]
            if e.finish_reason == "length" and nxt and teacher.kind != "import":
                it.max_tokens = nxt[0]  # a recipe with a longer ladder picks up where it stopped
                todo.append(it)
            continue
        if e.error_code in PERMANENT_CODES:
            continue
        it.max_tokens = e.max_tokens or steps[0]
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
) -> RunState:
    """Request every item from `teacher` and append each outcome to the store in `folder`;
    the returned state's `abort` is a whole-run failure (bad key, unknown model, unreachable).

    `segment` names this writer's store segment (one per concurrent writer); `share` is this
    caller's part of the teacher's whole-run limits (a datatrove task's 1/world)."""
    if teacher.kind == "vllm":
        from builder.teachers.vllm_backend import run_vllm

        batch = list(items)
        with StoreWriter(folder, segment or "vllm") as writer:
            stored = run_vllm(teacher, batch, writer, run_id)
        return RunState(ok=stored, requests=len(batch))
    if teacher.kind == "openai":
        with StoreWriter(folder, segment or "openai") as writer:
            state = asyncio.run(run_requests(items, teacher, endpoints or list(teacher.endpoints), writer, run_id,
                                             share=share, seed=seed))  # fmt: skip
        return state
    raise ValueError(f"teacher {teacher.name!r} is kind {teacher.kind!r}: only openai and vllm teachers are sent requests")
