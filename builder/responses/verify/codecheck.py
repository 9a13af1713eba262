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

Threat model: the answer is written by an adversary who knows this harness. So tests of the
form `assert f(args) == expected` are taken apart outside the sandbox (testplan.py): the
sandbox runs the answer and the calls only, and sends back plain values (values.py); the
expected side is evaluated here, or in a second sandbox that never sees the answer; the
comparison is made here. Such verdicts have method `code`. A suite that does not fit those
shapes runs the old way, tests and answer in one interpreter, where a hostile answer can forge
a pass: its verdicts have method `code_inproc`, and the responses stage decides (recipe:
`responses.code_inproc_pass`) whether such a pass counts. A verifier fault (the sandbox could
not start, an internal error) is status `error`, never `pass`, and stays with its own item.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from builder.cpus import usable_cores
from builder.sandbox import Limits, SandboxResult, run_sandboxed

from .testplan import Check, Plan, plan_asserts, plan_humaneval
from .values import ENCODER, BadValue, decode_results
from .verdict import Verdict

METHOD = "code"
METHOD_INPROC = "code_inproc"
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


# The out-of-process harness: runs the answer, then each call; sends back only plain values.
# No expected value is in PAYLOAD. With an empty `code` it evaluates expected sides instead.
_CALLS = ENCODER + r"""
import builtins as _b
def _main(P=PAYLOAD, report=report, enc=_enc, _compile=compile, _exec=exec, _eval=eval, _type=type):
    ns = {"__name__": "__candidate__", "__builtins__": _b}
    try:
        if P["code"]:
            _exec(_compile(P["code"], "<answer>", "exec"), ns)
    except SystemExit as e:
        return report({"status": "candidate_exit", "error_type": "SystemExit"})
    except MemoryError as e:
        return report({"status": "memory", "error_type": "MemoryError"})
    except BaseException as e:
        return report({"status": "runtime_error", "error_type": _type(e).__name__})
    try:
        for src in P["prelude"]:
            _exec(_compile(src, "<setup>", "exec"), ns)
        if P["alias"]:
            if not callable(ns.get(P["entry_point"])):
                return report({"status": "missing_entry_point"})
            ns[P["alias"]] = ns[P["entry_point"]]
    except BaseException as e:
        return report({"status": "setup_error", "error_type": _type(e).__name__})
    out = []
    for src in P["calls"]:
        try:
            out.append({"v": enc(_eval(_compile(src, "<call>", "eval"), ns))})
        except BaseException as e:
            out.append({"e": _type(e).__name__ + (":%s" % e.errno if isinstance(e, OSError) else "")})
    report({"status": "done", "results": out})
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


def _iso(result: SandboxResult) -> str:
    return "isolation=" + ",".join(result.isolation)


def _failed_run(result: SandboxResult, method: str) -> Verdict:
    """The verdict for a run that did not end with a report (or a failing one): never pass."""
    if result.outcome == "sandbox_error":
        return Verdict("error", method, "sandbox_error", f"{_iso(result)}; {result.stderr[:200]}")
    reason = _FAIL_REASONS.get(result.outcome, result.outcome)
    tail = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
    return Verdict("fail", method, reason, f"{_iso(result)}; rc={result.returncode}; {' '.join(tail)}"[:600])


def _inproc_verdict(result: SandboxResult) -> Verdict:
    rep = result.report or {}
    if result.outcome == "reported" and rep.get("status") == "pass":
        extra = f"; violations={','.join(result.violations)}" if result.violations else ""
        return Verdict("pass", METHOD_INPROC, "ok", f"{_iso(result)}; passed={rep.get('passed')}{extra}")
    if result.outcome == "reported":
        return Verdict("fail", METHOD_INPROC, str(rep.get("status"))[:40], f"{_iso(result)}; {rep.get('error') or ''}"[:600])
    return _failed_run(result, METHOD_INPROC)


# What the out-of-process harness itself reports when the answer does not get to the calls.
_HARNESS_FAILURES = frozenset({"candidate_exit", "memory", "runtime_error", "setup_error", "missing_entry_point"})
# An exception a call raised, by name (errno for OSError), when it says more than "test_error".
_CALL_ERRORS = {"MemoryError": "memory", "OSError:27": "file_size", "SystemExit": "candidate_exit"}

_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "is": operator.is_, "isnot": operator.is_not, "lt": operator.lt,
    "le": operator.le, "gt": operator.gt, "ge": operator.ge,
    "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}  # fmt: skip


def _holds(check: Check, value: Any, expected: Any, tol: Any, kwargs: dict[str, Any]) -> bool:
    """Does `check` hold for these plain values? Any exception means no."""
    try:
        if check.kind == "truthy":
            return bool(value)
        if check.kind == "falsy":
            return not bool(value)
        if check.kind == "cmp":
            return bool(_CMP[check.op](value, expected))
        if check.kind == "rcmp":
            return bool(_CMP[check.op](expected, value))
        if check.kind == "close":
            diff = abs(value - expected)
            return bool(diff < tol if check.strict else diff <= tol)
        if check.kind == "isclose":
            return math.isclose(value, expected, **kwargs)
    except Exception:  # noqa: BLE001 - a TypeError on mixed types, an Opaque's truth: not a pass
        return False
    return False


def _literal(src: str | None) -> tuple[bool, Any]:
    if src is None:
        return True, None
    try:
        return True, ast.literal_eval(src)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _prelude(plan: Plan, setup: str) -> list[str]:
    """What runs before the calls, in both sandboxes: the test's own imports, then its setup."""
    return [*plan.imports, setup] if setup else list(plan.imports)


