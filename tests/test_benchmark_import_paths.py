"""A benchmark or an import file named by a path that is a folder, absent, or of a format its name
does not tell: the line names the recipe key to fix (the benchmark's or the import's), never
"file not found" for a folder, never "source X … set `format:` on the source" for an import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder.check import run_check
from builder.errors import UserError
from builder.recipe import load_recipe
from tests.test_bad_inputs import jsonl, one_line_error, recipe, run, src

ROOT = Path(__file__).resolve().parents[1]


def _recipe(tmp: Path, bench: dict[str, Any] | None = None, imp: dict[str, Any] | None = None) -> Path:
    (tmp / "ok.jsonl").write_bytes(jsonl({"id": "1", "q": "What is two plus two?"}, {"id": "2", "q": "Name a prime."}))
    (tmp / "gpqa").mkdir(exist_ok=True)
    (tmp / "gpqa" / "gpqa.jsonl").write_bytes(jsonl({"id": "b1", "question": "What is two plus two?"}))
    extra: dict[str, Any] = {}
    if bench is not None:
        extra["curate"] = {"near_dedupe": {"enabled": False}, "decontaminate": {"benchmarks": [
            {"name": "gpqa", "text_fields": ["question"], "id_field": "id", **bench}]}}
    if imp is not None:
        extra["generate"] = {"prompts_dir": str(ROOT / "recipes/prompts"), "teachers": [
            {"name": "r1", "kind": "import", "model": "m",
             "imports": [{"source": "s", "id_field": "id", "answer": "a", **imp}]}]}  # fmt: skip
    return recipe(tmp, [src("s", "ok.jsonl", id="id")], **extra)


@pytest.mark.parametrize("optional", [False, True])
def test_a_benchmark_folder_is_said_to_be_a_folder(tmp_path: Path, optional: bool) -> None:
    """GPQA passed as its download folder was "file not found: …/gpqa" (the folder is right there),
    and with `optional: true` it was skipped as "file absent": decontamination silently lost."""
    path = _recipe(tmp_path, bench={"path": "gpqa", "optional": optional})
    key = "curate.decontaminate.benchmarks[0=gpqa].path"
    wanted = f"{tmp_path / 'gpqa'} is a folder; point `path` at"
    one_line_error(*run("curate", path, "--work", tmp_path / "w"), key, wanted, "the benchmark's file in it")
    report = run_check(load_recipe(path))
    assert report.skipped_benchmarks == []
    assert [p for p in report.problems if key in p and wanted in p], report.problems


def test_a_benchmark_of_unknown_format_names_the_benchmark(tmp_path: Path) -> None:
    """bench.txt: curate said "set `format:` on the source" (there is no such source) and check found
    nothing, so a paid build would stop at curate."""
    (tmp_path / "bench.txt").write_bytes(jsonl({"id": "b1", "question": "What is two plus two?"}))
    path = _recipe(tmp_path, bench={"path": "bench.txt"})
    line = one_line_error(*run("curate", path, "--work", tmp_path / "w"),
                          "set `format:` on curate.decontaminate.benchmarks[0=gpqa]")  # fmt: skip
    assert "the source" not in line
    problems = run_check(load_recipe(path)).problems
    assert [p for p in problems if "curate.decontaminate.benchmarks[0=gpqa].format: cannot tell the file format" in p]


@pytest.mark.parametrize(("name", "make", "needle"), [
    ("replies", "dir", "replies is a folder; point `path` at a file or a glob like replies/*.jsonl"),
    ("nope.jsonl", None, "file not found:"),
    ("replies.txt", "file", "cannot tell the file format from its name; set `format:` on generate.teachers[r1].imports[0]"),
    ("replies-*.jsonl", None, "no file matches"),
])  # fmt: skip
def test_an_import_path_error_names_the_import(tmp_path: Path, name: str, make: str | None, needle: str) -> None:
    """The import's own file was read as a copy of its source, so its errors read "source s: file not
    found …" and "set `format:` on the source": the user fixed the source, which was fine."""
    from builder.generate.stage import run_generate
    from builder.workdir import WorkDir

    if make == "dir":
        (tmp_path / name).mkdir()
        (tmp_path / name / "r.jsonl").write_bytes(jsonl({"id": "1", "a": "4"}))
    elif make == "file":
        (tmp_path / name).write_bytes(jsonl({"id": "1", "a": "4"}))
    path = _recipe(tmp_path, imp={"path": name})
    rc, out, err = run("curate", path, "--work", tmp_path / "w")
    assert rc == 0, err
    with pytest.raises(UserError) as e:  # the stage itself, as a run that skipped `check` meets it
        run_generate(load_recipe(path), WorkDir(tmp_path / "w"))
    line = str(e.value)
    assert needle in line and "generate.teachers[r1].imports[0]" in line and "source s" not in line, line
    key = "generate.teachers[r1].imports[0]." + ("format" if make == "file" else "path")
    assert [p for p in run_check(load_recipe(path)).problems if key in p], key


def test_a_benchmark_folder_names_every_file_name_the_readers_take(tmp_path: Path) -> None:
    """The folder message listed ".jsonl, .json, .parquet or .csv": a user with .jsonl.gz or .ndjson
    files took them for unreadable, though the readers take both."""
    from builder.sources.paths import format_of

    taken = (".jsonl", ".jsonl.gz", ".ndjson", ".json", ".parquet", ".csv")
    assert all(format_of(Path(f"x{s}"), "auto", "-") for s in taken)  # each one a name the readers read
    path = _recipe(tmp_path, bench={"path": "gpqa"})
    line = one_line_error(*run("curate", path, "--work", tmp_path / "w"), "is a folder")
    (problem,) = [p for p in run_check(load_recipe(path)).problems if "is a folder" in p]
    for said in (line, problem):
        assert all(f"{s}," in said or f"{s} or" in said or f"or {s})" in said for s in taken), said
