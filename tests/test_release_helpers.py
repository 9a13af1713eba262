"""Builders for release tests: a small work dir of real text, as the variants stage writes it.

Real DeepSeek-R1 traces (data/sample/pcmb_traces.jsonl: `reasoning` as thinking,
`answer_text` as the answer) and real Chinese Alpaca rows (data/sample/alpaca_zh.jsonl) as
community responses. Used until the whole pipeline runs in tests; holds no tests itself.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from builder import tables
from builder.ledger import KEPT, Ledger
from builder.rows import VARIANT_FEATURES, prompt_id_for, provenance_defaults
from builder.tables import CurateSummary, GenerateSummary, TeacherAccounting, VariantsSummary
from builder.variants.registry import declare, to_build
from builder.workdir import WorkDir

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
VARIANTS = to_build(None)  # the registry's default variants
TEACHER = "deepseek-reasoner"
CONTROL = "deepseek-chat"


def _rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLE / name).read_text().splitlines() if line.strip()]


def _summary(think: str, limit: int = 240) -> str:
    first = think.strip().split("\n\n")[0]
    return first[:limit].rstrip()


def recipe_text(version: str = "0.1.0", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        name: release-fixture
        version: {version}
        description: Real R1 traces (MMLU-Pro) and Chinese Alpaca rows, for release tests.
        sources:
          - name: r1-mmlupro-pcmb
            path: {SAMPLE / 'pcmb_traces.jsonl'}
            fields: {{prompt: question, id: id, category: subject}}
            license: apache-2.0
            attribution: "luckyIITR/r1-distill (MMLU-Pro questions, MIT)"
          - name: alpaca-zh
            path: {SAMPLE / 'alpaca_zh.jsonl'}
            fields: {{prompt: instruction, response: output}}
            license: cc-by-nc-4.0
            attribution: "hiyouga/LLaMA-Factory alpaca_zh_demo (CC BY-NC 4.0)"
        curate:
          balance: {{seed: 3}}
        student: {{max_tokens: 16384}}
        quality:
          mix: {{tolerance: 0.2}}
          verification_floor: {{"*": 0.5}}
        release:
          repo_id: test-org/answer-distill-sample
        """) + extra


