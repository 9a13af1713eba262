"""manifest.json: what a release holds (sha256 of every file, row counts) and how it was made;
`verify_release` re-checks a folder against it and against the card's `dataset_info`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

MANIFEST = "manifest.json"
CHUNK = 8 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(folder: Path, known: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file; `known` holds hashes already taken while writing."""
    known = known or {}
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(folder).as_posix()
            out[rel] = {"sha256": known.get(rel) or sha256_file(p), "bytes": p.stat().st_size}
    return out


def write_manifest(folder: Path, fields: dict[str, Any], known: dict[str, str] | None = None) -> dict[str, Any]:
    doc = {**fields, "files": file_hashes(folder, known)}
    (folder / MANIFEST).write_text(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False))
    return doc


def card_metadata(readme: Path) -> dict[str, Any]:
    text = readme.read_text()
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---", 4)
    return yaml.safe_load(text[4:end]) or {}


def _card_counts(meta: dict[str, Any]) -> dict[str, int]:
    infos = meta.get("dataset_info") or []
    infos = [infos] if isinstance(infos, dict) else infos
    return {i.get("config_name", "default"): sum(s.get("num_examples", 0) for s in i.get("splits", [])) for i in infos}


def verify_release(folder: Path) -> list[str]:
    """Problems found (empty when the release is intact): missing/extra/changed files, and
    row counts that differ between the parquet files, the manifest and the card."""
    path = folder / MANIFEST
    if not path.is_file():
        return [f"{path}: missing; this is not a release folder"]
    # A tampered folder is what this check is for: every malformed part below is a problem
    # to report, never an exception (push prints the first one and uploads nothing).
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return [f"{MANIFEST}: not valid JSON ({str(e)[:120]})"]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return [f"{MANIFEST}: not a release manifest (no `files` table)"]
    problems: list[str] = []
    if not isinstance(manifest.get("version"), str) or not manifest["version"]:
        problems.append(f"{MANIFEST}: no `version`")
    listed: dict[str, Any] = manifest["files"]
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    problems += [f"{rel}: listed in the manifest but missing" for rel in sorted(set(listed) - present)]
    problems += [f"{rel}: not listed in the manifest" for rel in sorted(present - set(listed))]
    for rel in sorted(set(listed) & present):
        entry = listed[rel]
        if sha256_file(folder / rel) != (entry.get("sha256") if isinstance(entry, dict) else None):
            problems.append(f"{rel}: sha256 differs from the manifest (file changed after release)")
    card: dict[str, int] = {}
    if (folder / "README.md").is_file():
        try:
            card = _card_counts(card_metadata(folder / "README.md"))
        except (yaml.YAMLError, ValueError, AttributeError, TypeError):  # also UnicodeDecodeError
            problems.append("README.md: the card's metadata block is not valid dataset_info YAML")
    configs = manifest.get("configs", {})
    if not isinstance(configs, dict):
        return [*problems, f"{MANIFEST}: `configs` is not a table"]
    for config, expected in configs.items():
        want = expected.get("num_examples") if isinstance(expected, dict) else None
        if not isinstance(want, int):
            problems.append(f"{MANIFEST}: configs.{config}.num_examples is missing")
            continue
        actual = 0
        for f in sorted((folder / "data" / config).glob("*.parquet")):
            try:
                actual += pq.read_metadata(f).num_rows
            except (pa.ArrowInvalid, OSError, ValueError):  # ValueError: a damaged footer's text (UnicodeDecodeError)
                problems.append(f"{f.relative_to(folder).as_posix()}: not a readable parquet file")
        if actual != want:
            problems.append(f"data/{config}: {actual:,} rows but the manifest says {want:,}")
        if card.get(config) != want:
            problems.append(f"README.md: dataset_info {config} num_examples {card.get(config)} "
                            f"but the manifest says {want:,}")
    return problems
