"""Score a model on the paper's seven benchmarks and print a Table 1-style comparison.

    python train_reference/evaluate.py --config recipes/eval/paper.yaml --model PATH
    python train_reference/evaluate.py --config recipes/eval/paper.yaml \
        --base-url http://gpu-node:8000/v1 --model served-name     # a running vLLM / OpenAI-compatible server

Writes OUT/results.json, OUT/table.md and OUT/items/<benchmark>.jsonl. Exit codes:
0 all benchmarks ran (or were skipped as optional), 1 some failed (the rest are still
reported), 2 bad input (one line on stderr, nothing run).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# Run as a script, sys.path[0] is train_reference/: make the repository importable.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from train_reference.evaluation.config import EvalUserError, load_config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="evaluation recipe (YAML)")
    ap.add_argument("--model", required=True, help="model folder (or Hub id); with --base-url, the served model's name")
    ap.add_argument("--base-url", help="evaluate a served model: its OpenAI-compatible API root, e.g. http://host:8000/v1")
    ap.add_argument("--api-key-env", help="env var holding the server's key (default: OPENAI_API_KEY, if set)")
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight to the served model")
    ap.add_argument("--model-name", help="name in the table (default: the folder's name)")
    ap.add_argument("--output-dir", help="where results go (default: the recipe's output_dir)")
    ap.add_argument("--benchmarks", help="comma-separated subset of the recipe's benchmarks")
    ap.add_argument("--limit", type=int, help="first N items of each benchmark (smoke runs)")
    ap.add_argument("--max-new-tokens", type=int, help="override the recipe's generation cap")
    ap.add_argument("--manifest", help="the training release's manifest.json")
    ap.add_argument("--backend", choices=["auto", "hf", "vllm"], help="override the recipe")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    try:
        # model_copy below does not validate: a 0 or negative count must stop here (--limit -1
        # would silently drop each judge benchmark's last item; --max-new-tokens 0 was ignored).
        for flag in ("limit", "max_new_tokens", "concurrency"):
            value = getattr(args, flag)
            if value is not None and value < 1:
                raise EvalUserError(f"--{flag.replace('_', '-')} {value}: must be a whole number of at least 1")
        cfg = load_config(args.config)
        if args.api_key_env:  # lm-eval's chat backend reads $OPENAI_API_KEY; the value is never printed
            if not os.environ.get(args.api_key_env):
                raise EvalUserError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
            os.environ["OPENAI_API_KEY"] = os.environ[args.api_key_env]
        if args.base_url and args.backend:
            raise EvalUserError("--backend picks a local backend; a served model (--base-url) needs none")
        if args.backend:
            cfg = cfg.model_copy(update={"backend": args.backend})
        if args.max_new_tokens is not None:
            cfg = cfg.model_copy(update={"max_new_tokens": args.max_new_tokens})
        from train_reference.evaluation.runner import evaluate

        report = evaluate(
            cfg,
            args.model,
            out_dir=Path(args.output_dir) if args.output_dir else None,
            model_name=args.model_name,
            only=[s.strip() for s in args.benchmarks.split(",")] if args.benchmarks else None,
            limit=args.limit,
            manifest=args.manifest,
            base_url=args.base_url,
            concurrency=args.concurrency,
        )
    except EvalUserError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evaluate: interrupted", file=sys.stderr)
        return 130

    from train_reference.evaluation.report import render_markdown

    print(render_markdown(report))
    failed = {k: r["status"] for k, r in report["benchmarks"].items() if r["status"].startswith("failed")}
    for name, status in failed.items():
        print(f"evaluate: {name}: {status}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
