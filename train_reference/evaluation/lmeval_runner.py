"""The automatic benchmarks through lm-eval's Python API, one model load for all of them."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from train_reference.evaluation.config import BenchmarkConfig, EvalConfig, EvalUserError

TASKS_DIR = Path(__file__).resolve().parent / "tasks"

# The score each benchmark reports when the recipe names no metric ("metric,filter").
DEFAULT_METRICS = {
    "gpqa_diamond": "pass@1,all",
    "gsm8k": "exact_match,flexible-extract",
    "mmlu": "acc,none",
    "humaneval": "pass@1,all",
    "ifeval": "prompt_level_strict_acc,none",
}


def task_manager(include_defaults: bool) -> Any:
    """lm-eval's TaskManager over our task YAMLs (plus its built-in ones when asked)."""
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    return TaskManager(include_path=str(TASKS_DIR), include_defaults=include_defaults)


def check_tasks(tm: Any, benches: list[BenchmarkConfig]) -> None:
    """Fail before loading a model if a recipe names a task lm-eval does not know."""
    known = set(tm.all_tasks)
    for b in benches:
        if not b.task:
            raise EvalUserError(f"benchmark {b.name}: recipe gives no lm-eval `task`")
        if b.task not in known:
            raise EvalUserError(
                f"benchmark {b.name}: lm-eval task {b.task!r} not found "
                f"(ours are in {TASKS_DIR}; built-in tasks need include_default_tasks: true)"
            )


def load_lm(backend: str, model: str, cfg: EvalConfig, benches: list[BenchmarkConfig]) -> Any:
    """One lm-eval LM for every benchmark (HF on CPU, vLLM on GPUs); `benches` are the ones
    it will run (vLLM's context length is sized to their longest request)."""
    from lm_eval.api.registry import get_model

    args: dict[str, Any] = {"pretrained": model}
    if backend == "vllm":
        args.update(max_gen_toks=cfg.max_new_tokens, seed=cfg.seed)
        if not {"max_model_len", "max_length"} & set(cfg.vllm_args):  # a recipe's own window wins
            from train_reference.evaluation.context import vllm_max_model_len

            args["max_model_len"] = vllm_max_model_len(model, benches, cfg)
    batch_size = cfg.batch_size
    if backend != "vllm":
        import torch

        gpu = torch.cuda.is_available()
        args["device"] = "cuda" if gpu else "cpu"
        args["dtype"] = "auto" if gpu else "float32"
        if batch_size == "auto" and not gpu:
            batch_size = 1  # HF's auto batch search on CPU probes until the OOM killer stops it
    args.update(cfg.vllm_args if backend == "vllm" else cfg.hf_args)
    return get_model(backend).create_from_arg_obj(args, {"batch_size": batch_size})


def _task_spec(tm: Any, b: BenchmarkConfig) -> str | dict[str, Any]:
    """A task name, or the task's full YAML config with our overrides merged in: lm-eval
    0.4.13 treats a dict spec as a whole inline task, not as overrides of a named one."""
    over: dict[str, Any] = {}
    if b.data_files:
        over.update(
            dataset_path="json",
            dataset_name=None,
            dataset_kwargs={"data_files": {k: str(p) for k, p in b.resolved_files().items()}},
        )
    if b.name != "mmlu":  # log-likelihood tasks have no samples to repeat
        over["repeats"] = b.samples
    entry = tm.task_index.get(b.task)
    if not over or entry is None or entry.yaml_path is None:
        return b.task  # groups (mmlu) and python tasks run as registered
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(entry.yaml_path, resolve_func=True)
    for key in ("tag", "group"):
        cfg.pop(key, None)
    return {**cfg, **over, "task": b.task}


def _gen_kwargs(b: BenchmarkConfig, cfg: EvalConfig) -> dict[str, Any] | None:
    if b.name == "mmlu":
        return None
    kw: dict[str, Any] = {"max_gen_toks": b.max_new_tokens or cfg.max_new_tokens}
    if b.greedy:
        kw.update(do_sample=False, temperature=0.0)
    else:
        kw.update(do_sample=True, temperature=b.temperature, top_p=b.top_p)
    return kw


