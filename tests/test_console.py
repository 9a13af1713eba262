"""The console that tells: no datatrove log lines, progress bars on a terminal only, the top
quarantine reasons with an example and the fix, `--quiet` and `--json`.

The sample build's own output (the session fixture, a child process) is checked for datatrove
lines; the rest runs a tiny recipe in-process (a ShareGPT file with unknown categories, a slice
of the sample's MCQ traces, no near dedupe / decontamination), a few seconds per command.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from builder.cli import app
from builder.console import StepProgress
from builder.ledger import EXPECTED, HINTS, hint_for
from tests.conftest import SampleBuild

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"

# datatrove logs through loguru: "2026-01-01 10:00:00.123 | INFO     | datatrove.…" (its task
# format), its pipeline banner, and its executor's summaries.
DATATROVE_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| \w+\s*\||datatrove\.|PIPELINE|Launching pipeline|tasks completed|📉|Stats:"
)


def datatrove_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if DATATROVE_LINE.search(line)]


def test_sample_build_prints_no_datatrove_line(sample_build: SampleBuild) -> None:
    assert datatrove_lines(sample_build.stdout) == []
    assert datatrove_lines(sample_build.stderr) == []
    # They went to the logging dirs (so the detector above can see one when it is there).
    logs = sample_build.release.parent / "curate" / "near_dedupe" / "logs"
    text = "".join(p.read_text(errors="replace") for p in logs.rglob("console.log"))
    assert datatrove_lines(text), "datatrove's task logs should be in the logging dirs' console.log"


def test_sample_build_names_every_slow_step(sample_build: SampleBuild) -> None:
    """Outside a terminal each step says when it starts (no bars in a log)."""
    out = sample_build.stdout
    for step in ("curate: near_dedupe", "curate: decontaminate", "responses: replies parsed",
                 "variants: summarizing thinking", "release: quality checks"):  # fmt: skip
        assert step in out, step
    assert not re.search(r"━+\s*\d+/\d+", out)  # no bar debris (a bar with its M/N count) in a log
    assert "expected, not a failure" in out and "r1 not answered, as expected: not_in_import" in out
    assert "failed: not_in_import" not in out


def _terminal() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=140, color_system=None), buf


def test_step_progress_draws_a_bar_with_rate_and_eta_on_a_terminal() -> None:
    con, buf = _terminal()
    with StepProgress("curate", out=con) as p:
        p("decontaminate", 0, 200)
        time.sleep(0.3)
        p("decontaminate", 120, 200)
        time.sleep(0.3)
        p("decontaminate", 160, 200)
    text = buf.getvalue()
    assert "curate: decontaminate" in text
    assert "160/200" in text and "/s" in text and "ETA" in text


def test_step_progress_draws_no_bar_outside_a_terminal() -> None:
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=False, width=140)
    with StepProgress("curate", out=con) as p:
        p("decontaminate", 0, 200)
        p("decontaminate", 200, 200)
        p("balance")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith("curate: decontaminate") and lines[1].endswith("curate: balance")


def test_hint_table_covers_the_quarantine_codes() -> None:
    assert "category_map" in hint_for("unknown_category", "chats") and "chats" in hint_for("unknown_category", "chats")
    assert hint_for("generation_failed:auth_failed", "x") == HINTS["failed:auth_failed"]
    assert hint_for("generation_failed:not_in_import", "x").startswith("expected")
    assert hint_for("no_such_reason", "x") == ""
    assert set(EXPECTED) & set(HINTS) == set()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A recipe: 4 ShareGPT rows (3 with a category no one mapped) + 12 MCQ rows with R1 traces."""
    share = tmp_path / "chats.jsonl"
    rows = [{"conversations": [{"from": "human", "value": f"Tell me about topic number {i}, briefly please."}],
             "kind": "chat" if i == 0 else "qa"} for i in range(4)]  # fmt: skip
    share.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = {
        "name": "console-test", "version": "0.1.0",
        "sources": [
            {"name": "chats", "path": str(share), "fields": {"messages": "conversations", "category": "kind"},
             "language": "en", "license": "mit"},
            {"name": "r1-mmlupro-pcmb", "path": str(SAMPLE / "pcmb_traces.jsonl"), "limit": 12,
             "fields": {"prompt": "question", "options": "options", "reference": "answer_letter", "id": "id"},
             "category": "chat", "verifier": "mcq", "language": "en", "license": "apache-2.0"},
        ],
        "curate": {"near_dedupe": {"enabled": False}, "decontaminate": {"enabled": False}},
        "generate": {"prompts_dir": str(REPO / "recipes" / "prompts"), "teachers": [{
            "name": "r1", "role": "reasoning", "kind": "import", "model": "deepseek-ai/DeepSeek-R1",
            "imports": [{"source": "r1-mmlupro-pcmb", "think": "reasoning", "answer": "answer_text"}]}]},
        "executor": {"kind": "local", "tasks": 1, "workers": 1},
    }  # fmt: skip
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _cli(*args: str | Path) -> tuple[int, str, str]:
    res = CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def test_curate_names_the_reason_an_example_and_the_fix(tiny: Path, tmp_path: Path) -> None:
    rc, out, err = _cli("curate", tiny, "--work", tmp_path / "w")
    assert rc == 0, out + err
    line = next(x for x in out.splitlines() if "rows unknown_category" in x)
    assert "chats: 3 of 4 rows unknown_category" in line
    assert re.search(r"chats\.jsonl:[234]\b", line), line  # file:line of the first such row
    assert "add `category_map`" in line and "source chats" in line


