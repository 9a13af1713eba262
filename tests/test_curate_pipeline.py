"""Curation on the shipped sample slices: dedupe winners, decontamination, balancing, ledger."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from builder.config.curate import PAPER_MIX, BalanceConfig
from builder.curate.balance import allocate, balance
from builder.curate.normalize import normalize_text
from builder.curate.stage import run_curate
from builder.ledger import Ledger, LedgerMismatch
from builder.recipe import load_recipe
from builder.workdir import WorkDir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample_curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    recipe = load_recipe(ROOT / "recipes/sample.yaml")
    recipe.curate.near_dedupe.enabled = False  # the MinHash step has its own tests
    work = tmp_path_factory.mktemp("w")
    run_curate(recipe, WorkDir(work))
    return work


def planted() -> list[dict]:
    return [json.loads(line) for line in (ROOT / "data/sample/planted.jsonl").read_text().splitlines()]


def test_every_input_row_has_one_fate_per_step(sample_curated: Path) -> None:
    rows = pq.read_table(sample_curated / "curate/ledger.parquet").to_pylist()
    summary = json.loads((sample_curated / "curate/summary.json").read_text())
    for step in summary["steps"]:
        fates = [r for r in rows if r["step"] == step["step"]]
        assert len(fates) == step["in"] == step["kept"] + sum(step["dropped"].values())
    n_prompts = pq.read_metadata(sample_curated / "curate/prompts/part-00000.parquet").num_rows
    assert summary["steps"][-1]["kept"] == n_prompts == summary["rows_out"]


def test_exact_duplicates_lose_to_the_higher_priority_source(sample_curated: Path) -> None:
    rows = pq.read_table(sample_curated / "curate/ledger.parquet").to_pylist()
    dups = {r["source_row_id"]: r for r in rows if r["reason"] == "exact_dup"}
    exact_ids = {p["id"] for p in planted() if p["kind"] == "exact_dup"}
    assert exact_ids <= set(dups)
    kept_ids = {r["prompt_id"] for r in rows if r["step"] == "exact_dedupe" and r["status"] == "kept"
                and r["source"] == "gsm8k-train"}
    assert all(dups[i]["detail"] in kept_ids for i in exact_ids)


def test_planted_leaks_are_caught_with_benchmark_and_item(sample_curated: Path) -> None:
    report = pq.read_table(sample_curated / "curate/decontamination.parquet").to_pylist()
    hits = {r["source_row_id"]: r for r in report if r["source"] == "community-planted"}
    for p in planted():
        if p["kind"] == "leak":
            assert p["id"] in hits, p["id"]
            want = "gsm8k" if "gsm8k" in p["id"] else "math500"
            assert hits[p["id"]]["benchmark"] == want and hits[p["id"]]["rule"] == "ngram8"
            hit = hits[p["id"]]  # evidence as columns a user can re-filter on, and as JSON
            assert 0 < hit["score"] <= 1 and hit["span"] and json.loads(hit["evidence"])["span"] == hit["span"]
    # Number-only variants are different problems: not exact dups, not contaminated.
    ledger = pq.read_table(sample_curated / "curate/ledger.parquet").to_pylist()
    nums = [r for r in ledger if r["source_row_id"].startswith("numbers-") and r["step"] == "exact_dedupe"]
    assert sum(r["status"] == "kept" for r in nums) >= 9


def test_fuzzy_rule_catches_a_reworded_short_item(tmp_path: Path) -> None:
    from builder.config.curate import DecontamConfig
    from builder.curate.decontam import BenchmarkIndex

    idx = BenchmarkIndex(DecontamConfig(ngram=8))
    idx.add("mt_bench", "mt-1", "What is the capital of France?")
    idx.finish()
    assert idx.match("what is the capital of france") is not None
    assert idx.match("What is the capital of Spain?") is None


def test_normalization_keeps_meaning() -> None:
    code = "def f(x):\n    return x  # indented\n"
    assert normalize_text(code) == code.strip()
    assert normalize_text("a\r\nb\u200b\u00a0c\x07") == "a\nb c"
    assert normalize_text("ｆｕｌｌ") == "ｆｕｌｌ"  # NFC never folds full-width forms
    assert normalize_text("e\u0301") == "\u00e9"


def test_allocate_respects_caps_and_sums() -> None:
    alloc = allocate(100, {"a": 10, "b": 1000, "c": 1000}, {"a": 1, "b": 1, "c": 2})
    assert alloc["a"] == 10 and sum(alloc.values()) == 100 and alloc["c"] == 60


def test_balance_is_seeded_and_order_independent() -> None:
    ids = [f"p{i}" for i in range(1000)]
    cats = ["math" if i % 3 else "chat" for i in range(1000)]
    srcs = ["a" if i % 2 else "b" for i in range(1000)]
    cfg = BalanceConfig(target_total=300, category_weights={"math": 1, "chat": 1}, seed=3)
    r1 = balance(ids, srcs, cats, cfg)
    rev = balance(ids[::-1], srcs[::-1], cats[::-1], cfg)
    kept1 = {i for i, k in zip(ids, r1.keep) if k}
    kept2 = {i for i, k in zip(ids[::-1], rev.keep) if k}
    assert kept1 == kept2 and len(kept1) == 300
    assert Counter(c for c, k in zip(cats, r1.keep) if k) == {"math": 150, "chat": 150}
    other = balance(ids, srcs, cats, cfg.model_copy(update={"seed": 4}))
    assert {i for i, k in zip(ids, other.keep) if k} != kept1


def test_paper_preset_reproduces_the_mix() -> None:
    n = 60_000
    cats = list(PAPER_MIX)
    ids = [f"p{i}" for i in range(n)]
    c = [cats[i % len(cats)] for i in range(n)]
    res = balance(ids, ["s"] * n, c, BalanceConfig(preset="paper", target_total=13_260))
    got = Counter(x for x, k in zip(c, res.keep) if k)
    total = sum(PAPER_MIX.values())
    for cat, v in PAPER_MIX.items():
        assert abs(got[cat] - 13_260 * v / total) <= 1


def test_ledger_detects_a_lost_row() -> None:
    led = Ledger("x")
    led.enter("s", 2)
    led.record("s", "kept", prompt_id="a")
    with pytest.raises(LedgerMismatch):
        led.check()


def test_sample_with_minhash_merges_planted_near_dups_not_number_variants(tmp_path: Path) -> None:
    recipe = load_recipe(ROOT / "recipes/sample.yaml")
    run_curate(recipe, WorkDir(tmp_path))
    ledger = pq.read_table(tmp_path / "curate/ledger.parquet").to_pylist()
    near = {r["source_row_id"] for r in ledger if r["reason"] == "near_dup"}
    planted_near = {p["id"] for p in planted() if p["kind"] == "near_dup"}
    assert len(near & planted_near) >= 9  # MinHash is probabilistic; 20×5 bands find ~99.7%
    numbers = {p["id"] for p in planted() if p["kind"] == "number_variant"}
    assert not (near & numbers)
    # The winner of every near-dup cluster is a row that was kept.
    kept = {r["prompt_id"] for r in ledger if r["step"] == "near_dedupe" and r["status"] == "kept"}
    assert all(r["detail"] in kept for r in ledger if r["reason"] == "near_dup")
