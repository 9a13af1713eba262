"""Evaluating a model that is already served (vLLM, SGLang, TGI or any OpenAI-compatible server).

lm-eval's `local-chat-completions` backend sends each item as a chat request to
`<base_url>/chat/completions`; MT-Bench / AlignBench answers go through the same LM object
(generation.py), so the judge sees what the served model wrote. The key, when the server wants
one, is lm-eval's own rule: `$OPENAI_API_KEY` (evaluate.py's `--api-key-env` copies another
variable there). A chat server returns text, not per-token log-probabilities, so a
log-likelihood task (MMLU, scored by the likelihood of each option letter) cannot run on it:
it is recorded as skipped, with why, rather than failed.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from train_reference.evaluation.config import BenchmarkConfig, EvalConfig, EvalUserError

BACKEND = "openai-chat"
# Benchmarks scored by log-likelihood (lmeval_runner.settings says "log-likelihood" for them).
LOGLIKELIHOOD = frozenset({"mmlu"})
SKIP_LOGLIKELIHOOD = (
    "skipped: log-likelihood task; an OpenAI-compatible chat server returns text, not per-token "
    "log-probabilities (score it with --model PATH on the hf or vllm backend)"
)


def api_root(base_url: str) -> str:
    """`http://host:8000/v1` from what users paste: with or without `/chat/completions`, a slash."""
    root = base_url.strip().rstrip("/")
    return root.removesuffix("/chat/completions")


def skipped(b: BenchmarkConfig) -> str | None:
    """Why a benchmark cannot run against a chat server (None when it can)."""
    return SKIP_LOGLIKELIHOOD if b.name in LOGLIKELIHOOD else None


def check_served(base_url: str, model: str, timeout_s: float = 10.0) -> None:
    """Before any item is sent: the server answers `GET /models` and lists `model`. One line
    (EvalUserError) for an unreachable server, a refused key or a model it does not serve; a
    server that does not list models at all (404) is let through."""
    root = api_root(base_url)
    req = urllib.request.Request(f"{root}/models")
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise EvalUserError(f"{root}: the server refused the key (HTTP {exc.code}); set OPENAI_API_KEY "
                                "or pass --api-key-env NAME") from None  # fmt: skip
        return  # some servers do not list models; the first request will say more
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EvalUserError(f"{root}: server unreachable ({reason}); start it or fix --base-url") from None
    names = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)] if isinstance(body, dict) else []
    if names and model not in names:
        raise EvalUserError(f"{root}: model {model!r} is not served there; it serves: {', '.join(map(str, names))}")


def load_served_lm(base_url: str, model: str, cfg: EvalConfig, concurrency: int) -> Any:
    """lm-eval's chat-completions LM for the served model; decoding comes per request from the
    benchmark's gen_kwargs (lmeval_runner._gen_kwargs), as with the local backends."""
    from lm_eval.api.registry import get_model

    if not cfg.apply_chat_template:
        raise EvalUserError("a served chat model needs apply_chat_template: true in the evaluation recipe")
    args: dict[str, Any] = {
        "model": model,
        "base_url": f"{api_root(base_url)}/chat/completions",
        "tokenizer_backend": None,  # the server applies its own chat template; nothing to tokenize here
        "tokenized_requests": False,
        "num_concurrent": concurrency,
        "max_gen_toks": cfg.max_new_tokens,
        "max_retries": 3,
        "seed": cfg.seed,
    }
    return get_model("local-chat-completions").create_from_arg_obj(args, {"batch_size": 1})
