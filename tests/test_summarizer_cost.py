"""The published cost per think_summary row includes the LLM summarizer's spend.

Real curated prompts and traces, the responses stage, the `kind: llm` summarizer priced in
`generate.prices` (the real openai.AsyncOpenAI backend against the loopback server), then the
release: quality.json and the dataset card must show (reasoning spend + summarizer spend) /
think_summary rows, the summarizer's part computed here from the reply store's own token
counts and the price, not from any figure the toolkit wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder import tables
from builder.tables import VariantsSummary
from tests.fixtures.stages import build_responded, sample_recipe
from tests.servers.openai_server import run_server
from tests.test_release_helpers import generate_summary

MODEL = "qwen2.5-7b-instruct"
KEY_ENV = "SUMMARY_COST_TEST_API_KEY"
KEY = "sk-summary-cost-5b1e0d"
PRICE = {"input_per_1m": 3.0, "output_per_1m": 15.0}  # USD per 1M tokens, dear enough to show
REASONING_USD = 0.25  # what the (planted) generate summary says the reasoning teacher cost
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "fail_fast_after": 3, "concurrency": 16}


def _recipe(base_url: str) -> Any:
    base = sample_recipe()
    generate = base.generate.model_dump(exclude_unset=True)
    generate["prices"] = {**generate.get("prices", {}), MODEL: PRICE}
    teacher = {"kind": "openai", "model": MODEL, "endpoints": [{"base_url": base_url, "api_key_env": KEY_ENV}],
               "limits": FAST}  # fmt: skip
    return sample_recipe(
        generate=generate,
        variants={"build": ["answer", "think_summary"],
                  "summarizer": {"kind": "llm", "max_ratio": 0.9, "teacher": teacher}},
        # Gates that the planted fixture replies are not built to pass are advisory here.
        quality={"blocking": ["schema", "not_null", "unique_row_id", "tag_grammar", "summary_ends_with_answer"]},
    )  # fmt: skip


def _store_usd(folder: Path) -> tuple[float, int, int]:
    """(USD, prompt tokens, completion tokens) over every record the summary store holds."""
    pt = ct = 0
    for seg in sorted(folder.glob("*.jsonl")):
        for line in seg.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            pt += rec.get("prompt_tokens") or 0
            ct += rec.get("completion_tokens") or 0
    return (pt * PRICE["input_per_1m"] + ct * PRICE["output_per_1m"]) / 1e6, pt, ct


@dataclass
class Built:
    work: Path
    release: Path
    server: dict[str, Any]  # the loopback server's own counts


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    from builder.release.stage import run_release
    from builder.variants.stage import run_variants

    base = tmp_path_factory.mktemp("summary-cost")
    planted, _ = build_responded(base / "work")
    work = planted.work
    # The replies were planted, not generated: say what the reasoning teacher cost.
    work.write_summary(generate_summary([("r1", "reasoning", "deepseek-reasoner", REASONING_USD)]))
    with pytest.MonkeyPatch.context() as mp, run_server(scenario="plain", models=[MODEL], api_key=KEY) as srv:
        mp.setenv(KEY_ENV, KEY)
        recipe = _recipe(srv.base_url)
        run_variants(recipe, work)
        stats = srv.stats()
    run_release(recipe, work, base / "release")
    yield Built(work.root, base / "release", stats)


def _rows(work: Path, variant: str) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in (work / "variants" / variant).glob("part-*.parquet"))


def test_the_summarizer_spend_is_in_the_cost_per_think_summary_row(built: Built) -> None:
    usd, pt, ct = _store_usd(built.work / tables.SUMMARY_STORE.path / "summarizer")
    assert (pt, ct) == (built.server["prompt_tokens"], built.server["completion_tokens"]) and ct > 0
    n_summary, n_answer = _rows(built.work, "think_summary"), _rows(built.work, "answer")
    assert n_summary > 0
    expected = round((REASONING_USD + usd) / n_summary, 6)
    assert expected > round(REASONING_USD / n_summary, 6)  # the summarizer's part shows at this precision

    quality = json.loads((built.release / "quality.json").read_text())
    per_row = quality["cost_per_kept_row"]
    assert per_row["think_summary"] == pytest.approx(expected, abs=1e-6)
    assert per_row["answer"] == pytest.approx(REASONING_USD / n_answer, abs=1e-6)  # no summary, no summarizer spend

    card = (built.release / "README.md").read_text(encoding="utf-8")
    assert f"`think_summary` {per_row['think_summary']}" in card
    assert f"`answer` {per_row['answer']}" in card


def test_the_variants_summary_carries_the_priced_accounting(built: Built) -> None:
    from builder.workdir import WorkDir

    summary = WorkDir(built.work).read_summary(VariantsSummary)
    assert summary is not None and summary.summarizer_accounting is not None
    acc = summary.summarizer_accounting
    usd, pt, _ = _store_usd(built.work / tables.SUMMARY_STORE.path / "summarizer")
    assert acc.model == MODEL and acc.price is not None and acc.total.prompt_tokens == pt
    assert acc.spend_usd == pytest.approx(usd)


def test_the_summarizers_spending_cap_stops_it_in_one_line(tmp_path: Path) -> None:
    # A cap below one summary's worst case: nothing is sent, and the line names the summarizer's key.
    from builder.errors import UserError
    from builder.variants.stage import run_variants

    planted, _ = build_responded(tmp_path / "work")
    with pytest.MonkeyPatch.context() as mp, run_server(scenario="plain", models=[MODEL], api_key=KEY) as srv:
        mp.setenv(KEY_ENV, KEY)
        recipe = _recipe(srv.base_url)
        assert recipe.variants.summarizer.teacher is not None
        recipe.variants.summarizer.teacher.limits.max_cost_usd = 1e-6
        with pytest.raises(UserError, match="spending cap reached") as e:
            run_variants(recipe, planted.work)
        assert srv.stats()["requests_total"] == 0
    assert "raise variants.summarizer.teacher.limits.max_cost_usd" in str(e.value) and "\n" not in str(e.value)


def test_plan_counts_the_summarizers_spend_from_its_own_store(built: Built) -> None:
    """plan's cap line read the generate store for the summarizer too: "$0.00 spent" after it had paid."""
    from builder.generate.estimate import cost_lines, estimate

    recipe = _recipe("http://127.0.0.1:9/v1")
    assert recipe.variants.summarizer.teacher is not None
    recipe.variants.summarizer.teacher.limits.max_cost_usd = 50.0
    usd, _, _ = _store_usd(built.work / tables.SUMMARY_STORE.path / "summarizer")
    assert usd > 0.005  # shows at the line's two decimals
    lines = cost_lines(estimate(recipe, built.work))
    assert any(line.startswith(f"spending cap summarizer: $50.00 (limits.max_cost_usd) for ${usd:,.2f} spent + $")
               for line in lines), lines  # fmt: skip
