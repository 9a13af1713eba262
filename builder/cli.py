"""`answer-distill`: one command per stage, `build` for all, `plan` to see before spending.

The CLI is thin: it parses, calls a stage's `run_*` function, and prints a one-screen
summary. User errors (bad recipe, missing file, unreachable endpoint) print one line and
exit 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape

from builder import __version__
from builder.cli_args import JsonOpt, OneLineUsage, QuietOpt, RecipeArg, RepoOpt, WorkOpt, path_opt, path_value
from builder.console import (
    StepProgress,
    console,
    emit_json,
    err,
    final,
    set_mode,
    show_curate,
    show_generate,
    show_release,
    show_responses,
    show_variants,
    show_warnings,
)
from builder.errors import UserError, redact
from builder.worklock import work_lock

app = typer.Typer(
    name="answer-distill",
    help=(
        "Turn a reasoning model's answers into SFT datasets (arXiv 2504.09639).\n\n"
        "Stages, each reading the previous one's tables in --work:\n\n"
        "  curate → generate → responses → variants → release → push\n\n"
        "Start with:  answer-distill build recipes/sample.yaml --work work/sample"
    ),
    no_args_is_help=True,
    add_completion=False, cls=OneLineUsage,  # cls: a usage error is one line, not Click's box
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from builder.check import Scope
    from builder.recipe import Recipe


# OSErrors that are the machine's or the user's to fix, not bugs: what to do about each.
_IO_HINTS = {
    errno.ENOSPC: "the disk is full; free space there or point --work/--out at another disk",
    errno.EDQUOT: "the disk quota is used up; free space there or point --work/--out at another disk",
    errno.EROFS: "the file system is read-only; point --work/--out at a writable folder",
    errno.EACCES: "check its permissions, or point --work/--out at a folder you can write",
    errno.EPERM: "check its permissions, or point --work/--out at a folder you can write",
    errno.ENOTDIR: "a part of the path is a file, not a folder; pick another path",
    errno.ENAMETOOLONG: "a name in the path is longer than the file system allows; use a shorter path",
}


def io_error_line(e: OSError, where: Path | str | None) -> str | None:
    """One line for an OSError in _IO_HINTS (None for any other): the path from the exception,
    else `where` (the folder the command writes: a full disk raises with no file name)."""
    hint = _IO_HINTS.get(e.errno or 0)
    if hint is None:
        return None
    path = e.filename if e.filename is not None else where
    # os.strerror, not e.strerror: pyarrow's reads "Error writing bytes to file. Detail: …".
    return f"{path}: {os.strerror(e.errno or 0)}; {hint}"


def user_errors(fn: F) -> F:
    """Turn UserError (and a full disk, a read-only folder…) into one red line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
            emit_json(fn.__name__, status="error", error=str(e))
            raise typer.Exit(2) from None
        except OSError as e:
            where = kwargs.get("out") or kwargs.get("work") or kwargs.get("release_dir")
            line = io_error_line(e, where)
            if line is None:
                raise
            err.print(f"[bold red]error:[/] {escape(redact(line))}", highlight=False, markup=True, soft_wrap=True)
            emit_json(fn.__name__, status="error", error=redact(line))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted; stored work is kept, re-run to resume[/]")
            raise typer.Exit(130) from None
        finally:
            set_mode()  # the next command in this process (tests) starts talkative again

    return wrapper  # type: ignore[return-value]


def load(recipe_path: Path) -> Recipe:
    """The whole recipe, validated, plus the checks that need a stage's registry (variant names, info
    codes a reply may carry): everything a typo can break fails here, before any work directory is written."""
    from builder.recipe import load_recipe
    from builder.responses.grammar import INFO_CODES
    from builder.variants.registry import REGISTRY, unknown_names

    recipe = load_recipe(recipe_path)
    if bad := unknown_names(recipe):
        raise UserError(f"{recipe_path}: {'; '.join(bad)}; known: {sorted(REGISTRY)}")
    if odd := [c for c in recipe.responses.reject_info if c not in INFO_CODES]:  # else it rejects nothing
        raise UserError(f"{recipe_path}: responses.reject_info: unknown info code(s) {odd}; known: {sorted(INFO_CODES)}")
    return recipe


