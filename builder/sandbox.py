"""Run untrusted Python (a teacher's code answer plus its tests) in a throw-away subprocess.

Layers, strongest available first (probed once per process, recorded in every result):

* ``netns``    -- ``unshare --net``: the child has no network at all, loopback included.
* ``mountns``  -- ``unshare --mount`` + size-capped tmpfs over /tmp and /dev/shm: the child's
  working directory is a private /tmp, and it cannot fill the host's disk there; every other
  world-writable directory (/var/tmp, /run/lock …) is covered by an empty read-only tmpfs.
* ``pidns``    -- with mountns: ``unshare --pid`` and its own /proc, so a program cannot see,
  signal or read the memory of the sandboxes running next to it.
* ``nobody``   -- ``setpriv`` to uid/gid 65534 with no capabilities: it cannot signal or read
  the parent's (root-owned) processes and files, and RLIMIT_NPROC is enforced (root
  ignores it), so fork/threads fail with EAGAIN.
* ``rlimits``  -- always: CPU seconds, address space, file size, open files, no core dumps,
  NPROC=1 (when not root).
* ``pyguard``  -- always: before the program runs, fork/exec/spawn/kill/socket/ctypes are
  replaced with functions that raise ``PermissionError`` and leave a marker on stderr
  (``forbidden_syscall``). A determined attacker can undo Python-level patches; the kernel
  layers above are what contain it.
* always: ``python -I -S`` (no site-packages, no PYTHON* env), a scrubbed environment (no
  API keys or tokens), a new session killed as a group on timeout, stdout/stderr written to
  files capped by RLIMIT_FSIZE and read back truncated.

Not done here: seccomp (libseccomp exists but no Python binding is installed), cgroups
(memory is bounded by RLIMIT_AS instead), PID namespaces.

The program gets two globals: ``PAYLOAD`` (the JSON value passed in) and ``report(dict)``,
which sends one JSON object back over an inherited file descriptor, tagged with a per-run nonce so that a program that
merely exits 0 is not mistaken for one that reported.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

NOBODY = 65534
_VIOLATION = "__SANDBOX_VIOLATION__"

# Runs first inside the child. Kept small: it is passed with -c on every run.
_GUARD = r"""
import json as _j, os as _o, resource as _r, sys as _s
_lim = _j.loads(_s.argv[1])
for _k, _v in _lim.items():
    _r.setrlimit(getattr(_r, _k), tuple(_v) if isinstance(_v, list) else (_v, _v))
_nonce = _s.stdin.readline().strip()
PAYLOAD = _j.loads(_s.stdin.read())
_s.stdin.close()
def report(obj, _fd=int(_s.argv[2]), _n=_nonce, _dumps=_j.dumps, _w=_o.write):
    _w(_fd, (_dumps(dict(obj, nonce=_n)) + "\n").encode())
def _deny(what, _w=_o.write):
    def denied(*a, **k):
        _w(2, ("\n%s %s\n" % (%(marker)r, what)).encode())
        raise PermissionError("sandbox: %%s is disabled" %% what)
    return denied
import posix as _px, socket as _sock, _posixsubprocess as _pps
for _m in (_o, _px):
    for _n in ("fork", "forkpty", "vfork", "system", "popen", "execv", "execve", "execl",
               "execle", "execlp", "execlpe", "execvp", "execvpe", "spawnv", "spawnve",
               "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnvp", "spawnvpe",
               "posix_spawn", "posix_spawnp", "kill", "killpg", "setsid", "setuid",
               "setgid", "putenv", "unsetenv"):
        if hasattr(_m, _n):
            setattr(_m, _n, _deny(_n))
_pps.fork_exec = _deny("subprocess")  # what subprocess.Popen ends in (not imported: slow)
class _NoSocket(_sock.socket):  # a class, so `class SSLSocket(socket)` (ssl, asyncio) still imports
    def __init__(self, *a, _d=_deny("socket"), **k):
        _d()
