"""Tests of the form `assert f(args) == expected`, taken apart *outside* the candidate's process.

A reward-hacking reply can do anything inside the process that runs it: call the harness's
report function, rewrite builtins, walk frames, return an object whose `__eq__` is always
true. So the expected values must never enter that process. `plan_checks` parses a test
suite (trusted: it comes from the source dataset) with `ast` into `Check`s: the *candidate
side* (an expression that calls the answer's code, evaluated in the sandbox, whose value
comes back as plain data) and the *expected side* (evaluated here with `ast.literal_eval`,
or in a separate sandbox that never sees the answer). The comparison happens in the parent.

The candidate side must be "call-shaped": a call of a name the answer defines, with inputs
that hold no expected value, optionally wrapped in a pure builtin (`set`, `sorted`, `round`
…) or indexed by a literal. `abs(f(x) - e) < tol` and `math.isclose(f(x), e)` are taken
apart so `e` stays outside. A suite with any statement that does not fit returns None; the
caller then runs it the old, weaker way (method `code_inproc`).
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

# Pure builtins whose first argument may be the candidate's value (the rest must be literals).
WRAPPERS = frozenset({
    "set", "frozenset", "sorted", "list", "tuple", "round", "int", "float", "str", "len", "abs", "sum",
    "min", "max", "dict", "bool", "repr", "reversed", "complex",
})  # fmt: skip
# Names an expected side may use besides literals: evaluated in a sandbox without the answer.
TRUSTED_MODULES = frozenset({"math", "cmath", "collections", "itertools", "functools", "heapq", "string",
                             "operator", "decimal", "fractions", "statistics", "re"})  # fmt: skip
_BUILTINS = frozenset(dir(builtins))
_OPS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Is: "is", ast.IsNot: "isnot", ast.Lt: "lt", ast.LtE: "le",
        ast.Gt: "gt", ast.GtE: "ge", ast.In: "in", ast.NotIn: "notin"}  # fmt: skip
_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne", "is": "is", "isnot": "isnot"}
MAX_CHECKS = 500


@dataclass(frozen=True)
class Check:
    """One assertion: `call` runs in the candidate's sandbox; `expected` never does.

    kind: "cmp" (`value <op> expected`), "rcmp" (`expected <op> value`, for `in`),
    "truthy" / "falsy", "close" (|value - expected| < or <= tol), "isclose" (math.isclose kwargs).
    """

    call: str
    kind: str
    op: str = ""
    expected: str | None = None
    tol: str | None = None
    strict: bool = True
    isclose_kwargs: tuple[tuple[str, str], ...] = ()


@dataclass
class Plan:
    checks: list[Check]
    imports: list[str] = field(default_factory=list)  # import statements the test itself runs
    candidate_alias: str | None = None  # HumanEval: `candidate` is bound to the entry point


class _Free(ast.NodeVisitor):
    """Names an expression uses that neither builtins, trusted modules nor `trusted` define."""

    def __init__(self, trusted: frozenset[str]) -> None:
        self.trusted = trusted
        self.free: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if node.id not in _BUILTINS and node.id not in TRUSTED_MODULES and node.id not in self.trusted:
            self.free.add(node.id)

    def visit_Lambda(self, node: ast.Lambda) -> None:  # a lambda's own parameters are not free
        inner = _Free(self.trusted | {a.arg for a in node.args.args})
        inner.visit(node.body)
        self.free |= inner.free


def _free_names(node: ast.AST, trusted: frozenset[str]) -> set[str]:
    v = _Free(trusted)
    v.visit(node)
    return v.free


class _Context:
    def __init__(self, trusted: frozenset[str]) -> None:
        self.trusted = trusted

    def is_candidate(self, node: ast.AST) -> bool:
        return bool(_free_names(node, self.trusted))

    def call_shaped(self, node: ast.AST) -> bool:
        """The value side may only compute from the answer's code and literal-free inputs."""
        if isinstance(node, ast.Call):
            root = node.func
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and self.is_candidate(root):
                # inputs: either expected-free (no candidate name needed) or themselves call-shaped
                args = [*node.args, *(k.value for k in node.keywords)]
                return all(not self.is_candidate(a) or self.call_shaped(a) for a in args) and not any(
                    isinstance(a, ast.Starred) and self.is_candidate(a) for a in node.args
                )
            if isinstance(node.func, ast.Name) and node.func.id in WRAPPERS and node.args:
                first, rest = node.args[0], [*node.args[1:], *(k.value for k in node.keywords)]
                return self.call_shaped(first) and all(_is_literal(a) for a in rest)
            return False
        if isinstance(node, ast.Subscript):
            return self.call_shaped(node.value) and _is_literal(node.slice)
        if isinstance(node, ast.Attribute) and node.attr in ("real", "imag"):
            return self.call_shaped(node.value)
        return False


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _src(node: ast.AST) -> str:
    return ast.unparse(node)


