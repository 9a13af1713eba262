"""How many CPUs this process may use."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPUs this process may run on: its affinity mask (what Slurm's cgroup, `taskset` or a
    pinned task allows), not the machine's count, which would start a process or thread per core
    of a whole node inside a one-core task."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity API (macOS)
        return os.cpu_count() or 1