def settings(b: BenchmarkConfig, cfg: EvalConfig, backend: str) -> dict[str, Any]:
    """The decoding settings recorded beside a score."""
    # MMLU is scored by the choices' likelihoods: nothing is generated.
    decoding = "log-likelihood" if b.name == "mmlu" else ("greedy" if b.greedy else "sampling")
    return {
        "backend": backend,
        "apply_chat_template": cfg.apply_chat_template,
        "decoding": decoding,
        "temperature": b.temperature,
        "top_p": b.top_p if not b.greedy else None,
        "samples": b.samples,
        "max_new_tokens": b.max_new_tokens or cfg.max_new_tokens,
        "num_fewshot": b.num_fewshot,
        "limit": b.limit,
    }


def run_benchmark(
    lm: Any, tm: Any, b: BenchmarkConfig, cfg: EvalConfig, backend: str, items_dir: Path
) -> dict[str, Any]:
    """Evaluate one lm-eval benchmark; writes its per-item file, returns its record."""
    from lm_eval import simple_evaluate

    t0 = time.monotonic()
    out = simple_evaluate(
        model=lm,
        tasks=[_task_spec(tm, b)],
        num_fewshot=b.num_fewshot,
        limit=b.limit,
        task_manager=tm,
        apply_chat_template=cfg.apply_chat_template,
        fewshot_as_multiturn=cfg.apply_chat_template,
        gen_kwargs=_gen_kwargs(b, cfg),
        log_samples=True,
        bootstrap_iters=0,
        confirm_run_unsafe_code=True,  # HumanEval runs code, in our sandbox (codeexec.py)
        random_seed=cfg.seed,
        numpy_random_seed=cfg.seed,
        torch_random_seed=cfg.seed,
        fewshot_random_seed=cfg.seed,
    )
    if out is None:
        raise RuntimeError("lm-eval returned no results")
    metric = b.metric or DEFAULT_METRICS[b.name]
    res = out["results"]
    top = b.task if b.task in res else next(iter(res))
    if metric not in res[top]:
        have = ", ".join(k for k in res[top] if "," in k and "stderr" not in k)
        raise RuntimeError(f"metric {metric!r} not in lm-eval results (have: {have})")
    value = float(res[top][metric])
    items_file = items_dir / f"{b.name}.jsonl"
    n_items = _write_samples(out.get("samples", {}), items_file)
    return {
        "score": value * 100.0,  # Table 1 shows accuracies as percentages
        "raw_score": value,
        "metric": metric,
        "task": b.task,
        "task_versions": {k: v for k, v in out.get("versions", {}).items()},
        "prompt_templates": prompt_templates(out.get("configs", {})),
        "n_shot": {k: v for k, v in out.get("n-shot", {}).items()},
        "all_metrics": {k: v for k, v in res[top].items() if k != "alias"},
        "lm_eval_version": _lm_eval_version(),
        "items_file": str(items_file),
        "n_items": n_items,
        "seconds": round(time.monotonic() - t0, 2),
    }


# The task-config keys that decide what the model is shown and how it is decoded.
_PROMPT_KEYS = ("description", "doc_to_text", "doc_to_target", "doc_to_choice", "target_delimiter",
                "fewshot_delimiter", "fewshot_config", "num_fewshot", "repeats", "generation_kwargs")


def prompt_templates(configs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each task's prompt template and decoding as lm-eval ran it (hooks by name), so a
    results file says exactly what was asked, not only a task version."""
    out: dict[str, dict[str, Any]] = {}
    for task, conf in configs.items():
        if isinstance(conf, dict):
            out[task] = {k: _plain(conf[k]) for k in _PROMPT_KEYS if conf.get(k) is not None}
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return value if isinstance(value, str | int | float | bool) else str(value)


def _write_samples(samples: dict[str, list[dict]], path: Path) -> int:
    """lm-eval's per-item log (prompt, responses, filtered answer, metrics) as JSON Lines,
    one line per (item, filter); returns the number of distinct items."""
    docs = set()
    with path.open("w", encoding="utf-8") as f:
        for task, rows in samples.items():
            for row in rows:
                f.write(json.dumps({"task": task, **row}, ensure_ascii=False, default=str) + "\n")
                docs.add((task, row.get("doc_id")))
    return len(docs)


def _lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")
