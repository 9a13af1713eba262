"""The variants stage as datatrove tasks over prompt_id buckets: one and two local tasks (and Ray,
and a Slurm array run by a fake `sbatch`) write the same rows, ledger and figures as the
in-process run; a task killed with SIGKILL is re-run for the buckets still missing only, and no bucket
output is written twice."""

from __future__ import annotations

import contextlib
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

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder.ledger import LedgerMismatch
from builder.variants import stage
from builder.variants.merge import BucketStats
from builder.variants.stage import TASKS, fingerprint, run_variants
from builder.variants.tasks import KILL_ENV
from builder.workdir import WorkDir
from tests.fixtures.ray_local import RAY_EXECUTOR, local_ray
from tests.fixtures.slurm import fake_slurm
from tests.fixtures.stages import responded_inputs, sample_recipe

BUILD = ["original", "answer", "think_summary", "full", "control", "pairs", "adaptive"]
BUCKET_ROWS = 40  # the sample's curated prompts in several buckets
TABLES = [*BUILD]
FIGURES = ("counts", "absent", "overthinking_histogram", "summary_quality", "format_survival", "adaptive_mix",
           "adaptive_reasons")  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return responded_inputs(tmp_path_factory.mktemp("var-tasks") / "seed", tmp_path_factory.mktemp("var-tasks-base"))


def _recipe(tasks: int, executor: dict[str, Any] | None = None, bucket_rows: int = BUCKET_ROWS) -> Any:
    return sample_recipe(variants={"build": BUILD, "bucket_rows": bucket_rows, "tasks": tasks, "shard_rows": 50},
                         executor=executor or {"kind": "local", "tasks": tasks})  # fmt: skip


def _outputs(work: Path) -> dict[str, Any]:
    out = work / "variants"
    got: dict[str, Any] = {}
    for name in TABLES:
        files = sorted((out / name).glob("part-*.parquet"))
        got[name] = [f.name for f in files], pa.concat_tables([pq.read_table(f) for f in files])
    got["ledger"] = pq.read_table(out / "ledger.parquet")
    summary = json.loads((out / "summary.json").read_text())
    got["figures"] = {k: summary[k] for k in FIGURES}
    return got


def _n_prompts(base: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in (base / "curate" / "prompts").glob("part-*.parquet"))


def _run(base: Path, dest: Path, recipe: Any) -> dict[str, Any]:
    if not dest.exists():
        shutil.copytree(base, dest)
    run_variants(recipe, WorkDir(dest))
    return _outputs(dest)


