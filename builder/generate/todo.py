"""What the generate stage still has to ask: curated prompts → work items → those the store lacks.

Shared by the stage (which plans every teacher) and its datatrove tasks (each plans its share
on whichever node runs it), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder import tables
from builder.config.generate import GenerateConfig, TeacherConfig
from builder.errors import UserError
from builder.recipe import Recipe
from builder.teachers.items import WorkItem, build_items
from builder.teachers.prompting import load_templates, template_for
from builder.teachers.send import schedule
from builder.teachers.store import latest
from builder.workdir import WorkDir, read_table

STAGE = "generate"
PROMPT_COLUMNS = ["prompt_id", "messages", "tools_json", "category", "source", "source_row_id"]


def config_of(recipe: Recipe) -> GenerateConfig:
    cfg = recipe.generate
    if cfg is None or not cfg.teachers:
        raise UserError(
            f"{recipe.path}: the recipe has no generate.teachers; add a `generate:` section with at least one "
            "teacher (see recipes/sample.yaml)"
        )
    return cfg


def store_dir(work: WorkDir, teacher: TeacherConfig) -> Path:
    return work.store(tables.GENERATE_STORE, teacher.name)


def load_prompts(work: WorkDir, rank: int = 0, world: int = 1) -> dict[str, list[Any]]:
    """The curated prompts; with world > 1 only every world-th from `rank` (a task's share),
    selected in Arrow so a task never holds the other tasks' prompts as Python objects."""
    files = work.require(tables.PROMPTS)
    table = read_table(files, columns=PROMPT_COLUMNS)
    if world > 1:
        import pyarrow as pa

        table = table.take(pa.array(range(rank, table.num_rows, world), type=pa.int64()))
    return table.to_pydict()


def teacher_items(recipe: Recipe, cfg: GenerateConfig, teacher: TeacherConfig, prompts: dict[str, list[Any]]) -> list[WorkItem]:
    mapping = cfg.templates_for(teacher)
    if not teacher.templates and (teacher.kind == "import" or teacher.role == "control"):
        # Imported replies were prompted by their authors, not by us; the non-reasoning control
        # teacher gets the conversation as is (the R1 prompt asks for <think> tags).
        mapping = {"default": "plain"}
    ids = {template_for(c, mapping) for c in set(prompts["category"])}
    templates = load_templates(recipe.resolve(cfg.prompts_dir), ids)
    return build_items(teacher, prompts, templates, mapping)


def pending_for(recipe: Recipe, work: WorkDir, name: str, rank: int = 0, world: int = 1) -> tuple[TeacherConfig, list[WorkItem], Path]:
    """What datatrove task `rank` of `world` needs: the teacher, its pending items, its store folder."""
    cfg = config_of(recipe)
    teacher = next(t for t in cfg.teachers if t.name == name)
    items = teacher_items(recipe, cfg, teacher, load_prompts(work, rank, world))
    folder = store_dir(work, teacher)
    return teacher, schedule(teacher, items, latest(folder)), folder
