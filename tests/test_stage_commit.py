"""Stage outputs appear whole or not at all, one run holds a work directory, and a rebuild of
an unchanged recipe does nothing (stage fingerprints)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from builder import tables
from builder.errors import UserError
from builder.rows import PROMPT_FEATURES
from builder.workdir import MARKER, WorkDir
from builder.worklock import work_lock

ROOT = Path(__file__).resolve().parents[1]


def _cols(n: int) -> dict[str, list[object]]:
    cols: dict[str, list[object]] = {k: [None] * n for k in PROMPT_FEATURES}
    cols["prompt_id"] = [f"p{i}" for i in range(n)]
    cols["messages"] = [[{"role": "user", "content": f"q{i}"}] for i in range(n)]
    return cols


def test_a_committed_run_replaces_the_old_outputs_whole(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    with work.stage_run("curate", {"v": 1}):
        work.write_columns(tables.PROMPTS, _cols(3))
        assert not (tmp_path / "curate" / "prompts").exists()  # staged, not yet visible
    assert pq.read_table(work.require(tables.PROMPTS)).num_rows == 3
    first = work.marker("curate")
    assert first is not None and first["outputs"] == ["curate/prompts"] and first["fingerprint"] == {"v": 1}
    with work.stage_run("curate", {"v": 2}):
        work.write_columns(tables.PROMPTS, _cols(5))
    assert pq.read_table(work.require(tables.PROMPTS)).num_rows == 5
    assert work.marker("curate")["digest"] != first["digest"]  # type: ignore[index]
    assert not list((tmp_path / ".staging").iterdir()) and not (tmp_path / ".trash").exists()


def test_a_failed_run_leaves_the_previous_outputs_and_marker(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    with work.stage_run("curate"):
        work.write_columns(tables.PROMPTS, _cols(3))
    before = work.marker("curate")
    with pytest.raises(RuntimeError), work.stage_run("curate"):
        work.write_columns(tables.PROMPTS, _cols(7))
        raise RuntimeError("killed mid-stage")
    assert work.marker("curate") == before
    assert pq.read_table(work.require(tables.PROMPTS)).num_rows == 3


def test_no_marker_means_never_read(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    work.write_columns(tables.PROMPTS, _cols(2))  # outputs present, but no finished run said so
    with pytest.raises(UserError, match=r"the curate stage has not finished here .*run `answer-distill curate` first"):
        work.require(tables.PROMPTS)
    # A kill between the old marker's removal and the new one's write looks the same.
    work.mark_complete("curate")
    (tmp_path / "curate" / MARKER).unlink()
    with pytest.raises(UserError, match="has not finished"):
        work.require(tables.PROMPTS)


def test_a_killed_runs_staging_is_cleaned_by_the_next_run(tmp_path: Path) -> None:
    stale = tmp_path / ".staging" / "curate-999-abc" / "curate" / "prompts"
    stale.mkdir(parents=True)
    (stale / "part-00000.parquet").write_bytes(b"half")
    work = WorkDir(tmp_path)
    with work.stage_run("curate"):
        work.write_columns(tables.PROMPTS, _cols(1))
    assert not (tmp_path / ".staging" / "curate-999-abc").exists()


def test_a_second_run_on_the_same_work_dir_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from builder.worklock import work_lock\n"
        f"with work_lock(Path({str(tmp_path)!r})):\n    print('held', flush=True); time.sleep(30)\n")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=rf"another answer-distill run is using this work directory \(pid {holder.pid}"), \
                work_lock(tmp_path):  # fmt: skip
            pass
    finally:
        holder.kill()
        holder.wait()
    with work_lock(tmp_path):  # the kernel released it with the process
        pass


def test_rebuilding_an_unchanged_recipe_does_nothing_and_a_changed_one_asks_for_a_bump(tmp_path: Path) -> None:
    work = tmp_path / "w"
    cmd = [sys.executable, "-m", "builder.cli", "build"]
    env = {"COLUMNS": "300", "PATH": ""}
    first = subprocess.run([*cmd, str(ROOT / "recipes/sample.yaml"), "--work", str(work)], capture_output=True,
                           text=True, timeout=300, cwd=ROOT, env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    # datatrove's per-task console logging goes to the tasks' log files, not the console.
    assert "datatrove" not in first.stdout + first.stderr and "PIPELINE" not in first.stderr
    again = subprocess.run([*cmd, str(ROOT / "recipes/sample.yaml"), "--work", str(work)], capture_output=True,
                           text=True, timeout=300, cwd=ROOT, env=env)  # fmt: skip
    assert again.returncode == 0, again.stderr
    for stage in ("curate", "responses", "variants"):
        assert f"{stage}: unchanged since its last run" in again.stdout
    assert "already holds this exact release; nothing to do" in again.stdout
    changed = ROOT / "recipes" / f"_test_changed_{tmp_path.name}.yaml"
    text = (ROOT / "recipes/sample.yaml").read_text().replace("\nquality:", "\nvariants:\n  summarizer: {max_ratio: 0.3}\n\nquality:", 1)
    changed.write_text(text)
    try:
        third = subprocess.run([*cmd, str(changed), "--work", str(work)], capture_output=True, text=True,
                               timeout=300, cwd=ROOT, env=env)  # fmt: skip
    finally:
        changed.unlink()
    assert third.returncode == 2 and "curate: unchanged" in third.stdout and "variants: unchanged" not in third.stdout
    errors = [ln for ln in third.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "bump `version`" in errors[0]
    # `check` said so before the stages ran (a warning: whether the rows change is not known then).
    assert "already holds v0.1.0 built from another edit of the recipe" in third.stderr


def test_a_forked_child_that_outlives_the_holder_does_not_keep_the_lock(tmp_path: Path) -> None:
    # datatrove forks helpers (a multiprocessing Manager) that survive a kill -9 of the command.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import os, sys, time; from pathlib import Path; from builder.worklock import work_lock\n"
        f"with work_lock(Path({str(tmp_path)!r})):\n"
        "    if os.fork() == 0:\n        time.sleep(20); os._exit(0)\n"
        "    print('held', flush=True); time.sleep(30)\n")], stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()  # the parent only: its forked child lives on
    holder.wait()
    with work_lock(tmp_path):
        pass


def test_an_unpinned_hub_source_is_never_up_to_date(tmp_path: Path) -> None:
    from builder.curate.stage import fingerprint
    from builder.recipe import Recipe

    def recipe(revision: str | None) -> Recipe:
        return Recipe.model_validate({"name": "r", "version": "0.1.0", "sources": [
            {"name": "h", "kind": "hf", "dataset": "org/set", "revision": revision, "fields": {"prompt": "q"}}]})

    work = WorkDir(tmp_path)
    assert fingerprint(recipe("abc123"), work) == fingerprint(recipe("abc123"), work)  # pinned: stable
    assert fingerprint(recipe(None), work) != fingerprint(recipe(None), work)  # unpinned: may have moved
