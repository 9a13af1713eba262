"""Whether the training release's decontamination covered each benchmark (its manifest)."""

from __future__ import annotations

import json
import re
from pathlib import Path

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


def coverage(manifest: Path | None, benchmarks: dict[str, list[str]]) -> tuple[dict[str, str], str]:
    """Per benchmark: "covered", "not covered" or "unknown (...)"; and where that came from.
    `benchmarks` maps a benchmark id to extra aliases from the recipe."""
    if manifest is None:
        return {b: "unknown (no release manifest given)" for b in benchmarks}, "none"
    if not manifest.is_file():
        return {b: "unknown (manifest absent)" for b in benchmarks}, str(manifest)
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        listed = data["decontamination"]["benchmarks"]
        if not isinstance(listed, list):
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError):
        why = "unknown (manifest has no decontamination.benchmarks list)"
        return {b: why for b in benchmarks}, str(manifest)
    covered = {_norm(str(x)) for x in listed}
    out = {}
    for b, extra in benchmarks.items():
        names = {_norm(n) for n in [b, *ALIASES.get(b, []), *extra]}
        out[b] = "covered" if names & covered else "not covered"
    return out, str(manifest)
