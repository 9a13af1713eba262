"""The responses stage as datatrove tasks: two local tasks (and Ray, and a Slurm array run by a
fake `sbatch`) write the same rows as one in-process run; a task killed with SIGKILL is re-run
for the units (row groups of reply shards) still missing only, and no unit output is written twice."""

from __future__ import annotations

import contextlib
import importlib.util
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

from builder import tables
from builder.responses.stage import _run_tasks, fingerprint, run_responses
from builder.responses.tasks import KILL_ENV, Unit, unit_batches, units_of
from builder.rows import stable_hash
from builder.workdir import WorkDir
from tests.fixtures.ray_local import RAY_EXECUTOR, local_ray
from tests.fixtures.slurm import fake_slurm
from tests.fixtures.stages import build_responded, sample_recipe

SHARDS = 4
N_UNITS = 2 * (SHARDS - 1) + 1  # two row groups in each of the first three shards, one in the last


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Curated prompts and the sample's replies split over 4 shards, the last repeating three
    replies of the first (as after a resumed generation): duplicates cross task boundaries."""
    planted, _ = build_responded(tmp_path_factory.mktemp("resp-tasks") / "seed")
    root = tmp_path_factory.mktemp("resp-tasks-base")
    shutil.copytree(planted.work.root / "curate", root / "curate")
    shutil.copytree(planted.work.root / "generate", root / "generate")
    replies = root / "generate" / "replies"
    t = pa.concat_tables([pq.read_table(f) for f in sorted(replies.glob("part-*.parquet"))])
    for f in replies.glob("part-*.parquet"):
        f.unlink()
    step = -(-t.num_rows // (SHARDS - 1))
    for i in range(SHARDS - 1):  # two row groups a shard, as generate writes several: a unit each
        pq.write_table(t.slice(i * step, step), replies / f"part-{i:05d}.parquet", row_group_size=-(-step // 2))
    pq.write_table(t.slice(0, 3), replies / f"part-{SHARDS - 1:05d}.parquet")
    WorkDir(root).mark_complete("generate")  # the re-split shards are generate's outputs
    return root


def _recipe(tasks: int, executor: dict[str, Any] | None = None) -> Any:
    return sample_recipe(responses={"tasks": tasks, "workers": 1, "batch_rows": 16},
                         executor=executor or {"kind": "local", "tasks": tasks})  # fmt: skip


def _run(base: Path, dest: Path, recipe: Any) -> dict[str, pa.Table]:
    if not dest.exists():
        shutil.copytree(base, dest)
    run_responses(recipe, WorkDir(dest))
    return _outputs(dest)


def _outputs(work: Path) -> dict[str, pa.Table]:
    out = work / "responses"

    def read(folder: str) -> pa.Table:
        return pa.concat_tables([pq.read_table(f) for f in sorted((out / folder).glob("part-*.parquet"))])

    return {"parsed": read("parsed"), "quarantine": read("quarantine"), "ledger": pq.read_table(out / "ledger.parquet")}


@pytest.fixture(scope="module")
def one_task(base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    return _run(base, tmp_path_factory.mktemp("one") / "w", _recipe(1))


def _same(a: dict[str, pa.Table], b: dict[str, pa.Table]) -> None:
    for name in a:
        assert a[name].num_rows == b[name].num_rows, name
        assert a[name].equals(b[name]), name


def test_two_local_tasks_write_the_same_rows_as_one(one_task: dict[str, pa.Table], base: Path, tmp_path: Path) -> None:
    assert one_task["quarantine"].num_rows and one_task["parsed"].num_rows
    dups = [c[0] for c in one_task["quarantine"].column("reject_codes").to_pylist()].count("duplicate_generation")
    assert dups == 3  # found across tasks by the merge
    two = _run(base, tmp_path / "w", _recipe(2))
    _same(one_task, two)
    assert not (tmp_path / "w" / "responses" / "tasks").exists() or not any((tmp_path / "w" / "responses" / "tasks").iterdir())


@pytest.mark.slow
def test_units_are_the_shards_row_groups(base: Path) -> None:
    files = WorkDir(base).require(tables.REPLIES)
    units = units_of(files, 1)
    assert len(units) == N_UNITS and [u.shard for u in units] == [0, 0, 1, 1, 2, 2, 3]
    assert [u.row_groups for u in units[:2]] == [[0], [1]]
    assert units_of(files, 10**9) == [Unit(k, [0, 1]) for k in range(SHARDS - 1)] + [Unit(SHARDS - 1, [0])]
    # every reply in exactly one unit, in input order
    assert sum(pq.ParquetFile(files[u.shard]).metadata.row_group(g).num_rows for u in units for g in u.row_groups) \
        == sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def test_units_gather_row_groups_to_the_minimum_and_keep_an_empty_shard(tmp_path: Path) -> None:
    schema = pa.schema([("generation_id", pa.string())])
    sizes = [2, 2, 2, 1]
    with pq.ParquetWriter(tmp_path / "a.parquet", schema) as w:
        for k, n in enumerate(sizes):  # one row group per write
            w.write_table(pa.table({"generation_id": [f"{k}-{i}" for i in range(n)]}, schema=schema))
    pq.ParquetWriter(tmp_path / "b.parquet", schema).close()  # no row group at all
    files = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    units = units_of(files, 3)  # a pool's minimum: runs of groups up to 3 rows, the last run shorter
    assert units == [Unit(0, [0, 1]), Unit(0, [2, 3]), Unit(1, [])]
    got = [r["generation_id"] for u in units for b in unit_batches(files[u.shard], u, 2) for r in b]
    assert got == [f"{k}-{i}" for k, n in enumerate(sizes) for i in range(n)]  # every row once, in order


def test_a_killed_task_run_again_writes_only_the_missing_units(one_task: dict[str, pa.Table], base: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(base, work)
    # The first run in its own process: task 1 SIGKILLs itself right after its first unit. The run
    # fails on it (or would hang); either way the whole run is then killed too (kill -9).
    code = ("from tests.fixtures.stages import sample_recipe; from builder.workdir import WorkDir; "
            "from builder.responses.stage import run_responses; "
            f"run_responses(sample_recipe(responses={{'tasks': 2, 'workers': 1, 'batch_rows': 16}}, "
            f"executor={{'kind': 'local', 'tasks': 2}}), WorkDir({str(work)!r}))")  # fmt: skip
    env = {**os.environ, KILL_ENV: "1:1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while not list((work / "responses" / "tasks").glob("*/units-*/killed-1")) and proc.poll() is None:
        assert time.monotonic() < deadline, "task 1 was never killed"
        time.sleep(0.2)
    time.sleep(1.0)  # let task 0 get on with its units
    with contextlib.suppress(ProcessLookupError):  # the run may have failed on the kill already (executors' watch)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (outputs,) = (work / "responses" / "tasks").glob("*/units-*")
    written = {p.name: p.stat().st_ino for p in outputs.glob("*.parquet")}
    # Task 1 died after its first unit; task 0 may have taken its others since (builder/task_claims.py).
    assert "00001.parquet" in written
    assert not (work / "responses" / "_COMPLETE.json").exists()  # nothing committed
    # The tasks alone first: units already written are left alone, the missing ones are written.
    recipe, wd = _recipe(2), WorkDir(work)
    key = stable_hash(fingerprint(recipe, wd), 16)
    assert _run_tasks(recipe, wd, 2, key).resolve() == outputs.resolve()
    again = {p.name: p.stat().st_ino for p in outputs.glob("*.parquet")}
    assert sorted(again) == [f"{i:05d}.parquet" for i in range(N_UNITS)]
    assert all(again[n] == ino for n, ino in written.items())  # never written twice
    after = _run(base, work, recipe)  # every rank complete now: the merge only
    _same(one_task, after)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="pip install 'answer-distill[ray]'")
def test_responses_on_a_real_local_ray_instance(one_task: dict[str, pa.Table], base: Path, tmp_path: Path) -> None:
    with local_ray():
        on_ray = _run(base, tmp_path / "w", _recipe(2, RAY_EXECUTOR))
    _same(one_task, on_ray)


def test_responses_as_a_slurm_array_run_by_a_fake_sbatch(one_task: dict[str, pa.Table], base: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    calls = fake_slurm(tmp_path, monkeypatch)
    cfg = {"kind": "slurm", "tasks": 2, "workers": 2, "partition": "cpu", "poll_s": 0.1}
    on_slurm = _run(base, tmp_path / "w", _recipe(2, cfg))
    _same(one_task, on_slurm)
    assert "#SBATCH --array=0-1" in (calls / "0.script").read_text()