def _expected_values(plan: Plan, setup: str, limits: Limits) -> tuple[list[Any], Verdict | None]:
    """Every expected side, tolerance and isclose kwarg as plain values: literals here, the rest
    in a sandbox that runs the test's own setup and never the answer."""
    exprs: list[str] = []
    for c in plan.checks:
        exprs += [x for x in (c.expected, c.tol) if x is not None]
        exprs += [v for _, v in c.isclose_kwargs]
    values: dict[str, Any] = {}
    pending: list[str] = []
    for e in dict.fromkeys(exprs):
        ok, v = _literal(e)
        if ok:
            values[e] = v
        else:
            pending.append(e)
    if pending:
        payload = {"code": "", "prelude": _prelude(plan, setup), "alias": None,
                   "entry_point": None, "calls": pending}  # fmt: skip
        res = run_sandboxed(_CALLS, payload, limits)
        rep = res.report or {}
        if res.outcome != "reported" or rep.get("status") != "done":
            return [], Verdict("error", METHOD, "expected_values_failed", f"{_iso(res)}; {res.outcome} {rep.get('status')}")
        try:
            got = decode_results(rep.get("results"), len(pending))
        except BadValue as e:
            return [], Verdict("error", METHOD, "expected_values_failed", str(e))
        for e, (ok, v) in zip(pending, got):
            if not ok:
                return [], Verdict("error", METHOD, "expected_values_failed", f"{e[:80]} raised {v}")
            values[e] = v
    return [values.get(e) for e in exprs], None


def _judge(plan: Plan, result: SandboxResult, expected: list[Any]) -> Verdict:
    rep = result.report or {}
    if result.outcome != "reported" or rep.get("status") != "done":
        if result.outcome == "reported":
            status = rep.get("status")
            reason = status if status in _HARNESS_FAILURES else "bad_report"  # a forged status names nothing
            return Verdict("fail", METHOD, reason, f"{_iso(result)}; {str(rep.get('error_type'))[:80]}")
        return _failed_run(result, METHOD)
    try:
        got = decode_results(rep.get("results"), len(plan.checks))
    except BadValue as e:
        return Verdict("fail", METHOD, "bad_result", f"{_iso(result)}; {e}")
    it = iter(expected)
    for i, (check, (ok, value)) in enumerate(zip(plan.checks, got)):
        exp = next(it) if check.expected is not None else None
        tol = next(it) if check.tol is not None else None
        kwargs = {k: next(it) for k, _ in check.isclose_kwargs}
        if not ok:
            reason = _CALL_ERRORS.get(value, "test_error")
            return Verdict("fail", METHOD, reason, f"{_iso(result)}; check {i}: {check.call[:80]} raised {value}")
        if not _holds(check, value, exp, tol, kwargs):
            return Verdict("fail", METHOD, "tests_failed", f"{_iso(result)}; check {i}: {check.call[:80]}")
    return Verdict("pass", METHOD, "ok", f"{_iso(result)}; passed={len(plan.checks)}")


def _plan(spec: dict[str, Any]) -> Plan | None:
    if spec["format"] == "humaneval":
        return plan_humaneval(spec["test"])
    return plan_asserts(spec["asserts"], spec.get("setup") or "")


def _prepare(answer: str, tests: str | dict[str, Any] | None) -> tuple[Verdict | None, str, dict[str, Any], Limits]:
    """(early verdict or None, program, spec with the program under "code", limits)."""
    limits = Limits()
    if tests is None or (isinstance(tests, str) and not tests.strip()):
        return Verdict("unverifiable", METHOD, "no_tests"), "", {}, limits
    try:
        spec = parse_tests(tests)
        raw = json.loads(tests) if isinstance(tests, str) else tests
        limits = Limits(
            timeout_s=min(60.0, float(raw.get("timeout_s", limits.timeout_s))),
            memory_mb=min(4096, int(raw.get("memory_mb", limits.memory_mb))),
        )
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
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
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        # A hostile answer (100,000 nested brackets or unary minus signs) must not crash the verifier.
        return Verdict("fail", METHOD, "syntax_error", f"{type(exc).__name__}: {exc}"[:300]), "", {}, limits
    return None, program, spec, limits


def verify_code(answer: str, tests: str | dict[str, Any] | None) -> Verdict:
    """Verdict for a code answer against a tests field (see module docstring); never raises."""
    try:
        early, program, spec, limits = _prepare(answer, tests)
        if early is not None:
            return early
        plan = _plan(spec)
        if plan is None:  # tests this harness cannot take apart: the weaker in-process run
            return _inproc_verdict(run_sandboxed(_HARNESS, {**spec, "code": program}, limits))
        expected, problem = _expected_values(plan, spec.get("setup") or "", limits)
        if problem is not None:
            return problem
        payload = {"code": program, "prelude": _prelude(plan, spec.get("setup") or ""), "alias": plan.candidate_alias,
                   "entry_point": spec.get("entry_point"), "calls": [c.call for c in plan.checks]}  # fmt: skip
        return _judge(plan, run_sandboxed(_CALLS, payload, limits), expected)
    except Exception as exc:  # noqa: BLE001 - a verifier fault is this item's error, never a pass
        return Verdict("error", METHOD, "verifier_error", f"{type(exc).__name__}: {exc}"[:300])


def verify_code_batch(
    items: Sequence[tuple[str, str | dict[str, Any] | None]], workers: int | None = None
) -> list[Verdict]:
    """verify_code over (answer, tests) pairs, several sandboxes at once, results in order.

    Threads suffice: each sandbox is its own process and the parent only waits on it. One
    item's failure never touches another's verdict (verify_code never raises).
    """
    workers = max(1, min(workers or usable_cores(), 64))
    if workers == 1 or len(items) <= 1:
        return [verify_code(a, t) for a, t in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda it: verify_code(*it), items))
