"""What the card shows that must be read from the staged release or the work's ledgers: how
full each column is per config (parquet footers only), one truncated example row per config,
one prompt shown three ways (original / answer / think_summary), and the rejection funnel.

Everything here reads a column or a footer, never a whole config into memory: the example
row is the first row of the first shard, the three-way prompt is found from the prompt_id
columns alone and its three rows are read with a filter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from builder import tables
from builder.workdir import WorkDir

TEXT_LIMIT = 400  # characters of a message shown in the card
SHOWN = ("prompt_id", "variant", "category", "language", "source", "source_license", "teacher_model",
         "summarizer", "verify_status", "verify_method", "assistant_student_tokens")
THREE_WAYS = ("original", "answer", "think_summary")


def shards(folder: Path, config: str) -> list[Path]:
    return sorted((folder / "data" / config).glob("*.parquet"))


def truncate(text: str | None, limit: int = TEXT_LIMIT) -> str:
    if text is None:
        return ""
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + f" … [{len(text) - limit:,} more characters]"


def fill_rates(folder: Path, configs: list[str]) -> dict[str, dict[str, float | None]]:
    """Per config, per flat column: the share of rows where it is set, from the parquet
    footers' null counts (None where a footer has no statistics, e.g. nested columns)."""
    out: dict[str, dict[str, float | None]] = {}
    for config in configs:
        rows = 0
        nulls: dict[str, int | None] = {}
        for path in shards(folder, config):
            meta = pq.ParquetFile(path).metadata
            rows += meta.num_rows
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                for c in range(group.num_columns):
                    col = group.column(c)
                    name = col.path_in_schema
                    if "." in name:  # a nested leaf: its null count is not the row's
                        continue
                    stats = col.statistics
                    known = stats is not None and stats.has_null_count
                    prev = nulls.get(name, 0)
                    nulls[name] = None if prev is None or not known else prev + stats.null_count
        out[config] = {name: (None if n is None or not rows else 1 - n / rows) for name, n in nulls.items()}
    return out


