"""The command line's argument and option types, shared by the commands in builder/cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


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
