"""One place that turns a recipe's executor settings into a datatrove executor.

Local runs block until done; Ray runs block too (datatrove's RayPipelineExecutor waits for
its tasks); Slurm runs submit an sbatch array and return, so callers that need the results
wait with `wait_for_completion`.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.config.executor import ExecutorConfig

if TYPE_CHECKING:  # datatrove is imported when an executor is built, not when a recipe loads
    from datatrove.executor.base import PipelineExecutor


def make_executor(
    pipeline: list[Any],
    cfg: ExecutorConfig,
    logging_dir: str | Path,
    name: str,
    depends: PipelineExecutor | None = None,
    tasks: int | None = None,
) -> PipelineExecutor:
    """Build the executor of `cfg.kind` for `pipeline`; `tasks` overrides `cfg.tasks` for one step."""
    n_tasks = tasks if tasks is not None else cfg.tasks
    common: dict[str, Any] = {
        "pipeline": pipeline,
        "tasks": n_tasks,
        "workers": cfg.workers_for(n_tasks) if cfg.kind != "slurm" else cfg.workers,
        "logging_dir": str(logging_dir),
        "skip_completed": cfg.skip_completed,
        "depends": depends,
    }
    if cfg.kind == "local":
        from datatrove.executor.local import LocalPipelineExecutor

        _manager_start_method(cfg.start_method)
        return LocalPipelineExecutor(start_method=cfg.start_method, **common)
    if cfg.kind == "slurm":
        from datatrove.executor.slurm import SlurmPipelineExecutor

        if not cfg.partition:
            raise ValueError("executor.kind=slurm needs executor.partition (the Slurm partition to submit to)")
        venv = cfg.venv_path
        if venv and not venv.endswith("activate"):
            venv = str(Path(venv) / "bin" / "activate")  # accept the venv folder itself
        sbatch_args = dict(cfg.sbatch_args)
        mem = cfg.mem_per_cpu_gb
        if mem != int(mem):  # datatrove writes f"{mem}G"; Slurm wants an integer, so use MiB
            sbatch_args.setdefault("mem-per-cpu", f"{round(mem * 1024)}M")
        return SlurmPipelineExecutor(
            job_name=name,
            time=cfg.time,
            partition=cfg.partition,
            cpus_per_task=cfg.cpus_per_task,
            mem_per_cpu_gb=int(mem) or 1,
            qos=cfg.qos,
            sbatch_args=sbatch_args,
            venv_path=venv,
            **common,
        )
    if cfg.kind == "ray":
        try:
            import ray
        except ImportError as e:  # the optional extra
            raise ImportError("executor.kind=ray needs Ray: pip install 'answer-distill[ray]'") from e
        from datatrove.executor.ray import RayPipelineExecutor

        if not ray.is_initialized():
            ray.init(address=cfg.address, ignore_reinit_error=True, log_to_driver=False)
        return RayPipelineExecutor(cpus_per_task=cfg.cpus_per_task, mem_per_cpu_gb=cfg.mem_per_cpu_gb, **common)
    raise ValueError(f"unknown executor kind {cfg.kind!r}")


@contextlib.contextmanager
def _task_console(logging_dir: str) -> Iterator[None]:
    """Local tasks' stderr goes to `<logging_dir>/console.log` while they run.

    datatrove gives every task a fresh loguru handler on stderr at INFO (after ours are gone),
    ~200 lines for the sample build; what they say is also in each task's own log file. Set
    ANSWER_DISTILL_VERBOSE=1 to see it live."""
    if os.environ.get("ANSWER_DISTILL_VERBOSE"):
        yield
        return
    Path(logging_dir).mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(Path(logging_dir) / "console.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def quiet_datatrove_logs() -> None:
    """Keep datatrove's loguru output off the console outside its tasks: warnings and errors only.

    Importing datatrove adds a stderr handler at DEBUG, and every task's end re-adds it
    (`close_task_logger`), so this runs at CLI start and again around every executor run.
    Each task's full log stays in its logging dir. ANSWER_DISTILL_VERBOSE=1 keeps everything."""
    if os.environ.get("ANSWER_DISTILL_VERBOSE"):
        return
    try:
        from loguru import logger
    except ImportError:
        return
    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def _manager_start_method(method: str) -> None:
    """datatrove's local run starts a `multiprocess.Manager()` (its rank queue) with the default
    context, `fork` on Linux: a copy of the driver whose RSS counts the driver's whole heap (the
    curate driver holds every prompt). Its server is started like the workers instead, and a
    forkserver also preloads forkserver_guard, which ends it if the driver is killed."""
    import multiprocess

    if method != "fork" and multiprocess.get_start_method(allow_none=True) != method:
        multiprocess.set_start_method(method, force=True)
    if method == "forkserver":
        import multiprocess.forkserver as server

        # what preload_forkserver set, or the default (private state read with a default)
        held = getattr(getattr(server, "_forkserver", None), "_preload_modules", None) or ["__main__"]
        _preload(held)


GUARD = "builder.forkserver_guard"


