"""What the generate stage still has to ask: curated prompts → work items → those the store lacks.

Shared by the stage (which plans every teacher) and its datatrove tasks (each plans its share
on whichever node runs it), so neither imports the other.

A teacher's items cover the prompts of its `sources:` (include / exclude). A `mode: fallback`
teacher further skips every prompt an earlier teacher of the same role (recipe order) already
answered *well*: for an import, the import stored a reply for it (status ok); for a requested
teacher, its latest record is status ok, finish_reason `stop`, and holds an answer (content
that is not blank once a leading <think>…</think> block is removed). Prompts this teacher
already has a good stored reply for stay (what was paid for keeps being exported).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder import tables
from builder.config.generate import GenerateConfig, TeacherConfig
from builder.errors import UserError
from builder.recipe import Recipe
from builder.teachers.items import WorkItem, build_items
from builder.teachers.prompting import Template, load_templates, template_for
from builder.teachers.send import schedule
from builder.teachers.store import Latest, RecordReader, latest
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


def template_mapping(cfg: GenerateConfig, teacher: TeacherConfig) -> dict[str, str]:
    """Category → template id the teacher is prompted with."""
    if not teacher.templates and (teacher.kind == "import" or teacher.role == "control"):
        # Imported replies were prompted by their authors, not by us; the non-reasoning control
        # teacher gets the conversation as is (the R1 prompt asks for <think> tags).
        return {"default": "plain"}
    return cfg.templates_for(teacher)


def _templates(recipe: Recipe, cfg: GenerateConfig, teacher: TeacherConfig, prompts: dict[str, list[Any]]
               ) -> tuple[dict[str, list[Any]], dict[str, Template], dict[str, str]]:  # fmt: skip
    """The teacher's prompts, its loaded templates and its category → template mapping."""
    if teacher.sources.include or teacher.sources.exclude:
        keep = [i for i, s in enumerate(prompts["source"]) if teacher.sources.admits(s)]
        prompts = {k: [v[i] for i in keep] for k, v in prompts.items()}
    mapping = template_mapping(cfg, teacher)
    ids = {template_for(c, mapping) for c in set(prompts["category"])}
    return prompts, load_templates(recipe.resolve(cfg.prompts_dir), ids), mapping


def check_templates(recipe: Recipe, cfg: GenerateConfig, prompts: dict[str, list[Any]]) -> None:
    """Every teacher's templates, before any teacher is sent a request: a misspelt template of the
    last teacher is a one-line error now, not after the teachers before it ran (and were paid)."""
    for teacher in cfg.teachers:
        _templates(recipe, cfg, teacher, prompts)


def teacher_items(recipe: Recipe, cfg: GenerateConfig, teacher: TeacherConfig, prompts: dict[str, list[Any]]) -> list[WorkItem]:
    """One item per prompt × sample of the teacher's sources (every prompt when it names none)."""
    prompts, templates, mapping = _templates(recipe, cfg, teacher, prompts)
    return build_items(teacher, prompts, templates, mapping)


def answered_well(teacher: TeacherConfig, got: Latest | None, reader: RecordReader) -> bool:
    """The fallback rule (module docstring): did this stored record answer its prompt well?"""
    if got is None or got.entry.status != "ok":
        return False
    if teacher.kind == "import":
        return True
    if got.entry.finish_reason != "stop":
        return False
    rec = reader.try_read(got.entry)
    content = rec.get("content") if rec else None
    if not isinstance(content, str):
        return False
    _, closed, rest = content.partition("</think>")
    return bool((rest if closed else content).strip())


def covered_prompts(recipe: Recipe, work: WorkDir, cfg: GenerateConfig, teacher: TeacherConfig,
                    prompts: dict[str, list[Any]]) -> set[str]:  # fmt: skip
    """Prompt ids some teacher listed before `teacher`, of its role, answered well."""
    covered: set[str] = set()
    reader = RecordReader()
    try:
        for earlier in cfg.teachers[: cfg.teachers.index(teacher)]:
            if earlier.role != teacher.role:
                continue
            stored = latest(store_dir(work, earlier))
            for it in teacher_items(recipe, cfg, earlier, prompts):
                if it.prompt_id not in covered and answered_well(earlier, stored.get(it.generation_id), reader):
                    covered.add(it.prompt_id)
    finally:
        reader.close()
    return covered


def items_for(recipe: Recipe, work: WorkDir, cfg: GenerateConfig, teacher: TeacherConfig,
              prompts: dict[str, list[Any]]) -> tuple[list[WorkItem], int]:  # fmt: skip
    """The teacher's items (sources, then fallback applied) and how many prompts fallback skipped."""
    items = teacher_items(recipe, cfg, teacher, prompts)
    if teacher.mode != "fallback":
        return items, 0
    covered = covered_prompts(recipe, work, cfg, teacher, prompts)
    own = latest(store_dir(work, teacher))  # its paid, good replies stay; a failed one is not retried
    keep_prompts = {it.prompt_id for it in items
                    if it.prompt_id not in covered or ((g := own.get(it.generation_id)) and g.entry.status == "ok")}
    return [it for it in items if it.prompt_id in keep_prompts], len({it.prompt_id for it in items} - keep_prompts)


def pending_for(recipe: Recipe, work: WorkDir, name: str, rank: int = 0, world: int = 1) -> tuple[TeacherConfig, list[WorkItem], Path]:
    """What datatrove task `rank` of `world` needs: the teacher, its pending items, its store folder."""
    cfg = config_of(recipe)
    teacher = next(t for t in cfg.teachers if t.name == name)
    items, _ = items_for(recipe, work, cfg, teacher, load_prompts(work, rank, world))
    folder = store_dir(work, teacher)
    return teacher, schedule(teacher, items, latest(folder)), folder
