"""Sandboxed code verification: real HumanEval/MBPP solutions, extraction, adversarial code."""

from __future__ import annotations

import ctypes
import gzip
import json
import os
import time
from pathlib import Path

import pytest

from builder.responses.verify.codecheck import (
    InvalidTestsError,
    extract_code,
    parse_tests,
    verify_code,
    verify_code_batch,
)
from builder.sandbox import Limits, isolation_plan, run_sandboxed
from tests.corpus import corpus_dir

CORPUS = corpus_dir()
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")


def _humaneval() -> list[dict]:
    with gzip.open(CORPUS / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _mbpp() -> list[dict]:
    with (CORPUS / "mbpp" / "mbpp.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _he_tests(row: dict) -> str:
    return json.dumps(
        {"format": "humaneval", "test": row["test"], "entry_point": row["entry_point"], "prompt": row["prompt"]}
    )


def _fenced(code: str) -> str:
    return f"Here is my solution.\n\n```python\n{code}\n```\n"


def _cmdline(pid: int | str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _become_subreaper() -> bool:
    # Orphans of our sandboxes then re-parent to this test process instead of init,
    # so "left behind" can be checked on our own children, even with parallel test workers.
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _live_sandbox_children() -> set[int]:
    found = set()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or b"__SANDBOX_VIOLATION__" not in _cmdline(entry.name):
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me:
            found.add(int(entry.name))
    return found


# --- extraction and schema -------------------------------------------------------------


def test_extract_prefers_the_last_python_block_defining_the_entry_point() -> None:
    answer = (
        "```python\ndef f(x):\n    return 0\n```\ntext\n```python\ndef f(x):\n    return x\n```\n"
        "Usage:\n```python\nprint(f(3))\n```"
    )
    assert extract_code(answer, "f") == "def f(x):\n    return x\n"
    assert extract_code(answer) == "print(f(3))\n"
    assert extract_code("```\ndef g():\n    pass\n```", "g") == "def g():\n    pass\n"
    assert extract_code("def g():\n    return 1\n") == "def g():\n    return 1\n"
    assert extract_code("No code at all.") is None
    assert extract_code("```python\ndef h():\n    return 2\n") == "def h():\n    return 2\n"  # truncated fence


def test_tests_schema() -> None:
    assert parse_tests('{"format": "mbpp", "test_list": ["assert 1"], "test_setup_code": ""}')["format"] == "asserts"
    for bad in (
        '{"format": "junit"}',
        '{"format": "humaneval", "test": "x"}',
        '{"format": "asserts", "asserts": []}',
        "[]",
    ):
        with pytest.raises((InvalidTestsError, ValueError)):
            parse_tests(bad)
    assert verify_code("```python\nx=1\n```", '{"format": "nope"}').reason == "bad_tests"
    assert verify_code("```python\nx=1\n```", "not json").reason == "bad_tests"
    assert verify_code("```python\nx=1\n```", None).reason == "no_tests"


def test_syntax_error_and_missing_code_are_recorded_without_running() -> None:
    tests = json.dumps({"format": "asserts", "asserts": ["assert f() == 1"]})
    assert verify_code("```python\ndef f(:\n```", tests).reason == "syntax_error"
    assert verify_code("I would write a function.", tests).reason == "no_code_block"
    assert verify_code("```python\ndef g():\n    return 1\n```", tests).reason == "test_error"  # NameError f


# --- real data -----------------------------------------------------------------------------


@needs_corpus
@pytest.mark.slow
def test_humaneval_canonical_solutions_pass_and_broken_ones_fail() -> None:
    rows = _humaneval()
    good = [(_fenced(r["prompt"] + r["canonical_solution"]), _he_tests(r)) for r in rows]
    verdicts = verify_code_batch(good, workers=4)
    failed = [(r["task_id"], v) for r, v in zip(rows, verdicts, strict=True) if v.status != "pass"]
    assert not failed, failed[:3]
    # Completion style (body only) is joined to the prompt like the official harness does.
    completion = verify_code(f"```python\n{rows[0]['canonical_solution']}```", _he_tests(rows[0]))
    assert completion.status == "pass", completion
    broken = [(_fenced(r["prompt"] + "    return None\n"), _he_tests(r)) for r in rows[:40:4]] + [
        (_fenced(r["prompt"] + r["canonical_solution"].replace("return", "return not", 1)), _he_tests(r))
        for r in rows[1:41:4]
    ]
    for verdict in verify_code_batch(broken, workers=4):
        assert verdict.status == "fail" and verdict.reason in ("tests_failed", "test_error", "syntax_error"), verdict


@needs_corpus
@pytest.mark.slow
def test_mbpp_reference_solutions_pass_and_wrong_ones_fail() -> None:
    rows = _mbpp()[::10]
    items = [
        (
            _fenced(r["code"]),
            json.dumps({"format": "mbpp", "test_list": r["test_list"], "test_setup_code": r["test_setup_code"]}),
        )
        for r in rows
    ]
    verdicts = verify_code_batch(items, workers=4)
    assert all(v.status == "pass" for v in verdicts), [v for v in verdicts if v.status != "pass"][:3]
    # Swap solutions between tasks: each must now fail its (foreign) tests.
    swapped = [(items[i][0], items[i - 1][1]) for i in range(1, 21)]
    assert all(v.status == "fail" for v in verify_code_batch(swapped, workers=4))


# --- adversarial code ----------------------------------------------------------------------

T = {"format": "asserts", "asserts": ["assert f() == 1"], "timeout_s": 1, "memory_mb": 256}


def _run(code: str, **overrides: object) -> tuple[str, str, float]:
    start = time.monotonic()
    verdict = verify_code(_fenced(code), json.dumps({**T, **overrides}))
    return verdict.status, verdict.reason, time.monotonic() - start


@pytest.fixture
def no_strays():
    if not _become_subreaper():
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) unavailable")
    yield
    time.sleep(0.05)
    assert _live_sandbox_children() == set(), "sandbox processes left behind"


def _kernel_layers() -> set[str]:
    return set(isolation_plan().isolation)


@pytest.mark.parametrize(
    ("name", "code", "reasons"),
    [
        ("fork bomb", "import os\ndef f():\n    while True:\n        os.fork()\n", {"forbidden_syscall"}),
        (
            "subprocess",
            "import subprocess\ndef f():\n    subprocess.run(['sh','-c','sleep 60 &'])\n    return 1\n",
            {"forbidden_syscall"},
        ),
        ("infinite loop", "def f():\n    while True:\n        pass\n", {"timeout"}),
        ("sleep", "import time\ndef f():\n    time.sleep(60)\n", {"timeout"}),
        ("unbounded memory", "def f():\n    x = []\n    while True:\n        x.append(bytearray(10**7))\n", {"memory"}),
        (
            "socket",
            "import socket\ndef f():\n    socket.create_connection(('127.0.0.1', 22))\n    return 1\n",
            {"forbidden_syscall"},
        ),
        (
            "huge file",
            "def f():\n    with open('big', 'wb') as fh:\n        while True:\n            fh.write(b'x' * 10**6)\n",
            {"file_size"},
        ),
        ("kill parent", "import os\ndef f():\n    os.kill(os.getppid(), 9)\n    return 1\n", {"forbidden_syscall"}),
        (
            "print 100 MB",
            "def f():\n    s = 'x' * (1 << 20)\n    for _ in range(100):\n        print(s)\n    return 1\n",
            {"output_limit"},
        ),
        ("sys.exit(0)", "import sys\nsys.exit(0)\n", {"candidate_exit"}),
        ("os._exit(0)", "import os\nos._exit(0)\n", {"no_result"}),
    ],
)
def test_adversarial_code_is_contained(name: str, code: str, reasons: set[str], no_strays: None) -> None:
    # Allocation is slow on a loaded machine: give that case time to hit its memory limit.
    status, reason, elapsed = _run(code, **({"timeout_s": 10, "memory_mb": 128} if name == "unbounded memory" else {}))
    assert status == "fail" and reason in reasons, (name, status, reason)
    assert elapsed < 15, (name, elapsed)


def test_kernel_layers_hold_when_the_python_guard_is_undone(no_strays: None) -> None:
    layers = _kernel_layers()
    # Re-importing a built-in module brings back the original functions.
    undo = "import sys\nfor m in ('posix', '_socket'):\n    del sys.modules[m]\nimport posix, _socket\n"
    if "nobody" in layers:
        status, reason, _ = _run(undo + "def f():\n    for _ in range(50):\n        posix.fork()\n    return 1\n")
        assert (status, reason) == ("fail", "test_error")  # BlockingIOError: RLIMIT_NPROC
        if "pidns" in layers:  # its parent is the namespace's own init (pid 1, root): the verifier is out of reach
            assert _run(undo + "def f():\n    return 1 if posix.getppid() == 1 else 0\n")[:2] == ("pass", "ok")
            status, reason, _ = _run(undo + "def f():\n    posix.kill(posix.getppid(), 9)\n    return 1\n")
            assert (status, reason) == ("fail", "test_error")  # PermissionError: other uid
        else:
            status, reason, _ = _run(undo + "def f():\n    posix.kill(posix.getppid(), 9)\n    return 1\n")
            assert (status, reason) == ("fail", "test_error")  # PermissionError: other uid
    if "netns" in layers:
        code = undo + "def f():\n    s = _socket.socket()\n    s.connect(('127.0.0.1', 22))\n    return 1\n"
        assert _run(code)[:2] == ("fail", "test_error")  # ENETUNREACH: no interfaces at all
    if not {"nobody", "netns"} & layers:
        pytest.skip("no kernel isolation available on this machine")


def test_child_cannot_see_parent_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted")
    monkeypatch.setenv("HF_TOKEN", "hf_planted")
    code = (
        "import os\ndef f():\n"
        "    seen = str(dict(os.environ))\n"
        "    try:\n"
        "        seen += open('/proc/%d/environ' % os.getppid(), 'rb').read().decode('latin-1')\n"
        "    except OSError:\n"
        "        pass\n"
        "    return 1 if ('planted' not in seen) else 0\n"
    )
    assert _run(code)[:2] == ("pass", "ok")
    result = run_sandboxed("import os\nprint(sorted(os.environ))", None, Limits(timeout_s=5))
    assert "OPENAI_API_KEY" not in result.stdout and "HF_TOKEN" not in result.stdout


def test_isolation_is_recorded_in_the_verdict() -> None:
    verdict = verify_code(_fenced("def f():\n    return 1\n"), json.dumps(T))
    assert verdict.status == "pass"
    assert "isolation=" in verdict.detail and "rlimits" in verdict.detail and "pyguard" in verdict.detail
    if os.geteuid() == 0 and "netns" not in verdict.detail:
        pytest.fail(f"running as root but no network namespace: {verdict.detail}")


def test_fallback_without_namespace_tools_still_contains(monkeypatch: pytest.MonkeyPatch, no_strays: None) -> None:
    # Machines without unshare/setpriv (or not root) get rlimits + the Python guard only.
    from builder import sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.isolation_plan.cache_clear()
    try:
        plan = sandbox.isolation_plan()
        assert not {"netns", "mountns", "nobody"} & set(plan.isolation)
        assert {"rlimits", "pyguard", "scrubbed_env"} <= set(plan.isolation)
        assert _run("def f():\n    return 1\n")[:2] == ("pass", "ok")
        assert _run("import os\ndef f():\n    os.fork()\n")[:2] == ("fail", "forbidden_syscall")
        assert _run("def f():\n    while True:\n        pass\n")[:2] == ("fail", "timeout")
    finally:
        sandbox.isolation_plan.cache_clear()


def test_no_host_directory_is_writable_from_the_sandbox(tmp_path: Path) -> None:
    from builder.sandbox import host_writable_dirs, isolation_plan, run_sandboxed

    if "mountns" not in isolation_plan().isolation:
        pytest.skip("no mount namespace here: only rlimits bound what the program writes")
    targets = [*host_writable_dirs(), "/var/tmp", "/run/lock"]
    before = {d: set(os.listdir(d)) for d in targets if os.path.isdir(d)}
    probe = "out = {}\nfor d in PAYLOAD:\n    try:\n        open(d + '/probe-file', 'w').write('x' * 100)\n        out[d] = 'wrote'\n    except OSError:\n        out[d] = 'refused'\nreport(out)\n"
    res = run_sandboxed(probe, sorted(before))
    assert res.report is not None and set(res.report.values()) == {"refused"}, res.report
    assert {d: set(os.listdir(d)) for d in before} == before
