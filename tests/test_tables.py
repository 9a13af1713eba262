"""The declared inter-stage tables: WorkDir resolves them, summaries are typed, `plan` prints the
flow from each stage's own READS / WRITES."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console

from builder import tables
from builder.errors import UserError
from builder.plan import flow, flow_lines, print_plan
from builder.tables import ResponsesSummary, VariantsSummary
from builder.workdir import WorkDir
from tests.fixtures.stages import sample_recipe

ORDER = ["curate", "generate", "responses", "variants", "release"]


def _responses_summary() -> ResponsesSummary:
    return ResponsesSummary(rows_in=3, kept=2, quarantined=1, selected=2, reasons={"unknown_prompt": 1},
                            verify={"reasoning:math:pass": 2}, shapes={"inline": 3}, seconds=0.5)  # fmt: skip


def test_every_table_a_stage_reads_is_written_by_an_earlier_stage() -> None:
    steps = flow()
    assert [s["stage"] for s in steps] == ORDER
    written: dict[str, str] = {}
    for s in steps:
        for label in s["reads"]:
            assert label in written, f"{s['stage']} reads {label}, which no earlier stage writes"
        written |= dict.fromkeys(s["writes"], s["stage"])
    # The declarations agree with who produces what.
    assert written["curate/prompts/"] == tables.PROMPTS.producer == "curate"
    assert written["responses/parsed/"] == tables.PARSED.producer == "responses"
    assert written["variants/summary.json"] == VariantsSummary.STAGE
    release = steps[-1]
    assert "variants/summary.json" in release["reads"] and "generate/summary.json" in release["reads"]


@pytest.mark.parametrize("stage", ORDER)
def test_a_stage_declares_only_what_it_produces(stage: str) -> None:
    import importlib

    mod = importlib.import_module(f"builder.{stage}.stage")
    assert mod.WRITES
    for item in mod.WRITES:
        assert (item.STAGE if isinstance(item, type) else item.producer) == stage, tables.label(item)


def test_plan_prints_the_flow_from_the_stage_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    import builder.variants.stage as variants

    out = io.StringIO()
    print_plan(sample_recipe(), Console(file=out, width=100))
    lines = [line.strip() for line in out.getvalue().splitlines()]
    for stage in ORDER:
        assert sum(line.startswith(f"{stage}: reads ") for line in lines) == 1, stage
    assert ("responses: reads curate/prompts/, generate/replies/ → writes responses/parsed/, responses/quarantine/, "
            "responses/ledger.parquet, responses/summary.json") in lines  # fmt: skip
    # Not hand-written: change a stage's declaration and the printed line follows.
    monkeypatch.setattr(variants, "READS", (tables.PARSED,))
    assert "variants: reads responses/parsed/ → writes" in flow_lines(flow())[3]


def test_paths_shards_and_require_name_the_producer(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    assert work.path(tables.variant("think_summary")) == tmp_path / "variants" / "think_summary"
    assert tables.variant("answer").features is tables.VARIANT.features
    with pytest.raises(ValueError, match="family"):
        work.path(tables.VARIANT)
    assert work.shards(tables.PARSED) == [] and work.shards(tables.DECONTAMINATION) == []
    with pytest.raises(UserError, match=r"responses: the responses stage has not finished here .*run `answer-distill responses` first"):
        work.require(tables.PARSED)  # no completion marker: never read, whatever lies there
    for stage in ("curate", "responses"):
        work.mark_complete(stage)
    with pytest.raises(UserError, match=r"responses/parsed: no shards found; run `answer-distill responses` first"):
        work.require(tables.PARSED)
    with pytest.raises(UserError, match=r"decontamination.parquet: not found; run `answer-distill curate` first"):
        work.require(tables.DECONTAMINATION)
    w = work.writer(tables.QUARANTINE, shard_rows=1)
    w.write_rows([])
    written = w.close()
    work.mark_complete("responses")  # written outside a stage run: marked as the stage's outputs
    assert written == work.require(tables.QUARANTINE)
    cols = {k: [1.0 if k == "score" else "x"] for k in tables.DECONTAMINATION.features}
    written = work.write_columns(tables.DECONTAMINATION, cols)
    work.mark_complete("curate")
    assert written == work.require(tables.DECONTAMINATION)


def _committed_quarantine(tmp_path: Path) -> tuple[WorkDir, list[Path]]:
    work = WorkDir(tmp_path)
    with work.stage_run("responses"):
        w = work.writer(tables.QUARANTINE, shard_rows=1)
        w.write_rows([{k: "x" if getattr(v, "dtype", None) == "string" else None for k, v in tables.QUARANTINE.features.items()}] * 2)
        w.close()
    files = work.require(tables.QUARANTINE)
    assert len(files) == 2
    return work, files


def test_a_shard_changed_after_commit_is_refused_by_name(tmp_path: Path) -> None:
    work, files = _committed_quarantine(tmp_path)
    data = bytearray(files[0].read_bytes())
    data[8] ^= 0xFF  # damage in the first data page: the footer still reads
    files[0].write_bytes(bytes(data))
    with pytest.raises(UserError, match=rf"{files[0].name}: was changed after the responses stage committed it; re-run"):
        work.require(tables.QUARANTINE)


def test_a_deleted_or_foreign_shard_is_refused_by_name(tmp_path: Path) -> None:
    work, files = _committed_quarantine(tmp_path)
    extra = files[0].with_name("part-99999.parquet")
    extra.write_bytes(files[0].read_bytes())
    with pytest.raises(UserError, match=r"part-99999.parquet: not written by the responses stage's last run"):
        work.require(tables.QUARANTINE)
    extra.unlink()
    files[1].unlink()  # a lost shard would silently lose rows
    with pytest.raises(UserError, match=rf"{files[1].name}: was deleted after the responses stage committed it"):
        work.require(tables.QUARANTINE)


def test_summaries_are_typed_both_ways(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    assert work.read_summary(ResponsesSummary) is None
    path = work.write_summary(_responses_summary())
    assert path == tmp_path / "responses" / "summary.json"
    assert work.read_summary(ResponsesSummary) == _responses_summary()
    with pytest.raises(ValidationError):  # what we write has exactly the declared fields
        ResponsesSummary(**_responses_summary().model_dump(), cost_usd=1.0)  # type: ignore[call-arg]
    # A summary from another toolkit version is one clear line naming the file and the fix.
    data = json.loads(path.read_text())
    del data["selected"]
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"responses/summary.json: selected: Field required.*answer-distill responses"):
        work.read_summary(ResponsesSummary)


def test_step_rows_keep_the_in_key(tmp_path: Path) -> None:
    row = tables.StepRow.rows([("read", 5, 4, {"too_long": 1})])[0]
    assert row.model_dump(by_alias=True) == {"step": "read", "in": 5, "kept": 4, "dropped": {"too_long": 1}}