def _assert_check(test: ast.expr, ctx: _Context) -> Check | None:
    """A Check for the expression of one `assert`, or None if it does not fit a safe shape."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return Check(_src(test.operand), "falsy") if ctx.call_shaped(test.operand) else None
    if ctx.call_shaped(test):
        return Check(_src(test), "truthy")
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right, op = test.left, test.comparators[0], _OPS.get(type(test.ops[0]))
        if op is None:
            return None
        # |value - expected| < tol, either order inside abs()
        if (
            op in ("lt", "le")
            and isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "abs"
            and len(left.args) == 1 and isinstance(left.args[0], ast.BinOp) and isinstance(left.args[0].op, ast.Sub)
            and not ctx.is_candidate(right)
        ):  # fmt: skip
            a, b = left.args[0].left, left.args[0].right
            val, exp = (a, b) if ctx.call_shaped(a) and not ctx.is_candidate(b) else (b, a)
            if ctx.call_shaped(val) and not ctx.is_candidate(exp):
                return Check(_src(val), "close", expected=_src(exp), tol=_src(right), strict=op == "lt")
            return None
        if ctx.call_shaped(left) and not ctx.is_candidate(right):
            return Check(_src(left), "cmp", op, _src(right))
        if ctx.call_shaped(right) and not ctx.is_candidate(left):
            if op in ("in", "notin"):
                return Check(_src(right), "rcmp", op, _src(left))
            return Check(_src(right), "cmp", _FLIP[op], _src(left))
        return None
    if isinstance(test, ast.Call) and len(test.args) == 2:
        fn = test.func
        name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
        is_math = not isinstance(fn, ast.Attribute) or (isinstance(fn.value, ast.Name) and fn.value.id == "math")
        if name == "isclose" and is_math and all(_is_literal(k.value) for k in test.keywords):
            a, b = test.args
            val, exp = (a, b) if ctx.call_shaped(a) and not ctx.is_candidate(b) else (b, a)
            if ctx.call_shaped(val) and not ctx.is_candidate(exp):
                kw = tuple((k.arg or "", _src(k.value)) for k in test.keywords)
                return Check(_src(val), "isclose", expected=_src(exp), isclose_kwargs=kw)
    return None


def _bound_names(tree: ast.Module) -> set[str]:
    """Names a setup block binds (imports, defs, classes, assignments): trusted helpers."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _parse(src: str) -> ast.Module | None:
    try:
        return ast.parse(src)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _statements(body: list[ast.stmt], ctx: _Context, plan: Plan) -> bool:
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring or a bare constant
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            plan.imports.append(_src(stmt))
            continue
        if not isinstance(stmt, ast.Assert):
            return False
        if isinstance(stmt.test, ast.Constant):
            if stmt.test.value:
                continue  # `assert True, "..."`: HumanEval's debugging line
            return False
        check = _assert_check(stmt.test, ctx)
        if check is None:
            return False
        plan.checks.append(check)
    return True


def plan_asserts(asserts: list[str], setup: str = "") -> Plan | None:
    """MBPP / plain asserts → a Plan, or None when any line does not fit the safe shapes."""
    setup_tree = _parse(setup or "")
    if setup_tree is None:
        return None
    ctx = _Context(frozenset(_bound_names(setup_tree)))
    plan = Plan([])
    for line in asserts:
        tree = _parse(line)
        if tree is None or not _statements(tree.body, ctx, plan):
            return None
    return plan if 0 < len(plan.checks) <= MAX_CHECKS else None


def plan_humaneval(test: str) -> Plan | None:
    """HumanEval's `def check(candidate): assert candidate(...) == ...` → a Plan, or None."""
    tree = _parse(test)
    if tree is None:
        return None
    plan = Plan([], candidate_alias="candidate")
    check_fn: ast.FunctionDef | None = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            check_fn = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            plan.imports.append(_src(node))
        elif isinstance(node, ast.Assign) and _is_literal(node.value):
            continue  # METADATA = {...}
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        else:
            return None
    if check_fn is None or [a.arg for a in check_fn.args.args] != ["candidate"]:
        return None
    ctx = _Context(frozenset())
    if not _statements(check_fn.body, ctx, plan):
        return None
    return plan if 0 < len(plan.checks) <= MAX_CHECKS else None
