"""Code answers: extract the teacher's Python and run it against the source's tests, sandboxed.

The source row's ``tests`` field is a JSON string with one of these shapes::

    {"format": "humaneval",
     "test": "<source defining check(candidate)>",
     "entry_point": "<function name>",
     "prompt": "<optional: the signature + docstring given to the model>"}
    {"format": "mbpp",
     "test_list": ["assert f(1) == 2", ...],
     "test_setup_code": "<optional source run before the asserts>"}
    {"format": "asserts",
     "asserts": ["assert f(1) == 2", ...],
     "setup": "<optional source run before the asserts>"}

Optional in every shape: ``"timeout_s"`` (CPU seconds, default 10; the wall clock allows
twice that plus 2 s) and ``"memory_mb"`` (address space, default 1024).
HumanEval answers may be a whole function or a completion of ``prompt``; the prompt's import
lines are prepended either way, as the model saw them. MBPP's ``challenge_test_list`` is not run.

The code is the last ```python block of the answer that defines the entry point (when one
is known), else the last ```python block, else the same rules over any fenced block, else the
whole answer if it compiles and defines something.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from builder.sandbox import Limits, SandboxResult, run_sandboxed

from .verdict import Verdict

METHOD = "code"
MAX_CODE_CHARS = 200_000
_FENCE_RE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PY_LANGS = {"python", "py", "python3", "py3"}

# Runs inside the sandbox after the guard; PAYLOAD and report() come from the guard.
_HARNESS = r"""
import builtins as _b
def _main(P=PAYLOAD, report=report):
    ns = {"__name__": "__candidate__", "__builtins__": _b}
    def fail(status, exc=None, **kw):
        import traceback as _tb  # only on failure: importing it costs more than a short test
        err = _tb.format_exception_only(type(exc), exc)[-1].strip()[:500] if exc else None
        report(dict(status=status, error_type=type(exc).__name__ if exc else None, error=err, **kw))
    def run(src, name):
        exec(compile(src, name, "exec"), ns)
    try:
        run(P["code"], "<answer>")
    except SystemExit as e:
        return fail("candidate_exit", e)
    except MemoryError as e:
        return fail("memory", e)
    except BaseException as e:
        return fail("runtime_error", e)
    try:
        if P.get("setup"):
            run(P["setup"], "<setup>")
        if P["format"] == "humaneval":
            if not callable(ns.get(P["entry_point"])):
                return fail("missing_entry_point")
            run(P["test"], "<test>")
            ns["check"](ns[P["entry_point"]])
            n = 1
        else:
            for i, src in enumerate(P["asserts"]):
                try:
                    run(src, "<assert %d>" % i)
                except AssertionError as e:
                    return fail("tests_failed", e, index=i)
            n = len(P["asserts"])
    except AssertionError as e:
        return fail("tests_failed", e)
    except MemoryError as e:
        return fail("memory", e)
    except BaseException as e:
        return fail("test_error", e)
    report({"status": "pass", "passed": n})
_main()
"""


class InvalidTestsError(ValueError):
    """The row's tests field does not follow the schema in the module docstring."""


def parse_tests(tests: str | dict[str, Any]) -> dict[str, Any]:
    """Validate a tests field (JSON string or dict) into the sandbox payload shape."""
    spec = json.loads(tests) if isinstance(tests, str) else dict(tests)
    if not isinstance(spec, dict):
        raise InvalidTestsError("tests must be a JSON object")
    fmt = spec.get("format")
    if fmt == "humaneval":
        for key in ("test", "entry_point"):
            if not isinstance(spec.get(key), str) or not spec[key].strip():
                raise InvalidTestsError(f"humaneval tests need a non-empty string {key!r}")
        out = {"format": fmt, "test": spec["test"], "entry_point": spec["entry_point"]}
        out["prompt"] = spec.get("prompt") or ""
        return out
    if fmt in ("mbpp", "asserts"):
        key, setup_key = ("test_list", "test_setup_code") if fmt == "mbpp" else ("asserts", "setup")
        asserts = spec.get(key)
        if not isinstance(asserts, list) or not asserts or not all(isinstance(a, str) for a in asserts):
            raise InvalidTestsError(f"{fmt} tests need a non-empty list of strings {key!r}")
        return {"format": "asserts", "asserts": asserts, "setup": spec.get(setup_key) or ""}
    raise InvalidTestsError(f"unknown tests format {fmt!r} (expected humaneval, mbpp or asserts)")


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", code, re.M) is not None


