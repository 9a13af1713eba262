"""`check` resolves a source's (or an import's) `path` with the readers' own functions: a glob that
curate would stop at is a problem line, in curate's words; what curate reads is no problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.check import run_check
from builder.recipe import load_recipe
from tests.test_bad_inputs import jsonl, no_crash, one_line_error, recipe, run, src

ROOT = Path(__file__).resolve().parents[1]


def _data(tmp: Path, case: str) -> None:
    (tmp / "data").mkdir()
    (tmp / "data" / "a.jsonl").write_bytes(jsonl({"id": "1", "q": "What is two plus two?"}))
    if case == "folder":
        (tmp / "data" / "old.jsonl").mkdir()
    elif case == "other format":
        (tmp / "data" / "notes.txt").write_text("read me first\n")
    elif case == "broken link":
        os.symlink(tmp / "gone.jsonl", tmp / "data" / "b.jsonl")


@pytest.mark.parametrize(("case", "pattern", "key", "said"), [
    ("folder", "data/*.jsonl", "path", "{tmp}/data/*.jsonl matches a folder, {tmp}/data/old.jsonl; narrow `path`"),
    ("other format", "data/*", "format", "cannot tell the file format of {tmp}/data/notes.txt from its name"),
    ("broken link", "data/*.jsonl", "path", "{tmp}/data/*.jsonl matches {tmp}/data/b.jsonl, which is no readable file"),
])  # fmt: skip
def test_check_says_what_curate_stops_at(tmp_path: Path, case: str, pattern: str, key: str, said: str) -> None:
    """A glob matching a folder or a README passed check ("no problems found": one file matched) and
    the paid build stopped at curate; a dangling link in the glob was curate's internal error."""
    _data(tmp_path, case)
    said = said.format(tmp=tmp_path)
    path = recipe(tmp_path, [src("s", pattern)])
    problems = run_check(load_recipe(path)).problems
    assert [p for p in problems if f"sources[0=s].{key}: {said}" in p], problems
    line = one_line_error(*run("curate", path, "--work", tmp_path / "w"), "source s")
    if key == "path":  # the same words as check's
        assert said in line, line
    else:  # it names the source to set `format:` on, as check does
        assert f"{tmp_path}/data/notes.txt: cannot tell the file format from its name; set `format:` on source s" in line


def test_an_empty_file_of_any_name_in_a_glob_is_no_problem(tmp_path: Path) -> None:
    """curate only warns about an empty file (whatever its name), so check does not refuse it."""
    _data(tmp_path, "")
    (tmp_path / "data" / "NOTES").write_bytes(b"")
    path = recipe(tmp_path, [src("s", "data/*")])
    assert not [p for p in run_check(load_recipe(path)).problems if "sources[0=s]" in p]
    rc, out, err = run("curate", path, "--work", tmp_path / "w")
    no_crash(out + err)
    assert rc == 0 and "NOTES is empty" in " ".join((out + err).split()), err


def test_an_import_glob_with_a_file_of_another_format_is_a_problem(tmp_path: Path) -> None:
    _data(tmp_path, "")
    (tmp_path / "replies").mkdir()
    (tmp_path / "replies" / "r.jsonl").write_bytes(jsonl({"id": "1", "a": "4"}))
    (tmp_path / "replies" / "r.md").write_text("# replies\n")
    teacher = {"name": "r1", "kind": "import", "model": "m",
               "imports": [{"source": "s", "path": "replies/*", "id_field": "id", "answer": "a"}]}
    gen = {"teachers": [teacher], "prompts_dir": str(ROOT / "recipes" / "prompts")}
    path = recipe(tmp_path, [src("s", "data/a.jsonl")], generate=gen)
    problems = run_check(load_recipe(path)).problems
    assert [p for p in problems if "generate.teachers[r1].imports[0].format: cannot tell the file format of "
            f"{tmp_path}/replies/r.md" in p], problems  # fmt: skip
