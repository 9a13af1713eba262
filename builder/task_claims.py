"""Which units (input shards, buckets) a datatrove task takes, so tasks finish together.

Each task first takes its own units (rank, rank+W, rank+2W…, as a static split would), then any
other unit no task has taken yet, from the end of the list, so a task that drew cheap units (no
code to verify, short thinking) helps one that drew dear ones instead of idling while it runs on.
A unit is taken by creating its claim file with O_CREAT|O_EXCL in the run's claims folder (one
per run, made by the driver: a run killed mid-way leaves claims that the next run never reads),
so two tasks of one run never build the same unit. Units whose output exists are skipped, so a
re-run builds only what is missing, whoever had drawn it. Outputs are written whole and renamed
into place by their writers, and merged in unit order: which task built a unit changes nothing
in the rows.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PREFIX = "claims-"


def new_run(root: Path) -> Path:
    """A fresh claims folder under `root` for the run about to start; earlier runs' are removed."""
    for old in root.glob(f"{PREFIX}*"):
        shutil.rmtree(old, ignore_errors=True)
    folder = root / f"{PREFIX}{time.time_ns()}-{os.getpid()}"
    folder.mkdir(parents=True)
    return folder


def order(n: int, rank: int, world: int) -> list[int]:
    """The order in which task `rank` of `world` tries the units 0..n-1."""
    own = list(range(rank, n, world))
    return own + [i for i in reversed(range(n)) if i % world != rank]


def take(claims: Path, unit: int, rank: int) -> bool:
    """Claim `unit` for task `rank`; False when another task of the run has it. A claim names its
    rank, so a rank run again within the same run (a scheduler's retry) takes back its own."""
    path = claims / f"{unit:05d}"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            return path.read_text() == str(rank)
        except OSError:
            return False
    with os.fdopen(fd, "w") as fh:
        fh.write(str(rank))
    return True


def units(n: int, rank: int, world: int, claims: Path, done: Callable[[int], bool]) -> Iterator[int]:
    """The units task `rank` builds, claimed one at a time as it gets to them (`done`: the unit's
    output exists already)."""
    for i in order(n, rank, world):
        if not done(i) and take(claims, i, rank):
            yield i