def precheck(recipe: Recipe, work: Path | None, out: Path | None, scope: Scope) -> None:
    """`answer-distill check` for this command, before anything is written or paid: every
    problem on its own line, then exit 2 (plan prints them and goes on)."""
    from builder.check import print_report, run_check

    report = run_check(recipe, work, out, scope)
    print_report(report, console, err, as_errors=scope != "plan")
    if report.failed and scope != "plan":
        emit_json(scope, status="error", error=f"{len(report.problems)} problem(s)", problems=report.problems)
        raise typer.Exit(2)


def check_writable(path: Path, what: str) -> None:
    """Before a stage runs: `path` is (or can become) a folder this process can write, else
    one line. Root ignores permission bits, so a real file is written, which also finds a
    read-only mount or a full disk before any work is done."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: {what} is a file, not a folder; pass a folder path (it is created if missing)")
    base = path
    while not base.exists() and base != base.parent:  # the folder mkdir would create it in
        base = base.parent
    if not base.is_dir():
        raise UserError(f"{path}: {base} is a file, so {what} cannot be created there; pick another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=base)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        hint = _IO_HINTS.get(e.errno or 0, "point it at a folder you can write")
        raise UserError(f"{path}: cannot write {what} there ({os.strerror(e.errno or 0)}); {hint}") from None


def _run_curate(recipe: Recipe, work: Path) -> None:
    from builder.curate.stage import run_curate
    from builder.workdir import WorkDir

    with StepProgress("curate") as progress:
        res = run_curate(recipe, WorkDir(work), progress=progress)
    show_curate(res, work)


def _run_generate(recipe: Recipe, work: Path) -> None:
    from builder.console import LiveProgress
    from builder.generate.stage import run_generate
    from builder.workdir import WorkDir

    live = LiveProgress(console)
    try:
        res = run_generate(recipe, WorkDir(work), progress=live)
    finally:
        live.stop()
    show_generate(res, work)


def _run_responses(recipe: Recipe, work: Path) -> None:
    from builder.responses.stage import run_responses
    from builder.workdir import WorkDir

    with StepProgress("responses") as progress:
        res = run_responses(recipe, WorkDir(work), progress=progress)
    show_responses(res, work)


def _run_variants(recipe: Recipe, work: Path) -> None:
    from builder.variants.stage import run_variants
    from builder.workdir import WorkDir

    with StepProgress("variants") as progress:
        var = run_variants(recipe, WorkDir(work), progress=progress)
    show_variants(var, work)


def _with_repo(recipe: Recipe, repo: str | None) -> Recipe:
    """`--repo org/name` in place of the recipe's release.repo_id (it is part of the release's content)."""
    if repo is None:
        return recipe
    from builder.release.push import check_repo_id

    check_repo_id(repo, "release")
    return recipe.model_copy(update={"release": recipe.release.model_copy(update={"repo_id": repo})})


def _run_release(recipe: Recipe, work: Path, out: Path | None = None, previous: Path | None = None) -> None:
    from builder.release.stage import run_release, unchanged
    from builder.workdir import WorkDir

    target = out or work / "release"  # --work itself was checked when the command took its lock
    check_writable(target, "the release folder (--out)")
    if unchanged(recipe, WorkDir(work), target):
        console.print(f"release v{recipe.version}: {target} already holds this exact release; nothing to do",
                      highlight=False)  # fmt: skip
        emit_json("release", status="unchanged", out_dir=str(target), version=recipe.version)
        return
    with StepProgress("release") as progress:
        res = run_release(recipe, work, target, progress=progress, previous=previous)
    show_release(res)


# The stages `build` runs, in order; each also has its own command below.
STAGES: list[tuple[str, Callable[[Recipe, Path], None]]] = [
    ("curate", _run_curate),
    ("generate", _run_generate),
    ("responses", _run_responses),
    ("variants", _run_variants),
]


@app.command()
@user_errors
def curate(recipe: RecipeArg, work: WorkOpt = Path("work"), quiet: QuietOpt = False, json_out: JsonOpt = False) -> None:
    """Read sources, normalize, dedupe (exact + MinHash), decontaminate, balance."""
    set_mode(quiet, json_out)
    loaded = load(recipe)
    with _locked(work, loaded):
        _run_curate(loaded, work)
    final(f"curate done: {work}")


@app.command()
@user_errors
def generate(recipe: RecipeArg, work: WorkOpt = Path("work"), quiet: QuietOpt = False, json_out: JsonOpt = False) -> None:
    """Send every curated prompt to the teachers and store every reply whole (resumable)."""
    set_mode(quiet, json_out)
    loaded = load(recipe)
    precheck(loaded, work, None, "generate")
    with _locked(work, loaded):
        _run_generate(loaded, work)
    final(f"generate done: {work}")


@app.command()
@user_errors
def responses(recipe: RecipeArg, work: WorkOpt = Path("work"), quiet: QuietOpt = False, json_out: JsonOpt = False) -> None:
    """Parse, validate and verify stored replies; select one kept reply per prompt and teacher role."""
    set_mode(quiet, json_out)
    loaded = load(recipe)
    with _locked(work, loaded):
        _run_responses(loaded, work)
    final(f"responses done: {work}")


@app.command()
@user_errors
def variants(recipe: RecipeArg, work: WorkOpt = Path("work"), quiet: QuietOpt = False, json_out: JsonOpt = False) -> None:
    """Build every variant from prompts and selected replies (one row id per prompt across variants)."""
    set_mode(quiet, json_out)
    loaded = load(recipe)
    with _locked(work, loaded):
        _run_variants(loaded, work)
    final(f"variants done: {work}")


@app.command()
@user_errors
def release(
    recipe: RecipeArg,
    work: WorkOpt = Path("work"),
    out: Annotated[Path | None, path_opt("Release folder to create (default: <work>/release).")] = None,
    previous: Annotated[Path | None, path_opt("Previous release folder, for CHANGELOG.md.")] = None,
    repo: RepoOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Check every variant (quality gates) and, if they pass, write a Hub-ready dataset folder."""
    set_mode(quiet, json_out)
    loaded = _with_repo(load(recipe), repo)
    with _locked(work, loaded):
        _run_release(loaded, work, out, previous)
    final(f"release done: {out or work / 'release'}")


