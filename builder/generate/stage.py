"""The generate stage: curated prompts → every teacher's replies, stored whole, resumable.

For each teacher of the recipe (reasoning, control): build one work item per prompt ×
sample, drop what the store already holds for good, send the rest (openai: datatrove tasks;
vllm: in-process; import: read existing outputs), then export the store to
`<work>/generate/replies/part-*.parquet` (REPLY_FEATURES, one row per item, failures too),
`ledger.parquet` (kept / dropped with a reason per item) and `summary.json` (tokens and
cost per run, source and category, retries and superseded attempts included).

Kill it at any moment and re-run: stored replies are never requested again; only requests
in flight at the kill are sent again. Transient failures (rate limits, 5xx, timeouts) are
retried on a re-run; permanent ones (content filter, context length, bad request) are not.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder import tables
from builder.config.generate import GenerateConfig, TeacherConfig
from builder.errors import UserError
from builder.generate.export import PartWriter, TeacherTally, export_teacher
from builder.generate.todo import STAGE, check_templates, config_of, items_for, load_prompts, store_dir
from builder.ledger import Ledger
from builder.recipe import Recipe
from builder.tables import GenerateSummary, StepRow, TeacherAccounting, TeacherRun
from builder.teachers.accounting import accounting, without_usage
from builder.teachers.budget import is_stop, stop_message
from builder.teachers.items import WorkItem
from builder.teachers.monitor import Progress, StoreMonitor
from builder.teachers.send import schedule, send
from builder.teachers.store import StoreWriter, latest
from builder.workdir import WorkDir

READS = (tables.PROMPTS,)
WRITES = (tables.REPLIES, tables.GENERATE_LEDGER, GenerateSummary)


@dataclass
class GenerateResult:
    teachers: list[TeacherRun]
    steps: list[tuple[str, int, int, dict[str, int]]]
    accounting: list[dict[str, Any]]
    seconds: float
    replies: list[Path]
    warnings: list[str] = field(default_factory=list)
    error: str = ""  # a whole-run failure (bad key, unknown model): raised after the export


def _executor_config(recipe: Recipe, tasks: int) -> Any:
    # Generation tracks what is stored itself, so datatrove must re-run every rank.
    return recipe.executor.model_copy(update={"tasks": tasks, "skip_completed": False})


def _send_openai(recipe: Recipe, work: WorkDir, cfg: GenerateConfig, teacher: TeacherConfig,
                 todo: list[WorkItem], run_id: str, warnings: list[str]) -> str:  # fmt: skip
    """Send `todo` as datatrove tasks (inline when there is one local task); returns an abort
    message, and adds the tasks' warnings (the same line from several tasks once) to `warnings`."""
    from builder.generate.tasks import GenerateTask, send_share
    from builder.teachers.openai_backend import api_key

    for ep in teacher.endpoints:  # an unset key is one line here, not a failure in every task
        api_key(ep, teacher.name)
    folder = store_dir(work, teacher)
    tasks = max(1, min(teacher.tasks or cfg.tasks or recipe.executor.tasks, len(todo)))
    if recipe.executor.kind == "local" and tasks == 1:
        send_share(teacher, todo, folder, run_id, 0, 1, cfg.prices.get(teacher.model))  # no pool: Ctrl-C acts on us
    else:
        from builder.executors import make_executor, run_executor

        if recipe.path is None:
            raise UserError("generate with several tasks needs a recipe loaded from a file")
        ex_cfg = _executor_config(recipe, tasks)
        step = GenerateTask(str(recipe.path), str(work.root.resolve()), teacher.name, run_id)
        logs = work.root / STAGE / "logs" / teacher.name / run_id
        run_executor(make_executor([step], ex_cfg, logs, f"generate-{teacher.name}"), ex_cfg)
    aborts = sorted(folder.glob("abort-*.txt"))
    msg = aborts[0].read_text().strip() if aborts else ""
    for f in aborts:
        f.unlink()
    for f in sorted(folder.glob("warnings-*.txt")):
        warnings.extend(w for w in f.read_text().splitlines() if w and w not in warnings)
        f.unlink()
    return msg


