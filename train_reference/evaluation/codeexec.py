"""HumanEval pass@k with sandboxed execution (instead of lm-eval's Hub-loaded `code_eval`)."""

from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor

from builder.sandbox import Limits, run_sandboxed

# Any info string ("```python3", "```Python 3.11"): a fence opening the pattern did not know
# was read as the close of nothing, and the text after the real close became "the code".
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|$)", re.S)


def _defines(code: str, entry_point: str) -> bool:
    return re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None


def extract_code(response: str, entry_point: str | None = None) -> str:
    """The last fenced code block that defines `entry_point` (a reply often ends with a
    usage-example block), else the last block, else the reply itself."""
    blocks = _FENCE.findall(response)
    if entry_point:
        defining = [b for b in blocks if _defines(b, entry_point)]
        if defining:
            return defining[-1]
    return blocks[-1] if blocks else response


def build_program(prompt: str, response: str, entry_point: str) -> str:
    """The candidate: a full function from the reply, or the reply as the prompt's body."""
    code = extract_code(response, entry_point)
    if _defines(code, entry_point):
        # A reply that restates the function still needs the prompt's imports and helpers.
        return prompt + "\n    pass\n\n" + code
    return prompt + code


def check_program(program: str, test: str, entry_point: str, timeout_s: float = 10.0) -> dict:
    """Run program + the benchmark's `check` in the sandbox; passed only if it reported."""
    source = f"{program}\n\n{test}\n\ncheck({entry_point})\nreport({{'passed': True}})\n"
    res = run_sandboxed(source, None, Limits(timeout_s=timeout_s))
    if res.outcome == "sandbox_error":  # could not start (fork/exec failed): once more
        res = run_sandboxed(source, None, Limits(timeout_s=timeout_s))
    if res.outcome == "sandbox_error":
        # Our failure, not the model's: scoring it 0 would lower pass@1 with no trace.
        raise RuntimeError(f"humaneval: the sandbox could not run a candidate ({' '.join(res.stderr.split())[:200]})")
    passed = res.outcome == "reported" and bool(res.report and res.report.get("passed"))
    return {"passed": passed, "outcome": res.outcome, "stderr": res.stderr[-500:]}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al., 2021) for n samples with c correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def score_samples(prompt: str, test: str, entry_point: str, responses: list[str], workers: int = 4) -> dict:
    """pass@1 over all samples of one problem, with each sample's outcome."""
    programs = [build_program(prompt, r, entry_point) for r in responses]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(programs)))) as pool:
        checks = list(pool.map(lambda p: check_program(p, test, entry_point), programs))
    c = sum(ch["passed"] for ch in checks)
    return {"pass@1": pass_at_k(len(checks), c, 1), "checks": checks}