@pytest.fixture(scope="module")
def one_task(base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(base, tmp_path_factory.mktemp("one") / "w", _recipe(1))


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for name in TABLES:
        assert a[name][0] == b[name][0], name  # the same shards
        assert a[name][1].num_rows == b[name][1].num_rows, name
        assert a[name][1].equals(b[name][1]), name
    assert a["ledger"].equals(b["ledger"])
    assert json.dumps(a["figures"]) == json.dumps(b["figures"])  # values and key order


def test_two_local_tasks_write_the_same_rows_as_one(one_task: dict[str, Any], base: Path, tmp_path: Path) -> None:
    assert _n_prompts(base) > 3 * BUCKET_ROWS  # several buckets, so two tasks share them
    assert len(one_task["answer"][0]) > 1 and one_task["pairs"][1].num_rows  # several shards; pairs exist
    assert one_task["figures"]["summary_quality"]["scored"] and one_task["figures"]["adaptive_mix"]
    two = _run(base, tmp_path / "w", _recipe(2))
    _same(one_task, two)
    assert not (tmp_path / "w" / "variants" / TASKS).exists()  # committed: the task outputs are gone


@pytest.mark.slow
def test_the_comparison_sees_another_bucket_layout(one_task: dict[str, Any], base: Path, tmp_path: Path) -> None:
    """Not a tautology: another bucket count orders rows differently, and `_same` would see it."""
    other = _run(base, tmp_path / "w", _recipe(1, bucket_rows=BUCKET_ROWS * 2))
    assert not other["answer"][1].equals(one_task["answer"][1])
    assert sorted(other["answer"][1]["prompt_id"].to_pylist()) == sorted(one_task["answer"][1]["prompt_id"].to_pylist())


def test_a_bucket_without_its_output_or_with_a_row_too_few_fails_the_merge(base: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    work = tmp_path / "w"
    shutil.copytree(base, work)
    recipe, wd = _recipe(2), WorkDir(work)
    key = stage.stable_hash(fingerprint(recipe, wd), 16)
    real = stage.read_bucket
    lost: list[Path] = []

    def damage_then_read(d: Path, *args: Any) -> BucketStats:
        if d.name == "00001":  # the merge takes it once it has landed: damaged in between
            st = BucketStats.load(d)
            st.steps = [(s, i + (s == "answer"), kept, dropped) for s, i, kept, dropped in st.steps]  # one more "entered"
            st.save(d)
            lost.append(d)
        return real(d, *args)

    monkeypatch.setattr(stage, "read_bucket", damage_then_read)
    with pytest.raises(LedgerMismatch, match="answer"):
        run_variants(recipe, wd)
    assert lost and not (work / "variants" / "_COMPLETE.json").exists()
    shutil.rmtree(lost[0])  # now the bucket's output is missing: named, never silently skipped
    scratch = work / "variants" / TASKS / key / "outputs"
    assert scratch.is_dir()
    from builder.variants.merge import read_bucket

    with pytest.raises(RuntimeError, match="00001: the variants task"):
        read_bucket(scratch / "00001", {}, stage.Ledger("variants"))


@pytest.mark.slow
def test_a_killed_task_run_again_builds_only_the_missing_buckets(one_task: dict[str, Any], base: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    work = tmp_path / "w"
    shutil.copytree(base, work)
    # The first run in its own process: task 1 SIGKILLs itself right after its first bucket. The run
    # fails on it (or would hang); either way the whole run is then killed too (kill -9).
    code = ("from tests.test_variants_tasks import _recipe; from builder.workdir import WorkDir; "
            f"from builder.variants.stage import run_variants; run_variants(_recipe(2), WorkDir({str(work)!r}))")  # fmt: skip
    env = {**os.environ, KILL_ENV: "1:1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while not list((work / "variants" / TASKS).glob("*/outputs/killed-1")) and proc.poll() is None:
        assert time.monotonic() < deadline, "task 1 was never killed"
        time.sleep(0.2)
    time.sleep(1.0)  # let task 0 get on with its buckets
    with contextlib.suppress(ProcessLookupError):  # the run may have failed on the kill already (executors' watch)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (outputs,) = (work / "variants" / TASKS).glob("*/outputs")
    written = {p.name: p.stat().st_ino for p in outputs.iterdir() if p.is_dir() and not p.name.startswith(".")}
    # Task 1 died after its first bucket; task 0 may have taken its others since (builder/task_claims.py).
    assert "00001" in written
    assert not (work / "variants" / "_COMPLETE.json").exists()  # nothing committed
    real, again = stage._run_tasks, {}

    def tasks_then_look(plan: Any, w: WorkDir, n: int, k: str) -> Path:
        scratch = real(plan, w, n, k)
        again.update({p.name: p.stat().st_ino for p in scratch.iterdir() if p.is_dir() and not p.name.startswith(".")})
        return scratch

    monkeypatch.setattr(stage, "_run_tasks", tasks_then_look)
    after = _run(base, work, _recipe(2))  # re-run: only the missing buckets are built, then the merge
    assert sorted(again) == [f"{i:05d}" for i in range(-(-_n_prompts(base) // BUCKET_ROWS))]  # every bucket
    assert all(again[n] == ino for n, ino in written.items())  # those written before the kill: never written twice
    _same(one_task, after)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="pip install 'answer-distill[ray]'")
def test_variants_on_a_real_local_ray_instance(one_task: dict[str, Any], base: Path, tmp_path: Path) -> None:
    with local_ray():
        on_ray = _run(base, tmp_path / "w", _recipe(2, RAY_EXECUTOR))
    _same(one_task, on_ray)


def test_variants_as_a_slurm_array_run_by_a_fake_sbatch(one_task: dict[str, Any], base: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    calls = fake_slurm(tmp_path, monkeypatch)
    cfg = {"kind": "slurm", "tasks": 2, "workers": 2, "partition": "cpu", "poll_s": 0.1}
    on_slurm = _run(base, tmp_path / "w", _recipe(2, cfg))
    _same(one_task, on_slurm)
    assert "#SBATCH --array=0-1" in (calls / "0.script").read_text()


def test_the_partition_is_the_same_split_side_by_side_or_one_after_another(base: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from builder.variants import buckets

    n = -(-_n_prompts(base) // BUCKET_ROWS)
    got = {}
    for cores in (1, 3):  # one core: the three tables one after another; three: in threads
        monkeypatch.setattr(buckets, "usable_cores", lambda c=cores: c)
        folder = tmp_path / f"p{cores}"
        buckets.partition(WorkDir(base), n, folder, pairs=True)
        got[cores] = {f.relative_to(folder).as_posix(): pq.read_table(f) for f in sorted(folder.rglob("*.parquet"))}
        assert (folder / buckets.DONE).is_file()
    assert len(got[1]) == 3 * n and list(got[1]) == list(got[3])  # every bucket of every table
    assert all(got[1][k].equals(got[3][k]) for k in got[1])
    assert sum(t.num_rows for k, t in got[1].items() if k.startswith("prompts/")) == _n_prompts(base)
