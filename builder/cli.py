"""`answer-distill`: one command per stage, `build` for all, `plan` to see before spending.

The CLI is thin: it parses, calls a stage's `run_*` function, and prints a one-screen
summary. User errors (bad recipe, missing file, unreachable endpoint) print one line and
exit 2, never a traceback.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from builder import __version__
from builder.errors import UserError, redact

app = typer.Typer(
    name="answer-distill",
    help=(
        "Turn a reasoning model's answers into SFT datasets (arXiv 2504.09639).\n\n"
        "Stages, each reading the previous one's shards in --work:\n\n"
        "  curate → generate → variants → release → push\n\n"
        "Start with:  answer-distill build recipes/sample.yaml --work work/sample"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err = Console(stderr=True)

RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML (see recipes/sample.yaml).")]
WorkOpt = Annotated[Path, typer.Option("--work", "-w", help="Work directory for this recipe's shards.")]

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn UserError into one red line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted; stored work is kept, re-run to resume[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _progress(label: str) -> Callable[[str], None]:
    started = time.perf_counter()

    def tick(step: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {label}: {step}", highlight=False)

    return tick


def _steps_table(title: str, steps: list[tuple[str, int, int, dict[str, int]]]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("step", "in", "kept", "dropped", "reasons"):
        t.add_column(col, justify="right" if col in ("in", "kept", "dropped") else "left")
    for step, n_in, kept, dropped in steps:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1]))
        t.add_row(step, f"{n_in:,}", f"{kept:,}", f"{sum(dropped.values()):,}", reasons)
    return t


def _run_curate(recipe_path: Path, work: Path) -> None:
    from builder.curate.stage import run_curate
    from builder.recipe import load_recipe
    from builder.workdir import WorkDir

    recipe = load_recipe(recipe_path)
    res = run_curate(recipe, WorkDir(work), progress=_progress("curate"))
    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(_steps_table(f"curate: {res.rows_in:,} rows in → {res.rows_out:,} prompts ({res.seconds:.1f}s)", res.steps))
    mix = ", ".join(f"{k} {v:,}" for k, v in sorted(res.by_category.items()))
    console.print(f"categories: {mix}", highlight=False)
    console.print(f"prompts: {work / 'curate/prompts'}   ledger: {work / 'curate/ledger.parquet'}", highlight=False)


@app.command()
@user_errors
def curate(recipe: RecipeArg, work: WorkOpt = Path("work")) -> None:
    """Read sources, normalize, dedupe (exact + MinHash), decontaminate, balance."""
    _run_curate(recipe, work)


def _run_generate(recipe_path: Path, work: Path) -> None:
    from builder.recipe import load_recipe
    from builder.teachers.report import LiveProgress, print_result
    from builder.teachers.stage import run_generate
    from builder.workdir import WorkDir

    recipe = load_recipe(recipe_path)
    live = LiveProgress(console)
    try:
        res = run_generate(recipe, WorkDir(work), progress=live)
    finally:
        live.stop()
    print_result(res, console)
    console.print(f"replies: {work / 'generate/replies'}   ledger: {work / 'generate/ledger.parquet'}", highlight=False)


@app.command()
@user_errors
def generate(recipe: RecipeArg, work: WorkOpt = Path("work")) -> None:
    """Send every curated prompt to the teachers and store every reply whole (resumable)."""
    _run_generate(recipe, work)


def _run_variants(recipe_path: Path, work: Path) -> None:
    from builder.recipe import load_recipe
    from builder.responses.stage import run_responses
    from builder.variants.stage import run_variants
    from builder.workdir import WorkDir

    recipe = load_recipe(recipe_path)
    wd = WorkDir(work)
    res = run_responses(recipe, wd, progress=_progress("responses"))
    console.print(_steps_table(
        f"responses: {res.rows_in:,} replies → {res.kept:,} kept, {res.quarantined:,} quarantined ({res.seconds:.1f}s)", res.steps))
    if res.verify:
        console.print("verification: " + ", ".join(f"{k} {v:,}" for k, v in sorted(res.verify.items())), highlight=False)
    var = run_variants(recipe, wd, progress=_progress("variants"))
    console.print(_steps_table(f"variants ({var.seconds:.1f}s): rows per variant; absent prompts by reason", var.steps))
    console.print(f"variants: {work / 'variants'}   quarantine: {work / 'responses/quarantine'}", highlight=False)


@app.command()
@user_errors
def variants(recipe: RecipeArg, work: WorkOpt = Path("work")) -> None:
    """Parse, validate and verify stored replies, then build every variant (shared row ids)."""
    _run_variants(recipe, work)


STAGES: list[tuple[str, Callable[[Path, Path], None]]] = [
    ("curate", _run_curate),
    ("generate", _run_generate),
    ("variants", _run_variants),
]


def _run_release(recipe_path: Path, work: Path, out: Path | None = None, previous: Path | None = None) -> None:
    from builder.recipe import load_recipe
    from builder.release.stage import run_release

    recipe = load_recipe(recipe_path)
    res = run_release(recipe, work, out or work / "release", progress=_progress("release"), previous=previous)
    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    rows = ", ".join(f"{k} {v:,}" for k, v in res.counts.items())
    lic = res.license if isinstance(res.license, str) else ", ".join(res.license)
    console.print(f"release v{res.version} ({res.seconds:.1f}s): {rows}; license {lic}", highlight=False)
    console.print(f"folder: {res.out_dir}   card: {res.out_dir / 'README.md'}", highlight=False)


@app.command()
@user_errors
def release(
    recipe: RecipeArg,
    work: WorkOpt = Path("work"),
    out: Annotated[Path | None, typer.Option(help="Release folder to create (default: <work>/release).")] = None,
    previous: Annotated[Path | None, typer.Option(help="Previous release folder, for CHANGELOG.md.")] = None,
) -> None:
    """Check every variant (quality gates) and, if they pass, write a Hub-ready dataset folder."""
    _run_release(recipe, work, out, previous)


@app.command()
@user_errors
def push(
    release_dir: Annotated[Path, typer.Argument(help="A folder written by `release`.")],
    repo: Annotated[str, typer.Option("--repo", help="Hub dataset id, e.g. org/name.")],
    endpoint: Annotated[str | None, typer.Option(help="Hub URL (default: $HF_ENDPOINT or huggingface.co).")] = None,
    private: Annotated[bool, typer.Option(help="Create the repo as private.")] = False,
) -> None:
    """Upload a release to the Hub and tag the commit vX.Y.Z (token from $HF_TOKEN)."""
    from builder.release.push import run_push

    res = run_push(release_dir, repo, endpoint=endpoint, private=private, progress=_progress("push"))
    console.print(f"pushed {res.repo_id} @ {res.tag} (commit {res.commit[:12]}): {res.url}", highlight=False)
    console.print(f'load it: load_dataset("{res.repo_id}", "answer", revision="{res.tag}")', highlight=False)


STAGES.append(("release", _run_release))  # `build` passes `out` as a third argument

@app.command()
@user_errors
def build(
    recipe: RecipeArg,
    work: WorkOpt = Path("work"),
    out: Annotated[Path | None, typer.Option(help="Release folder (default: <work>/release).")] = None,
) -> None:
    """Run every stage the recipe configures, in order, checking each stage's ledger."""
    from builder.recipe import load_recipe

    load_recipe(recipe)  # fail fast on a bad recipe before any stage runs
    t0 = time.perf_counter()
    for name, fn in STAGES:
        console.rule(f"[bold]{name}")
        if name == "release":
            fn(recipe, work, out)  # type: ignore[call-arg]
        else:
            fn(recipe, work)
    console.rule(f"[bold green]build done in {time.perf_counter() - t0:.1f}s")


