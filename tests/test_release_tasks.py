"""The release's shard work as datatrove tasks: two local tasks (and Ray, and a Slurm array run by
a fake `sbatch`) publish the same data files, checks and content hashes as the in-process run; a
task killed with SIGKILL is re-run for its own shards only, and no shard is written twice."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from builder.recipe import load_recipe
from builder.release.stage import fingerprint, run_release
from builder.release.staging import published
from builder.release.tasks import KILL_ENV, run_tasks
from builder.rows import stable_hash
from builder.workdir import WorkDir
from tests.fixtures.ray_local import RAY_EXECUTOR, local_ray
from tests.fixtures.slurm import fake_slurm
from tests.test_release_helpers import build_work, write_recipe

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rel-tasks")
    build_work(root / "work", n_en=12, n_zh=4, shard_rows=5)  # 4 shards a variant (original: 1)
    return root / "work"


def _recipe(path: Path, tasks: int | None, executor: str = "") -> Any:
    extra = (f"  tasks: {tasks}\n" if tasks else "") + executor
    return load_recipe(write_recipe(path, extra=extra))


def _release(base: Path, dest: Path, recipe: Any) -> Path:
    if not (dest / "work").exists():
        shutil.copytree(base, dest / "work")
    run_release(recipe, WorkDir(dest / "work"), dest / "work" / "release")  # the CLI's default folder
    return dest / "work" / "release"


def _published(out: Path) -> dict[str, Any]:
    """What must not depend on the number of tasks: every data file's bytes, the checks and
    the configs' counts and content hashes."""
    manifest = json.loads((out / "manifest.json").read_text())
    quality = json.loads((out / "quality.json").read_text())
    return {"data": {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "data").rglob("*"))
                     if p.is_file()},
            "configs": manifest["configs"], "checks": quality["checks"],
            "files": {k: v for k, v in manifest["files"].items() if k.startswith("data/")}}


@pytest.fixture(scope="module")
def one_task(base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("one")
    return _published(_release(base, root, _recipe(root / "r.yaml", None)))


def test_two_local_tasks_publish_the_same_release_as_one(one_task: dict[str, Any], base: Path, tmp_path: Path) -> None:
    assert len([k for k in one_task["data"] if k.startswith("data/answer/")]) == 4
    two = _published(_release(base, tmp_path, _recipe(tmp_path / "r.yaml", 2)))
    assert two == one_task
    assert not (tmp_path / "work" / "release-tasks").exists()  # committed: scratch removed


@pytest.mark.slow
def test_a_killed_task_reruns_only_its_own_shards(one_task: dict[str, Any], base: Path, tmp_path: Path) -> None:
    shutil.copytree(base, tmp_path / "work")
    recipe_path = write_recipe(tmp_path / "r.yaml", extra="  tasks: 2\n")
    # The first run in its own process: task 1 SIGKILLs itself right after its first shard. A local
    # pool never hears back from a killed worker, so the stuck run is then killed too (kill -9).
    code = ("from pathlib import Path; from builder.recipe import load_recipe; "
            "from builder.release.stage import run_release; "
            f"run_release(load_recipe({str(recipe_path)!r}), Path({str(tmp_path / 'work')!r}), "
            f"Path({str(tmp_path / 'work' / 'release')!r}))")  # fmt: skip
    env = {**os.environ, KILL_ENV: "1:1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    tasks = tmp_path / "work" / "release-tasks"
    deadline = time.monotonic() + 240
    while not list(tasks.glob("*/outputs/killed-1")) and proc.poll() is None:
        assert time.monotonic() < deadline, "task 1 was never killed"
        time.sleep(0.2)
    time.sleep(1.0)  # let task 0 get on with its shards
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (outputs,) = tasks.glob("*/outputs")
    parts = {p.name for p in (outputs / "parts").glob("*.pkl")}
    written = {p.relative_to(outputs).as_posix(): p.stat().st_ino for p in (outputs / "data").rglob("*.parquet")}
    assert "answer-00001.pkl" in parts and "answer-00003.pkl" not in parts  # task 1 died after its first shard
    assert not (tmp_path / "work" / "release").exists()  # nothing published
    # The tasks alone first: shards already written are left alone, the missing ones are written.
    recipe, work = load_recipe(recipe_path), WorkDir(tmp_path / "work")
    key = stable_hash(fingerprint(recipe, work), 16)
    assert run_tasks(recipe, work, published(work), 2, key).resolve() == outputs.resolve()
    again = {p.relative_to(outputs).as_posix(): p.stat().st_ino for p in (outputs / "data").rglob("*.parquet")}
    assert len(again) == sum(1 for k in one_task["data"])
    assert all(again[n] == ino for n, ino in written.items())  # never written twice
    after = _published(_release(base, tmp_path, recipe))  # every shard has its part now: the merge only
    assert after == one_task


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="pip install 'answer-distill[ray]'")
def test_release_tasks_on_a_real_local_ray_instance(one_task: dict[str, Any], base: Path, tmp_path: Path) -> None:
    with local_ray():
        executor = f"executor: {json.dumps(RAY_EXECUTOR)}\n"  # JSON is YAML
        on_ray = _published(_release(base, tmp_path, _recipe(tmp_path / "r.yaml", None, executor)))
    assert on_ray == one_task


def test_release_tasks_as_a_slurm_array_run_by_a_fake_sbatch(one_task: dict[str, Any], base: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`sbatch` runs each array index of the script it is given, as Slurm would: the real datatrove
    launch script and pickled pipeline, one index after another (see test_responses_tasks.py)."""
    calls = fake_slurm(tmp_path, monkeypatch)
    executor = "executor: {kind: slurm, tasks: 2, workers: 2, partition: cpu, poll_s: 0.1}\n"
    on_slurm = _published(_release(base, tmp_path, _recipe(tmp_path / "r.yaml", None, executor)))
    assert on_slurm == one_task
    scripts = sorted(calls.glob("*.script"))
    assert sum("#SBATCH --array=0-1" in s.read_text() for s in scripts) == 2  # two phases, two tasks each
