"""The format survival gate and the adaptive variant inside the variants stage, on the sample's real
traces. Prompts are given constraints their bare answer keeps: a word limit (mechanical: the
extractive summarizer applies it) or "paragraph 1 starts with <the answer's first word>" (a shape
a summary in front breaks: the gate's policy decides)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder.constraints.checks import _words, check
from builder.rows import PROMPT_FEATURES, arrow_table
from builder.variants.stage import run_variants
from builder.workdir import WorkDir
from tests.fixtures.stages import build_responded, sample_recipe


def _read(folder: Path) -> list[dict[str, Any]]:
    return [r for f in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str, dict[str, str]]:
    """A copy of the responded sample: prompts with a kept reasoning reply carry `number_words <
    words(answer) + 3` (even rows) or an nth_paragraph_first_word their answer keeps (odd rows),
    and one prompt a malformed constraints_json. Returns (work, limited, bad, shaped)."""
    p, _ = build_responded(tmp_path_factory.mktemp("gate") / "src")
    root = tmp_path_factory.mktemp("gate") / "w"
    for stage in ("curate", "responses"):
        shutil.copytree(p.work.root / stage, root / stage)
    parsed = _read(root / "responses" / "parsed")
    answers = {r["prompt_id"]: r["answer"] for r in parsed if r["selected"] and r["teacher_role"] == "reasoning"}
    limits: dict[str, str] = {}
    shaped: dict[str, str] = {}
    bad = ""
    for f in sorted((root / "curate" / "prompts").glob("part-*.parquet")):
        rows = pq.read_table(f).to_pylist()
        for r in rows:
            if r["prompt_id"] in answers and not bad:
                bad, r["constraints_json"] = r["prompt_id"], '[{"id": "punctuation:no_comma"'  # cut JSON
            elif r["prompt_id"] in answers and len(limits) > len(shaped):
                a = answers[r["prompt_id"]]
                paras = [x for x in a.split("\n\n") if x.strip()]
                kw = {"num_paragraphs": len(paras), "nth_paragraph": 1,
                      "first_word": paras[0].split()[0].strip("'\"").split(".")[0].split(",")[0].lower()}
                if check("length_constraints:nth_paragraph_first_word", kw, a):
                    r["constraints_json"] = json.dumps([{"id": "length_constraints:nth_paragraph_first_word", "kwargs": kw}])
                    shaped[r["prompt_id"]] = a
            elif r["prompt_id"] in answers:
                n = len(_words(answers[r["prompt_id"]])) + 3
                r["constraints_json"] = json.dumps([{"id": "length_constraints:number_words",
                                                     "kwargs": {"relation": "less than", "num_words": n}}])
                limits[r["prompt_id"]] = answers[r["prompt_id"]]
        pq.write_table(arrow_table(rows, PROMPT_FEATURES), f)
    wd = WorkDir(root)  # the edited shards, committed again as curate's (their size and mtime are checked)
    wd.mark_complete("curate", (wd.marker("curate") or {}).get("fingerprint"))
    return root, limits, bad, shaped


def _run(root: Path, tmp: Path, **gate: Any) -> tuple[WorkDir, Any]:
    work = tmp / "run"
    shutil.copytree(root, work)
    recipe = sample_recipe(variants={"build": ["answer", "think_summary", "adaptive"], "format_gate": gate})
    return WorkDir(work), run_variants(recipe, WorkDir(work))


def test_fallback_emits_the_answer_and_records_why(planted: tuple[Path, dict[str, str], str, dict[str, str]], tmp_path: Path) -> None:
    root, limits, bad, shaped = planted
    work, res = _run(root, tmp_path)
    ts = {r["prompt_id"]: r for r in _read(work.root / "variants" / "think_summary")}
    fell = [r for pid, r in ts.items() if pid in shaped and r["variant_choice"] == "answer"]
    assert len(fell) > 10  # a summary in front breaks "paragraph 1 starts with …"
    for r in fell:
        assert r["messages"][-1]["content"] == shaped[r["prompt_id"]]
        assert "format_broken:length_constraints:nth_paragraph_first_word" in r["quality_codes"]
        assert r["choice_reason"] == "format_fallback:length_constraints:nth_paragraph_first_word"
        assert "summary_declined:length_constraints:nth_paragraph_first_word" in r["quality_codes"]
    # The word limit is applied by the extractive summarizer: every summary row that stays keeps it.
    for pid, a in limits.items():
        if pid in ts and ts[pid]["variant_choice"] == "summary":
            assert len(_words(ts[pid]["messages"][-1]["content"])) < len(_words(a)) + 3
    assert "bad_constraints_json" in ts[bad]["quality_codes"]  # recorded, the row kept
    summary = json.loads((work.root / "variants" / "summary.json").read_text())
    ts_all = summary["format_survival"]["think_summary"]["*"]
    assert ts_all["survival"] == 1.0 and ts_all["survival_raw"] < 1.0 and ts_all["answer_keeps"] >= len(fell)
    assert summary["format_survival"]["answer"]["*"]["survival"] == 1.0


def test_drop_is_in_the_ledger(planted: tuple[Path, dict[str, str], str, dict[str, str]], tmp_path: Path) -> None:
    work, res = _run(planted[0], tmp_path, on_break="drop")
    ledger = pq.read_table(work.root / "variants" / "ledger.parquet").to_pylist()
    dropped = [r for r in ledger if r["step"] == "think_summary" and r["reason"].startswith("format_broken:")]
    assert dropped and res.absent["think_summary"]["format_broken:length_constraints:nth_paragraph_first_word"] == len(dropped)
    steps = {s: (i, k, d) for s, i, k, d in res.steps}
    i, k, d = steps["think_summary"]
    assert i == k + sum(d.values())  # nothing lost


def test_adaptive_keeps_every_row_whose_answer_passes(planted: tuple[Path, dict[str, str], str, dict[str, str]], tmp_path: Path) -> None:
    root, limits, _, shaped = planted
    work, _ = _run(root, tmp_path)
    rows = _read(work.root / "variants" / "adaptive")
    assert {r["variant_choice"] for r in rows} == {"answer", "summary"}
    for r in rows:
        turn = r["messages"][-1]["content"]
        if r["prompt_id"] in limits:
            assert len(_words(turn)) < len(_words(limits[r["prompt_id"]])) + 3 and turn.endswith(limits[r["prompt_id"]])
        if r["prompt_id"] in shaped:  # the policy lists this id as a whole-reply shape: answer only
            assert turn == shaped[r["prompt_id"]] and r["choice_reason"].startswith("constraint:")
    summary = json.loads((work.root / "variants" / "summary.json").read_text())
    assert sum(sum(v.values()) for v in summary["adaptive_mix"].values()) == len(rows)
    assert summary["format_survival"]["adaptive"]["*"]["survival"] == 1.0


def test_unknown_variant_in_the_gate_policy_is_one_line(planted: tuple[Path, dict[str, str], str, dict[str, str]], tmp_path: Path) -> None:
    from builder.errors import UserError

    with pytest.raises(UserError, match="format_gate.variants: unknown variant"):
        _run(planted[0], tmp_path, variants=["think_sumary"])
