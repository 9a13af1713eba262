"""Benchmarks' local files, checked before any model loads: a malformed line or a missing
field is one line (exit 2), not a failure hours into a run or a silently changed grade."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from train_reference.evaluation.config import BenchmarkConfig, EvalUserError, resolve_path
from train_reference.evaluation.judge import NEED_REF

# FastChat's single-answer prompts run_mt_bench uses.
MT_PROMPTS = ("single-v1", "single-v1-multi-turn", "single-math-v1", "single-math-v1-multi-turn")


def _rows(path: Path, key: str) -> list[tuple[int, dict[str, Any]]]:
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise EvalUserError(f"{path} line {n}: not valid JSON (data_files.{key})") from None
            if not isinstance(row, dict):
                raise EvalUserError(f"{path} line {n}: expected a JSON object (data_files.{key})")
            out.append((n, row))
    if not out:
        raise EvalUserError(f"{path}: no rows (data_files.{key})")
    return out


def _need(path: Path, n: int, row: dict[str, Any], fields: dict[str, type]) -> None:
    for field, kind in fields.items():
        if not isinstance(row.get(field), kind):
            raise EvalUserError(f"{path} line {n}: field {field!r} missing or not a {kind.__name__}")


def check(b: BenchmarkConfig) -> None:
    """Raise EvalUserError for the first problem in a benchmark's local files."""
    files = b.resolved_files()
    if b.kind == "lmeval":  # lm-eval reads them; each JSON Lines row must at least parse
        for key, path in files.items():
            if path.suffix == ".jsonl":
                _rows(path, key)
        return
    if b.name == "alignbench":
        for n, row in _rows(files["questions"], "questions"):
            _need(files["questions"], n, row, {"category": str, "question": str})
            if "question_id" not in row:
                raise EvalUserError(f"{files['questions']} line {n}: field 'question_id' missing")
        if b.judge_prompt_file:
            path = resolve_path(b.judge_prompt_file)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise EvalUserError(f"{path}: not valid JSON (judge_prompt_file)") from None
            if not (isinstance(data, dict) and isinstance(data.get("system"), str) and isinstance(data.get("template"), str)):
                raise EvalUserError(f'{path}: expected {{"system": ..., "template": ...}} strings (judge_prompt_file)')
        return
    if b.name != "mt_bench":
        return
    qpath, rpath, ppath = files["questions"], files["references"], files["judge_prompts"]
    refs = set()
    for n, row in _rows(rpath, "references"):
        choices = row.get("choices")
        turns = choices[0].get("turns") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        if "question_id" not in row or not (isinstance(turns, list) and len(turns) >= 2):
            raise EvalUserError(f"{rpath} line {n}: expected question_id and choices[0].turns with two answers")
        refs.add(row["question_id"])
    prompts = {row.get("name"): (n, row) for n, row in _rows(ppath, "judge_prompts")}
    for name in MT_PROMPTS:
        if name not in prompts:
            raise EvalUserError(f"{ppath}: judge prompt {name!r} missing (FastChat's judge_prompts.jsonl has it)")
        _need(ppath, prompts[name][0], prompts[name][1], {"system_prompt": str, "prompt_template": str})
    for n, row in _rows(qpath, "questions")[: b.limit]:
        _need(qpath, n, row, {"category": str, "turns": list})
        if len(row["turns"]) != 2 or "question_id" not in row:
            raise EvalUserError(f"{qpath} line {n}: expected question_id and two turns")
        # Without its reference a math/reasoning/coding answer would be graded by the
        # general prompt: a different, laxer score under the same name.
        if row["category"] in NEED_REF and row["question_id"] not in refs:
            raise EvalUserError(f"{qpath} line {n}: {row['category']} question {row['question_id']} has no "
                                f"reference answer in {rpath.name}")  # fmt: skip