def _shown_row(row: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {k: row[k] for k in SHOWN if k in row and row[k] not in (None, "")}
    shown["messages"] = [{"role": m["role"], "content": truncate(m["content"])} for m in row["messages"]]
    tools = row.get("tools_json") or row.get("tools")
    if tools:
        shown["tools"] = truncate(tools if isinstance(tools, str) else json.dumps(tools, ensure_ascii=False), 200)
    return shown


def example_rows(folder: Path, configs: list[str]) -> dict[str, str]:
    """Per config, its first row (selected columns, long texts truncated) as indented JSON."""
    out = {}
    for config in configs:
        files = shards(folder, config)
        if not files:
            continue
        first = next(pq.ParquetFile(files[0]).iter_batches(batch_size=1), None)
        if first is None or not first.num_rows:
            continue
        out[config] = json.dumps(_shown_row(first.to_pylist()[0]), ensure_ascii=False, indent=2)
    return out


def shared_prompt_ids(folder: Path, configs: tuple[str, ...] = THREE_WAYS) -> pa.Array:
    """prompt_ids present in every one of `configs` (distinct, unordered; empty if a config is
    absent), intersected in Arrow: a release's ids never become Python strings."""
    common: pa.Array | None = None
    for config in configs:
        cols = [pq.read_table(f, columns=["prompt_id"]).column("prompt_id") for f in shards(folder, config)]
        chunks = [chunk.cast(pa.string()) for col in cols for chunk in col.chunks]
        ids = pc.unique(pa.concat_arrays(chunks)).drop_null() if chunks else pa.array([], pa.string())
        common = ids if common is None else common.filter(pc.is_in(common, value_set=ids))
        if not len(common):
            break
    return common if common is not None else pa.array([], pa.string())


def three_ways(folder: Path) -> dict[str, Any]:
    """One prompt present in original, answer and think_summary: its user turn(s) once and each
    config's assistant turn (truncated), plus how many prompts the three configs share."""
    ids = shared_prompt_ids(folder)
    if not len(ids):
        return {"shared": 0, "configs": [c for c in THREE_WAYS if shards(folder, c)]}
    pid = pc.min(ids).as_py()  # the smallest id (UTF-8 byte order is code point order): the same on every rebuild
    replies: dict[str, str] = {}
    prompt: list[dict[str, str]] = []
    for config in THREE_WAYS:
        for f in shards(folder, config):
            t = pq.read_table(f, columns=["prompt_id", "messages"], filters=[("prompt_id", "=", pid)])
            if t.num_rows:
                messages = t.column("messages")[0].as_py()
                prompt = prompt or [{"role": m["role"], "content": truncate(m["content"])} for m in messages[:-1]]
                replies[config] = truncate(messages[-1]["content"], 600)
                break
    return {"shared": len(ids), "prompt_id": pid, "prompt": prompt, "replies": replies}


SUMMARY_COLUMNS = ("summary_fragment_rate", "summary_filler_rate", "summary_repetition", "summary_final_covered",
                   "faithfulness_score")


def summary_figures(folder: Path, scored: int) -> dict[str, Any]:
    """The card's summary figures from the published rows' own columns (`think_summary`, else
    `adaptive`; rows carrying a summary: `faithfulness_score` set), so a reader recomputes them from
    the data; `left_out`: how many more of the `scored` summaries (the variants stage's tally) are
    not in the release. {} when none."""
    config = next((c for c in ("think_summary", "adaptive") if shards(folder, c)), "think_summary")
    parts = [pq.read_table(f, columns=list(SUMMARY_COLUMNS)) for f in shards(folder, config)]
    t = pa.concat_tables(parts) if parts else None
    t = t.filter(pc.is_valid(t["faithfulness_score"])) if t is not None else None
    if t is None or not t.num_rows:
        return {}
    n = t.num_rows
    covered = t["summary_final_covered"].drop_null()

    def mean(col: str) -> float:
        return round(pc.sum(t[col].cast(pa.float64())).as_py() / n, 4)

    return {"config": config, "scored": n, "left_out": max(0, scored - n), "fragment_rate_mean": mean("summary_fragment_rate"),
            "filler_rate_mean": mean("summary_filler_rate"), "repetition_mean": mean("summary_repetition"),
            "final_result_coverage": round(pc.sum(covered.cast(pa.int64())).as_py() / len(covered), 4) if len(covered) else 0.0,
            "with_final_result": len(covered), "faithfulness_score_mean": mean("faithfulness_score")}


def funnel(work: WorkDir) -> list[dict[str, Any]]:
    """Per stage and step, from its ledger: rows in, kept, dropped (or quarantined) and the
    leading reasons — where every row that did not reach the release went."""
    out: list[dict[str, Any]] = []
    for stage, table in tables.LEDGERS.items():
        for path in work.shards(table):
            t = pq.read_table(path, columns=["step", "status", "reason"])
            counts = t.group_by(["step", "status"]).aggregate([("reason", "count")]).to_pylist()
            gone = t.filter(pc.not_equal(t.column("status"), "kept"))
            reasons = gone.group_by(["step", "reason"]).aggregate([("status", "count")]).to_pylist()
            for step in dict.fromkeys(r["step"] for r in counts):
                by = {r["status"]: r["reason_count"] for r in counts if r["step"] == step}
                why = sorted(((r["reason"] or "?", r["status_count"]) for r in reasons if r["step"] == step),
                             key=lambda x: -x[1])
                out.append({"stage": stage, "step": step, "in": sum(by.values()), "kept": by.get("kept", 0),
                            "dropped": sum(n for s, n in by.items() if s != "kept"),
                            "reasons": ", ".join(f"{r} {n:,}" for r, n in why[:3])
                            + (f", +{len(why) - 3} more" if len(why) > 3 else "")})
    return out
