"""constraints_json on curated prompts: a source's own list (validated; malformed → quarantined with
`bad_constraints`, nothing lost), an IFEval tests spec's, else the detector's."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from builder.curate.stage import run_curate
from builder.recipe import load_recipe
from builder.workdir import WorkDir
from tests.test_curate_inputs import ledger, real_questions, write_recipe


def test_source_constraints_validated_and_detected(tmp_path: Path) -> None:
    qs = real_questions(4)
    rows = [
        {"q": qs[0] + " Answer in all lowercase letters.", "c": None},  # detected
        {"q": qs[1], "c": [{"id": "punctuation:no_comma", "kwargs": {}}]},  # given, valid
        {"q": qs[2], "c": [{"id": "punctuation:no_commas"}]},  # given, unknown id
        {"q": qs[3], "c": "[{not json"},  # given, not JSON
    ]
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps({k: v for k, v in r.items() if v is not None}) for r in rows))
    recipe = load_recipe(write_recipe(tmp_path, [{"name": "s", "path": "s.jsonl", "fields": {"prompt": "q", "constraints": "c"}}]))
    res = run_curate(recipe, WorkDir(tmp_path / "w"))
    assert res.rows_in == 4 and res.rows_out == 2  # nothing lost: 2 kept + 2 quarantined
    bad = [r for r in ledger(tmp_path / "w") if r["status"] == "quarantined"]
    assert [r["reason"] for r in bad] == ["bad_constraints", "bad_constraints"]
    assert "unknown instruction id" in bad[0]["detail"] and "not JSON" in bad[1]["detail"]
    got = {r["messages"][-1]["content"][:30]: json.loads(r["constraints_json"])
           for r in pq.read_table(next((tmp_path / "w/curate/prompts").glob("*.parquet"))).to_pylist()}
    assert sorted(c[0]["id"] for c in got.values()) == ["change_case:english_lowercase", "punctuation:no_comma"]
