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
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from builder import __version__
from builder.console import console, err, steps_table, ticker
from builder.errors import UserError, redact

app = typer.Typer(
    name="answer-distill",
    help=(
        "Turn a reasoning model's answers into SFT datasets (arXiv 2504.09639).\n\n"
        "Stages, each reading the previous one's tables in --work:\n\n"
        "  curate → generate → responses → variants → release → push\n\n"
        "Start with:  answer-distill build recipes/sample.yaml --work work/sample"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML (see recipes/sample.yaml).")]
WorkOpt = Annotated[Path, typer.Option("--work", "-w", help="Work directory for this recipe's shards.")]

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from builder.recipe import Recipe


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


def load(recipe_path: Path) -> Recipe:
    """The whole recipe, validated, plus the checks that need a stage's registry (variant names):
    everything a typo can break fails here, before any work directory is written."""
    from builder.recipe import load_recipe
    from builder.variants.registry import REGISTRY

    recipe = load_recipe(recipe_path)
    unknown = [v for v in recipe.variants.build if v not in REGISTRY]
    if unknown:
        raise UserError(f"{recipe_path}: variants.build: unknown variant(s) {unknown}; known: {sorted(REGISTRY)}")
    return recipe


def _run_curate(recipe: Recipe, work: Path) -> None:
    from builder.curate.stage import run_curate
    from builder.workdir import WorkDir

    res = run_curate(recipe, WorkDir(work), progress=ticker("curate"))
    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(steps_table(f"curate: {res.rows_in:,} rows in → {res.rows_out:,} prompts ({res.seconds:.1f}s)", res.steps))
    mix = ", ".join(f"{k} {v:,}" for k, v in sorted(res.by_category.items()))
    console.print(f"categories: {mix}", highlight=False)
    console.print(f"prompts: {work / 'curate/prompts'}   ledger: {work / 'curate/ledger.parquet'}", highlight=False)


def _run_generate(recipe: Recipe, work: Path) -> None:
    from builder.console import LiveProgress, print_generate
    from builder.generate.stage import run_generate
    from builder.workdir import WorkDir

    live = LiveProgress(console)
    try:
        res = run_generate(recipe, WorkDir(work), progress=live)
    finally:
        live.stop()
    print_generate(res, console)
    console.print(f"replies: {work / 'generate/replies'}   ledger: {work / 'generate/ledger.parquet'}", highlight=False)


def _run_responses(recipe: Recipe, work: Path) -> None:
    from builder.responses.stage import run_responses
    from builder.workdir import WorkDir

    res = run_responses(recipe, WorkDir(work), progress=ticker("responses"))
    console.print(steps_table(
        f"responses: {res.rows_in:,} replies → {res.kept:,} kept, {res.quarantined:,} quarantined ({res.seconds:.1f}s)", res.steps))
    if res.verify:
        console.print("verification: " + ", ".join(f"{k} {v:,}" for k, v in sorted(res.verify.items())), highlight=False)
    console.print(f"parsed: {work / 'responses/parsed'}   quarantine: {work / 'responses/quarantine'}", highlight=False)


def _run_variants(recipe: Recipe, work: Path) -> None:
    from builder.variants.stage import run_variants
    from builder.workdir import WorkDir

    var = run_variants(recipe, WorkDir(work), progress=ticker("variants"))
    console.print(steps_table(f"variants ({var.seconds:.1f}s): rows per variant; absent prompts by reason", var.steps))
    console.print(f"variants: {work / 'variants'}", highlight=False)


def _run_release(recipe: Recipe, work: Path, out: Path | None = None, previous: Path | None = None) -> None:
    from builder.release.stage import run_release

    res = run_release(recipe, work, out or work / "release", progress=ticker("release"), previous=previous)
    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    rows = ", ".join(f"{k} {v:,}" for k, v in res.counts.items())
    lic = res.license if isinstance(res.license, str) else ", ".join(res.license)
    console.print(f"release v{res.version} ({res.seconds:.1f}s): {rows}; license {lic}", highlight=False)
    console.print(f"folder: {res.out_dir}   card: {res.out_dir / 'README.md'}", highlight=False)


# The stages `build` runs, in order; each also has its own command below.
STAGES: list[tuple[str, Callable[[Recipe, Path], None]]] = [
    ("curate", _run_curate),
    ("generate", _run_generate),
    ("responses", _run_responses),
    ("variants", _run_variants),
]


@app.command()
@user_errors
def curate(recipe: RecipeArg, work: WorkOpt = Path("work")) -> None:
    """Read sources, normalize, dedupe (exact + MinHash), decontaminate, balance."""
    _run_curate(load(recipe), work)


@app.command()
@user_errors
def generate(recipe: RecipeArg, work: WorkOpt = Path("work")) -> None:
    """Send every curated prompt to the teachers and store every reply whole (resumable)."""
    _run_generate(load(recipe), work)


@app.command()
@user_errors
def responses(recipe: RecipeArg, work: WorkOpt = Path("work")) -> None:
    """Parse, validate and verify stored replies; select one kept reply per prompt and teacher role."""
    _run_responses(load(recipe), work)


@app.command()
@user_errors
def variants(recipe: RecipeArg, work: WorkOpt = Path("work")) -> None:
    """Build every variant from prompts and selected replies (one row id per prompt across variants)."""
    _run_variants(load(recipe), work)


@app.command()
@user_errors
def release(
    recipe: RecipeArg,
    work: WorkOpt = Path("work"),
    out: Annotated[Path | None, typer.Option(help="Release folder to create (default: <work>/release).")] = None,
    previous: Annotated[Path | None, typer.Option(help="Previous release folder, for CHANGELOG.md.")] = None,
) -> None:
    """Check every variant (quality gates) and, if they pass, write a Hub-ready dataset folder."""
    _run_release(load(recipe), work, out, previous)


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

    res = run_push(release_dir, repo, endpoint=endpoint, private=private, progress=ticker("push"))
    console.print(f"pushed {res.repo_id} @ {res.tag} (commit {res.commit[:12]}): {res.url}", highlight=False)
    console.print(f'load it: load_dataset("{res.repo_id}", "answer", revision="{res.tag}")', highlight=False)


@app.command()
@user_errors
def build(
    recipe: RecipeArg,
    work: WorkOpt = Path("work"),
    out: Annotated[Path | None, typer.Option(help="Release folder (default: <work>/release).")] = None,
) -> None:
    """Run every stage in order (curate → generate → responses → variants → release), checking each ledger."""
    loaded = load(recipe)  # once: every section validated before any stage runs
    t0 = time.perf_counter()
    for name, fn in STAGES:
        console.rule(f"[bold]{name}")
        fn(loaded, work)
    console.rule("[bold]release")
    _run_release(loaded, work, out)
    console.rule(f"[bold green]build done in {time.perf_counter() - t0:.1f}s")


@app.command()
@user_errors
def plan(
    recipe: RecipeArg,
    work: Annotated[Path | None, typer.Option("--work", "-w", help="Use curated prompts and stored replies here.")] = None,
) -> None:
    """Print what a recipe would read, keep and build, without reading any data."""
    from builder.plan import print_plan

    print_plan(load(recipe), console, work)


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