def _preload(modules: list[str]) -> None:
    """What datatrove's next forkserver imports: `modules` and the guard."""
    import multiprocess

    multiprocess.get_context("forkserver").set_forkserver_preload(list(dict.fromkeys([*modules, GUARD])))


def preload_forkserver(executor: ExecutorConfig, modules: list[str]) -> None:
    """Have the local executor's forkserver import `modules` once (datatrove's `multiprocess`
    server preloads only `__main__`), so the workers forked from it start warm instead of each
    importing and building the same things. No effect on other executors, nor once the server runs."""
    if executor.kind == "local" and executor.start_method == "forkserver":
        _preload(modules)


class _PoolWatch:
    """A local run's pool workers, watched from a thread while the main thread waits in the pool.

    A worker killed from outside (kill -9, the OOM killer, a segfault, a stray SIGTERM) takes its
    task with it: multiprocessing's Pool starts a new worker but never fails nor resubmits the
    task, so the run waited forever. Any other signal death is such a kill. SIGTERM is also how
    the pool tears itself down, so a SIGTERM death counts only once a replacement worker appears:
    the pool replaces dead workers while it runs, never while it terminates. The watch records
    the kill and interrupts the main thread, and run_executor fails with one line naming the
    task(s) left unfinished."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.killed: list[tuple[int, int]] = []  # (pid, signal)
        self._prev_sigint: Any = signal.SIG_DFL
        self._blocked = False
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pool-watch", daemon=True)

    def _run(self) -> None:
        import multiprocess  # the multiprocessing fork datatrove's local executor uses

        seen: dict[int, Any] = {}
        termed: list[int] = []  # workers dead on SIGTERM: teardown, unless the pool replaces them
        while not self._stop.wait(self._interval):
            new = False
            for proc in multiprocess.active_children():  # also reaps: exit codes are read below
                if proc.pid not in seen:
                    seen[proc.pid] = proc
                    new = True
            for pid, proc in list(seen.items()):
                code = proc.exitcode
                if code is None:
                    continue
                del seen[pid]
                if code < 0 and not self._stop.is_set():
                    if -code == signal.SIGTERM:
                        termed.append(pid)
                    else:
                        self.killed.append((pid, -code))
            if new and termed:  # checked after the deaths: the pool may replace within one poll
                self.killed += [(pid, signal.SIGTERM) for pid in termed]
                termed.clear()
            if self.killed:  # a real SIGINT: it wakes the main thread blocked in the pool's wait
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                return

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.killed:
            raise KeyboardInterrupt  # the watch's wake-up, whatever SIGINT did before
        if callable(self._prev_sigint):
            self._prev_sigint(signum, frame)
        elif self._prev_sigint != signal.SIG_IGN:
            signal.default_int_handler(signum, frame)  # a real Ctrl-C
        # SIG_IGN: a real SIGINT stays ignored, as the caller set it up

    def __enter__(self) -> _PoolWatch:
        # The wake-up must not depend on how this process was started: a command started with `&`
        # from a script (or nohup'd the same way) inherits SIGINT ignored, and Python then leaves it
        # ignored, so the watch's SIGINT was dropped and the run hung. Called from the main thread.
        prev = signal.signal(signal.SIGINT, self._on_sigint)
        self._prev_sigint = signal.default_int_handler if prev is None else prev  # None: set outside Python
        self._blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
        signal.signal(signal.SIGINT, self._prev_sigint)


def _killed_message(executor: PipelineExecutor, killed: list[tuple[int, int]]) -> str:
    logs = Path(executor.logging_dir.path) / "logs"
    started = [r for r in executor.get_incomplete_ranks(skip_completed=True) if (logs / f"task_{r:05d}.log").exists()]
    who = ", ".join(f"pid {pid} (signal {sig})" for pid, sig in killed)
    tasks = ", ".join(str(r) for r in started[:10]) or "unknown"
    return (f"a local worker process was killed while running a task ({who}); the run stopped with task rank(s) "
            f"{tasks} unfinished (logs in {logs}); re-run to resume: completed tasks are skipped")


def run_executor(executor: PipelineExecutor, cfg: ExecutorConfig, timeout_s: float | None = None) -> None:
    """Run `executor` (and its dependencies) to completion, or raise if any rank did not finish."""
    quiet_datatrove_logs()  # the import of datatrove (in make_executor) re-added its DEBUG handler
    try:
        # The watch signals the main thread: a run from another thread goes unwatched.
        if cfg.kind == "local" and getattr(executor, "workers", 1) != 1 and threading.current_thread() is threading.main_thread():
            watch = _PoolWatch()
            try:
                with _task_console(str(executor.logging_dir.path)), watch:
                    executor.run()
            except KeyboardInterrupt:
                if not watch.killed:
                    raise  # a real Ctrl-C
                raise RuntimeError(_killed_message(executor, watch.killed)) from None
        elif cfg.kind == "local":
            with _task_console(str(executor.logging_dir.path)):
                executor.run()
        else:
            executor.run()
    finally:
        quiet_datatrove_logs()  # the last task in this process re-added it too
    if cfg.kind == "slurm":
        wait_for_completion(executor, cfg.poll_s, timeout_s)
    missing = executor.get_incomplete_ranks(skip_completed=True)
    if missing:
        shown = ", ".join(map(str, missing[:10]))
        raise RuntimeError(
            f"{len(missing)}/{executor.world_size} tasks did not complete (ranks {shown}); "
            f"see the logs in {executor.logging_dir.path}"
        )


def wait_for_completion(executor: PipelineExecutor, poll_s: float = 30, timeout_s: float | None = None) -> None:
    """Poll datatrove's completion markers until every rank of `executor` is done."""
    start = time.monotonic()
    while executor.get_incomplete_ranks(skip_completed=True):
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{executor.logging_dir.path}: tasks still running after {timeout_s:.0f}s")
        time.sleep(poll_s)


