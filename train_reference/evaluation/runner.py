"""One evaluation run: check inputs, load the model once, score each benchmark, report.

A benchmark that fails (data missing, judge down, a crash) is recorded as
`"status": "failed: <reason>"`; the others still run and are reported.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
from pathlib import Path
from typing import Any

from train_reference.evaluation import contamination, inputs, judge, lmeval_runner, served
from train_reference.evaluation.config import (
    BenchmarkConfig,
    EvalConfig,
    EvalUserError,
    resolve_path,
)
from train_reference.evaluation.paper import COLUMNS

log = logging.getLogger(__name__)

# Inputs each judge benchmark needs in `data_files`.
JUDGE_INPUTS = {
    "mt_bench": ("questions", "references", "judge_prompts"),
    "alignbench": ("questions",),
}


def check_model_path(model: str) -> None:
    """A local path must exist; "org/name" (one slash, not path-like) is a Hub id."""
    p = Path(model).expanduser()
    if p.exists():
        if p.is_dir() and not (p / "config.json").is_file():
            raise EvalUserError(f"{model}: no config.json there; pass a model folder")
        return
    hub_like = model.count("/") == 1 and not model.startswith((".", "/", "~"))
    # "out/sft" where ./out is a folder here is a local path with a typo, not a Hub id: said
    # now, not after lm-eval has tried the Hub for it.
    if not hub_like or Path(model.split("/")[0]).is_dir():
        raise EvalUserError(f"{model}: model path does not exist")


def pick_backend(requested: str) -> str:
    has_vllm = importlib.util.find_spec("vllm") is not None
    if requested == "vllm" and not has_vllm:
        raise EvalUserError(
            "backend vllm: vllm is not installed here; use a separate venv with pip install 'answer-distill[eval,vllm]'"
        )
    if requested != "auto":
        return requested
    import torch

    return "vllm" if has_vllm and torch.cuda.is_available() else "hf"


def _missing_data(b: BenchmarkConfig) -> str | None:
    if b.kind == "judge":
        absent = [k for k in JUDGE_INPUTS[b.name] if k not in b.data_files]
        if absent:
            return f"recipe gives no data_files.{absent[0]}"
    for key, path in b.resolved_files().items():
        if not path.is_file():
            return f"data file missing: {path} (data_files.{key})"
    if b.judge_prompt_file and not resolve_path(b.judge_prompt_file).is_file():
        return f"data file missing: {resolve_path(b.judge_prompt_file)} (judge_prompt_file)"
    return None


def evaluate(
    cfg: EvalConfig,
    model: str,
    *,
    out_dir: Path | None = None,
    model_name: str | None = None,
    only: list[str] | None = None,
    limit: int | None = None,
    manifest: str | None = None,
    base_url: str | None = None,
    concurrency: int = 8,
) -> dict[str, Any]:
    """Run the recipe on `model`; returns the report (also written under out_dir). With
    `base_url`, `model` is the name a running OpenAI-compatible server serves (served.py)."""
    from train_reference.evaluation.report import write_report

    benches = cfg.benchmarks
    if only:
        known = {b.name for b in benches}
        for name in only:
            if name not in known:
                raise EvalUserError(f"benchmark {name!r} is not in this recipe; it has: {', '.join(sorted(known))}")
        benches = [b for b in benches if b.name in only]
    if limit is not None:
        benches = [b.model_copy(update={"limit": limit}) for b in benches]
    if any(b.kind == "judge" for b in benches) and cfg.judge is None:
        raise EvalUserError("the recipe has judge benchmarks but no `judge:` section")
    man = manifest or cfg.release_manifest
    if man:
        contamination.check_manifest(resolve_path(man))
    if base_url:
        served.check_served(base_url, model)
        backend = served.BACKEND
    else:
        check_model_path(model)
        backend = pick_backend(cfg.backend)
    out_dir = out_dir or resolve_path(cfg.output_dir)
    items_dir = out_dir / "items"
    try:
        items_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission: before the run, not after
        raise EvalUserError(f"{out_dir}: cannot write results there ({exc.strerror or exc}); pass --output-dir DIR") from None

    records: dict[str, dict[str, Any]] = {}
    runnable: list[BenchmarkConfig] = []
    for b in benches:
        rec: dict[str, Any] = {"settings": lmeval_runner.settings(b, cfg, backend)}
        if b.kind == "lmeval":
            rec["task"] = b.task
        rec["data"] = {k: str(v) for k, v in b.resolved_files().items()} or "lm-eval default"
        why = _missing_data(b)
        cannot = served.skipped(b) if base_url else None
        if cannot:
            rec["status"] = cannot
        elif why:
            rec["status"] = ("skipped: " if b.optional else "failed: ") + why
        else:
            runnable.append(b)
        records[b.name] = rec

    for b in runnable:
        inputs.check(b)
    judged = [b for b in runnable if b.kind == "judge"]
    if judged:
        assert cfg.judge is not None
        try:
            judge.check_reachable(cfg.judge)
        except judge.JudgeUnreachable as exc:
            for b in judged:
                records[b.name]["status"] = f"failed: {exc}"
            runnable = [b for b in runnable if b.kind != "judge"]
    if any(b.name == "ifeval" for b in runnable):
        _warn_if_no_punkt()
    tm = None
    lm_benches = [b for b in runnable if b.kind == "lmeval"]
    if lm_benches:
        tm = lmeval_runner.task_manager(cfg.include_default_tasks)
        lmeval_runner.check_tasks(tm, lm_benches)

    lm = None
    if runnable:
        try:
            if base_url:
                lm = served.load_served_lm(base_url, model, cfg, concurrency)
            else:
                lm = lmeval_runner.load_lm(backend, model, cfg, runnable)
        except EvalUserError:
            raise
        except Exception as exc:  # a model that will not load is a user-facing input problem
            raise EvalUserError(f"{model}: could not load model ({_one_line(exc)})") from None

    for b in runnable:
        log.info("evaluating %s", b.name)
        try:
            if b.kind == "lmeval":
                result = lmeval_runner.run_benchmark(lm, tm, b, cfg, backend, items_dir)
            elif b.name == "mt_bench":
                result = judge.run_mt_bench(lm, b, cfg, items_dir / f"{b.name}.jsonl")
            else:
                result = judge.run_alignbench(lm, b, cfg, items_dir / f"{b.name}.jsonl")
            records[b.name].update(result, status="ok")
        except judge.JudgeUnreachable as exc:
            records[b.name]["status"] = f"failed: {exc}"
            records[b.name]["items_file"] = str(items_dir / f"{b.name}.jsonl")
        except Exception as exc:  # keep the other benchmarks' results
            log.debug("benchmark %s failed", b.name, exc_info=True)
            records[b.name]["status"] = f"failed: {_one_line(exc)}"

    aliases = {b.name: b.decontam_aliases for b in benches}
    cov, source = contamination.coverage(resolve_path(man) if man else None, aliases)
    for name, state in cov.items():
        records[name]["decontamination"] = state

    order = [c for c, _ in COLUMNS]
    used = cfg.judge if any(b.kind == "judge" for b in benches) else None  # recorded only when judge benchmarks are in the run
    report: dict[str, Any] = {
        "model": model,
        "model_name": model_name or Path(model).name,
        "base_url": served.api_root(base_url) if base_url else None,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "backend": backend,
        "apply_chat_template": cfg.apply_chat_template,
        "max_new_tokens": cfg.max_new_tokens,
        "lm_eval_version": lmeval_runner._lm_eval_version(),
        "seed": cfg.seed,  # lm-eval's python/numpy/torch/few-shot seeds and vLLM's sampling seed
        "judge": {"model": used.model, "base_url": used.base_url} if used else None,
        "judge_decoding": {"temperature": used.temperature, "max_tokens": used.max_tokens} if used else None,
        "decontamination_source": source,
        # Said in the report, not only per row: these scores may be inflated by training on them.
        "not_decontaminated": [k for k in order if k in cov and not cov[k].startswith(("covered", "unknown"))],
        "benchmarks": {k: records[k] for k in order if k in records},
    }
    write_report(report, out_dir)
    return report


def _warn_if_no_punkt() -> None:
    """lm-eval's IFEval checker splits words and sentences with NLTK's punkt_tab and tries to
    download it at import: on an offline machine it must have been installed at setup."""
    try:
        import nltk

        nltk.data.find("tokenizers/punkt_tab")
    except (ImportError, LookupError):
        log.warning(
            "ifeval: NLTK data punkt_tab is not installed; items with word/sentence-count "
            "instructions will fail offline (install at setup: python -m nltk.downloader punkt_tab)"
        )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text[:300]