def extract_code(answer: str, entry_point: str | None = None) -> str | None:
    """The Python source in `answer` by the rules in the module docstring, or None."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE_RE.findall(answer) if body.strip()]
    py = [body for lang, body in blocks if lang in _PY_LANGS]
    for pool in (py, [body for _, body in blocks]):
        if not pool:
            continue
        if entry_point:
            defining = [b for b in pool if _defines(b, entry_point)]
            if defining:
                return defining[-1]
        return pool[-1]
    if "```" not in answer and re.search(r"^\s*(?:def|class)\s+\w+", answer, re.M):
        try:
            compile(answer, "<answer>", "exec")
        except (SyntaxError, ValueError):
            return None
        return answer
    return None


def _import_lines(prompt: str) -> str:
    return "\n".join(ln for ln in prompt.splitlines() if re.match(r"(?:import|from)\s+\w", ln))  # top level only


def build_program(code: str, spec: dict[str, Any]) -> str:
    """The candidate source as it will run: HumanEval completions get their prompt back."""
    if spec["format"] != "humaneval":
        return code
    prompt = spec.get("prompt") or ""
    if _defines(code, spec["entry_point"]) or not prompt:
        imports = _import_lines(prompt)
        return f"{imports}\n{code}" if imports else code
    return prompt + code  # a completion of the prompt's function body


_FAIL_REASONS = {
    "timeout": "timeout",
    "cpu_limit": "timeout",
    "memory": "memory",
    "output_limit": "output_limit",
    "file_size": "file_size",
    "forbidden_syscall": "forbidden_syscall",
    "crashed": "crashed",
    "no_result": "no_result",
}


def _verdict_from(result: SandboxResult) -> Verdict:
    iso = "isolation=" + ",".join(result.isolation)
    rep = result.report or {}
    if result.outcome == "sandbox_error":
        return Verdict("unverifiable", METHOD, "sandbox_error", f"{iso}; {result.stderr[:200]}")
    if result.outcome == "reported" and rep.get("status") == "pass":
        extra = f"; violations={','.join(result.violations)}" if result.violations else ""
        return Verdict("pass", METHOD, "ok", f"{iso}; passed={rep.get('passed')}{extra}")
    if result.outcome == "reported":
        return Verdict("fail", METHOD, str(rep.get("status")), f"{iso}; {rep.get('error') or ''}"[:600])
    reason = _FAIL_REASONS.get(result.outcome, result.outcome)
    tail = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
    return Verdict("fail", METHOD, reason, f"{iso}; rc={result.returncode}; {' '.join(tail)}"[:600])


def _prepare(answer: str, tests: str | dict[str, Any] | None) -> tuple[Verdict | None, str, dict[str, Any], Limits]:
    """(early verdict or None, program, payload, limits)."""
    limits = Limits()
    if tests is None or (isinstance(tests, str) and not tests.strip()):
        return Verdict("unverifiable", METHOD, "no_tests"), "", {}, limits
    try:
        spec = parse_tests(tests)
        raw = json.loads(tests) if isinstance(tests, str) else tests
        limits = Limits(
            timeout_s=float(raw.get("timeout_s", limits.timeout_s)),
            memory_mb=int(raw.get("memory_mb", limits.memory_mb)),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        return Verdict("unverifiable", METHOD, "bad_tests", str(exc)[:200]), "", {}, limits
    if not answer or not answer.strip():
        return Verdict("fail", METHOD, "empty_answer"), "", {}, limits
    code = extract_code(answer, spec.get("entry_point"))
    if code is None:
        return Verdict("fail", METHOD, "no_code_block"), "", {}, limits
    program = build_program(code, spec)
    if len(program) > MAX_CODE_CHARS:
        return Verdict("fail", METHOD, "code_too_large", f"{len(program)} chars"), "", {}, limits
    try:
        compile(program, "<answer>", "exec")  # cheap, and saves a subprocess for broken code
    except (SyntaxError, ValueError) as exc:
        return Verdict("fail", METHOD, "syntax_error", f"{type(exc).__name__}: {exc}"[:300]), "", {}, limits
    return None, _HARNESS, {**spec, "code": program}, limits


def verify_code(answer: str, tests: str | dict[str, Any] | None) -> Verdict:
    """Verdict for a code answer against a tests field (see module docstring); never raises."""
    early, program, payload, limits = _prepare(answer, tests)
    if early is not None:
        return early
    try:
        return _verdict_from(run_sandboxed(program, payload, limits))
    except OSError as exc:  # e.g. temp dir or fd exhaustion on the host
        return Verdict("unverifiable", METHOD, "sandbox_error", str(exc)[:300])


def verify_code_batch(
    items: Sequence[tuple[str, str | dict[str, Any] | None]], workers: int | None = None
) -> list[Verdict]:
    """verify_code over (answer, tests) pairs, several sandboxes at once, results in order.

    Threads suffice: each sandbox is its own process and the parent only waits on it.
    """
    workers = max(1, workers or os.cpu_count() or 1)
    if workers == 1 or len(items) <= 1:
        return [verify_code(a, t) for a, t in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda it: verify_code(*it), items))
