"""One run per work directory: an exclusive lock, released by the kernel when the holder dies.

Two `generate` runs on one work directory paid for every prompt twice; two `curate` runs
interleaved their outputs. `<work>/.lock` is held with a POSIX record lock (lockf) for the whole
command. Not flock: a flock is shared with forked children, and datatrove forks helper
processes that outlive a kill -9 of the command, which left the directory locked for good;
a record lock belongs to this process only and dies with it. The file says who holds it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from builder.errors import UserError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def work_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, where the work directory keeps its lock file; remove it") from None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            holder = _holder(fd)
            raise UserError(f"{root}: another answer-distill run is using this work directory ({holder}); "
                            "wait for it to finish or stop it, or use another --work") from None  # fmt: skip
        os.ftruncate(fd, 0)
        cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300]
        os.write(fd, json.dumps({"pid": os.getpid(), "command": cmd, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                 time.gmtime())}).encode())  # fmt: skip
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {data.get('pid')}: {data.get('command')}, since {data.get('since')}"
    except (OSError, ValueError):
        return "pid unknown"
