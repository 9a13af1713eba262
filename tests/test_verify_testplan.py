"""Tests taken apart outside the sandbox: which shapes are split (method `code`), which fall back
to the in-process run (`code_inproc`), and that expected values never reach the answer."""

from __future__ import annotations

import json

import pytest

from builder.responses.verify import codecheck
from builder.responses.verify.codecheck import verify_code
from builder.responses.verify.testplan import plan_asserts, plan_humaneval
from builder.responses.verify.values import BadValue, Opaque, decode


def _fenced(code: str) -> str:
    return f"```python\n{code}\n```"


@pytest.mark.parametrize(
    ("line", "kind", "call", "expected"),
    [
        ("assert f(1) == 2", "cmp", "f(1)", "2"),
        ("assert 2 == f(1)", "cmp", "f(1)", "2"),
        ("assert f([1, 2]) != [2, 1], 'msg'", "cmp", "f([1, 2])", "[2, 1]"),
        ("assert f(3)", "truthy", "f(3)", None),
        ("assert not f(3)", "falsy", "f(3)", None),
        ("assert set(f(3)) == set([1, 2])", "cmp", "set(f(3))", "set([1, 2])"),
        ("assert round(f(2), 2) == 12.57", "cmp", "round(f(2), 2)", "12.57"),
        ("assert f(2)[0] == 'a'", "cmp", "f(2)[0]", "'a'"),
        ("assert abs(f(2) - 12.566) < 0.01", "close", "f(2)", "12.566"),
        ("assert abs(12.566 - f(2)) <= 0.01", "close", "f(2)", "12.566"),
        ("assert math.isclose(f(2), 12.566, rel_tol=0.001)", "isclose", "f(2)", "12.566"),
        ("assert 3 in f(5)", "rcmp", "f(5)", "3"),
        ("assert f(g(1)) == 4", "cmp", "f(g(1))", "4"),
        ("assert f(1) is None", "cmp", "f(1)", "None"),
    ],
)
def test_shapes_that_are_taken_apart(line: str, kind: str, call: str, expected: str | None) -> None:
    plan = plan_asserts([line])
    assert plan is not None and len(plan.checks) == 1
    c = plan.checks[0]
    assert (c.kind, c.call, c.expected) == (kind, call, expected)


@pytest.mark.parametrize(
    "line",
    [
        "assert f(1) == 2 == g(1)",  # chained
        "assert f(1) + 1 == 3",  # arithmetic around the call would carry the expected value in
        "assert abs(f(2) - g(2)) < 0.1",  # two candidate sides
        "for i in range(3): assert f(i) == i",  # a loop
        "x = f(1)\nassert x == 2",  # state between lines
        "assert f(1) == 2 or f(2) == 3",
        "assert False",
    ],
)
def test_shapes_that_fall_back(line: str) -> None:
    assert plan_asserts([line]) is None


def test_humaneval_check_is_taken_apart() -> None:
    test = (
        "METADATA = {'author': 'x'}\n\n"
        "def check(candidate):\n"
        "    '''doc'''\n"
        "    import math\n"
        "    assert candidate(1, 2) == 3, 'first'\n"
        "    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-6\n"
        "    assert True, 'This prints if this assert fails 1 (good for debugging!)'\n"
    )
    plan = plan_humaneval(test)
    assert plan is not None and plan.candidate_alias == "candidate" and plan.imports == ["import math"]
    assert [c.call for c in plan.checks] == ["candidate(1, 2)", "candidate(0.5, 0.25)"]
    assert plan_humaneval("def check(candidate):\n    for x in range(3):\n        assert candidate(x) == x\n") is None


MBPP = {"format": "mbpp", "test_list": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]}


def test_honest_answer_passes_with_the_out_of_process_method() -> None:
    v = verify_code(_fenced("def add(a, b):\n    return a + b"), json.dumps(MBPP))
    assert (v.status, v.method) == ("pass", "code")


def test_expected_values_never_reach_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = codecheck.run_sandboxed

    def spy(program: str, payload: object, limits: object = None) -> object:
        seen.append(json.dumps(payload))
        return real(program, payload, limits)  # type: ignore[arg-type]

    monkeypatch.setattr(codecheck, "run_sandboxed", spy)
    tests = {"format": "mbpp", "test_list": ["assert add(1, 2) == 98765", "assert add(3, 4) == frozenset([43210])"]}
    v = verify_code(_fenced("def add(a, b):\n    return a + b"), json.dumps(tests))
    assert v.status == "fail"
    candidate_payloads = [p for p in seen if "def add" in p]
    assert candidate_payloads and all("98765" not in p and "43210" not in p for p in candidate_payloads)
    # the non-literal expected side ran in a sandbox without the answer
    assert any("43210" in p and "def add" not in p for p in seen)


def test_an_always_equal_object_fails_out_of_process() -> None:
    code = "class E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\ndef add(a, b):\n    return E()"
    v = verify_code(_fenced(code), json.dumps(MBPP))
    assert (v.status, v.method) == ("fail", "code")


def test_unsplittable_tests_run_in_process_and_are_marked() -> None:
    tests = {"format": "asserts", "asserts": ["for i in range(3): assert add(i, 0) == i"]}
    v = verify_code(_fenced("def add(a, b):\n    return a + b"), json.dumps(tests))
    assert (v.status, v.method) == ("pass", "code_inproc")


def test_decoder_refuses_what_a_plain_value_cannot_be() -> None:
    assert decode({"t": [1, {"f": "0.5"}, {"s": ["a"]}]}) == (1, 0.5, {"a"})
    assert isinstance(decode({"x": "Weird"}), Opaque) and decode({"x": "W"}) != decode({"x": "W"})
    nested: object = 1
    for _ in range(200):
        nested = [nested]
    for bad in ({"q": 1}, {"f": "1" * 100}, {"s": [[1]]}, nested, {"i": "9" * 5000}):
        with pytest.raises(BadValue):
            decode(bad)


@pytest.mark.parametrize(("policy", "status"), [("unverifiable", "unverifiable"), ("trust", "pass")])
def test_recipe_decides_what_an_in_process_pass_counts_as(policy: str, status: str) -> None:
    from builder.config.responses import ResponsesConfig
    from builder.responses.stage import _verify_all

    tests = json.dumps({"format": "asserts", "asserts": ["for i in range(3): assert add(i, 0) == i"]})
    pinfo = {"verifier": "code", "category": "code", "tests_json": tests}
    out = _verify_all([(0, _fenced("def add(a, b):\n    return a + b"), pinfo)], ResponsesConfig(code_inproc_pass=policy))
    assert out[0][:2] == (status, "code_inproc")
