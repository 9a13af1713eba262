"""`answer-distill check` (face): everything that would fail a paid build, found before it starts.

Each check below adds lines to one report and never raises: `run_check` gathers them all, so a recipe with
five mistakes shows five lines in one run, and nothing is written or paid before they are
fixed. The same report runs at the start of `build`, `generate` and `plan`.

What is checked (and why here, not in the stage that would find it):
- every `api_key_env` of a teacher is set and not blank (its NAME is printed, never its value);
- every OpenAI-compatible endpoint answers `GET <base_url>/models` through the real openai
  client (short timeouts, no retries) and lists the configured model;
- every decontamination benchmark file is present; an absent `optional: true` one is listed
  as *skipped* (curate then records it in its summary, the card discloses it), a folder is a problem;
- local source and import files (or globs) are present, in a format their name or `format:` tells,
  as the readers resolve them (builder/sources/paths.py: a glob matching a folder, a broken link or
  a file of another format is the problem the run would stop at);
  the pinned tokenizer files are installed and hash-valid;
- the work directory is empty or was built by this recipe (the name in its stage summaries);
  --work and --out are folders, not files; the recipe has a teacher (check and plan);
- the version is not released yet (its tag on the Hub repo `release.repo_id`); a local release
  folder holding it from another edit of the recipe is a warning.
Warnings (never fatal): an unpinned Hub `revision`, a requested model without a price.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from builder.config.generate import TeacherConfig
from builder.config.sources import SourceConfig
from builder.errors import unset_state
from builder.recipe import Recipe

if TYPE_CHECKING:
    from rich.console import Console

Scope = Literal["check", "build", "generate", "plan"]
PROBE_TIMEOUT_S = 5.0  # whole GET /models; connect gets less. A dead endpoint must not stall `plan`.
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# What a work directory may hold besides stage folders (the lock, staging of a killed run).
_WORK_HOUSEKEEPING = {".lock", ".staging", ".trash"}
_STAGE_DIRS = {"curate", "generate", "responses", "variants", "release"}


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)  # each one line: where, what, what to do
    warnings: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)  # what was checked and is fine
    skipped_benchmarks: list[str] = field(default_factory=list)  # "name (path)"

    @property
    def failed(self) -> bool:
        return bool(self.problems)


def _teachers(recipe: Recipe, scope: Scope) -> list[tuple[str, TeacherConfig]]:
    """(where in the recipe, teacher) for every teacher the command would ask."""
    out: list[tuple[str, TeacherConfig]] = []
    if recipe.generate is not None:
        out += [(f"generate.teachers[{t.name}]", t) for t in recipe.generate.teachers]
    s = recipe.variants.summarizer
    if scope != "generate" and s.kind == "llm" and s.teacher is not None:
        out.append(("variants.summarizer.teacher", s.teacher))
    return out


def check_keys(recipe: Recipe, scope: Scope, report: CheckReport) -> set[str]:
    """Every api_key_env set; returns the names that are not (their endpoints are not probed)."""
    unset: set[str] = set()
    for where, t in _teachers(recipe, scope):
        for ep in t.endpoints:
            name = ep.api_key_env
            if name is None or name in unset:
                continue
            value = os.environ.get(name)
            if (value or "").strip():
                report.ok.append(f"API key {name} is set ({where})")
            else:
                unset.add(name)
                report.problems.append(
                    f"{recipe.path}: {where}: environment variable {name} (the API key for {ep.base_url}) "
                    f"{unset_state(value)}; export {name}=… before running"
                )
    return unset


def probe_endpoint(base_url: str, key_env: str | None, model: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when `base_url` answers GET /models listing `model`; else what is wrong and what to do.
    The real openai client (what generation uses), no retries, short timeouts."""
    import openai

    # An unset key is reported on its own; probing without one still finds a dead endpoint.
    key = (os.environ.get(key_env, "").strip() if key_env else "") or "EMPTY"
    timeout = openai.Timeout(timeout_s, connect=min(timeout_s, 3.0))
    try:
        with openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout) as client:
            served = [m.id for m in client.models.list()]
    except openai.APITimeoutError:
        return f"did not answer GET /models within {timeout_s:.0f}s; check that the server is up and reachable"
    except openai.APIConnectionError as e:
        cause = type(e.__cause__).__name__ if e.__cause__ else type(e).__name__
        return f"unreachable ({cause}); check base_url and that the server is running"
    except openai.APIStatusError as e:
        s = e.status_code
        if s in (401, 403):
            return f"HTTP {s}: the API key in {key_env or '(none)'} was refused; set the right key (or api_key_env)"
        if s == 404:
            return "HTTP 404 on GET /models; base_url must be the OpenAI-compatible root (usually ending in /v1)"
        return f"HTTP {s} on GET /models; check the server's logs, or retry later"
    except Exception as e:  # noqa: BLE001 - a malformed body is the server's fault: report, do not crash
        return f"GET /models gave an unreadable answer ({type(e).__name__}); is this an OpenAI-compatible server?"
    if model not in served:
        shown = ", ".join(served[:8]) + (" …" if len(served) > 8 else "")
        return f"does not list model {model!r} (it serves: {shown or 'nothing'}); fix `model` or the server"
    return None