@app.command()
@user_errors
def plan(
    recipe: RecipeArg,
    work: Annotated[Path | None, typer.Option("--work", "-w", help="Use curated prompts and stored replies here.")] = None,
) -> None:
    """Print what a recipe would read, keep and build, without reading any data."""
    import builder.teachers.plan as generate_plan  # registers the generation estimate
    from builder.plan import print_plan
    from builder.recipe import load_recipe

    generate_plan.WORK = work
    print_plan(load_recipe(recipe), console)


@app.command()
def version() -> None:
    """Print the toolkit version."""
    console.print(__version__)


def _quiet_datatrove() -> None:
    """datatrove logs every step to stderr through loguru; its logs also go to each step's
    logging dir, so the console keeps warnings only (ANSWER_DISTILL_VERBOSE=1 keeps all)."""
    import os

    if os.environ.get("ANSWER_DISTILL_VERBOSE"):
        return
    try:
        from loguru import logger
    except ImportError:
        return
    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def main() -> None:
    _quiet_datatrove()
    try:
        app()
    except Exception as e:  # a bug: keep the traceback for us, but never leak a secret
        if isinstance(e, SystemExit):
            raise
        err.print(f"[bold red]internal error:[/] {redact(f'{type(e).__name__}: {e}')}", highlight=False)
        if "--debug" in sys.argv:
            raise
        sys.exit(1)


if __name__ == "__main__":
    main()
