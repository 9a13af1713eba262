"""What responses + variants cannot do without, in CPU seconds, on a work dir they have built (issue 16).

Two parts of the stages' work are fixed by what the release publishes, whatever the code around
them costs:

- exact token counts: `teacher_think_tokens` / `teacher_answer_tokens` of every kept reply (the
  real traces carry no usage report to read them off), `student_answer_tokens`, and every
  variant row's `student_tokens` (its prompt, and its assistant turn: a think_summary or full
  turn's text before the answer, an original row's community response; the answer itself counted
  once per reply, as builder/variants/variant_rows.turn_tokens reuses it). Counted here once each,
  with builder/tokens.count_tokens, the fastest exact counter this project has;
- the extractive summary and its quality and faithfulness checks of every selected reasoning
  reply (builder/variants/summarizer.py), the think_summary rows' source.

Only the published rows' texts are counted (a dropped row's texts are counted by the stages too):
a lower bound. `floor_cpu_s` is their sum in this process, `replies_per_cpu_s_ceiling` the
replies per CPU-second the stages could reach if everything else (parsing, checks, verification,
Parquet, start-up) cost nothing, and `floor_share` the floor over the stages' measured CPU.

    python benchmarks/cpu_floor.py WORK_DIR [--stages-cpu-s S]   # WORK_DIR: after responses + variants

Last line: one JSON object (floor_count_cpu_s, floor_summary_cpu_s, floor_cpu_s, replies,
replies_per_cpu_s_ceiling, floor_share).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder.chat_length import joins_additively  # noqa: E402
from builder.recipe import load_recipe  # noqa: E402
from builder.tokens import count_tokens  # noqa: E402
from builder.variants.summarizer import SummaryGate, assess_summary, extractive_summary  # noqa: E402
from builder.variants.summary_job import user_text  # noqa: E402
from builder.variants.variant_rows import prompt_tokens  # noqa: E402


def _rows(path: Path, cols: list[str]) -> list[dict[str, Any]]:
    return pq.read_table(path, columns=cols).to_pylist() if path.exists() else []


class Text(NamedTuple):
    tokenizer: str
    text: str
    published: int | None  # the count the stages' tables hold for exactly this text, where one does


def count_texts(work: Path, teacher: str, student: str) -> tuple[list[Text], list[dict[str, Any]]]:
    """The texts whose counts the release publishes, and the prompts of its rows."""
    usage = {r["generation_id"] for r in _rows(work / "generate" / "replies", ["generation_id", "reasoning_tokens"])
             if r["reasoning_tokens"] is not None}  # the stage may read these counts off the report  # fmt: skip
    cols = ["generation_id", "think", "answer", "teacher_think_tokens", "teacher_answer_tokens", "student_answer_tokens"]
    parsed = {r["generation_id"]: r for r in _rows(work / "responses" / "parsed", cols)}
    out: list[Text] = []
    for g, r in parsed.items():
        if g not in usage:
            out += [Text(teacher, r["think"] or "", r["teacher_think_tokens"]),
                    Text(teacher, r["answer"] or "", r["teacher_answer_tokens"])]  # fmt: skip
        out.append(Text(student, r["answer"] or "", r["student_answer_tokens"]))
    prompt_ids: set[str] = set()
    for table in sorted(p for p in (work / "variants").iterdir() if p.is_dir()):
        for v in _rows(table, ["prompt_id", "generation_id", "messages", "assistant_student_tokens"]):
            prompt_ids.add(v["prompt_id"])
            last = v["messages"][-1]
            turn, n = last["content"] or "", v["assistant_student_tokens"]
            reply = parsed.get(v["generation_id"]) if v["generation_id"] else None
            if reply is None:  # a community response (original); tool calls join it in the count
                out.append(Text(student, "\n".join([turn, *(last.get("tool_calls") or [])]), n))
                continue
            answer = reply["answer"] or ""
            if turn == answer:
                continue  # answer / control: the reply's answer, counted above
            head = turn[: len(turn) - len(answer)] if answer and turn.endswith(answer) else None
            if head is not None and joins_additively(student, head, answer):
                out.append(Text(student, head, n - reply["student_answer_tokens"]))
            else:
                out.append(Text(student, turn, n))
    prompts = [p for p in _rows(work / "curate" / "prompts", ["prompt_id", "messages", "tools_json"])
               if p["prompt_id"] in prompt_ids]  # fmt: skip
    return out, prompts


def summary_inputs(work: Path) -> list[tuple[str, str, str]]:
    """(think, answer, user text) of each selected reasoning reply: what the summarizer reads."""
    prompts = {p["prompt_id"]: p for p in _rows(work / "curate" / "prompts", ["prompt_id", "messages"])}
    parsed = _rows(work / "responses" / "parsed", ["prompt_id", "teacher_role", "selected", "think", "answer"])
    return [(r["think"] or "", r["answer"] or "", user_text(prompts[r["prompt_id"]]))
            for r in parsed if r["selected"] and r["teacher_role"] == "reasoning" and r["prompt_id"] in prompts]  # fmt: skip


def floor_figures(work: Path, recipe_path: Path = ROOT / "recipes" / "sample.yaml",
                  stages_cpu_s: float | None = None) -> dict[str, Any]:  # fmt: skip
    recipe = load_recipe(recipe_path)
    teacher, student = recipe.responses.teacher_tokenizer, recipe.student.tokenizer
    texts, prompts = count_texts(work, teacher, student)
    by_name: dict[str, list[str]] = {}
    for t in texts:
        by_name.setdefault(t.tokenizer, []).append(t.text)
    summ = summary_inputs(work)
    replies = sum(pq.ParquetFile(f).metadata.num_rows for f in sorted((work / "generate" / "replies").glob("*.parquet")))
    for name in by_name:
        count_tokens(name, ["warm"])  # the encoders built before the clock starts, as a stage's preload does
    t0 = time.process_time()
    n_tokens = sum(sum(count_tokens(name, ts)) for name, ts in by_name.items())
    n_tokens += sum(prompt_tokens(recipe.student, prompts))
    count_cpu = time.process_time() - t0
    cfg = recipe.variants.summarizer
    gate = SummaryGate.of(cfg)
    t0 = time.process_time()
    for think, answer, user in summ:  # each summary checked right after it is made, as the stage does
        s = extractive_summary(think, answer, gate.max_ratio, cfg.max_chars, user, cfg.max_sentences)
        assess_summary(s, think, answer, user, gate)
    summary_cpu = time.process_time() - t0
    floor = count_cpu + summary_cpu
    return {
        "floor_count_cpu_s": round(count_cpu, 2),
        "floor_summary_cpu_s": round(summary_cpu, 2),
        "floor_cpu_s": round(floor, 2),
        "floor_tokens_counted": n_tokens,
        "floor_summaries": len(summ),
        "replies": replies,
        "replies_per_cpu_s_ceiling": round(replies / floor, 1),
        "floor_share": round(floor / stages_cpu_s, 3) if stages_cpu_s else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("work", type=Path, help="a work dir where responses and variants have run")
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "sample.yaml")
    ap.add_argument("--stages-cpu-s", type=float, default=None, help="the stages' measured CPU-s, for floor_share")
    args = ap.parse_args(argv)
    out = floor_figures(args.work, args.recipe, args.stages_cpu_s)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