_sock.socket = _NoSocket
for _n in ("socketpair", "create_connection", "create_server", "fromfd"):
    setattr(_sock, _n, _deny("socket"))
for _n in ("ctypes", "_ctypes", "pty"):
    _s.modules[_n] = None
del _j, _r, _k, _v, _lim, _m, _n, _px, _sock, _pps, _deny, _NoSocket
""".replace("%(marker)r", repr(_VIOLATION)).replace("%%", "%")


@dataclass(frozen=True)
class Limits:
    """`timeout_s` is CPU time (RLIMIT_CPU), which a loaded machine does not eat into; the
    wall clock, which catches sleeping and blocked programs, gets `wall_timeout_s` or, by
    default, twice the CPU budget plus 2 s."""

    timeout_s: float = 10.0
    wall_timeout_s: float | None = None
    memory_mb: int = 1024
    file_size_mb: int = 16
    max_output_bytes: int = 64_000
    open_files: int = 64
    tmpfs_mb: int = 64


@dataclass(frozen=True)
class SandboxResult:
    """What happened. ``outcome``: "reported" (the program called report), "timeout",
    "cpu_limit", "memory", "output_limit", "file_size", "forbidden_syscall", "crashed",
    "no_result" (exited without reporting), "sandbox_error"."""

    outcome: str
    report: dict[str, Any] | None
    returncode: int | None
    stdout: str
    stderr: str
    isolation: tuple[str, ...]
    duration_s: float
    violations: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Plan:
    prefix: tuple[str, ...]  # command prefix before the interpreter
    python: str
    isolation: tuple[str, ...]


def _scrubbed_env(home: str) -> dict[str, str]:
    # Nothing inherited: the parent's environment may hold API keys and Hub tokens.
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home, "TMPDIR": home}


# Roots searched (a few levels deep) for directories anyone may write to, besides /tmp and
# /dev/shm (those get private capped tmpfs): /var/tmp, /run/lock and the like would let the
# program leave files on the host past every cap.
_WRITABLE_ROOTS = ("/var", "/run", "/dev", "/home", "/srv", "/opt", "/mnt", "/media", "/work", "/root", "/usr/local")
_PRIVATE = ("/tmp", "/dev/shm", "/proc", "/sys")


@functools.cache
def host_writable_dirs(depth: int = 3) -> tuple[str, ...]:
    """World-writable directories outside /tmp and /dev/shm (cached per process)."""
    found: list[str] = []
    for root in _WRITABLE_ROOTS:
        base = root.rstrip("/").count("/")
        for dirpath, dirnames, _ in os.walk(root, followlinks=False):
            if dirpath.startswith(_PRIVATE) or dirpath.count("/") - base >= depth:
                dirnames[:] = []
                continue
            try:
                st = os.lstat(dirpath)
            except OSError:
                continue
            if st.st_mode & 0o002:
                found.append(dirpath)
                dirnames[:] = []  # the mount over it hides everything below
    return tuple(found)


def _ns_prefix(tmpfs_mb: int, mount: bool, drop: bool) -> tuple[str, ...]:
    drop_cmd = (
        f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --inh-caps=-all --bounding-set=-all -- "
        if drop
        else "exec "
    )
    if mount:
        # Read-only, root-owned, empty: what was writable is no longer there to write to.
        hide = "".join(f"mount -t tmpfs -o size=4k,mode=0555,ro tmpfs {shlex.quote(d)} && " for d in host_writable_dirs())
        script = (
            f"mount -t tmpfs -o size={tmpfs_mb}m,mode=1777 tmpfs /tmp && "
            # No exec: the shell stays PID 1 of the namespace, so the program is an ordinary process
            # (PID 1 ignores fatal signals like SIGXCPU) and its signal death reaches us as 128+N.
            f"mount -t tmpfs -o size=8m,mode=1777 tmpfs /dev/shm && {hide}cd /tmp && {drop_cmd.removeprefix('exec ')}\"$@\""
        )
        # --pid with a fresh /proc: the program sees and can signal only its own processes, not
        # the sandboxes running beside it (nor read their /proc/<pid>/mem or stdin).
        return ("unshare", "--net", "--mount", "--propagation", "private", "--pid", "--kill-child", "--mount-proc",
                "--", "/bin/sh", "-c", script, "sh")  # fmt: skip
    return ("unshare", "--net", "--", "/bin/sh", "-c", f'{drop_cmd}"$@"', "sh")


def _probe_ok(cmd: list[str], expect_prefix: str) -> bool:
    code = "import sys, json, re, collections; print(sys.prefix)"
    try:
        out = subprocess.run(
            [*cmd, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=20, env=_scrubbed_env("/tmp")
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == expect_prefix


@functools.cache
def isolation_plan(tmpfs_mb: int = 64) -> _Plan:
    """Pick the strongest isolation that works on this machine (cached per process)."""
    candidates = [os.path.realpath(sys.executable)]
    if os.path.exists("/usr/bin/python3"):
        candidates.append("/usr/bin/python3")
    prefixes: dict[str, str] = {}
    for py in candidates:
        try:
            got = subprocess.run(
                [py, "-I", "-S", "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, timeout=20
            )
            prefixes[py] = got.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
    root = os.geteuid() == 0
    tools = all(shutil.which(t) for t in ("unshare", "setpriv", "mount"))
    levels: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    if root and tools:
        levels.append((_ns_prefix(tmpfs_mb, True, True), ("netns", "mountns", "pidns", "nobody")))
        levels.append((_ns_prefix(tmpfs_mb, False, True), ("netns", "nobody")))
        levels.append((_ns_prefix(tmpfs_mb, False, False), ("netns",)))
    levels.append(((), ()))
    for prefix, iso in levels:
        for py, expect in prefixes.items():
            # An interpreter the dropped user cannot fully read (e.g. under /root) starts
            # with the wrong stdlib; the prefix check catches that.
            if not prefix or _probe_ok([*prefix, py], expect):
                return _Plan(prefix, py, (*iso, "rlimits", "pyguard", "isolated_python", "scrubbed_env"))
    return _Plan((), sys.executable, ("rlimits", "pyguard", "isolated_python", "scrubbed_env"))


def _rlimits(limits: Limits, drops_root: bool) -> dict[str, int | list[int]]:
    lim: dict[str, int | list[int]] = {
        # soft: SIGXCPU (reported as cpu_limit); hard, a second later: SIGKILL.
        "RLIMIT_CPU": [math.ceil(limits.timeout_s), math.ceil(limits.timeout_s) + 1],
        "RLIMIT_AS": limits.memory_mb * 1024 * 1024,
        "RLIMIT_FSIZE": limits.file_size_mb * 1024 * 1024,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CORE": 0,
    }
    if drops_root or os.geteuid() != 0:
        lim["RLIMIT_NPROC"] = 1  # counts this process already: any fork or thread fails
    return lim


def _read_capped(path: str, cap: int) -> tuple[str, int]:
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        data = fh.read(cap)
    text = data.decode("utf-8", errors="replace")
    if size > cap:
        text += f"\n[... truncated, {size} bytes in all]"
    return text, size


def _parse_report(raw: bytes, nonce: str) -> dict[str, Any] | None:
    found = None
    for line in raw.decode("utf-8", errors="replace").splitlines():
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # a hostile program can write 100,000 nested brackets
            continue
        if isinstance(obj, dict) and obj.pop("nonce", None) == nonce:
            found = obj  # the last genuine report wins
    return found


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _wait_unreaped(pid: int, timeout_s: float) -> bool:
    """Wait for `pid` to exit *without reaping it*; False on timeout.

    While the leader is an unreaped zombie its pid and group id cannot be reused, so the
    group kill that follows cannot hit an unrelated process.
    """
    try:
        pidfd = os.pidfd_open(pid)  # readable once the process exits; no polling latency
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            return bool(select.select([pidfd], [], [], timeout_s)[0])
        finally:
            os.close(pidfd)
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.02)
    return True


def run_sandboxed(program: str, payload: Any, limits: Limits | None = None) -> SandboxResult:
    """Run `program` (Python source) with `PAYLOAD = payload`; never raises for program faults."""
    limits = limits or Limits()
    plan = isolation_plan(limits.tmpfs_mb)
    start = time.monotonic()
    host_dir = tempfile.mkdtemp(prefix="adverify-")
    try:
        nonce = secrets.token_hex(16)
        paths = {n: os.path.join(host_dir, n) for n in ("stdin", "stdout", "stderr", "report")}
        with open(paths["stdin"], "w", encoding="utf-8") as fh:
            fh.write(nonce + "\n" + json.dumps(payload))
        work = os.path.join(host_dir, "work")
        os.mkdir(work, 0o700)
        drops_root = "nobody" in plan.isolation
        rlim = _rlimits(limits, drops_root)
        cmd = [*plan.prefix, plan.python, "-I", "-S", "-c", _GUARD + "\n" + program, json.dumps(rlim)]
        # (the report fd number is appended below, once the file is open)
        with (
            open(paths["stdin"], "rb") as fin,
            open(paths["stdout"], "wb") as fout,
            open(paths["stderr"], "wb") as ferr,
            open(paths["report"], "wb") as frep,
        ):
            try:
                proc = subprocess.Popen(
                    [*cmd, str(frep.fileno())],
                    stdin=fin,
                    stdout=fout,
                    stderr=ferr,
                    cwd=work,
                    env=_scrubbed_env("/tmp" if "mountns" in plan.isolation else work),
                    start_new_session=True,
                    pass_fds=(frep.fileno(),),  # the report channel; its number goes in argv
                )
            except OSError as exc:
                return SandboxResult("sandbox_error", None, None, "", str(exc)[:500], plan.isolation, 0.0)
            wall = limits.wall_timeout_s or 2 * limits.timeout_s + 2
            timed_out = not _wait_unreaped(proc.pid, wall)
            _kill_group(proc.pid)  # on timeout, and to sweep anything left after a normal exit
            proc.wait()
        stdout, out_size = _read_capped(paths["stdout"], limits.max_output_bytes)
        stderr, _ = _read_capped(paths["stderr"], limits.max_output_bytes)
        with open(paths["report"], "rb") as fh:
            report = _parse_report(fh.read(4_000_000), nonce)
        with open(paths["stderr"], "rb") as fh:
            err_all = fh.read(4 * 1024 * 1024).decode("utf-8", errors="replace")
        rc = proc.returncode
        if "pidns" in plan.isolation and rc is not None and 128 < rc < 160:
            rc = -(rc - 128)  # the namespace's shell reports the program's signal death as 128+N
        outcome = _classify(timed_out, rc, report, err_all, out_size, limits.file_size_mb * 1024 * 1024)
        violations = tuple(
            sorted({ln.split(" ", 1)[1].strip() for ln in err_all.splitlines() if ln.startswith(_VIOLATION + " ")})
        )
        return SandboxResult(
            outcome, report, rc, stdout, stderr, plan.isolation, time.monotonic() - start, violations
        )
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)


def _classify(
    timed_out: bool, rc: int | None, report: dict[str, Any] | None, stderr: str, out_size: int, fsize: int
) -> str:
    if timed_out:
        return "timeout"
    if report is not None and report.get("status") == "pass" and rc == 0:
        return "reported"
    if _VIOLATION in stderr:
        return "forbidden_syscall"
    if rc is not None and rc < 0:
        sig = -rc
        if sig == signal.SIGXCPU:
            return "cpu_limit"
        if sig == signal.SIGXFSZ:
            return "file_size"
        return "crashed"
    if out_size >= fsize:
        return "output_limit"
    if "MemoryError" in stderr or (report and report.get("error_type") == "MemoryError"):
        return "memory"
    if "File too large" in stderr or (report and "File too large" in str(report.get("error", ""))):
        return "file_size"
    if report is not None:
        return "reported"
    return "no_result"
