"""The recipe: one YAML file that says what to read, how to curate, generate and release.

`load_recipe` validates the whole recipe, every section typed (builder/config/), before any
stage runs. Unknown keys are errors (a typo must never be silently ignored, nor found after a
paid stage), and every error names the file, the key path and what to do, in one line.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from builder.config.base import Name, Strict
from builder.config.curate import CurateConfig
from builder.config.executor import ExecutorConfig
from builder.config.generate import GenerateConfig
from builder.config.release import QualityConfig, ReleaseConfig
from builder.config.responses import ResponsesConfig
from builder.config.sources import SourceConfig
from builder.config.student import StudentConfig
from builder.config.variants import VariantsConfig
from builder.errors import UserError, register_secret_env

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
# A recipe is a page of settings: these bounds refuse alias bombs and machine-made documents
# before they can exhaust memory or the stack (validation walks every expanded node).
MAX_RECIPE_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases as it composes (a billion-laughs document fails early)."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (*name); write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # PyYAML keeps the last of two equal keys: a second `curate:` would replace the first
        # without a word. Merged keys (<<) may be overridden; written-out ones may not.
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (also on line {seen[key]}); keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(data: Any, limit: int) -> int:
    """Nodes in the document with aliases expanded, counting stops just past `limit`."""
    count, stack = 0, [data]
    while stack and count <= limit:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def _huge_int(data: Any, loc: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], int] | None:
    """The first integer past 64 bits (its key path, its value): every count, seed and priority
    ends up in a parquet column or a numpy array, which would fail mid-stage with a traceback."""
    if isinstance(data, int) and not isinstance(data, bool) and not -(2**63) <= data < 2**63:
        return loc, data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = _huge_int(value, (*loc, key))
        if found:
            return found
    return None


class Recipe(Strict):
    name: Name = Field(description="the dataset's name")
    version: str = Field(description="semver of the release this recipe builds")
    description: str = Field("", description="one paragraph for the card")
    sources: list[SourceConfig] = Field(description="where prompts come from")
    student: StudentConfig = Field(default_factory=StudentConfig, description="the model the data is for")
    curate: CurateConfig = Field(default_factory=CurateConfig, description="normalize, dedupe, decontaminate, balance")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig, description="how datatrove steps run")
    generate: GenerateConfig | None = Field(None, description="teachers and how they are asked")
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig, description="parse, validate, verify")
    variants: VariantsConfig = Field(default_factory=VariantsConfig, description="which variants, which summarizer")
    quality: QualityConfig = Field(default_factory=QualityConfig, description="release gates")
    release: ReleaseConfig = Field(default_factory=ReleaseConfig, description="card metadata and repo")

    # Set by the loader, not by the YAML.
    path: Path | None = Field(default=None, exclude=True)
    sha256: str = Field(default="", exclude=True)

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str) -> str:
        if not SEMVER.match(v):
            raise ValueError(f"version {v!r} is not semver; write it like 0.1.0")
        return v

    @model_validator(mode="after")
    def _unique_sources(self) -> Recipe:
        names = [s.name for s in self.sources]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"source names must be unique; repeated: {sorted(dup)}")
        if not self.sources:
            raise ValueError("a recipe needs at least one source")
        return self

    @model_validator(mode="after")
    def _summarizer_cap(self) -> Recipe:
        from builder.config.generate import cap_problem

        t = self.variants.summarizer.teacher
        if t is not None and (problem := cap_problem(t, self.generate.prices if self.generate else {})):
            raise ValueError(f"variants.summarizer.teacher.limits.max_cost_usd: {problem}")
        return self

    def secret_envs(self) -> list[str]:
        """Every env var the recipe names as holding an API key (teachers, the summarizer)."""
        teachers = list(self.generate.teachers) if self.generate else []
        if self.variants.summarizer.teacher is not None:
            teachers.append(self.variants.summarizer.teacher)
        return sorted({e.api_key_env for t in teachers for e in t.endpoints if e.api_key_env})

    def resolve(self, p: str) -> Path:
        """A path from the recipe, relative to the recipe file's folder."""
        path = Path(p).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic location as `sources[2].fields.prompt`, naming sources by name."""
    out: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and isinstance(node[part], dict) else None
            name = str(name) if isinstance(name, (str, int, float)) and not isinstance(name, bool) else None
            out[-1] = f"{out[-1]}[{part}{'=' + name if name else ''}]" if out else f"[{part}]"
        else:
            out.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(out) or "(top level)"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of `loc` (to suggest a valid key)."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        nxt = _submodel(field.annotation)
        if nxt is None:
            return None
        model = nxt
    return model


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _suggest(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    owner = _model_at(root, loc)
    if owner is None:
        return ""
    valid = sorted(k for k, f in owner.model_fields.items() if not f.exclude)  # not the loader's own
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean `{close[0]}`?"
    return f"unknown key; valid keys here: {', '.join(valid)}"


def format_validation_error(file: Path, err: ValidationError, data: Any, root: type[BaseModel] = Recipe) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    where = _key_path(loc, data)
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = _suggest(root, loc) or "unknown key; check its spelling against the recipe reference in README.md"
    elif first["type"] == "missing":
        msg = "required key is missing; add it"
    elif first["type"] == "string_type" and isinstance(first.get("input"), (bool, int, float, datetime.date)):
        # YAML 1.1 reads no / on / 1.0 / 2024-01-01 as a boolean, a number or a date.
        value = first["input"]
        msg = f"YAML read this as {type(value).__name__} {value}; put the value in quotes to keep it as text"
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{file}: {where}: {msg}{more}"


def _check_source_names(file: Path, recipe: Recipe) -> None:
    """Source names a teacher, a balance weight or cap, or a mix target refers to must be recipe
    sources: a misspelt one would silently cap, weigh or check nothing."""
    known = [s.name for s in recipe.sources]
    named: list[tuple[str, str]] = []
    for i, t in enumerate(recipe.generate.teachers if recipe.generate else []):
        where = f"generate.teachers[{i}={t.name}]"
        named += [(f"{where}.sources.include", n) for n in t.sources.include]
        named += [(f"{where}.sources.exclude", n) for n in t.sources.exclude]
        named += [(f"{where}.imports[{j}].source", spec.source) for j, spec in enumerate(t.imports)]
    balance = recipe.curate.balance
    named += [("curate.balance.source_caps", n) for n in balance.source_caps]
    named += [("curate.balance.source_weights", n) for n in balance.source_weights]
    named += [("quality.mix.source_targets", n) for n in recipe.quality.mix.source_targets]
    for key, name in named:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`?" if close else f"use one of {known}"
            raise UserError(f"{file}: {key}: unknown source {name!r}; {hint}")


def load_recipe(path: str | Path) -> Recipe:
    file = Path(path)
    if file.is_dir():
        raise UserError(f"{file}: is a folder; pass the path to a recipe YAML file inside it")
    if not file.is_file():
        raise UserError(f"{file}: recipe file not found; pass the path to a recipe YAML")
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise UserError(f"{file}: cannot read the recipe ({e.strerror}); check its permissions") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise UserError(f"{file}: {len(raw):,} bytes is not a recipe (at most {MAX_RECIPE_BYTES:,}); keep data in sources")
    try:
        data = yaml.load(raw, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{file}{line}: not valid YAML ({getattr(e, 'problem', None) or e}); fix the syntax") from None
    except RecursionError:
        raise UserError(f"{file}: nested too deeply to be a recipe; fix the YAML") from None
    if not isinstance(data, dict):
        raise UserError(f"{file}: a recipe must be a YAML mapping with name, version and sources")
    if _expanded_size(data, MAX_NODES) > MAX_NODES:
        raise UserError(f"{file}: more than {MAX_NODES:,} values once aliases are expanded; write a smaller recipe")
    # An explicit `null` section means "defaults", like leaving it out.
    for key in ("student", "curate", "executor", "responses", "variants", "quality", "release"):
        if key in data and data[key] is None:
            del data[key]
    # `path` and `sha256` are the loader's (set below): written in the YAML they would be dropped.
    own = sorted(k for k, f in Recipe.model_fields.items() if f.exclude and k in data)
    if own:
        raise UserError(f"{file}: {own[0]}: {_suggest(Recipe, (own[0],))}")
    huge = _huge_int(data)
    if huge:
        raise UserError(f"{file}: {_key_path(huge[0], data)}: {huge[1]} does not fit in 64 bits; use a smaller number")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise UserError(format_validation_error(file, e, data)) from None
    _check_source_names(file, recipe)
    recipe.path = file.resolve()
    recipe.sha256 = hashlib.sha256(raw).hexdigest()
    for name in recipe.secret_envs():
        register_secret_env(name)
    return recipe
