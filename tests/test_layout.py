"""The floor plan, checked from the code's own imports (ast only, no new dependency).

Rules (../shared/DESIGN.md, "Layout"): the core imports no stage and no service; no stage
imports another stage; the LLM service (`teachers/`) and `quality/` import no stage;
`train_reference/` imports no stage and no service; no import cycle; no module over 450 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("builder", "quality", "train_reference")
CORE = {
    "builder", "builder.recipe", "builder.config", "builder.rows", "builder.schema", "builder.tables", "builder.ledger",
    "builder.workdir", "builder.errors", "builder.executors", "builder.tokens", "builder.token_cuts", "builder.language",
    "builder.language_formulas",
    "builder.reasoning_format", "builder.sandbox", "builder.embeddings", "builder.worklock", "builder.progress",
    "builder.cpus", "builder.token_ranks", "builder.langid_model", "builder.task_claims", "builder.files",
    "builder.landing", "builder.chat_length",
}  # fmt: skip
STAGES = ("curate", "generate", "responses", "variants", "release")
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def _imports(path: Path, name: str) -> set[str]:
    """Every module this file imports, at any depth (function-level imports count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = pkg.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: {i for i in _imports(path, name) if i in mods and i != name} for name, path in mods.items()}


def _group(module: str) -> str:
    """core | stage:<name> | service | sources | face | quality | train_reference."""
    if module.startswith("quality"):
        return "quality"
    if module.startswith("train_reference"):
        return "train_reference"
    parts = module.split(".")
    if module in CORE or (len(parts) > 1 and parts[1] == "config"):
        return "core"
    if len(parts) > 1 and parts[1] in STAGES:
        return f"stage:{parts[1]}"
    if len(parts) > 1 and parts[1] == "teachers":
        return "service"
    if len(parts) > 1 and parts[1] in ("sources", "constraints"):  # libraries any stage may use
        return "sources"
    return "face"  # cli, console, plan, check


def _violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in graph.items():
        g = _group(mod)
        for dep in deps:
            d = _group(dep)
            if dep == "builder":  # the package root holds __version__ only
                continue
            if g in ("core", "sources") and (d.startswith("stage:") or d in ("service", "face", "quality")):
                bad.append(f"{g} module {mod} imports {dep} ({d})")
            elif g.startswith("stage:") and d.startswith("stage:") and d != g:
                bad.append(f"stage module {mod} imports another stage's {dep}")
            elif g.startswith("stage:") and d == "face":
                bad.append(f"stage module {mod} imports the face module {dep}")
            elif g in ("service", "quality") and (d.startswith("stage:") or d == "face"):
                bad.append(f"{g} module {mod} imports {dep} ({d})")
            elif g == "train_reference" and (d.startswith("stage:") or d in ("service", "face")):
                bad.append(f"train_reference module {mod} imports {dep} ({d})")
    return sorted(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ is imported by every submodule import; drop those edges for cycles."""
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def test_no_forbidden_imports() -> None:
    assert _violations(_graph()) == []


def test_no_import_cycles() -> None:
    assert _cycles(_package_edges(_graph())) == []


def test_no_module_over_the_size_limit() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in _modules().items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES} == {}


# The checker must be able to fail: each rule is tried on a planted graph.
@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"builder.recipe": {"builder.curate.stage"}}, "core module builder.recipe imports builder.curate.stage"),
        ({"builder.config.variants": {"builder.teachers.store"}}, "core module builder.config.variants imports"),
        ({"builder.generate.stage": {"builder.responses.shapes"}}, "imports another stage's builder.responses.shapes"),
        ({"builder.teachers.send": {"builder.generate.todo"}}, "service module builder.teachers.send imports"),
        ({"quality.stats": {"builder.release.stage"}}, "quality module quality.stats imports"),
        ({"train_reference.sft": {"builder.teachers.store"}}, "train_reference module train_reference.sft imports"),
    ],
)
def test_checker_catches_planted_violations(graph: dict[str, set[str]], expected: str) -> None:
    found = _violations(graph)
    assert len(found) == 1 and expected in found[0]


def test_checker_catches_a_planted_cycle() -> None:
    graph = {"builder.generate.stage": {"builder.generate.tasks"}, "builder.generate.tasks": {"builder.generate.stage"}}
    assert _cycles(graph) == [["builder.generate.stage", "builder.generate.tasks"]]


def test_relative_imports_resolve(tmp_path: Path) -> None:
    f = tmp_path / "codecheck.py"
    f.write_text("from .verdict import Verdict\nfrom builder.sandbox import run_sandboxed\n")
    got = _imports(f, "builder.responses.verify.codecheck")
    assert "builder.responses.verify.verdict" in got and "builder.sandbox" in got
