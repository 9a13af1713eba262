"""Release versions: the tag a version gets, refusing rebuilt versions, finding the previous one."""

from __future__ import annotations

import json
import re
from pathlib import Path

from builder.errors import UserError

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$")


def tag_for(version: str) -> str:
    return f"v{version}"


def is_semver(version: object) -> bool:
    """A version a tag can be made from (what the recipe accepts): MAJOR.MINOR.PATCH[-pre]."""
    return isinstance(version, str) and _SEMVER.fullmatch(version) is not None


def sort_key(version: str) -> tuple[int, int, int, int, str]:
    m = _SEMVER.match(version)
    if not m:
        return (-1, -1, -1, 0, version)
    major, minor, patch, pre = m.groups()
    # A pre-release sorts before its release (semver §11).
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


def read_manifest(folder: Path) -> dict | None:
    path = folder / "manifest.json"
    try:
        data = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None  # a list or a number is no manifest (callers .get() it)


def refuse_existing(out_dir: Path, version: str) -> None:
    if not out_dir.exists():
        return
    built = read_manifest(out_dir)
    if built is not None:
        raise UserError(
            f"{out_dir}: version {built.get('version', '?')} is already built there; "
            f"bump `version` in the recipe (now {version}) and pass a new --out, or remove the folder"
        )
    raise UserError(f"{out_dir}: already exists; pass a new --out (a release never overwrites a folder)")


def find_previous(out_dir: Path, name: str, version: str, explicit: Path | None = None) -> Path | None:
    """--previous DIR, else the newest sibling release of the same dataset older than `version`."""
    if explicit is not None:
        if read_manifest(explicit) is None:
            raise UserError(f"{explicit}: --previous is not a release folder (no readable manifest.json)")
        return explicit
    parent = out_dir.parent
    if not parent.is_dir():
        return None
    best: tuple[tuple[int, int, int, int, str], Path] | None = None
    for sibling in parent.iterdir():
        m = read_manifest(sibling) if sibling.is_dir() and sibling != out_dir else None
        if not m or m.get("recipe_name") != name or not m.get("version"):
            continue
        key = sort_key(m["version"])
        if key < sort_key(version) and (best is None or key > best[0]):
            best = (key, sibling)
    return best[1] if best else None