def test_json_prints_one_json_line_per_stage_and_nothing_else(tiny: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    rc, out, err = _cli("curate", tiny, "--work", work, "--json")
    assert rc == 0, out + err
    (line,) = out.splitlines()
    got = json.loads(line)
    assert got["stage"] == "curate" and got["status"] == "ok" and got["rows_in"] == 16 and got["rows_out"] == 13
    assert {"step": "read", "in": 16, "kept": 13, "dropped": {"unknown_category": 3}} in got["steps"]
    rc, out, err = _cli("generate", tiny, "--work", work, "--json")
    assert rc == 0, out + err
    (line,) = out.splitlines()
    assert json.loads(line)["stage"] == "generate"


def test_quiet_prints_only_a_final_line(tiny: Path, tmp_path: Path) -> None:
    rc, out, err = _cli("curate", tiny, "--work", tmp_path / "w", "--quiet")
    assert rc == 0, out + err
    assert out.splitlines() == [f"curate done: {tmp_path / 'w'}"]
    assert err == ""


def test_quiet_and_json_keep_errors(tmp_path: Path) -> None:
    rc, out, err = _cli("curate", tmp_path / "missing.yaml", "--work", tmp_path / "w", "--quiet")
    assert rc == 2 and out == "" and "missing.yaml" in err
    rc, out, err = _cli("curate", tmp_path / "missing.yaml", "--work", tmp_path / "w", "--json")
    (line,) = out.splitlines()
    got = json.loads(line)
    assert rc == 2 and got["status"] == "error" and "missing.yaml" in got["error"] and "missing.yaml" in err
    rc, out, _ = _cli("plan", tmp_path / "missing.yaml")  # the next command is talkative again
    assert rc == 2 and out == ""
    rc, out, _ = _cli("version")
    assert rc == 0 and out.strip()


def test_curate_reports_counts_to_its_progress_callback(tiny: Path, tmp_path: Path) -> None:
    from builder.curate.stage import run_curate
    from builder.recipe import load_recipe
    from builder.workdir import WorkDir

    heard: list[tuple[str, int | None, int | None]] = []
    run_curate(load_recipe(tiny), WorkDir(tmp_path / "w"), progress=lambda s, d=None, t=None: heard.append((s, d, t)))
    assert ("read", 2, 2) in heard  # both sources read
    assert [s for s, _, _ in heard if _ is None][:2] == ["read", "exact_dedupe"]


def _in_a_terminal(*args: str | Path) -> tuple[int, str]:
    """The CLI in a child whose stdout and stderr are a pseudo-terminal (what a user sees)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("ANSWER_DISTILL_VERBOSE", None)
    proc = subprocess.Popen([sys.executable, "-m", "builder.cli", *map(str, args)], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    rc = proc.wait(timeout=120)
    return rc, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))


def test_a_terminal_sees_bars_and_no_datatrove_line(tiny: Path, tmp_path: Path) -> None:
    """On a terminal the near-dedupe steps run datatrove tasks in this process (one task each)
    while a bar is live: their loguru lines must still go to the logging dirs, not the screen."""
    data = yaml.safe_load(tiny.read_text())
    data["curate"]["near_dedupe"] = {"enabled": True}
    tiny.write_text(yaml.safe_dump(data))
    rc, screen = _in_a_terminal("curate", tiny, "--work", tmp_path / "w")
    assert rc == 0, screen[-3000:]
    assert datatrove_lines(screen) == [], datatrove_lines(screen)[:5]
    assert re.search(r"curate: read ━+\s*\d+/2", screen)  # the bar, with its count
    assert "ETA" in screen
    logs = tmp_path / "w" / "curate" / "near_dedupe" / "logs"
    assert datatrove_lines("".join(p.read_text() for p in logs.rglob("console.log")))


def test_build_json_then_quiet(tiny: Path, tmp_path: Path) -> None:
    """`build --json`: one JSON line per stage and one for the build, nothing else on stdout;
    a second `build --quiet` (every stage unchanged) prints only its final line."""
    work = tmp_path / "w"
    rc, out, err = _cli("build", tiny, "--work", work, "--json")
    assert rc == 0, out + err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["stage"] for x in lines] == ["curate", "generate", "responses", "variants", "release", "build"]
    assert lines[1]["teachers"][0]["name"] == "r1" and lines[1]["teachers"][0]["failed"] == {"not_in_import": 1}
    assert lines[4]["counts"]["answer"] == 12 and lines[4]["version"] == "0.1.0"
    rc, out, err = _cli("build", tiny, "--work", work, "--quiet")
    assert rc == 0, out + err
    assert re.fullmatch(rf"build done in \d+\.\ds: release v0\.1\.0 in {re.escape(str(work / 'release'))}\n", out), out


def test_generation_bar_on_a_terminal_only() -> None:
    from builder.console import LiveProgress

    ev = {"teacher": "r1", "total": 50, "done": 20, "ok": 19, "failed": 1, "completion_tokens": 4000, "elapsed_s": 2.0}
    con, buf = _terminal()
    live = LiveProgress(con)
    live({**ev, "phase": "start"})
    live({**ev, "phase": "update"})
    live.bar.refresh()
    live.stop()
    assert "20/50" in buf.getvalue() and "10.0 req/s" in buf.getvalue() and "failed 1" in buf.getvalue()
    quiet = Console(file=io.StringIO(), force_terminal=False)
    live = LiveProgress(quiet)
    live({**ev, "phase": "start"})
    live({**ev, "phase": "update"})
    live.stop()
    assert quiet.file.getvalue() == ""


def test_messages_are_one_line_on_a_narrow_terminal(tmp_path: Path) -> None:
    """A warning or error naming a long path is printed whole on one line whatever the width: rich
    folded it at 80 columns ("other.jso" / "nl:1:"), so it could not be copied or grepped (CI's
    longer temporary paths broke a test that read the warning)."""
    long = tmp_path / ("d" * 90) / "other.jsonl:1:"
    code = ("from builder.console import show_warnings, err\n"
            f"show_warnings([{str(long)!r} + ' mapped field is absent'])\n"
            f"err.print('error: ' + {str(long)!r})\n")  # fmt: skip
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "40"})  # fmt: skip
    lines = res.stderr.splitlines()
    assert res.returncode == 0 and len(lines) == 2, res.stderr
    assert lines[0] == f"warning: {long} mapped field is absent" and lines[1] == f"error: {long}", res.stderr
