"""Command-line values a new or hostile user gives: an empty path, --work / --out that is a
file, a source file that is absent, a work directory another recipe built. Each is refused
before anything is written (exit 2), named in the error, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from tests.test_bad_inputs import jsonl, no_crash, one_line_error, recipe, run, src

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    (tmp_path / "ok.jsonl").write_bytes(jsonl({"q": "hello there"}, {"q": "a second question"}))
    return recipe(tmp_path, [src("s", "ok.jsonl")])


@pytest.mark.parametrize(("args", "option"), [
    (["curate", "{r}", "--work", ""], "'--work'"), (["build", "{r}", "-w", " "], "'--work'"),
    (["release", "{r}", "--out", ""], "'--out'"), (["check", "{r}", "--work", ""], "'--work'"),
    (["push", ""], "'release_dir'"),
])  # fmt: skip
def test_an_empty_path_is_refused_not_the_current_folder(tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch,
                                                         args: list[str], option: str) -> None:  # fmt: skip
    """`-w ""` (say `-w $WORK` with WORK unset) became Path("."): curate wrote curate/ into
    whatever folder the shell was in."""
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    res = CliRunner().invoke(app, [a.replace("{r}", str(small)) for a in args])
    no_crash(res.stdout + res.stderr)
    assert res.exit_code == 2 and option in res.stderr and "is empty" in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written here


def test_check_finds_what_the_build_would_hit(tmp_path: Path, small: Path) -> None:
    """`check` said "no problems found" for --work or --out that is a file, a source file that is
    absent and a recipe without teachers: each is its own problem line now, as a build fails on it."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args, needle in (
        (["--work", afile], f"{afile}: --work is a file, not a folder"),
        (["--out", afile], f"{afile}: the release folder (--out) is a file, not a folder"),
    ):
        rc, out, err = run("check", small, *args)
        no_crash(out + err)
        assert rc == 2 and needle in " ".join(err.split()), err
    gone = recipe(tmp_path, [src("s", "ok.jsonl"), src("t", "data/*.jsonl"), src("u", "missing.jsonl")], name="gone.yaml")
    rc, out, err = run("check", gone)
    text = " ".join(err.split())
    assert f"{gone}: generate: the recipe has no generate.teachers" in text, err  # a build stops at generate
    assert rc == 2 and f"sources[1=t].path: no file matches {tmp_path / 'data/*.jsonl'}" in text, err
    assert f"sources[2=u].path: file not found: {tmp_path / 'missing.jsonl'}" in text, err


@pytest.mark.parametrize("command", ["curate", "responses", "variants", "release"])
def test_a_stage_over_another_recipes_work_dir_is_refused(tmp_path: Path, small: Path, command: str) -> None:
    """`build` and `generate` refused a work dir built by another recipe, the single stages went
    on: curate replaced that build's prompts, release mixed two recipes' stages."""
    work = tmp_path / "w"
    (work / "curate").mkdir(parents=True)
    (work / "curate" / "summary.json").write_text('{"recipe": "someone-else", "recipe_sha256": "ab"}')
    one_line_error(*run(command, small, "--work", work), "--work holds recipe 'someone-else''s build", "not 'bad-inputs''s")
    assert sorted(p.name for p in work.iterdir()) == ["curate"]


def test_push_of_what_is_not_a_release_says_so(tmp_path: Path, small: Path) -> None:
    """A mistyped release folder was answered "the release names no repo id; pass --repo", which
    sends the user after the wrong fix."""
    (tmp_path / "empty").mkdir()
    for path, what in ((tmp_path / "nope", "does not exist"), (small, "is a file, not a folder"),
                       (tmp_path / "empty", "holds no readable manifest.json")):  # fmt: skip
        line = one_line_error(*run("push", path, env={"HF_TOKEN": ""}), f"{path}: {what}")
        assert "repo id" not in line


def test_check_takes_an_import_glob_as_the_reader_does(tmp_path: Path, small: Path) -> None:
    """An import `path` that is a glob (the reader takes one) was "file not found" to check, so
    build and generate refused a recipe that would have run."""
    (tmp_path / "replies-1.jsonl").write_bytes(jsonl({"id": "1", "a": "yes"}))
    teacher = {"name": "r1", "kind": "import", "model": "m",
               "imports": [{"source": "s", "path": "replies-*.jsonl", "id_field": "id", "answer": "a"}]}
    gen = {"teachers": [teacher], "prompts_dir": str(ROOT / "recipes" / "prompts")}  # an import is stamped `plain`
    path = recipe(tmp_path, [src("s", "ok.jsonl")], name="glob.yaml", generate=gen)
    rc, out, err = run("check", path)
    assert rc == 0 and "check: no problems found" in out, err
    teacher["imports"][0]["path"] = "answers-*.jsonl"
    path = recipe(tmp_path, [src("s", "ok.jsonl")], name="glob.yaml", generate=gen)
    rc, out, err = run("check", path)
    assert rc == 2 and f"imports[0].path: no file matches {tmp_path / 'answers-*.jsonl'}" in " ".join(err.split()), err


