"""The shipped recipes parse, and `plan` explains the paper's build without reading data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from builder.config.curate import PAPER_MIX
from builder.plan import expected_mix, plan_data
from builder.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def test_paper_recipe_names_the_papers_sources_and_mix() -> None:
    r = load_recipe(ROOT / "recipes/paper.yaml")
    hub_ids = {s.dataset for s in r.sources}
    for must in ("BAAI/Infinity-Instruct", "OpenCoder-LLM/opc-sft-stage2", "PRIME-RL/Eurus-2-RL-Data",
                 "AI-MO/NuminaMath-CoT", "deepmind/code_contests", "Open-Orca/OpenOrca",
                 "a-m-team/AM-DeepSeek-R1-Distilled-1.4M", "allenai/tulu-3-sft-mixture"):
        assert must in hub_ids
    assert all(s.kind == "hf" for s in r.sources)
    assert expected_mix(r) == PAPER_MIX
    assert r.curate.decontaminate.ngram == 8
    assert {"gsm8k", "mmlu", "humaneval", "ifeval", "mt_bench", "gpqa_diamond", "alignbench"} <= {
        b.name for b in r.curate.decontaminate.benchmarks}


def test_plan_prints_sources_and_targets_without_data() -> None:
    proc = subprocess.run([sys.executable, "-m", "builder.cli", "plan", str(ROOT / "recipes/paper.yaml")],
                          capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "BAAI/Infinity-Instruct" in proc.stdout
    assert "546,526" in proc.stdout and "1,326,018" in proc.stdout


def test_sample_recipe_sources_exist() -> None:
    r = load_recipe(ROOT / "recipes/sample.yaml")
    for s in r.sources:
        assert r.resolve(s.path).is_file(), s.path
    data = plan_data(r)
    assert len(data["sources"]) == len(r.sources)
