"""Whether the training release's decontamination covered each benchmark (its manifest)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from train_reference.evaluation.config import EvalUserError

# Names a manifest may use for a benchmark, besides the benchmark's own id.
ALIASES: dict[str, list[str]] = {
    "gpqa_diamond": ["gpqa", "GPQA-Diamond"],
    "gsm8k": ["GSM8K"],
    "mmlu": ["MMLU"],
    "humaneval": ["HumanEval", "openai_humaneval"],
    "ifeval": ["IFEval"],
    "alignbench": ["AlignBench"],
    "mt_bench": ["MT-Bench", "mtbench"],
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _listed(data: Any) -> tuple[list[Any], list[Any]] | None:
    """(decontaminated benchmarks, those skipped because a file was absent), or None."""
    decon = data.get("decontamination") if isinstance(data, dict) else None
    listed = decon.get("benchmarks") if isinstance(decon, dict) else None
    if not isinstance(listed, list):
        return None
    skipped = decon.get("skipped_absent") or []
    return listed, skipped if isinstance(skipped, list) else []


def check_manifest(manifest: Path) -> None:
    """A manifest the user named must exist and carry a decontamination list: checked before
    any model is loaded, so a typo costs one line, not a run whose report says "unknown"."""
    if not manifest.is_file():
        raise EvalUserError(f"{manifest}: release manifest not found; pass the release's manifest.json")
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalUserError(f"{manifest}: not valid JSON ({exc.__class__.__name__}); pass the release's manifest.json") from None
    if _listed(data) is None:
        raise EvalUserError(f"{manifest}: no decontamination.benchmarks list; is this a release manifest.json?")


def coverage(manifest: Path | None, benchmarks: dict[str, list[str]]) -> tuple[dict[str, str], str]:
    """Per benchmark: "covered", "partially covered (...)", "not covered" or "unknown (...)";
    and where that came from. `benchmarks` maps a benchmark id to extra aliases from the recipe."""
    if manifest is None:
        return {b: "unknown (no release manifest given)" for b in benchmarks}, "none"
    if not manifest.is_file():
        return {b: "unknown (manifest absent)" for b in benchmarks}, str(manifest)
    try:
        found = _listed(json.loads(manifest.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError):
        found = None
    if found is None:
        why = "unknown (manifest has no decontamination.benchmarks list)"
        return {b: why for b in benchmarks}, str(manifest)
    covered = {_norm(str(x)) for x in found[0]}
    # A benchmark given as several files is listed in both when one of its files was absent.
    absent = {_norm(str(x)) for x in found[1]}
    out = {}
    for b, extra in benchmarks.items():
        names = {_norm(n) for n in [b, *ALIASES.get(b, []), *extra]}
        if names & covered and names & absent:
            out[b] = "partially covered (a file of it was absent when the release was decontaminated)"
        elif names & covered:
            out[b] = "covered"
        elif names & absent:
            out[b] = "not covered (its file was absent when the release was decontaminated)"
        else:
            out[b] = "not covered"
    return out, str(manifest)
