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
    # The paper's cost per teacher, with and without reusing AM's public R1 traces, from the
    # recipe's own prices and the plan's stated per-reply assumptions.
    from builder.generate.estimate import ASSUMED_COMPLETION, ASSUMED_PROMPT_TOKENS

    r = load_recipe(ROOT / "recipes/paper.yaml")
    assert r.generate is not None
    prices = r.generate.prices
    total, reused = 1_326_018, 900_000

    def usd(model: str, n: int, role: str) -> float:
        p = prices[model]
        return round(n * (ASSUMED_PROMPT_TOKENS * p.input_per_1m + ASSUMED_COMPLETION[role] * p.output_per_1m) / 1e6, 2)

    out = " ".join(proc.stdout.split())
    r1, r1_all, v3 = usd("deepseek-reasoner", total - reused, "reasoning"), usd("deepseek-reasoner", total, "reasoning"), \
        usd("deepseek-chat", total, "control")
    assert (f"cost r1 (reasoning, openai deepseek-reasoner): ${r1:,.2f} for {total - reused:,} requests; "
            f"without reusing public traces ${r1_all:,.2f} ({reused:,} imported replies reused)") in out, out
    assert f"cost v3-control (control, openai deepseek-chat): ${v3:,.2f} for {total:,} requests" in out
    assert "cost summarizer (summarizer, vllm Qwen/Qwen2.5-7B-Instruct): unknown, no price" in out
    assert f"cost of this build: ${r1 + v3:,.2f} reusing public traces, ${r1_all + v3:,.2f} without" in out
    # Warned, one line each: every unpinned Hub revision, the model without a price.
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert sum("is not a commit sha" in w for w in warnings) == len(r.sources)
    assert sum("Qwen/Qwen2.5-7B-Instruct has no price" in w for w in warnings) == 1


def test_sample_recipe_sources_exist() -> None:
    r = load_recipe(ROOT / "recipes/sample.yaml")
    for s in r.sources:
        assert r.resolve(s.path).is_file(), s.path
    data = plan_data(r)
    assert len(data["sources"]) == len(r.sources)
