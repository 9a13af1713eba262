"""Preference pairs (issue 14 item 8) and the overthinking signal (item 9).

Pairs: unit cases on real-shaped samples (real R1 traces from data/sample, a second sample made
wrong, cut, looping or inconsistent), then the variants stage on the responses fixture, whose
GSM8K prompts have n = 2 samples (one verified fail + one pass; two identical passes), and the
release on that work dir (the pairs config is left out of the chat release, with its reason)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset

from builder import tables
from builder.rows import PAIR_FEATURES
from builder.variants.overthinking import MIN_GROUP, LengthStats, difficulty, histogram, pass_rates
from builder.variants.pairs import pick_pair, rejection_reason
from builder.variants.registry import REGISTRY, Skip, declare
from builder.variants.stage import run_variants
from tests.fixtures.stages import SAMPLE, build_responded, sample_recipe

PCMB = [json.loads(line) for line in (SAMPLE / "pcmb_traces.jsonl").read_text(encoding="utf-8").splitlines()[:3]]


def _sample(i: int, answer: str, status: str = "pass", codes: list[str] | None = None, info: list[str] | None = None,
            rep: float = 0.0) -> dict[str, Any]:  # fmt: skip
    return {"generation_id": f"g{i}", "prompt_id": "p", "sample_index": i, "answer": answer, "verify_status": status,
            "reject_codes": codes or [], "info_codes": info or [], "repetition_score": rep,
            "teacher_model": "deepseek-reasoner", "served_model": None}  # fmt: skip


def test_a_verified_pass_is_chosen_over_a_verified_fail() -> None:
    t = PCMB[0]
    right, wrong = t["answer_text"], t["answer_text"].replace(f"({t['answer_letter']})", "(A)")
    assert right != wrong
    chosen, rejected, why = pick_pair([_sample(0, wrong, "fail", ["verify_fail"]), _sample(1, right)])  # type: ignore[misc]
    assert (chosen["generation_id"], rejected["generation_id"], why) == ("g1", "g0", "verified_fail")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_sample(1, PCMB[1]["answer_text"][:200], "unverifiable", ["truncated_in_answer"]), "truncated"),
        (_sample(1, PCMB[1]["answer_text"] + " The answer is" * 50, "unverifiable", ["repetition_loop"], rep=0.9),
         "repetitive"),
        (_sample(1, PCMB[1]["answer_text"] + " (rechecked)", "pass", info=["think_answer_mismatch"]), "inconsistent"),
    ],
)  # fmt: skip
def test_rejected_sides_and_their_reasons(bad: dict[str, Any], reason: str) -> None:
    assert rejection_reason(bad) == reason
    got = pick_pair([bad, _sample(0, PCMB[1]["answer_text"], "unverifiable")])
    assert not isinstance(got, Skip) and got[2] == reason and got[0]["generation_id"] == "g0"


def test_never_two_identical_texts_and_every_skip_has_a_reason() -> None:
    same = PCMB[2]["answer_text"]
    assert pick_pair([_sample(0, same)]) == Skip("single_sample")
    assert pick_pair([_sample(0, same), _sample(1, "  " + same.replace(" ", "  ") + "\n", "fail", ["verify_fail"])]) == (
        Skip("identical_texts")
    )
    assert pick_pair([_sample(0, same), _sample(1, same + " Also B.")]) == Skip("no_rejected")  # both good
    assert pick_pair([_sample(0, "x", "fail", ["verify_fail"]), _sample(1, "y", "fail", ["verify_fail"])]) == (
        Skip("no_chosen")
    )
    # A reply cut in its thinking has no answer: it is no rejected side.
    assert pick_pair([_sample(0, same), _sample(1, "", "unverifiable", ["truncated_in_think"])]) == Skip("no_rejected")


def test_without_a_verified_sample_the_best_scoring_kept_one_is_chosen() -> None:
    a, b = _sample(0, "first kept", "unverifiable", rep=0.3), _sample(1, "second kept", "unverifiable", rep=0.1)
    got = pick_pair([a, b, _sample(2, "bad", "fail", ["verify_fail"])])
    assert not isinstance(got, Skip) and got[0]["generation_id"] == "g1" and got[1]["generation_id"] == "g2"


# ---------- overthinking ----------


def test_z_scores_within_category_and_difficulty() -> None:
    stats = LengthStats()
    for n in [100, 120, 90, 110, 105, 95, 115, 100]:
        stats.add("math", None, n)
    for n in [1000, 1200, 900, 1100, 1050, 950, 1150, 1000]:
        stats.add("math", "hard", n)
        stats.add("chat", None, n // 10)
    # Within "math" overall a 1,000-token thinking is long; among hard math prompts it is typical.
    assert stats.z("math", None, 1000) > 0.9
    assert abs(stats.z("math", "hard", 1000) or 0) < 0.5
    assert stats.z("math", "easy", 1000) == stats.z("math", None, 1000)  # no easy group: the category's
    assert stats.z("code", None, 1000) is None  # unknown category
    small = LengthStats()
    for n in range(MIN_GROUP - 1):
        small.add("tool_use", None, 100 + n)
    assert small.z("tool_use", None, 5000) is None  # too few rows to call anything long
    assert difficulty(1.0) == "easy" and difficulty(0.5) == "medium" and difficulty(0.0) == "hard"
    assert difficulty(None) is None


def test_histogram_bins_every_row() -> None:
    h = histogram([-5, -1.5, 0.2, 2.5, 10, None, math.inf])
    assert sum(h.values()) == 7 and h["none"] == 1 and h[">=4"] == 2 and h["<-3"] == 1


def test_pass_rates_need_two_verified_samples(tmp_path: Path) -> None:
    rows = [("a", "reasoning", "pass"), ("a", "reasoning", "fail"), ("a", "reasoning", "unverifiable"),
            ("b", "reasoning", "pass"), ("c", "control", "pass"), ("c", "control", "fail")]  # fmt: skip
    f = tmp_path / "p.parquet"
    pq.write_table(pa.table({k: [r[i] for r in rows] for i, k in enumerate(("prompt_id", "teacher_role", "verify_status"))}), f)
    assert pass_rates([f]) == {"a": 0.5}


# ---------- the stage and the release ----------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    planted, _ = build_responded(tmp_path_factory.mktemp("pairs") / "work")
    recipe = sample_recipe(variants={"build": ["answer", "think_summary", "pairs"], "overthinking_z": 1.0})
    run_variants(recipe, planted.work)
    root = planted.work.root
    return {
        "planted": planted, "recipe": recipe, "work": planted.work,
        "pairs": pq.read_table(planted.work.shards(tables.PAIRS)),
        "answer": pq.read_table(planted.work.shards(tables.variant("answer"))).to_pylist(),
        "summary_rows": pq.read_table(planted.work.shards(tables.variant("think_summary"))).to_pylist(),
        "ledger": pq.read_table(root / "variants" / "ledger.parquet").to_pylist(),
        "summary": json.loads((root / "variants" / "summary.json").read_text()),
    }  # fmt: skip


def test_the_stage_pairs_the_fixtures_two_sample_prompts(built: dict[str, Any]) -> None:
    planted, t = built["planted"], built["pairs"]
    assert t.schema.equals(PAIR_FEATURES.arrow_schema, check_metadata=False)
    rows = t.to_pylist()
    (p5,) = [pid for pid, ids in planted.must_not_select.items() if planted.reply(ids[0])["sample_index"] == 0
             and planted.must_select[pid] != ids[0] and "verify_fail" in planted.expect_codes.get(ids[0], set())]  # fmt: skip
    assert [r["prompt_id"] for r in rows] == [p5]
    row = rows[0]
    gold = planted.gsm8k_gold[p5]
    assert row["rejection_reason"] == "verified_fail"
    assert row["chosen_generation_id"] == planted.must_select[p5]
    assert f"\\boxed{{{gold}}}" in row["chosen"][0]["content"] and f"\\boxed{{{gold}}}" not in row["rejected"][0]["content"]
    assert row["chosen"] != row["rejected"] and row["prompt"][-1]["role"] == "user"
    # TRL's conversational preference format loads as such.
    ds = Dataset.from_list(rows).select_columns(["prompt", "chosen", "rejected"])
    assert ds[0]["chosen"][0]["role"] == "assistant" and isinstance(ds[0]["prompt"], list)


def test_every_prompt_is_in_the_pairs_step_of_the_ledger(built: dict[str, Any]) -> None:
    steps = [r for r in built["ledger"] if r["step"] == "pairs"]
    n_prompts = len(built["planted"].prompts)
    assert len(steps) == n_prompts
    reasons = {r["reason"] for r in steps if r["status"] != "kept"}
    assert reasons == {"single_sample", "no_rejected"}  # p6: two identical passes, no rejected side
    assert built["summary"]["counts"]["pairs"] == 1


def test_pairs_is_published_as_its_own_config_when_built(built: dict[str, Any], tmp_path: Path) -> None:
    from builder.release.manifest import card_metadata, verify_release
    from builder.release.stage import run_release

    s = built["summary"]
    assert s["omitted"] == {} and [v["name"] for v in s["specs"]] == ["answer", "think_summary"]
    assert "pairs" not in {i.name for i in declare(REGISTRY)} and REGISTRY["pairs"].default is False
    out = tmp_path / "release"
    run_release(built["recipe"], built["work"], out)
    assert sorted(p.name for p in (out / "data").iterdir()) == ["answer", "pairs", "think_summary"]
    published = pq.read_table(sorted((out / "data" / "pairs").glob("train-*.parquet")))
    assert published.schema.equals(PAIR_FEATURES.arrow_schema, check_metadata=False)
    assert published.to_pylist() == built["pairs"].to_pylist()
    # The card declares it with its own features; `answer` stays the default config.
    meta = card_metadata(out / "README.md")
    cfg = {c["config_name"]: c for c in meta["configs"]}
    assert cfg["pairs"]["data_files"][0]["path"] == "data/pairs/train-*.parquet" and cfg["answer"].get("default")
    info = {i["config_name"]: i for i in meta["dataset_info"]}
    assert {f["name"] for f in info["pairs"]["features"]} >= {"prompt", "chosen", "rejected", "rejection_reason"}
    assert info["pairs"]["splits"][0]["num_examples"] == published.num_rows
    card = (out / "README.md").read_text()
    assert "### `pairs`: preference pairs" in card and "| verified_fail | 1 |" in card
    assert "| `rejection_reason` | string |" in card
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["configs"]["pairs"]["num_examples"] == published.num_rows
    assert verify_release(out) == []  # row counts, hashes and card agree
    ds = Dataset.from_parquet(str(out / "data" / "pairs" / "*.parquet"))
    assert ds[0]["chosen"][0]["role"] == "assistant" and ds[0]["prompt"][-1]["role"] == "user"
    q = json.loads((out / "quality.json").read_text())
    assert q["omitted_configs"] == {}
    assert sum(q["overthinking"]["histogram"].values()) == sum(s["overthinking_histogram"].values()) > 0
    assert q["summary_quality"]["scored"] > 0


def test_pairs_is_off_unless_the_recipe_builds_it(sample_release: Path) -> None:
    assert "pairs" not in {p.name for p in (sample_release / "data").iterdir()}
    assert "preference pairs" not in (sample_release / "README.md").read_text()


def test_rows_carry_the_overthinking_z_and_code(built: dict[str, Any]) -> None:
    rows = built["answer"]
    zs = [r["overthinking_z"] for r in rows if r["overthinking_z"] is not None]
    assert len(zs) >= 0.8 * len(rows)
    flagged = [r for r in rows if "overthinking" in r["quality_codes"]]
    assert flagged and all(r["overthinking_z"] > 1.0 for r in flagged)
    assert all(r["overthinking_z"] is None or r["overthinking_z"] <= 1.0 for r in rows if r not in flagged)
    assert built["summary"]["overthinking_z"] == 1.0


def test_summary_rows_carry_their_scores(built: dict[str, Any]) -> None:
    rows = built["summary_rows"]
    assert rows and all(r["faithfulness_score"] is not None and r["summary_filler_rate"] == 0 for r in rows)
    assert all(r["summary_fragment_rate"] == 0 and r["summary_repetition"] == 0 for r in rows)
    assert all(r["summary_final_covered"] in (True, None) for r in rows)
    assert all(r["faithfulness_score"] is None for r in built["answer"])  # no summary, no score


def test_the_pairs_content_hash_covers_its_texts(built: dict[str, Any], tmp_path: Path) -> None:
    """The manifest and changelog hash `pairs` like every config; a pairs file whose chosen text
    changed (same prompt_id, same row count) changes the hash and shows as changed text."""
    import shutil

    from builder.release.content import content_sha256, text_hashes
    from builder.release.stage import run_release
    from builder.workdir import WorkDir

    first = tmp_path / "v1"
    run_release(built["recipe"], built["work"], first)
    before = json.loads((first / "manifest.json").read_text())["configs"]["pairs"]["content_sha256"]
    assert before and before == content_sha256(text_hashes(first, "pairs"))
    assert f"- `pairs`: 1 rows, content sha256 `{before[:16]}`" in (first / "CHANGELOG.md").read_text()

    shutil.copytree(built["work"].root, tmp_path / "work2")
    work = WorkDir(tmp_path / "work2")
    (shard,) = work.shards(tables.PAIRS)
    t = pq.read_table(shard)
    chosen = t.column("chosen").combine_chunks()  # edit the first chosen turn's text in Arrow (Json columns)
    turns = chosen.values
    texts = turns.field("content").to_pylist()
    texts[0] += " (edited)"
    fields = [pa.array(texts, f.type) if f.name == "content" else turns.field(i) for i, f in enumerate(turns.type)]
    edited = pa.ListArray.from_arrays(chosen.offsets, pa.StructArray.from_arrays(fields, fields=list(turns.type)),
                                      type=chosen.type)
    pq.write_table(t.set_column(t.schema.get_field_index("chosen"), "chosen", edited), shard)
    work.mark_complete("variants")  # as a re-run of the variants stage would leave it
    second = tmp_path / "v2"
    recipe = built["recipe"].model_copy(update={"version": "0.2.0"})
    run_release(recipe, work, second, previous=first)
    after = json.loads((second / "manifest.json").read_text())["configs"]["pairs"]["content_sha256"]
    assert after and after != before and after == content_sha256(text_hashes(second, "pairs"))
    log = (second / "CHANGELOG.md").read_text()
    (line,) = [ln for ln in log.splitlines() if ln.startswith("| `pairs` |")]
    assert [c.strip() for c in line.split("|")[2:-1]] == ["1", "1", "+0", "0", "0", "1", f"`{after[:16]}`"]
    answer = [ln for ln in log.splitlines() if ln.startswith("| `answer` |")]
    assert answer and answer[0].split("|")[6].strip() == "0"  # the chat configs are unchanged