# ---- lean pools: workers that do not inherit the driver's heap ----
# A worker forked from a driver that holds a million prompts maps every page of it: its RSS
# counts them (a process tree's summed RSS, what a memory budget is checked against, counts
# them once per worker) and any page it touches is copied. A forkserver's workers are forked
# from a small server process instead, and get only what their jobs send them.
LEAN_START_METHOD = "forkserver"


def lean_executor(preload: list[str] | None = None, workers: int = 1, initializer: Callable[..., Any] | None = None,
                  initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:  # fmt: skip
    """`workers` processes from the forkserver, not forked from the driver (they do not map its heap): a job's
    exception comes back from `result()`, and a process killed from outside raises
    BrokenProcessPool there instead of hanging (multiprocessing's Pool would wait forever)."""
    ctx = multiprocessing.get_context(LEAN_START_METHOD)
    if preload:
        ctx.set_forkserver_preload(preload)
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs)


def close_lean_executor(pool: ProcessPoolExecutor, broken: bool) -> None:
    """Shut a lean executor down; a broken one without waiting, its processes killed. CPython 3.11:
    a submit racing the break can start a worker after the pool ended the others; nothing ends
    it, and shutdown(wait=True) would wait for it forever."""
    if not broken:
        pool.shutdown(wait=True, cancel_futures=True)
        return
    left = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in left:
        proc.kill()


_END = object()


def submit_or_none(pool: ProcessPoolExecutor, fn: Callable[..., Any], *args: Any) -> Future[Any] | None:
    """pool.submit(fn, *args); None when the pool is broken: a worker was killed (BrokenProcessPool),
    or killed while submit forked another (OSError: EBADF from the forkserver)."""
    try:
        return pool.submit(fn, *args)
    except (BrokenProcessPool, OSError):
        return None


def lean_map(fn: Callable[[Any], Any], jobs: Iterable[Any], workers: int, initializer: Callable[..., Any] | None = None,
             initargs: tuple[Any, ...] = (), preload: list[str] | None = None,
             in_flight: int = 2) -> Iterator[tuple[Any, Any]]:  # fmt: skip
    """(job, fn(job)) for every job, in the order they finish, on `workers` lean processes; jobs are
    pulled from `jobs` as workers free up (at most `in_flight` a worker held). A worker killed from
    outside (the OOM killer, kill -9) breaks the pool where multiprocessing's Pool hung: the jobs it
    left and those not sent yet run here, after initializer(*initargs) once."""
    pool = lean_executor(preload, workers, initializer, initargs)
    pending: dict[Future[Any], Any] = {}
    broken = ready = False
    source = iter(jobs)

    def here(job: Any) -> Any:
        nonlocal ready
        if not ready and initializer is not None:
            initializer(*initargs)
        ready = True
        return fn(job)

    try:
        while True:
            while not broken and len(pending) < in_flight * workers and (job := next(source, _END)) is not _END:
                if (fut := submit_or_none(pool, fn, job)) is not None:
                    pending[fut] = job
                else:
                    broken = True
                    yield job, here(job)
            if not pending:
                if broken:
                    for job in source:
                        yield job, here(job)
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                job = pending.pop(f)
                try:
                    out = f.result()
                except BrokenProcessPool:
                    broken = True
                    out = here(job)
                yield job, out
    finally:
        close_lean_executor(pool, broken)


def release_freed_memory() -> None:
    """Hand memory freed by Python and Arrow back to the OS (RSS), e.g. after a step drops a big
    structure: glibc keeps freed heap pages mapped until trimmed, Arrow's allocator keeps its pools."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def stop_forkservers(keep_lean: bool = False) -> None:
    """Stop the forkservers a step started (datatrove's `multiprocess` one and ours, unless
    `keep_lean`: the next step's lean pool will use it): an idle server holds its preloaded modules
    (~50-150 MB) for the rest of the run otherwise. The next pool starts a fresh one. Private API
    of both libraries: if it moves, the servers just stay."""
    import multiprocess.forkserver as mp_fs

    for fs in (mp_fs,) if keep_lean else (mp_fs, multiprocessing.forkserver):
        with contextlib.suppress(Exception):
            fs._forkserver._stop()  # type: ignore[attr-defined]
