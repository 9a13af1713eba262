"""Great Expectations suites for the variants, run shard by shard on signal frames.

GX (1.x) is imported inside `GxRunner`, which the release runs in a process of its own
(`quality.gx_process`) so only that process pays for it. Each
expectation carries `meta.check`, one of `builder.config.release.ALL_CHECKS`; our code
(`quality.report`) decides what blocks from the recipe's `quality.blocking` list — GX's
`severity` does not gate.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class CheckOutcome:
    """One expectation's result, summed over the shards of one variant."""

    check: str
    variant: str
    expectation: str
    column: str
    success: bool = True
    element_count: int = 0
    unexpected_count: int = 0
    examples: list[Any] = field(default_factory=list)
    detail: str = ""

    def merge(self, success: bool, element_count: int, unexpected_count: int, examples: list[Any]) -> None:
        self.success = self.success and success
        self.element_count += element_count
        self.unexpected_count += unexpected_count
        room = 5 - len(self.examples)
        if room > 0:
            self.examples += [e for e in examples[:room]]


def variant_expectations(gx: Any, variant: str, max_tokens: int, language_mostly: float, *,
                         think: bool, summary: bool, schema_version: str) -> list[Any]:
    """The suite for one variant's signal frame (see `quality.derive.signal_table`); `think`
    and `summary` are the variant spec's flags (its turn opens with a think block; it is a
    summary that must end with the exact answer). `schema_version` is passed in (builder.rows'
    SCHEMA_VERSION): the GX process imports no `datasets`."""
    E = gx.expectations

    def m(check: str) -> dict[str, str]:
        return {"check": check}

    exps: list[Any] = [
        E.ExpectColumnValuesToBeInSet(column="schema_version", value_set=[schema_version], meta=m("schema")),
        E.ExpectColumnValuesToBeInSet(column="variant", value_set=[variant], meta=m("schema")),
        E.ExpectColumnValuesToBeInSet(column="last_role", value_set=["assistant"], meta=m("schema")),
        E.ExpectColumnValuesToBeInSet(column="missing", value_set=[""], meta=m("not_null")),
        E.ExpectColumnValuesToNotBeNull(column="assistant_chars", meta=m("not_null")),
        E.ExpectColumnValuesToBeUnique(column="prompt_id", meta=m("unique_row_id")),
        E.ExpectColumnValuesToBeBetween(column="student_tokens", min_value=1, max_value=max_tokens,
                                        meta=m("student_tokens_within_max")),
        E.ExpectColumnValuesToBeInSet(column="language_ok", value_set=[True], mostly=language_mostly,
                                      meta=m("language_consistent")),
        E.ExpectColumnValuesToBeInSet(column="contaminated", value_set=[False], meta=m("not_contaminated")),
        E.ExpectColumnValuesToBeInSet(column="tools_kept", value_set=[True], meta=m("tools_kept")),
    ]
    # A community reply holds no answer tags and no other reasoning style's tags (quality.derive.OTHER_TAGS).
    exps.append(E.ExpectColumnValuesToBeInSet(column="other_tags", value_set=[0], meta=m("tag_grammar")))
    if not think:
        exps.append(E.ExpectColumnValuesToBeInSet(column="think_tags", value_set=[0], meta=m("tag_grammar")))
    else:  # exactly one <think>…</think> block, at the start
        exps += [
            E.ExpectColumnValuesToBeInSet(column="think_open", value_set=[1], meta=m("tag_grammar")),
            E.ExpectColumnValuesToBeInSet(column="think_close", value_set=[1], meta=m("tag_grammar")),
            E.ExpectColumnValuesToBeInSet(column="think_tags", value_set=[2], meta=m("tag_grammar")),
            E.ExpectColumnValuesToBeInSet(column="starts_with_think", value_set=[True], meta=m("tag_grammar")),
        ]
    if summary:
        exps.append(E.ExpectColumnValuesToBeInSet(column="ends_with_answer", value_set=[True],
                                                  meta=m("summary_ends_with_answer")))
    return exps


class GxRunner:
    """An ephemeral GX context with one pandas asset; one suite + validation definition per key."""

    def __init__(self) -> None:
        # No usage telemetry from a data build (and these machines are offline anyway).
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx  # lazy: ~2 s and ~280 MB, paid by the release stage only
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.ctx = gx.get_context(mode="ephemeral")
        self.ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = self.ctx.data_sources.add_pandas("release").add_dataframe_asset("frames")
        self.batch = asset.add_batch_definition_whole_dataframe("whole")
        self.definitions: dict[str, Any] = {}

    def define(self, key: str, expectations: list[Any]) -> None:
        suite = self.ctx.suites.add(self.gx.ExpectationSuite(name=f"{key}_suite", expectations=expectations))
        vd = self.gx.ValidationDefinition(name=key, data=self.batch, suite=suite)
        self.definitions[key] = self.ctx.validation_definitions.add(vd)

    def run(self, key: str, frame: pd.DataFrame, id_column: str | None = None) -> Any:
        # With an id column GX reports which rows failed (their prompt_ids), not just values.
        fmt: Any = {"result_format": "SUMMARY", "unexpected_index_column_names": [id_column]} if id_column else "SUMMARY"
        return self.definitions[key].run(batch_parameters={"dataframe": frame}, result_format=fmt)


def outcomes_of(result: Any, variant: str, into: dict[tuple[str, str, str], CheckOutcome]) -> None:
    """Fold one GX validation result into per-(check, expectation, column) outcomes."""
    for r in result.results:
        cfg = r.expectation_config
        column = str(cfg.kwargs.get("column") or cfg.kwargs.get("column_A") or "")
        check = str((cfg.meta or {}).get("check", cfg.type))
        key = (check, cfg.type, column)
        res = r.result or {}
        out = into.setdefault(key, CheckOutcome(check, variant, cfg.type, column))
        exc = r.exception_info or {}
        if exc.get("raised_exception"):
            out.detail = str(exc.get("exception_message", ""))[:200]
        examples = list(res.get("partial_unexpected_list") or [])
        ids = res.get("partial_unexpected_index_list") or []
        if ids and isinstance(ids[0], dict) and "prompt_id" in ids[0]:
            examples = [f"{i['prompt_id']}: {i.get(column, '')}" for i in ids]
        out.merge(bool(r.success), int(res.get("element_count") or 0), int(res.get("unexpected_count") or 0), examples)


def write_result(result: Any, json_path: Path, html_path: Path) -> None:
    """Keep GX's result JSON and render its validation page (the Data Docs page renderer)."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer

    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result.to_json_dict(), indent=1, default=str))
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(_view().render(ValidationResultsPageRenderer().render(result)))


@functools.cache
def _view() -> Any:
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView()
