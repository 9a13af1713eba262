"""manifest.json: what a release holds (sha256 of every file, row counts) and how it was made;
`verify_release` re-checks a folder against it and against the card's `dataset_info`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

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
    manifest = json.loads(path.read_text())
    problems: list[str] = []
    listed: dict[str, dict[str, Any]] = manifest.get("files", {})
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    problems += [f"{rel}: listed in the manifest but missing" for rel in sorted(set(listed) - present)]
    problems += [f"{rel}: not listed in the manifest" for rel in sorted(present - set(listed))]
    for rel in sorted(set(listed) & present):
        if sha256_file(folder / rel) != listed[rel]["sha256"]:
            problems.append(f"{rel}: sha256 differs from the manifest (file changed after release)")
    card = _card_counts(card_metadata(folder / "README.md")) if (folder / "README.md").is_file() else {}
    for config, expected in manifest.get("configs", {}).items():
        files = sorted((folder / "data" / config).glob("*.parquet"))
        actual = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        if actual != expected["num_examples"]:
            problems.append(f"data/{config}: {actual:,} rows but the manifest says {expected['num_examples']:,}")
        if card.get(config) != expected["num_examples"]:
            problems.append(f"README.md: dataset_info {config} num_examples {card.get(config)} "
                            f"but the manifest says {expected['num_examples']:,}")
    return problems