def check_endpoints(recipe: Recipe, scope: Scope, report: CheckReport, unset: set[str]) -> None:
    """GET /models on every endpoint of every openai teacher, at once (threads)."""
    probes: list[tuple[str, str, str | None, str]] = []
    for where, t in _teachers(recipe, scope):
        if t.kind != "openai":
            continue
        for ep in t.endpoints:
            probes.append((where, ep.base_url, ep.api_key_env, t.model))
    if not probes:
        return
    with ThreadPoolExecutor(min(16, len(probes))) as pool:
        answers = list(pool.map(lambda p: probe_endpoint(p[1], p[2], p[3]), probes))
    for (where, url, key_env, model), problem in zip(probes, answers):
        if key_env in unset and problem is not None and problem.startswith(("HTTP 401", "HTTP 403")):
            report.warnings.append(f"{where}: {url} answers, but its model list needs the unset key {key_env}")
            continue
        if problem is None:
            report.ok.append(f"{url} serves {model} ({where})")
        else:
            report.problems.append(f"{recipe.path}: {where}: endpoint {url}: {problem}")


def _unreadable(recipe: Recipe, src: SourceConfig) -> tuple[str, str] | None:
    """(key, what is wrong and what to do) when reading local source `src` would stop before a
    row (the readers' own resolution of its path: paths.readable_files); None when it would not."""
    from builder.sources.paths import PathProblem, readable_files

    try:
        readable_files(recipe, src)
    except PathProblem as p:
        return p.key, p.text
    return None


def check_files(recipe: Recipe, report: CheckReport) -> None:
    """Local source files, benchmark files (absent optional ones listed as skipped) and import files."""
    from builder.sources.paths import PathProblem, benchmark_file, import_source

    for i, s in enumerate(recipe.sources):
        found = _unreadable(recipe, s) if s.kind == "local" and s.path else None
        if found:
            report.problems.append(f"{recipe.path}: sources[{i}={s.name}].{found[0]}: {found[1]}")
    d = recipe.curate.decontaminate
    if d.enabled:
        for i, b in enumerate(d.benchmarks):
            where = f"{recipe.path}: curate.decontaminate.benchmarks[{i}={b.name}]"
            try:  # what decontamination asks before it reads the file
                if benchmark_file(recipe, b, i) is None:
                    report.skipped_benchmarks.append(f"{b.name} ({recipe.resolve(b.path)})")
            except PathProblem as p:
                report.problems.append(f"{where}.{p.key}: {p.text}")
    by_name = {s.name: s for s in recipe.sources}
    for t in recipe.generate.teachers if recipe.generate else []:
        for i, spec in enumerate(t.imports):
            where = f"generate.teachers[{t.name}].imports[{i}]"  # its source name was checked on load
            src = by_name.get(spec.source)
            found = _unreadable(recipe, import_source(src, spec)) if spec.path and src else None
            if found:
                report.problems.append(f"{recipe.path}: {where}.{found[0]}: {found[1]}")
    if recipe.generate:  # a misspelt template id, said before any teacher is paid
        from builder.generate.todo import template_mapping

        g = recipe.generate
        said: set[str] = set()
        for t in g.teachers:  # the templates each teacher is prompted with, as generate picks them
            for key, tid in template_mapping(g, t).items():
                where = f"generate.teachers[{t.name}] ({t.kind})"  # the import / control default, `plain`
                if key in t.templates:
                    where = f"generate.teachers[{t.name}].templates.{key}"
                elif g.templates.get(key) == tid:
                    where = f"generate.templates.{key}"
                if tid not in said and not (recipe.resolve(g.prompts_dir) / f"{tid}.yaml").is_file():
                    said.add(tid)
                    report.problems.append(f"{recipe.path}: {where}: prompt template {tid!r} not found in "
                                           f"{recipe.resolve(g.prompts_dir)}; fix the id or add the file")  # fmt: skip


