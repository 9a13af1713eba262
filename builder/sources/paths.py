"""Which files a recipe `path` names and in which format, as the readers (builder/sources/readers.py)
and decontamination read them; `check` asks the same functions, so it says what the run would meet.

A path the readers cannot read is a ``PathProblem``: a ``UserError`` whose line is the one the run
stops with, carrying the recipe key to fix (`path` or `format`) and the same words without who says
them, for check's own lines under that key.
"""

from __future__ import annotations

import glob
from pathlib import Path

from builder.config.curate import BenchmarkFile
from builder.config.generate import ImportSpec
from builder.config.sources import SourceConfig
from builder.errors import UserError
from builder.recipe import Recipe

# What a file's name tells of its format (`format: auto`), tried in this order.
SUFFIXES = ((".jsonl", "jsonl"), (".jsonl.gz", "jsonl"), (".ndjson", "jsonl"), (".json", "json"),
            (".parquet", "parquet"), (".csv", "csv"))  # fmt: skip
_GLOB_CHARS = "*?["


class PathProblem(UserError):
    """str(): the run's line; `key`: the recipe key at fault; `text`: what is wrong and what to do."""

    def __init__(self, message: str, key: str, text: str) -> None:
        super().__init__(message)
        self.key, self.text = key, " ".join(text.split())


def suffixes_text() -> str:
    """The file names the readers take, for messages: ".jsonl, .jsonl.gz, … or .csv"."""
    names = [suffix for suffix, _ in SUFFIXES]
    return ", ".join(names[:-1]) + " or " + names[-1]


def format_of(path: Path, declared: str, where: str) -> str:
    """The reader's name for `path`'s format (`declared` unless "auto"); `where` names the key to set."""
    if declared != "auto":
        return declared
    name = path.name.lower()
    for suffix, fmt in SUFFIXES:
        if name.endswith(suffix):
            return fmt
    formats = ", ".join(dict.fromkeys(fmt for _, fmt in SUFFIXES))
    raise PathProblem(f"{path}: cannot tell the file format from its name; set `format:` on {where}", "format",
                      f"cannot tell the file format of {path} from its name; set `format:` ({formats})")  # fmt: skip


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in _GLOB_CHARS)


def _refuse(who: str, text: str) -> PathProblem:
    return PathProblem(f"{who}: {text}", "path", text)


def named_files(recipe: Recipe, src: SourceConfig, where: str | None = None) -> list[tuple[Path, str]]:
    """A local source's files, each with the name its rows' ids start with (readers.file_ids): its
    path under the glob's folder for a glob source (every file's line numbers start at 1, a
    source's ids must not repeat), "" for a single file, whose ids stay the reader's own numbers.
    `where`: the recipe key the errors name (an import's file is read as a copy of its source)."""
    assert src.path is not None
    who = where or f"source {src.name}"
    pattern = str(recipe.resolve(src.path))
    if is_glob(pattern):
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        if not files:
            raise _refuse(who, f"no file matches {pattern}; check `path`")
        folders = [p for p in files if p.is_dir()]
        if folders:
            raise _refuse(who, f"{pattern} matches a folder, {folders[0]}; narrow `path` so it matches files only")
        odd = [p for p in files if not p.is_file()]  # a dangling link: glob lists it, reading it fails
        if odd:
            raise _refuse(who, f"{pattern} matches {odd[0]}, which is no readable file (a broken link?); "
                               "fix or remove it, or narrow `path`")  # fmt: skip
        base = _glob_base(pattern)
        return [(p, p.relative_to(base).as_posix()) for p in files]
    path = Path(pattern)
    if path.is_dir():
        raise _refuse(who, f"{path} is a folder; point `path` at a file or a glob like {Path(src.path) / '*.jsonl'}")
    if not path.is_file():
        raise _refuse(who, f"file not found: {path}; check `path` (relative to the recipe)")
    return [(path, "")]


def local_files(recipe: Recipe, src: SourceConfig, where: str | None = None) -> list[Path]:
    return [path for path, _ in named_files(recipe, src, where)]


def _glob_base(pattern: str) -> Path:
    """The folder before a glob's first wildcard: glob.glob names every match under it, as written."""
    parts = Path(pattern).parts
    k = next(k for k, part in enumerate(parts) if is_glob(part))
    return Path(*parts[:k])


def readable_files(recipe: Recipe, src: SourceConfig, where: str | None = None) -> list[Path]:
    """local_files, refused (PathProblem) where reading would stop before a file's first row: a
    file whose format its name does not tell. An empty file is only warned about (readers.read_file)."""
    files = local_files(recipe, src, where)
    for path in files:
        if path.stat().st_size:
            format_of(path, src.format, where or f"source {src.name}")
    return files


def benchmark_file(recipe: Recipe, b: BenchmarkFile, index: int) -> tuple[Path, str] | None:
    """A decontamination benchmark's file (`path` takes no glob) and format; None when it is absent
    and `optional`. PathProblem for a folder (never "absent", even when optional), an absent file,
    a name that tells no format."""
    path = recipe.resolve(b.path)
    key = f"curate.decontaminate.benchmarks[{index}={b.name}]"
    if path.is_dir():
        text = f"{path} is a folder; point `path` at the benchmark's file in it ({suffixes_text()})"
        raise PathProblem(f"{recipe.path}: {key}.path: {text}", "path", text)
    if not path.is_file():
        if b.optional:
            return None
        raise PathProblem(f"decontaminate: benchmark {b.name}: file not found: {path}; fix `path` or set optional: true",
                          "path", f"file not found: {path}; fix `path`, or set `optional: true` to build without it "
                          "(the card then says so)")  # fmt: skip
    return path, format_of(path, b.format, key)


def import_source(src: SourceConfig, spec: ImportSpec) -> SourceConfig:
    """What an import's own file (`path`) is read as: a copy of its source (the mapping), all of it."""
    return src.model_copy(update={"path": spec.path, "format": spec.format, "limit": None, "kind": "local"})
