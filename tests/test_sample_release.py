"""The sample release shows the paper's comparison: the same prompts three ways.

Uses the session's sample build (conftest.py): `original` (the community response),
`answer` (R1's answer) and `think_summary` (summary ⊕ answer) must share prompts, so a user
can read one prompt as each config has it.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

THREE_WAYS = ("original", "answer", "think_summary")


def _rows(release: Path, config: str) -> dict[str, dict]:
    table = pq.read_table(release / "data" / config, columns=["prompt_id", "messages", "source"])
    return {r["prompt_id"]: r for r in table.to_pylist()}


def test_original_answer_and_think_summary_share_at_least_50_prompts(sample_release: Path) -> None:
    rows = {c: _rows(sample_release, c) for c in THREE_WAYS}
    shared = set.intersection(*(set(r) for r in rows.values()))
    assert len(shared) >= 50, f"only {len(shared)} prompt_ids are in all of {THREE_WAYS}"
    for pid in shared:
        prompts = {c: [(m["role"], m["content"]) for m in rows[c][pid]["messages"][:-1]] for c in THREE_WAYS}
        assert prompts["original"] == prompts["answer"] == prompts["think_summary"], pid
        replies = {c: rows[c][pid]["messages"][-1]["content"] for c in THREE_WAYS}
        # Three different assistant turns: the community's, R1's answer, and a summary ending in it.
        assert replies["original"] != replies["answer"]
        assert replies["think_summary"].endswith(replies["answer"])
        assert len(replies["think_summary"]) > len(replies["answer"])