def check_tokenizers(recipe: Recipe, report: CheckReport) -> None:
    from builder.tokens import TokenizerFilesError, source_files

    for where, name in (("student.tokenizer", recipe.student.tokenizer),
                        ("responses.teacher_tokenizer", recipe.responses.teacher_tokenizer)):  # fmt: skip
        try:
            source_files(name)
        except TokenizerFilesError as e:
            report.problems.append(f"{recipe.path}: {where}: {e}")
        else:
            report.ok.append(f"tokenizer {name}: files present, sha256 as pinned")


def check_workdir(recipe: Recipe, work: Path, report: CheckReport) -> None:
    """Empty, absent, or built by this recipe (the name its stage summaries record)."""
    if not work.is_dir():
        return
    entries = {p.name for p in work.iterdir()} - _WORK_HOUSEKEEPING
    if not entries:
        return
    strangers = sorted(entries - _STAGE_DIRS)
    if strangers and not entries & _STAGE_DIRS:
        report.problems.append(
            f"{work}: --work is not empty and is not a work directory ({', '.join(strangers[:3])}"
            f"{' …' if len(strangers) > 3 else ''}); pass an empty or new folder"
        )
        return
    import json

    for stage in ("curate", "generate"):
        path = work / stage / "summary.json"
        try:
            summary = json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            summary = None
        if not isinstance(summary, dict):
            continue
        name, sha = summary.get("recipe"), summary.get("recipe_sha256")
        if name != recipe.name:
            report.problems.append(
                f"{work}: --work holds recipe {name!r}'s build ({path}), not {recipe.name!r}'s; "
                "pass another --work (or remove that folder)"
            )
            return
        if sha and sha != recipe.sha256:
            report.ok.append(f"{work}: built from an earlier edit of this recipe; changed stages run again")
            return
    report.ok.append(f"{work}: this recipe's work directory")


def require_own_workdir(recipe: Recipe, work: Path) -> None:
    """The stage commands' part of `check`: --work holds no other recipe's build, else one line
    (curate, responses, variants, release over it would mix two recipes' outputs)."""
    from builder.errors import UserError

    report = CheckReport()
    check_workdir(recipe, work, report)
    if report.problems:
        raise UserError(report.problems[0])


def check_release(recipe: Recipe, target: Path | None, report: CheckReport) -> None:
    """This version is not published yet (its tag on the Hub repo `release.repo_id`: a pushed
    version can never be pushed again). A local release folder holding this version from another
    recipe file is only a warning: `release` refuses it only if the rows differ, which is not
    known before the stages run."""
    import json

    if target is not None and target.exists() and not target.is_dir():
        report.problems.append(f"{target}: the release folder (--out) is a file, not a folder; pass a folder path")
    path = target / "manifest.json" if target is not None else None
    try:
        manifest = json.loads(path.read_text()) if path is not None and path.is_file() else None
    except (OSError, ValueError):
        manifest = None
    if isinstance(manifest, dict) and manifest.get("version") == recipe.version:
        rec = manifest.get("recipe")
        built_from = rec.get("source_sha256") if isinstance(rec, dict) else None  # the builder's own file
        if built_from and built_from != recipe.sha256:
            report.warnings.append(
                f"{target}: already holds v{recipe.version} built from another edit of the recipe; if the rows "
                f"change, `release` will refuse: bump `version` in {recipe.path} (or pass another --out)"
            )
    repo = recipe.release.repo_id
    if repo:
        found = published_tag(repo, f"v{recipe.version}")
        if found:
            kind, line = found  # an unreachable Hub only warns: offline builds are normal, and push refuses a moved tag
            (report.problems if kind == "problem" else report.warnings).append(f"{recipe.path}: version: {line}")


