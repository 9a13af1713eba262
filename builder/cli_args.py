"""The command line's argument and option types, shared by the commands in builder/cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

# Click's UsageError, whether typer vendors Click (0.2x) or imports it: BadParameter's base.
UsageError: type[Exception] = typer.BadParameter.__mro__[1]


def path_value(value: str | Path) -> Path:
    """A path argument or option as typed. An empty one (`-w ""`, `-w $UNSET`) would become
    Path("."), and a stage would write into the current folder: refused as a usage error."""
    if isinstance(value, str) and not value.strip():
        raise typer.BadParameter("is empty; pass a path (is a shell variable unset?)")
    return Path(value)


RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML (see recipes/sample.yaml).", parser=path_value)]
WorkOpt = Annotated[Path, typer.Option("--work", "-w", help="Work directory for this recipe's shards.", parser=path_value)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors, warnings and a final line.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON summary line per stage on stdout, nothing else there.")]
RepoOpt = Annotated[str | None, typer.Option(
    "--repo", help="Hub dataset id (org/name) the card's load snippet and citation name; default: release.repo_id.")]


def path_opt(help_text: str, *names: str) -> typer.models.OptionInfo:
    """An optional path option (--out, --previous, plan/check's --work), empty refused like --work."""
    return typer.Option(*names, help=help_text, parser=path_value)


_ARGS = "answer_distill.args"  # the command line, kept on the context for invoke's errors


class OneLineUsage(TyperGroup):
    """Click's usage errors (a missing or extra argument, an unknown option, a bad value) as the
    repo's one line, exit 2, in place of Click's boxed usage block; `--help` (and the help that
    no arguments at all print) is left to Click."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except UsageError as e:
            usage_exit(e, args, (f"{parent.command_path} " if parent else "") + (info_name or "answer-distill"))
        ctx.meta[_ARGS] = list(args)
        return ctx

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as e:  # a subcommand's own parsing runs inside the group's invoke
            usage_exit(e, ctx.meta.get(_ARGS, []), f"{ctx.command_path} {ctx.invoked_subcommand or ''}".strip())


def usage_exit(e: Any, args: list[str], where: str) -> NoReturn:
    """One line: the command, what is wrong, where its options are listed; `--json` also gets its error line."""
    from rich.markup import escape

    from builder.console import emit_json, err, set_mode
    from builder.errors import redact

    if type(e).__name__ == "NoArgsIsHelpError":  # its help is printed already; Click exits 2 after it
        raise e
    command = e.ctx.command_path if getattr(e, "ctx", None) is not None else where  # the parser's own errors have none
    what = " ".join(e.format_message().split()).rstrip(".")
    line = redact(f"{command}: {what[:1].lower()}{what[1:]}; see `{command} --help`")
    err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, markup=True, soft_wrap=True)
    if "--json" in args:
        set_mode(json_lines=True)
        emit_json(command.rsplit(" ", 1)[-1], status="error", error=line)
        set_mode()
    raise typer.Exit(2)