def test_a_csv_cell_over_128_kib_is_a_row_not_a_crash(tmp_path: Path) -> None:
    """The csv module's 128 KiB cell limit raised _csv.Error out of curate ("internal error");
    the long row is now read and quarantined as too long, the others kept."""
    import pyarrow.parquet as pq

    (tmp_path / "big.csv").write_text('q\n"' + "word " * 60_000 + '"\nA short question?\n')
    path = recipe(tmp_path, [src("s", "big.csv")])
    rc, out, err = run("curate", path, "--work", tmp_path / "w")
    no_crash(out + err)
    assert rc == 0, err
    read = [r for r in pq.read_table(tmp_path / "w/curate/ledger.parquet").to_pylist() if r["step"] == "read"]
    assert sorted((r["status"], r["reason"]) for r in read) == [("kept", ""), ("quarantined", "too_long")]
    assert [r["location"] for r in read if r["status"] == "quarantined"] == [f"{tmp_path / 'big.csv'}:2"]


@pytest.mark.parametrize("summary", [False, True], ids=["generate-template", "summary-template"])
@pytest.mark.parametrize(("body", "needle"), [
    (b"id: t\nversion: v2\nsystem: null\nsuffix: ''\nuser: '{question} {thinking}'\n", "version 'v2' must be a whole number"),
    (b"id: t\nversion: [1]\nsystem: null\nsuffix: ''\nuser: '{question} {thinking}'\n", "version [1] must be a whole number"),
    (b"id: t\nversion: 1\nsystem: 'caf\xe9'\nsuffix: ''\nuser: '{question} {thinking}'\n", "cannot read"),
], ids=["version-text", "version-list", "latin-1"])  # fmt: skip
def test_a_hostile_prompt_template_is_one_line(tmp_path: Path, summary: bool, body: bytes, needle: str) -> None:
    """A template's `version` went through int() and a Latin-1 file raised UnicodeDecodeError
    (a ValueError, not the OSError caught): both were an "internal error" out of generate / variants."""
    from builder.errors import UserError
    from builder.teachers.prompting import load_template
    from builder.variants.llm_summary import load_summary_template

    path = tmp_path / "t.yaml"
    drop = b"suffix: ''\n" if summary else b"user: '{question} {thinking}'\n"  # the keys each kind has
    path.write_bytes(body.replace(drop, b""))
    with pytest.raises(UserError, match=re.escape(needle)) as e:
        (load_summary_template if summary else load_template)(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_lock_path_that_is_a_folder_is_one_line(tmp_path: Path, small: Path) -> None:
    """`W/.lock` made a folder (a copy tool, a hand): os.open raised IsADirectoryError, an
    "internal error"; a lock file holding garbage is simply taken over."""
    (tmp_path / "w" / ".lock").mkdir(parents=True)
    one_line_error(*run("curate", small, "--work", tmp_path / "w"), f"{tmp_path / 'w' / '.lock'}: is a folder")
    (tmp_path / "w2").mkdir()
    (tmp_path / "w2" / ".lock").write_bytes(b"garbage\x00\xff")
    rc, out, err = run("curate", small, "--work", tmp_path / "w2")
    assert rc == 0, err


def test_a_source_none_of_whose_rows_is_usable_is_said_even_quiet(tmp_path: Path, small: Path) -> None:
    """A `fields:` typo quarantined every row of a source (missing_field): under --quiet curate
    printed only "curate done"; with no other source it wrote 0 prompts and exited 0."""
    (tmp_path / "other.jsonl").write_bytes(jsonl({"question": "where is the prompt?"}))
    both = recipe(tmp_path, [src("s", "ok.jsonl"), src("t", "other.jsonl")], name="both.yaml")
    rc, out, err = run("curate", both, "--work", tmp_path / "w", "--quiet")
    assert rc == 0 and (f"warning: source t: all 1 rows quarantined (1 missing_field, e.g. {tmp_path / 'other.jsonl'}:1: "
                        "mapped field `q` is absent); check its `fields:` mapping") in " ".join(err.split()), err
    alone = recipe(tmp_path, [src("t", "other.jsonl")], name="alone.yaml")
    one_line_error(*run("curate", alone, "--work", tmp_path / "w2"), "alone.yaml: the sources yielded 1 rows and none "
                   "could be used (source t: all 1 rows quarantined")  # fmt: skip
    assert not (tmp_path / "w2" / "curate" / "prompts").exists()


def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path: Path, small: Path) -> None:
    """A path part over 255 bytes (a pasted glob, a generated name): ENAMETOOLONG escaped as an
    "internal error" from a source path, --work and the recipe path alike."""
    long = "x" * 300
    bad_source = recipe(tmp_path, [src("s", f"{long}.jsonl")], name="long.yaml")
    for args in (["curate", bad_source, "--work", tmp_path / "w"], ["curate", small, "--work", tmp_path / long],
                 ["check", tmp_path / f"{long}.yaml"]):  # fmt: skip
        one_line_error(*run(*args), "File name too long; a name in the path is longer than the file system allows")


def test_a_manifest_that_is_not_an_object_is_no_release(tmp_path: Path) -> None:
    """manifest.json holding a JSON list: `release --previous` (and the search for the previous
    release among --out's siblings, and push) called .get() on it, an AttributeError."""
    from builder.errors import UserError
    from builder.release.versions import find_previous

    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "manifest.json").write_text("[1]")
    with pytest.raises(UserError, match=f"{odd}: --previous is not a release folder \\(no readable manifest.json\\)"):
        find_previous(tmp_path / "out", "r", "0.2.0", odd)
    assert find_previous(tmp_path / "out", "r", "0.2.0") is None  # the sibling is skipped, not a crash
    line = one_line_error(*run("push", odd, "--repo", "org/name", env={"HF_TOKEN": "x"}), f"{odd}")
    assert "not a verified release" in line