def published_tag(repo_id: str, tag: str) -> tuple[str, str] | None:
    """("problem", why) when `tag` already exists on the Hub dataset repo; ("warning", why) when the
    Hub cannot be asked; None when the tag is free (also when the repo does not exist yet).
    HF_ENDPOINT / HF_TOKEN as `push` reads them."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    from builder.errors import UserError
    from builder.release.push import hub_endpoint, hub_token

    try:  # a blank HF_ENDPOINT is not huggingface.co: push refuses it, and the tag was looked up elsewhere
        endpoint = hub_endpoint()
    except UserError as e:
        return "warning", f"not checked whether {tag} of {repo_id} is released: {e}"
    try:
        refs = HfApi(endpoint=endpoint, token=hub_token() or False).list_repo_refs(
            repo_id, repo_type="dataset")  # fmt: skip
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 404):  # no such repo (or not visible): nothing published under it
            return None
        return "warning", f"could not list {repo_id}'s tags on {endpoint} (HTTP {status}); `push` will check again"
    except OfflineModeIsEnabled:
        return None
    except Exception as e:  # noqa: BLE001 - DNS, refused, TLS: the Hub is not reachable from here
        return "warning", (f"could not reach {endpoint} to list {repo_id}'s tags ({type(e).__name__}); "
                           "not checked whether this version is released (`push` will check)")
    if any(t.name == tag for t in refs.tags):
        return "problem", f"{tag} is already released on {endpoint}/datasets/{repo_id}; bump `version` (a version is published once)"
    return None


def check_warnings(recipe: Recipe, report: CheckReport) -> None:
    """Not fatal, but worth one line each: unpinned Hub revisions, models without a price."""
    for s in recipe.sources:
        if s.kind == "hf" and not (s.revision and _COMMIT.match(s.revision)):
            report.warnings.append(
                f"sources[{s.name}]: {s.dataset} revision {s.revision or 'unset (main)'} is not a commit sha; "
                "pin `revision` so the build reads what the manifest records"
            )
    prices = recipe.generate.prices if recipe.generate else {}
    for where, t in _teachers(recipe, "check"):
        if t.kind != "import" and t.model not in prices:
            report.warnings.append(f"{where}: model {t.model} has no price in generate.prices; its cost shows as unknown")


def run_check(recipe: Recipe, work: Path | None = None, out: Path | None = None, scope: Scope = "check") -> CheckReport:
    """Every check for `scope`; never raises for what it finds (see the module docstring)."""
    report = CheckReport()
    # A build would stop at generate (after curate, whose output the next build reuses): `check` says so.
    if scope in ("check", "plan") and (recipe.generate is None or not recipe.generate.teachers):
        report.problems.append(f"{recipe.path}: generate: the recipe has no generate.teachers; add a `generate:` "
                               "section with at least one teacher (see recipes/sample.yaml)")
    unset = check_keys(recipe, scope, report)
    if scope != "generate":
        check_files(recipe, report)
        check_tokenizers(recipe, report)
    check_endpoints(recipe, scope, report, unset)
    if work is not None and scope in ("check", "plan") and work.exists() and not work.is_dir():
        # (build and generate find it first, in one line, as every stage command does)
        report.problems.append(f"{work}: --work is a file, not a folder; pass a folder path (it is created if missing)")
    elif work is not None:
        check_workdir(recipe, work, report)
    if scope in ("check", "build"):
        check_release(recipe, out or (work / "release" if work is not None else None), report)
    check_warnings(recipe, report)
    return report


def print_report(report: CheckReport, out: Console, err: Console, *, verbose: bool = False, as_errors: bool = True) -> None:
    """Problems as `error:` lines (or `problem:` where the command goes on, like plan), then
    warnings and skipped benchmarks; `verbose` (the check command) also lists what passed."""
    from rich.markup import escape as _escape

    from builder.errors import redact

    def escape(text: str) -> str:  # a server's text (its model list) is shown too: never a secret
        return _escape(redact(text))

    if verbose:
        for line in report.ok:
            out.print(f"[green]ok:[/] {escape(line)}", highlight=False, soft_wrap=True)
    for b in report.skipped_benchmarks:
        err.print(f"[yellow]skipped:[/] decontamination against {escape(b)}: file absent (optional); "
                  "the curate summary, manifest and card list it as skipped", highlight=False, soft_wrap=True)  # fmt: skip
    for w in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    label = "[bold red]error:[/]" if as_errors else "[bold red]problem:[/]"
    for p in report.problems:
        err.print(f"{label} {escape(p)}", highlight=False, soft_wrap=True)
    if report.problems:
        err.print(f"[bold red]{len(report.problems)} problem(s)[/] found before anything was written or paid; "
                  "fix them and run again (`answer-distill check RECIPE` lists them)", highlight=False)  # fmt: skip
