"""Each reasoning answer is counted in the student's tokenizer once per build: the responses stage
counts it (parsed.student_answer_tokens) and variants takes that count when its student tokenizer
is the one the responses summary names; otherwise it counts again, with the same rows either way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder.variants import variant_rows
from builder.variants.stage import run_variants
from builder.workdir import WorkDir
from tests.fixtures.stages import responded_inputs, sample_recipe

TABLES = ("answer", "think_summary", "full")
COUNT = variant_rows.count_tokens  # the real one (each build patches its own recorder over it)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return responded_inputs(tmp_path_factory.mktemp("answer-counts") / "seed", tmp_path_factory.mktemp("answer-counts-base"))


def _build(base: Path, dest: Path, monkeypatch: pytest.MonkeyPatch, tokenizer_in_summary: str | None) -> tuple[dict[str, pa.Table], list[str]]:
    shutil.copytree(base, dest)
    summary = dest / "responses" / "summary.json"
    d = json.loads(summary.read_text())
    d["student_tokenizer"] = tokenizer_in_summary
    summary.write_text(json.dumps(d))
    counted: list[str] = []

    def recording(name: str, texts: list[str]) -> list[int]:
        counted.extend(texts)
        return COUNT(name, texts)

    monkeypatch.setattr(variant_rows, "count_tokens", recording)
    run_variants(sample_recipe(variants={"build": list(TABLES)}), WorkDir(dest))
    out = {t: pa.concat_tables([pq.read_table(f) for f in sorted((dest / "variants" / t).glob("part-*.parquet"))]) for t in TABLES}
    return out, counted


def test_answers_are_counted_once_and_the_rows_are_those_of_a_recount(base: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    student = sample_recipe().student.tokenizer
    answers = {a for f in (base / "responses" / "parsed").glob("part-*.parquet")
               for a, sel in zip(*pq.read_table(f, columns=["answer", "selected"]).to_pydict().values()) if sel and a}  # fmt: skip
    reused, counted_reused = _build(base, tmp_path / "reuse", monkeypatch, student)
    recount, counted_again = _build(base, tmp_path / "recount", monkeypatch, "another-tokenizer")
    assert answers and not answers & set(counted_reused)  # no answer counted on its own in variants
    assert len(answers & set(counted_again)) > len(answers) // 2  # another tokenizer named: counted again
    for t in TABLES:
        assert reused[t].num_rows and reused[t].equals(recount[t]), t
