"""A command line Click refuses (a missing or extra argument, an unknown option, an option without
its value, an empty path) printed Click's boxed usage block over five or more lines; the repo's
rule is one line that says what is wrong and where the options are listed, exit 2. `--help` and
the help a bare `answer-distill` prints stay Click's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from tests.test_bad_inputs import ENV, cli, one_line_error, run

SAMPLE = "recipes/sample.yaml"


@pytest.mark.parametrize(("args", "needle", "command"), [
    (["curate"], "missing argument 'recipe'", "curate"),
    (["curate", SAMPLE, "extra.yaml"], "got unexpected extra argument", "curate"),
    (["build", SAMPLE, "--bogus"], "no such option: --bogus", "build"),
    (["release", SAMPLE, "--wrk", "w"], "no such option: --wrk", "release"),
    (["curate", SAMPLE, "-w"], "option '-w' requires an argument", "curate"),
    (["push", "rel", "--private=3"], "option '--private' does not take a value", "push"),
    (["check", SAMPLE, "--out", ""], "is empty; pass a path", "check"),
    (["publish", SAMPLE], "no such command 'publish'", ""),
    (["--bogus"], "no such option: --bogus", ""),
])  # fmt: skip
def test_a_usage_error_is_one_line(args: list[str], needle: str, command: str) -> None:
    rc, out, err = run(*args)
    where = f"answer-distill {command}".strip()
    line = one_line_error(rc, out, err, needle, f"see `{where} --help`")
    assert line.startswith(f"error: {where}: "), line
    assert "╭" not in err and "Usage:" not in err and "Try '" not in err


def test_the_entry_point_prints_the_same_line() -> None:
    """The real `python -m builder.cli` (its program name in the line, not `answer-distill`)."""
    done = cli("generate", SAMPLE, "--workdir", "w")
    one_line_error(done.returncode, done.stdout, done.stderr, "generate: no such option: --workdir",
                   "see `python -m builder.cli generate --help`")


def test_json_mode_gets_its_error_line() -> None:
    """`--json` promises `{"status": "error", …}` on stdout for CI logs: a usage error too."""
    rc, out, err = run("variants", "--json", SAMPLE, "--quiet", "x")
    one_line_error(rc, out, err, "got unexpected extra argument")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["stage"] == "variants" and row["status"] == "error" and "extra argument" in row["error"]


@pytest.mark.parametrize("args", [["--help"], ["curate", "--help"], ["push", "--help"]])
def test_help_is_still_clicks(args: list[str]) -> None:
    res = CliRunner(env={"COLUMNS": "100"}).invoke(app, args)
    assert res.exit_code == 0 and "Usage:" in res.stdout and "--help" in res.stdout and not res.stderr
    assert "Options" in res.stdout


def test_no_arguments_prints_the_help(tmp_path: Path) -> None:
    done = cli(env={**ENV})
    assert done.returncode == 2 and "Usage:" in done.stdout + done.stderr and "curate" in done.stdout + done.stderr
    assert "error:" not in done.stderr
