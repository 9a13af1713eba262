"""Generation as datatrove tasks: task `rank` sends its share of the pending requests.

Task `rank` of W takes prompts rank, rank+W, rank+2W… of the curated prompts (selected in
Arrow, so it never holds the others), works out which of their items the store lacks (the
whole store's index: a re-run with another W still skips everything stored), and appends
to its own store segment, so Slurm or Ray can spread the prompts over many nodes with one
shared work directory and no locks.
A whole-run failure (bad key, unknown model, nothing reachable) is written to
`<store>/abort-<rank>.txt`; the stage turns it into one clear error line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep

from builder.config.generate import Price, TeacherConfig
from builder.errors import UserError, redact
from builder.teachers.items import WorkItem
from builder.teachers.send import send


def abort_file(folder: Path, rank: int) -> Path:
    return folder / f"abort-{rank:05d}.txt"


def warnings_file(folder: Path, rank: int) -> Path:
    """What task `rank` warned about (one line each), for the stage summary."""
    return folder / f"warnings-{rank:05d}.txt"


def endpoints_for(teacher: TeacherConfig, rank: int) -> list[Any]:
    """One endpoint per task (one vLLM server per node) or all of them, load-balanced."""
    eps = teacher.endpoints
    return [eps[rank % len(eps)]] if teacher.endpoint_per_task else list(eps)


def send_share(teacher: TeacherConfig, mine: list[WorkItem], folder: Path, run_id: str, rank: int, world: int,
               price: Price | None = None) -> dict[str, int]:  # fmt: skip
    """Send this rank's pending items and store every outcome; returns counters."""
    abort_file(folder, rank).unlink(missing_ok=True)
    warnings_file(folder, rank).unlink(missing_ok=True)
    state = send(mine, teacher, folder, run_id, segment=f"t{rank:05d}", endpoints=endpoints_for(teacher, rank),
                 share=1.0 / world, seed=rank, price=price)  # fmt: skip
    if state.abort:
        abort_file(folder, rank).write_text(state.abort + "\n")
    if state.warnings:
        warnings_file(folder, rank).write_text("".join(w + "\n" for w in state.warnings))
    return {"ok": state.ok, "failed": state.failed, "requests": state.requests, "retries": state.retries}


class GenerateTaskError(RuntimeError):
    """A generate task failed; the message is redacted and carries no traceback of the failure."""


class GenerateTask(PipelineStep):
    """A datatrove step wrapping `send_share`; it reloads the recipe on whichever node runs it."""

    name = "generate"
    type = "🤖 - TEACHER"

    def __init__(self, recipe_path: str, work: str, teacher: str, run_id: str) -> None:
        super().__init__()
        self.recipe_path = recipe_path
        self.work = work
        self.teacher = teacher
        self.run_id = run_id

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Any:
        from builder.generate.todo import pending_for
        from builder.recipe import load_recipe
        from builder.workdir import WorkDir

        failure = ""
        try:
            recipe = load_recipe(self.recipe_path)
            teacher, mine, folder = pending_for(recipe, WorkDir(self.work), self.teacher, rank, world_size)
            price = recipe.generate.prices.get(teacher.model) if recipe.generate else None
            counts = send_share(teacher, mine, folder, self.run_id, rank, world_size, price)
        except UserError as e:  # the user's to fix: one line through the abort file, no traceback
            from builder import tables

            store = WorkDir(self.work).store(tables.GENERATE_STORE, self.teacher)
            store.mkdir(parents=True, exist_ok=True)
            abort_file(store, rank).write_text(str(e) + "\n")
            return iter(())
        except Exception as e:  # noqa: BLE001 - re-raised below, redacted and without its frames
            failure = redact(" ".join(f"{type(e).__name__}: {e}".split()))[:500]
        if failure:
            # Raised outside the except block: no chained traceback, so no frame that held a
            # key (the client's, the pool's) reaches datatrove's logger.
            raise GenerateTaskError(f"generate task {rank} of teacher {self.teacher}: {failure}")
        for k, v in counts.items():
            self.stat_update(k, value=v)
        return iter(())
