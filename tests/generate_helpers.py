"""Shared helpers for the generate tests: a work dir with curated prompts, a recipe file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from builder import tables
from builder.rows import PROMPT_FEATURES, prompt_id_for, provenance_defaults
from builder.workdir import WorkDir

REPO = Path(__file__).resolve().parents[1]
PROMPTS_DIR = REPO / "recipes" / "prompts"


def write_prompts(work: Path, prompts: list[dict[str, Any]]) -> list[str]:
    """Curated prompts as the curate stage would leave them; each dict: text or messages, category…"""
    cols: dict[str, list[Any]] = {k: [] for k in PROMPT_FEATURES}
    prov = provenance_defaults()
    for i, p in enumerate(prompts):
        msgs = p.get("messages") or [{"role": "user", "content": p["text"]}]
        cols["prompt_id"].append(prompt_id_for(msgs, None))
        cols["messages"].append(msgs)
        cols["tools_json"].append(p.get("tools_json"))
        cols["category"].append(p.get("category", "chat"))
        cols["language"].append("en")
        cols["num_turns"].append(sum(m["role"] == "user" for m in msgs))
        for k in ("original_response", "original_tool_calls", "reference_answer", "tests_json"):
            cols[k].append(None)
        cols["constraints_json"].append(p.get("constraints_json", "[]"))
        cols["verifier"].append("none")
        cols["source"].append(p.get("source", "demo"))
        cols["source_license"].append("mit")
        cols["source_row_id"].append(str(p.get("id", i)))
        cols["schema_version"].append(prov["schema_version"])
        cols["toolkit_version"].append(prov["toolkit_version"])
    WorkDir(work).write_columns(tables.PROMPTS, cols)
    WorkDir(work).mark_complete("curate")  # as a finished curate run would leave it
    return cols["prompt_id"]


def write_recipe(folder: Path, generate: dict[str, Any] | None, sources: list[dict[str, Any]] | None = None,
                 executor: dict[str, Any] | None = None) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    src_file = folder / "demo.jsonl"
    if not src_file.exists():
        src_file.write_text('{"q": "hello"}\n')
    recipe: dict[str, Any] = {
        "name": "generate-test",
        "version": "0.1.0",
        "sources": sources or [{"name": "demo", "path": str(src_file), "fields": {"prompt": "q"}}],
        "executor": executor or {"kind": "local", "tasks": 1, "workers": 1},
    }
    if generate is not None:
        recipe["generate"] = {"prompts_dir": str(PROMPTS_DIR), **generate}
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))
    return path


CLIENT = {"name": "openai"}  # the transport openai_teacher() uses; tests parametrize it


def openai_teacher(base_url: str, **over: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "client": CLIENT["name"],
        "name": "r1",
        "role": "reasoning",
        "kind": "openai",
        "model": "deepseek-reasoner",
        "endpoints": [{"base_url": base_url}],
        "sampling": {"max_tokens": 4096},
        "limits": {"concurrency": 8, "backoff_base_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 20},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(t.get(k), dict):
            t[k] = {**t[k], **v}
        else:
            t[k] = v
    return t


def import_run(tmp: Path, rows: list[dict[str, Any]], imp: dict[str, Any], prompt_field: str = "problem",
               samples: int = 1) -> list[dict[str, Any]]:  # fmt: skip
    """Curate `rows` (one math source) and import replies for them with import spec `imp`;
    the exported reply rows."""
    import json

    import pyarrow.parquet as pq

    from builder.curate.stage import run_curate
    from builder.generate.stage import run_generate
    from builder.recipe import load_recipe

    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = {"name": "src", "path": str(data), "fields": {"prompt": prompt_field, "id": "id"}, "category": "math"}
    teacher = {"name": "r1", "kind": "import", "model": "deepseek-ai/DeepSeek-R1", "samples": samples,
               "imports": [{"source": "src", **imp}]}  # fmt: skip
    recipe = load_recipe(write_recipe(tmp, {"teachers": [teacher]}, sources=[src]))
    recipe.curate.near_dedupe.enabled = False
    recipe.curate.decontaminate.enabled = False
    work = WorkDir(tmp / "w")
    run_curate(recipe, work)
    run_generate(recipe, work)
    return [r for f in work.shards(tables.REPLIES) for r in pq.read_table(f).to_pylist()]
