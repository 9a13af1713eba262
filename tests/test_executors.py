"""Executor factory: local runs, the sbatch scripts Slurm would get, and a real local Ray run."""

from __future__ import annotations

import importlib.util
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import dill
import pyarrow.parquet as pq
import pytest
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor

from builder.executors import ExecutorConfig, make_executor, run_executor


def _touch(data, rank: int = 0, world_size: int = 1):  # a picklable pipeline step
    Path(os.environ["EXEC_TEST_DIR"], f"rank{rank}").write_text(str(world_size))
    yield from data or []


def test_local_executor_runs_every_rank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXEC_TEST_DIR", str(tmp_path))
    cfg = ExecutorConfig(tasks=3, workers=1)
    ex = make_executor([_touch], cfg, tmp_path / "logs", "touch")
    assert isinstance(ex, LocalPipelineExecutor) and ex.workers == 1
    run_executor(ex, cfg)
    assert sorted(p.name for p in tmp_path.glob("rank*")) == ["rank0", "rank1", "rank2"]
    assert (tmp_path / "rank2").read_text() == "3"


@pytest.fixture
def fake_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `sbatch` on PATH that records its arguments and script, and answers like Slurm."""
    calls = tmp_path / "sbatch_calls"
    calls.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sbatch"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(ls "{calls}" | wc -l)\n'
        f'echo "$@" > "{calls}/$n.args"\n'
        "for last; do :; done\n"
        f'cp "$last" "{calls}/$n.script"\n'
        'echo "Submitted batch job $((4200 + n))"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_slurm_sbatch_script(tmp_path: Path, fake_sbatch: Path) -> None:
    cfg = ExecutorConfig(
        kind="slurm",
        tasks=4,
        workers=2,
        partition="cpu-long",
        time="01:30:00",
        cpus_per_task=2,
        mem_per_cpu_gb=3,
        qos="high",
        sbatch_args={"account": "proj42"},
        venv_path="/opt/venvs/ad",
    )
    first = make_executor([_touch], cfg, tmp_path / "logs" / "a", "nd_signature")
    second = make_executor([_touch], cfg, tmp_path / "logs" / "b", "nd_buckets", depends=first, tasks=2)
    assert isinstance(second, SlurmPipelineExecutor)
    second.run()  # submits the dependency first, then itself, each followed by a merge-stats job

    script = (tmp_path / "logs" / "a" / "launch_script.slurm").read_text()
    for line in (
        "#SBATCH --partition=cpu-long",
        "#SBATCH --time=01:30:00",
        "#SBATCH --array=0-3%2",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem-per-cpu=3G",
        "#SBATCH --qos=high",
        "#SBATCH --account=proj42",
        "#SBATCH --job-name=nd_signature",
        "source /opt/venvs/ad/bin/activate",
    ):
        assert line in script, line
    pik = tmp_path / "logs" / "a" / "executor.pik"
    assert f"launch_pickled_pipeline {pik}" in script and "srun" in script
    assert dill.loads(pik.read_bytes()).pipeline[0].__name__ == "_touch"  # what each array task unpickles
    assert "#SBATCH --array=0-1%2" in (tmp_path / "logs" / "b" / "launch_script.slurm").read_text()
    half = make_executor([_touch], cfg.model_copy(update={"mem_per_cpu_gb": 1.5}), tmp_path / "c", "x")
    assert half.get_sbatch_args()["mem-per-cpu"] == "1536M"  # Slurm rejects "1.5G"

    args = [p.read_text() for p in sorted(fake_sbatch.glob("*.args"), key=lambda p: int(p.stem))]
    assert len(args) == 4  # job a, merge-stats a, job b, merge-stats b
    assert "--dependency" not in args[0]
    assert "--dependency=afterok:4200" in args[2]  # b waits for a's array job
    scripts = sorted(fake_sbatch.glob("*.script"), key=lambda p: int(p.stem))
    assert scripts[0].read_text() == script  # what sbatch received is the saved script


def test_slurm_needs_a_partition(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="partition"):
        make_executor([_touch], ExecutorConfig(kind="slurm"), tmp_path, "x")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="pip install 'answer-distill[ray]'")
def test_near_dedupe_on_a_real_local_ray_instance(tmp_path: Path) -> None:
    import ray

    from builder.curate.minhash_config import NearDedupeConfig
    from builder.curate.near_dedupe import near_dedupe
    from tests.test_near_dedupe import EX, _real_prompts

    en, zh = _real_prompts()
    texts = en[:120] + [t.upper() + " !" for t in en[:30]] + zh[:60]
    src = tmp_path / "in"
    src.mkdir()
    import pyarrow as pa

    for i in range(2):
        part = texts[i::2]
        pq.write_table(pa.table({"id": [f"{i}-{j}" for j in range(len(part))], "text": part}), src / f"{i:05d}.parquet")
    few = NearDedupeConfig(buckets=4, hashes_per_bucket=5)  # fewer bucket tasks: Ray schedules each one
    local = near_dedupe(src, tmp_path / "local", few, EX)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        cfg = ExecutorConfig(kind="ray", tasks=2, workers=2, cpus_per_task=1, mem_per_cpu_gb=0.5)
        on_ray = near_dedupe(src, tmp_path / "ray", few, cfg)
    finally:
        ray.shutdown()
    assert on_ray.removed == local.removed >= 30
    assert pq.read_table(on_ray.near_dups_path).equals(pq.read_table(local.near_dups_path))
    assert (tmp_path / "ray" / "logs" / "signature" / "completions" / "00001").exists()


def test_local_runs_start_no_more_processes_than_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    # 20 MinHash bucket tasks at once on 2 cores multiplied memory (7.9 GB for 200k prompts).
    from builder.config import executor
    from builder.config.executor import ExecutorConfig

    monkeypatch.setattr(executor, "usable_cores", lambda: 2)
    assert ExecutorConfig(kind="local").workers_for(20) == 2
    assert ExecutorConfig(kind="local", workers=1).workers_for(20) == 1
    assert ExecutorConfig(kind="ray").workers_for(20) == 20  # a cluster schedules its own


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity API here")
def test_usable_cores_are_the_affinity_mask_not_the_machine() -> None:
    """A process pinned to one core (taskset, a Slurm cgroup) plans for one, whatever the machine has."""
    code = ("import os; from builder.cpus import usable_cores; "
            "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); print(usable_cores())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    from builder.cpus import usable_cores

    assert usable_cores() == len(os.sched_getaffinity(0))


_KILL_SCRIPT = '''
import os, signal, sys, threading, time
from pathlib import Path
from builder.executors import ExecutorConfig, make_executor, run_executor

D = Path(sys.argv[1])

def step(data, rank: int = 0, world_size: int = 1):
    (D / f"pid{rank}").write_text(str(os.getpid()))
    time.sleep(1 if rank == 0 else 30)
    yield from data or []

def kill_rank_1():
    while not (D / "pid1").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(int((D / "pid1").read_text()), int(sys.argv[2]))

if __name__ == "__main__":  # the pool may spawn: workers import this file
    # as the process was started: `cmd &` from a script starts it with SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_IGN if sys.argv[3] == "ignored" else signal.default_int_handler)
    threading.Thread(target=kill_rank_1, daemon=True).start()
    cfg = ExecutorConfig(tasks=2, workers=2)
    run_executor(make_executor([step], cfg, D / "logs", "kill"), cfg)
'''


# "ignored": the run started with SIGINT ignored (by `&` in a script, as the clean-clone suite ran):
# the watch's wake-up was dropped and the run hung.
@pytest.mark.parametrize(("sig", "sigint"), [(signal.SIGKILL, "default"), (signal.SIGTERM, "default"),
                                             (signal.SIGKILL, "ignored")])  # fmt: skip
def test_a_killed_pool_worker_fails_the_run_in_one_line_not_a_hang(tmp_path: Path, sig: int, sigint: str) -> None:
    import subprocess
    import sys

    script = tmp_path / "kill_worker.py"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # before the watch, the pool waited forever for the dead worker's task. The bound is loose: on a
    # 2-core machine under a load of 15+ the run's imports and pool start alone took over 60 s.
    # its own session: a hung run's whole tree (forkserver and workers included) is killed, not left behind
    with subprocess.Popen([sys.executable, str(script), str(tmp_path), str(int(sig)), sigint], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, start_new_session=True) as run:  # fmt: skip
        try:
            out, err = run.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            pytest.fail(f"the run hung after a pool worker was killed; stderr tail: {run.communicate()[1][-2000:]}")
    proc = subprocess.CompletedProcess(run.args, run.returncode, out, err)
    assert proc.returncode != 0, proc.stderr[-2000:]
    # The error is the traceback's last line; a process of the pool may print a shutdown warning
    # after it, so the error line is the last one naming RuntimeError, not merely the last line.
    errors = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("RuntimeError")]
    assert errors, proc.stderr[-2000:]
    last = errors[-1]
    pid = (tmp_path / "pid1").read_text()
    assert "a local worker process was killed" in last and f"pid {pid} (signal {int(sig)})" in last, proc.stderr[-2000:]
    assert "1" in last.split("task rank(s)")[1].split("unfinished")[0]


def test_the_pool_watch_keeps_an_ignored_sigint_ignored() -> None:
    # The watch installs its own SIGINT handler for the run: a real SIGINT the caller ignores stays
    # ignored during the run, and the caller's disposition is back afterwards.
    from builder.executors import _PoolWatch

    prev = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _PoolWatch(interval_s=60):
            assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)  # would raise KeyboardInterrupt if not ignored
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        with pytest.raises(KeyboardInterrupt), _PoolWatch(interval_s=60) as watch:
            watch.killed.append((1, signal.SIGKILL))  # what the watch records before its wake-up
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, prev)


def _square(x: int) -> int:
    return x * x


def test_lean_map_runs_the_jobs_here_when_submit_cannot_start_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed while submit forks another raises OSError (EBADF from the forkserver), not
    BrokenProcessPool: the pool is broken, and every job still runs, here."""
    import builder.executors

    real = builder.executors.lean_executor

    def failing(*a, **k):
        pool = real(*a, **k)

        def submit(*sa, **sk):
            raise OSError(9, "Bad file descriptor")

        pool.submit = submit
        return pool

    monkeypatch.setattr(builder.executors, "lean_executor", failing)
    assert sorted(builder.executors.lean_map(_square, range(6), 2)) == [(i, i * i) for i in range(6)]