@app.command()
@user_errors
def push(
    release_dir: Annotated[Path, typer.Argument(help="A folder written by `release`.", parser=path_value)],
    repo: Annotated[str | None, typer.Option(
        "--repo", help="Hub dataset id, e.g. org/name (default: the repo id the release was built for).")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Hub URL (default: $HF_ENDPOINT or huggingface.co).")] = None,
    private: Annotated[bool, typer.Option(help="Create the repo as private.")] = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Upload a release to the Hub and tag the commit vX.Y.Z (token from $HF_TOKEN)."""
    from builder.release.push import run_push

    set_mode(quiet, json_out)
    with StepProgress("push") as progress:
        res = run_push(release_dir, repo, endpoint=endpoint, private=private, progress=progress)
    show_warnings(res.warnings)
    console.print(f'load it: load_dataset("{res.repo_id}", "answer", revision="{res.tag}")', highlight=False)
    emit_json("push", res)
    final(f"pushed {res.repo_id} @ {res.tag} (commit {res.commit[:12]}): {res.url}", always=True)


@app.command()
@user_errors
def build(
    recipe: RecipeArg,
    work: WorkOpt = Path("work"),
    out: Annotated[Path | None, path_opt("Release folder (default: <work>/release).")] = None,
    repo: RepoOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Run every stage in order (curate → generate → responses → variants → release), checking each ledger."""
    set_mode(quiet, json_out)
    loaded = _with_repo(load(recipe), repo)  # once: every section validated before any stage runs
    precheck(loaded, work, out, "build")
    t0 = time.perf_counter()
    with _locked(work, loaded):
        for name, fn in STAGES:
            console.rule(f"[bold]{name}")
            if _unchanged(name, loaded, work):
                console.print(f"{name}: unchanged since its last run (same recipe section, same inputs); skipped",
                              highlight=False)  # fmt: skip
                emit_json(name, status="unchanged")
                continue
            fn(loaded, work)
        console.rule("[bold]release")
        _run_release(loaded, work, out)
    seconds = time.perf_counter() - t0
    console.rule(f"[bold green]build done in {seconds:.1f}s")
    emit_json("build", seconds=round(seconds, 1), release=str(out or work / "release"))
    final(f"build done in {seconds:.1f}s: release v{loaded.version} in {out or work / 'release'}")


@contextlib.contextmanager
def _locked(work: Path, recipe: Recipe) -> Iterator[None]:
    """The work dir checked (writable, no other recipe's build: before anything is created there), then held."""
    from builder.check import require_own_workdir

    check_writable(work, "--work")
    require_own_workdir(recipe, work)
    with work_lock(work):
        yield


def _unchanged(stage: str, recipe: Recipe, work: Path) -> bool:
    """The stage's last committed run had this exact fingerprint (recipe section + input digests).
    Generate always runs: it asks only for what its store lacks, and an unchanged store exports
    identical bytes, so what follows it is skipped in turn."""
    import importlib

    from builder.workdir import WorkDir

    if stage == "generate" or not work.is_dir():
        return False
    module = importlib.import_module(f"builder.{stage}.stage")
    wd = WorkDir(work)
    return wd.up_to_date(stage, module.fingerprint(recipe, wd))


@app.command()
@user_errors
def plan(
    recipe: RecipeArg,
    work: Annotated[Path | None, path_opt("Use curated prompts and stored replies here.", "--work", "-w")] = None,
) -> None:
    """Print what a recipe would read, keep and build, without reading any data."""
    from builder.plan import print_plan

    loaded = load(recipe)
    precheck(loaded, work, None, "plan")
    print_plan(loaded, console, work)


@app.command()
@user_errors
def check(
    recipe: RecipeArg,
    work: Annotated[Path | None, path_opt("The work directory a build would use.", "--work", "-w")] = None,
    out: Annotated[Path | None, path_opt("The release folder a build would write (default: <work>/release).")] = None,
) -> None:
    """Find what would fail a paid build (keys, endpoints, models, files, work dir, version), all at once."""
    from builder.check import print_report, run_check

    report = run_check(load(recipe), work, out, "check")
    print_report(report, console, err, verbose=True)
    if report.failed:
        raise typer.Exit(2)
    console.print("check: no problems found", highlight=False)


@app.command()
@user_errors
def constraints(
    file: Annotated[Path, typer.Argument(help="JSONL rows with `id` and `prompt` (or `messages`).", parser=path_value)],
) -> None:
    """Print the IFEval instruction constraints each prompt states: one JSON line per row."""
    from builder.constraints.rows import lines

    for line in list(lines(file)):  # every row read and checked before the first line is printed
        print(line)


@app.command()
def version() -> None:
    """Print the toolkit version."""
    console.print(__version__)


def main() -> None:
    from builder.executors import quiet_datatrove_logs

    quiet_datatrove_logs()
    try:
        app()
    except Exception as e:  # a bug: keep the traceback for us, but never leak a secret
        if isinstance(e, SystemExit):
            raise
        err.print(f"[bold red]internal error:[/] {escape(redact(f'{type(e).__name__}: {e}'))}", highlight=False)
        if "--debug" in sys.argv:
            raise
        sys.exit(1)


if __name__ == "__main__":
    main()
