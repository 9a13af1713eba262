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
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

# Run as a script, sys.path[0] is train_reference/: make the repository importable.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from train_reference.evaluation.config import EvalUserError, load_config  # noqa: E402


def count(flag: str) -> Callable[[str], int]:
    """argparse type of a count flag: a whole number of at least 1. The recipe is updated with
    model_copy, which does not validate: --limit -1 would silently drop each judge benchmark's
    last item, --max-new-tokens 0 was ignored."""

    def parse(text: str) -> int:
        value = int(text) if re.fullmatch(r"\s*[+-]?\d+\s*", text) else 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} {text}: must be a whole number of at least 1")
        return value

    return parse


class Parser(argparse.ArgumentParser):
    """argparse's errors as the one line every other error of this script is (exit 2)."""

    def error(self, message: str) -> NoReturn:
        # A count's message names its flag itself: not "argument --limit: --limit 0: ...".
        message = re.sub(r"^argument (\S+): (?=\1 )", "", message)
        self.exit(2, f"evaluate: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="evaluation recipe (YAML)")
    ap.add_argument("--model", required=True, help="model folder (or Hub id); with --base-url, the served model's name")
    ap.add_argument("--base-url", help="evaluate a served model: its OpenAI-compatible API root, e.g. http://host:8000/v1")
    ap.add_argument("--api-key-env", help="env var holding the server's key (default: OPENAI_API_KEY, if set)")
    ap.add_argument("--concurrency", type=count("--concurrency"), default=8, help="requests in flight to the served model")
    ap.add_argument("--model-name", help="name in the table (default: the folder's name)")
    ap.add_argument("--output-dir", help="where results go (default: the recipe's output_dir)")
    ap.add_argument("--benchmarks", help="comma-separated subset of the recipe's benchmarks")
    ap.add_argument("--limit", type=count("--limit"), help="first N items of each benchmark (smoke runs)")
    ap.add_argument("--max-new-tokens", type=count("--max-new-tokens"), help="override the recipe's generation cap")
    ap.add_argument("--manifest", help="the training release's manifest.json")
    ap.add_argument("--backend", choices=["auto", "hf", "vllm"], help="override the recipe")
    ap.add_argument("-v", "--verbose", action="store_true")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad flag (2, its line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    try:
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
