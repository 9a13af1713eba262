"""Results as JSON and as a markdown table in the layout of the paper's Table 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from train_reference.evaluation.paper import COLUMNS, PAPER_ROWS, PERCENT


def _cell(value: float | None, bench: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if bench in PERCENT else f"{value:.2f}"


def _ours(rec: dict[str, Any] | None, bench: str) -> str:
    if rec is None:
        return "n/a"  # not in this run's recipe
    status = rec["status"]
    if status == "ok":
        return _cell(rec.get("score"), bench)
    return status.split(":", 1)[0]  # "failed" / "skipped"; the reason is in the notes


def render_markdown(report: dict[str, Any]) -> str:
    """Table 1's columns; the paper's rows, then ours; then settings and notes."""
    results = report["benchmarks"]
    head = "| model | " + " | ".join(h for _, h in COLUMNS) + " |"
    sep = "| --- | " + " | ".join("---" for _ in COLUMNS) + " |"
    lines = [f"# Evaluation of {report['model_name']}", "", head, sep]
    for name, row in PAPER_ROWS.items():
        lines.append(f"| {name} (paper) | " + " | ".join(_cell(row[c], c) for c, _ in COLUMNS) + " |")
    ours = " | ".join(_ours(results.get(c), c) for c, _ in COLUMNS)
    lines.append(f"| **{report['model_name']} (ours)** | {ours} |")
    lines += [
        "",
        "Paper rows: arXiv 2504.09639, Table 1 (SFT of Qwen2.5-32B). Accuracy columns are %, "
        "AlignBench and MT-Bench are 1-10 judge ratings.",
        "",
        "| benchmark | status | lm-eval task / data | version | n-shot | metric | decoding | items | decontaminated in release |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for bench, _ in COLUMNS:
        rec = results.get(bench)
        if rec is None:
            continue
        s = rec.get("settings", {})
        dec = s.get("decoding", "")
        if dec == "sampling":
            dec += f" T={s.get('temperature')} top-p={s.get('top_p')} x{s.get('samples')}"
        if dec != "log-likelihood":
            dec += f", max {s.get('max_new_tokens')} new tokens"
        data = rec.get("data")
        source = rec.get("task") or (
            ", ".join(Path(v).name for v in data.values()) if isinstance(data, dict) else str(data or "")
        )
        versions = rec.get("task_versions") or {}
        version = versions.get(rec.get("task") or "", "") if versions else ""
        nshot = rec.get("n_shot") or {}
        shots = nshot.get(rec.get("task") or "", s.get("num_fewshot") or 0) if nshot else ""
        items = str(rec.get("n_items", ""))
        if rec.get("unrated"):  # the score averages the rated ones only: say how many were not
            items += f" ({rec['unrated']} judgments unrated)"
        lines.append(
            f"| {bench} | {rec['status']} | {source} | {version} "
            f"| {shots} | {rec.get('metric', '')} | {dec} | {items} "
            f"| {rec.get('decontamination', 'unknown')} |"
        )
    unrated = [f"{b} {r['unrated']}" for b, r in results.items() if r.get("unrated")]
    if unrated:
        lines += ["", f"**Warning:** judgments without a rating (judge error or no \"[[x]]\"), left out of "
                      f"the means: {', '.join(unrated)}; see items/<benchmark>.jsonl."]  # fmt: skip
    flagged = report.get("not_decontaminated") or []
    if flagged:
        lines += ["", f"**Warning:** the training release was not (fully) decontaminated against "
                      f"{', '.join(flagged)}: those scores may count items the model was trained on."]  # fmt: skip
    judge = report.get("judge")
    if judge:
        lines += ["", f"Judge: `{judge['model']}` at `{judge['base_url']}`."]
        for bench in ("mt_bench", "alignbench"):
            rec = results.get(bench) or {}
            for name, digest in (rec.get("judge_prompt_sha256") or {}).items():
                lines.append(f"- {bench} prompt `{name}` sha256 `{digest[:16]}…`")
    lines += [
        "",
        f"Backend: {report['backend']}"
        + (f" (model `{report['model']}` served at `{report['base_url']}`)" if report.get("base_url") else "")
        + f"; lm-eval {report.get('lm_eval_version', '?')}; "
        f"chat template applied: {report['apply_chat_template']}; "
        f"decontamination source: {report['decontamination_source']}; seed {report.get('seed', '?')}.",
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "results.json"
    md = out_dir / "table.md"
    js.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
    md.write_text(render_markdown(report), encoding="utf-8")
    return js, md