def _generate(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> GenerateResult:
    t0 = time.perf_counter()
    cfg = config_of(recipe)
    prompts = load_prompts(work)
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    warnings: list[str] = []
    work.stage(STAGE)
    check_templates(recipe, cfg, prompts)
    plans: list[tuple[TeacherConfig, list[WorkItem], int]] = []
    covered: dict[str, int] = {}  # teacher → prompts a fallback teacher left to an earlier one
    aborts: list[str] = []
    for teacher in cfg.teachers:
        # Planned only now, after the teachers before it ran: a fallback teacher sees their replies.
        items, covered[teacher.name] = items_for(recipe, work, cfg, teacher, prompts)
        folder = store_dir(work, teacher)
        todo = schedule(teacher, items, latest(folder))
        plans.append((teacher, items, len(todo)))
        if not todo:
            continue
        with StoreMonitor(folder, run_id, teacher.name, len(todo), teacher.sampling.steps()[-1], progress,
                          fill_on_done=teacher.kind == "import"):  # fmt: skip
            if teacher.kind == "import":
                from builder.generate.import_backend import run_import

                with StoreWriter(folder, "import") as writer:
                    run_import(recipe, teacher, todo, writer, run_id, warnings)
            elif teacher.kind == "openai":
                msg = _send_openai(recipe, work, cfg, teacher, todo, run_id, warnings)
                if msg:
                    aborts.append(msg)
            else:
                send(todo, teacher, folder, run_id)
        if aborts:
            break  # a whole-run failure: later teachers would fail the same way or cost money for nothing

    # Export every teacher (also after an abort: what was stored, and why the rest is missing).
    ledger = Ledger(STAGE)
    parts = PartWriter(work.path(tables.REPLIES))
    reports: list[TeacherRun] = []
    books: list[dict[str, Any]] = []
    seen = {t.name for t, _, _ in plans}
    for teacher in cfg.teachers:
        if teacher.name not in seen:
            items, covered[teacher.name] = items_for(recipe, work, cfg, teacher, prompts)
            plans.append((teacher, items, 0))
    for teacher, items, n_todo in plans:
        folder = store_dir(work, teacher)
        stored = latest(folder)
        books.append(accounting(folder, teacher, cfg.prices.get(teacher.model)))
        if aborts and is_stop(aborts[0], teacher):  # the spend as the report counts it, every task's included
            aborts[0] = stop_message(teacher, books[-1]["total"]["cost_usd"])
        tally: TeacherTally = export_teacher(teacher, items, stored, parts, ledger, aborts[0] if aborts else "")
        reports.append(TeacherRun(name=teacher.name, role=teacher.role, kind=teacher.kind, model=teacher.model,
                                  items=len(items), already_stored=len(items) - n_todo, sent=n_todo, ok=tally.ok,
                                  failed=tally.failed, covered_by_earlier=covered[teacher.name]))  # fmt: skip
        if teacher.kind == "openai" and (blank := without_usage(folder)):
            warnings.append(f"teacher {teacher.name}: {blank} stored replies came without usage (token counts); "
                            "their tokens and cost are missing from the accounting")  # fmt: skip
    paths = parts.close()
    work.write_ledger(ledger)
    result = GenerateResult(reports, ledger.summary(), books, time.perf_counter() - t0, paths, warnings)
    work.write_summary(GenerateSummary(
        recipe=recipe.name, version=recipe.version, recipe_sha256=recipe.sha256, run_id=run_id,
        teachers=reports,
        accounting=[TeacherAccounting.model_validate(b) for b in books],
        steps=StepRow.rows(result.steps),
        rows=parts.total, warnings=warnings, seconds=result.seconds, error=aborts[0] if aborts else "",
    ))  # fmt: skip
    result.error = aborts[0] if aborts else ""
    return result


def fingerprint(recipe: Recipe, work: WorkDir) -> dict[str, Any]:
    """What this stage's outputs depend on (see WorkDir.fingerprint). The store is not in it:
    generate always runs, and asks only for what the store lacks."""
    return work.fingerprint({"generate": recipe.generate}, ("curate",))


def run_generate(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> GenerateResult:
    """Ask every teacher for what the store lacks, then export the store. Outputs are committed
    together (WorkDir.stage_run), also after an abort: every item has its row, failed ones say
    why; the abort is raised once they are in place."""
    with work.stage_run(STAGE, fingerprint(recipe, work)):
        result = _generate(recipe, work, progress)
    result.replies = work.shards(tables.REPLIES)
    if result.error:
        raise UserError(result.error)
    return result

