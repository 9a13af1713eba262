"""Peak memory of a whole process tree (this process and every descendant), sampled.

`ru_maxrss` of RUSAGE_CHILDREN is the largest single child, not what the machine held: 20
workers of 300 MB each read as 300 MB. `TreePeak` sums the RSS of the tree every `interval_s`
and keeps the largest sum (a sample can miss a peak shorter than the interval).
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import threading
from types import TracebackType

import psutil


def unexeced(p: psutil.Process, rss: dict[int, int], cmd: dict[int, list[str]]) -> bool:
    """A child caught between (v)fork and exec: the same command line and the same RSS (within 2%) as
    its parent, whose pages it shares (vfork: the same memory). Counting it would add the
    parent's whole RSS again for a process that holds nothing of its own (a worker that starts
    a sandbox every few ms showed up as up to five phantom copies of itself)."""
    try:
        parent = p.ppid()
    except psutil.Error:
        return False
    # within 2%: the two are read a moment apart, and the parent's other threads go on allocating
    return parent in rss and abs(rss[p.pid] - rss[parent]) <= rss[parent] // 50 and cmd.get(p.pid) == cmd.get(parent)


def tree_memory(procs: list[psutil.Process], pss: bool = False) -> tuple[int, int]:
    """(summed RSS, summed PSS) in bytes of these processes, children not yet exec'd left out.
    PSS splits pages shared between processes (a forkserver and its workers) among them, so it
    is what the tree holds; RSS counts a shared page once per process. Without `pss` (cheaper:
    no smaps read) the second figure is 0."""
    rss: dict[int, int] = {}
    cmd: dict[int, list[str]] = {}
    live = []
    for p in procs:
        try:
            with p.oneshot():
                rss[p.pid] = p.memory_info().rss
                cmd[p.pid] = p.cmdline()
            live.append(p)
        except psutil.Error:
            continue
    total_rss = total_pss = 0
    for p in live:
        if unexeced(p, rss, cmd):
            continue
        total_rss += rss[p.pid]
        if pss:
            try:
                total_pss += getattr(p.memory_full_info(), "pss", rss[p.pid])
            except psutil.Error:
                total_pss += rss[p.pid]
    return total_rss, total_pss


# Linux keeps each task's children in /proc (CONFIG_PROC_CHILDREN); elsewhere psutil's way.
_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def _child_pids(pid: int) -> list[int]:
    """pid's children from /proc/<pid>/task/*/children ([] once it has ended)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out += map(int, fh.read().split())
    return out


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    """proc and every descendant. Walks /proc/<pid>/task/*/children, the tree alone: psutil's
    children(recursive=True) reads the parent of every process on the machine each time, a cost
    the sampler would add to the measured process's CPU. (A fresh Process per pid: a cached one
    would keep the create time of a pid since reused.)"""
    if not _CHILDREN_FILES:
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return [proc]
    todo, found = [proc.pid], []
    while todo:
        kids = _child_pids(todo.pop())
        todo += kids
        found += kids
    out = [proc]
    for pid in found:
        with contextlib.suppress(psutil.Error):  # ended since
            out.append(psutil.Process(pid))
    return out


def tree_rss_mb(proc: psutil.Process | None = None) -> float:
    return tree_memory(descendants(proc or psutil.Process()))[0] / 2**20


def reaped_cpu_s() -> float:
    """CPU seconds (user + system) of this process's children that have ended and been reaped."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class TreePeak:
    """with TreePeak() as peak: ... ; peak.mb is the largest tree RSS seen, peak.procs the most processes,
    peak.cpu_s() the CPU seconds (user + system) the tree has used so far. `pid`: sample that
    process's tree (a stage run as a subprocess) instead of this one's; `pss`: also keep the
    largest summed PSS (`peak.pss_mb`; reads smaps, so keep the interval coarse).

    CPU time is load-independent where wall time is not (a shared machine): each process's last
    sampled total is kept after it exits, so a worker's final < interval_s of work can be missed."""

    def __init__(self, interval_s: float = 0.05, pid: int | None = None, pss: bool = False) -> None:
        self.interval_s = interval_s
        self.root = psutil.Process(pid)
        self.pss = pss
        self.mb = self.pss_mb = 0.0
        self.procs = 0
        self._cpu: dict[tuple[int, float], float] = {}  # (pid, create time) → user + system seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[psutil.Process]:
        if not self.root.is_running():
            return []
        return descendants(self.root)

    def _sample(self) -> None:
        procs = self._tree()
        if not procs:
            return
        self.procs = max(self.procs, len(procs))
        rss, pss = tree_memory(procs, self.pss)
        self.mb, self.pss_mb = max(self.mb, rss / 2**20), max(self.pss_mb, pss / 2**20)
        self._sample_cpu(procs)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def _sample_cpu(self, procs: list[psutil.Process]) -> None:
        for p in procs:
            try:
                t = p.cpu_times()
                key = (p.pid, p.create_time())
            except psutil.Error:
                continue
            with self._lock:
                self._cpu[key] = max(self._cpu.get(key, 0.0), t.user + t.system)

    def cpu_s(self) -> float:
        """CPU seconds of the whole tree so far (sampled now for the live processes)."""
        self._sample_cpu(self._tree())
        with self._lock:
            return sum(self._cpu.values())

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


_SPIN = ("import time\nt = time.perf_counter(); c = time.process_time()\n"
         "while time.perf_counter() - t < 1: pass\n"
         "print((time.process_time() - c) / (time.perf_counter() - t))")


def cores_free(n: int) -> float:
    """How many of `n` cores this machine gives at the moment: `n` processes spin 1 s at once and
    their CPU / wall shares are summed (a VM's vCPUs can be shared with its host's other guests)."""
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, text=True) for _ in range(n)]
    return round(sum(float(p.communicate()[0]) for p in procs), 2)