def build_work(root: Path, n_en: int = 60, n_zh: int = 20, shard_rows: int = 25) -> WorkDir:
    """A work dir with all five variants, a curate summary, decontamination report and ledger."""
    work = WorkDir(root)
    prov = provenance_defaults()
    prompts: list[dict[str, Any]] = []
    for r in _rows("pcmb_traces.jsonl")[:n_en]:
        opts = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(r["options"]))
        msgs = [{"role": "user", "content": f"{r['question']}\n\n{opts}"}]
        prompts.append({
            "messages": msgs, "source": "r1-mmlupro-pcmb", "license": "apache-2.0", "row_id": r["id"],
            "category": "math" if r["subject"] == "math" else "chat", "language": "en",
            "think": r["reasoning"], "answer": r["answer_text"], "original": None,
            "verify": "pass" if r["verification_status"] == "matched" else "fail",
            "think_tokens": r["reasoning_tokens"], "answer_tokens": max(1, len(r["answer_text"]) // 4),
        })
    for i, r in enumerate(_rows("alpaca_zh.jsonl")[:n_zh]):
        msgs = [{"role": "user", "content": r["instruction"] + (f"\n{r['input']}" if r.get("input") else "")}]
        prompts.append({
            "messages": msgs, "source": "alpaca-zh", "license": "cc-by-nc-4.0", "row_id": str(i),
            "category": "chat", "language": "zh", "think": f"用户问的是：{r['instruction']}。先想一想要点，再作答。",
            "answer": r["output"], "original": r["output"], "verify": "unverifiable",
            "think_tokens": 40, "answer_tokens": max(1, len(r["output"]) // 2),
        })
    for p in prompts:
        p["prompt_id"] = prompt_id_for(p["messages"], None)

    ledger = Ledger("variants")
    for variant in VARIANTS:
        cols: dict[str, list[Any]] = {k: [] for k in VARIANT_FEATURES}
        ledger.enter(variant, len(prompts))
        for p in prompts:
            text = {
                "original": p["original"],
                "answer": p["answer"],
                "think_summary": f"{_summary(p['think'])}\n\n{p['answer']}",
                "full": f"<think>\n{p['think']}\n</think>\n\n{p['answer']}",
                "control": p["answer"].split("\n\n")[0],
            }[variant]
            if text is None:
                ledger.record(variant, "dropped", source=p["source"], prompt_id=p["prompt_id"], reason="no_original_response")
                continue
            ledger.record(variant, KEPT, source=p["source"], prompt_id=p["prompt_id"])
            teacher = None if variant == "original" else (CONTROL if variant == "control" else TEACHER)
            n_tok = max(1, len(text) // 4)
            row = {
                "prompt_id": p["prompt_id"], "variant": variant,
                "messages": [*p["messages"], {"role": "assistant", "content": text}],
                "tools": None, "category": p["category"], "language": p["language"], "num_turns": 1,
                "generation_id": f"g-{variant}-{p['prompt_id'][:12]}" if teacher else None,
                "teacher_model": teacher, "endpoint_kind": "import" if teacher else None,
                "prompt_template_id": "r1_system_v1" if teacher else None,
                "prompt_template_hash": "5f1c0ffee" if teacher else None,
                "summarizer": "extractive" if variant == "think_summary" else None,
                "summary_template_id": None, "summary_template_hash": None,
                "reply_shape": "reasoning_content" if teacher else None,
                "verify_status": p["verify"] if teacher else "unverifiable",
                "verify_method": "mcq" if p["verify"] != "unverifiable" and teacher else "none",
                "verify_reason": "", "quality_codes": [], "repetition_score": 0.01 if teacher else None,
                "variant_choice": "summary" if variant == "think_summary" else None, "choice_reason": None,
                "think_language": p["language"] if teacher else None,
                "answer_language": p["language"] if teacher else None,
                "teacher_think_tokens": p["think_tokens"] if teacher else None,
                "teacher_answer_tokens": p["answer_tokens"] if teacher else None,
                "student_tokens": n_tok + len(p["messages"][0]["content"]) // 4 + 10,
                "assistant_student_tokens": n_tok,
                "source": p["source"], "source_license": p["license"], "source_row_id": p["row_id"], **prov,
            }
            for k in VARIANT_FEATURES:
                cols[k].append(row.get(k))  # columns a test row leaves out (scores) are null
        work.write_columns(tables.variant(variant), cols, shard_rows=shard_rows)
    work.write_ledger(ledger)
    # As the variants stage records it: what was built, and each variant's spec as data.
    counts = {v: sum(pq.ParquetFile(f).metadata.num_rows for f in work.shards(tables.variant(v))) for v in VARIANTS}
    work.write_summary(VariantsSummary(counts=counts, absent={}, summarizer="extractive", variants=VARIANTS,
                                       specs=declare(VARIANTS), seconds=0.0))

    # Curate's outputs the release reads: the summary (mix, decontamination) and the report.
    balance: dict[tuple[str, str], int] = {}
    for p in prompts:
        balance[(p["category"], p["source"])] = balance.get((p["category"], p["source"]), 0) + 1
    work.write_summary(CurateSummary.model_validate({
        "recipe": "release-fixture", "version": "0.1.0", "recipe_sha256": "", "rows_in": len(prompts) + 3,
        "rows_out": len(prompts),
        "steps": [{"step": "read", "in": len(prompts) + 3, "kept": len(prompts) + 1, "dropped": {"exact_dup": 2}},
                  {"step": "decontaminate", "in": len(prompts) + 1, "kept": len(prompts), "dropped": {"contaminated": 1}}],
        "balance": [{"category": c, "source": s, "before": n, "after": n} for (c, s), n in sorted(balance.items())],
        "category_quota": {}, "warnings": [], "seconds": 0.0, "step_seconds": {},
        "decontamination": {"benchmarks": ["gsm8k", "math500", "mmlu"], "skipped_absent": ["gpqa_diamond"],
                            "hits_per_benchmark": {"gsm8k": 1}},
    }))
    report = {"benchmark": ["gsm8k"], "item_id": ["test-17"], "prompt_id": ["not-a-released-prompt"],
              "source": ["community-planted"], "source_row_id": ["p1"], "rule": ["ngram"], "score": [1.0], "span": ["…"], "evidence": ["…"]}
    work.write_columns(tables.DECONTAMINATION, report)
    work.write_summary(generate_summary([("r1", "reasoning", TEACHER, 1.25), ("control", "control", CONTROL, 1.25)]))
    for stage in ("curate", "generate", "variants"):
        work.mark_complete(stage)  # as finished runs would leave them
    return work


def generate_summary(teachers: list[tuple[str, str, str, float]]) -> GenerateSummary:
    """A generate summary whose teachers (name, role, model, USD spent) are priced at $1 per 1M
    prompt tokens, so each one's store held cost × 1M prompt tokens."""
    def book(name: str, model: str, cost: float) -> TeacherAccounting:
        total = {"records": 1, "requests": 1, "ok": 1, "failed": 0, "retried": 0, "prompt_tokens": round(cost * 1e6),
                 "completion_tokens": 0, "reasoning_tokens": 0, "cost_usd": cost}
        return TeacherAccounting.model_validate({
            "teacher": name, "model": model, "price": {"input_per_1m": 1.0, "output_per_1m": 0.0}, "total": total,
            "by_run": {"run-1": total}, "by_source": {}, "by_category": {}})

    return GenerateSummary.model_validate({
        "recipe": "release-fixture", "version": "0.1.0", "recipe_sha256": "", "run_id": "run-1",
        "teachers": [{"name": n, "role": r, "kind": "import", "model": m, "items": 1, "already_stored": 0, "sent": 1,
                      "ok": 1, "failed": {}} for n, r, m, _ in teachers],
        "accounting": [book(n, m, c) for n, _, m, c in teachers],
        "steps": [], "rows": len(teachers), "warnings": [], "seconds": 0.0, "error": ""})


def write_recipe(path: Path, version: str = "0.1.0", extra: str = "") -> Path:
    path.write_text(recipe_text(version, extra))
    return path


def rewrite_variant(work: WorkDir, variant: str, edit: Any) -> None:
    """Apply edit(rows) to a variant's rows and rewrite its shards (to plant a failure)."""
    files = work.shards(tables.variant(variant))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    per_shard = max(1, pq.ParquetFile(files[0]).metadata.num_rows)  # keep the shard layout
    edit(rows)
    cols = {k: [r[k] for r in rows] for k in VARIANT_FEATURES}
    work.write_columns(tables.variant(variant), cols, shard_rows=per_shard)
    work.mark_complete("variants", (work.marker("variants") or {}).get("fingerprint"))  # the edit is its output now


_BUILT: dict[str, Path] = {}


def shared_release(base: Path) -> Path:
    """One release built per test session (the GX run is the slow part); tests copy it
    before changing anything. `base` is only used on the first call."""
    if "release" not in _BUILT:
        from builder.recipe import load_recipe
        from builder.release.stage import run_release

        work = build_work(base / "work")
        recipe = load_recipe(write_recipe(base / "recipe.yaml"))
        run_release(recipe, work, base / "releases" / "v0.1.0")
        _BUILT["release"] = base / "releases" / "v0.1.0"
        _BUILT["work"] = base / "work"
    return _BUILT["release"]


def shared_work() -> Path:
    return _BUILT["work"]
