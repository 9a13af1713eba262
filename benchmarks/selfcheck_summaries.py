"""Summary quality, faithfulness and overthinking figures on the corpus's real traces (issue 14).

Functions selfcheck.py imports: `real_traces()`, `summary_figures()`, `overthinking_figures()`,
`timing_figures()`. Each measures with the code the variants stage runs (the same scorer the
card's columns come from), on:

    r1-mmlupro-pcmb   DeepSeek `deepseek-reasoner` traces, MMLU-Pro physics/chem/math/bio (413)
    r1-bangla-mmlu    DeepSeek-R1 traces on Bangla-MMLU (4,846; --quick: first 1,000)
    marco-o1-cot      Marco-o1 CoT demo, English and Chinese (125; not R1: checks the Chinese path)

Targets (issue 14 item 3): no fragment sentence, no repeated sentence, filler / self-talk
sentences ≤ 1%, the thinking's final result in ≥ 95% of the summaries that have one.
`timing_figures` is benchmarks/selfcheck_cost.py's measure(): responses + variants CPU with the
checks on, off and as before issue 14, same process, and the share they add (target ≤ 30%).

    python benchmarks/selfcheck_summaries.py [--quick] [--no-timing]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder.variants.faithfulness import check_faithful  # noqa: E402
from builder.variants.overthinking import LengthStats, histogram  # noqa: E402
from builder.variants.repeats import fold  # noqa: E402
from builder.variants.summarizer import extractive_summary  # noqa: E402
from builder.variants.summary_quality import is_filler, is_fragment, score_summary, sentences  # noqa: E402
from tests.corpus import corpus_dir  # noqa: E402

CORPUS = corpus_dir()
MAX_RATIO, MAX_CHARS, MAX_SENTS = 0.35, 2000, 8  # the recipe defaults (builder/config/variants.py)


def _jsonl(rel: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    path = CORPUS / rel
    if not path.is_file():
        sys.exit(f"benchmarks/selfcheck_summaries.py: {path} is missing; put shared/corpus beside the repo")
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                return
            if line.strip():
                yield json.loads(line)


def real_traces(bangla_limit: int | None = None) -> list[dict[str, str]]:
    """{source, id, category, prompt, think, answer} for every real trace with a closed thinking."""
    out: list[dict[str, str]] = []
    for t in _jsonl("r1-mmlupro-pcmb-traces/pcmb_traces.jsonl"):
        opts = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(t["options"]))
        out.append({"source": "r1-mmlupro-pcmb", "id": t["id"], "category": t.get("subject") or "mcq",
                    "prompt": f"{t['question']}\n{opts}", "think": t["reasoning"], "answer": t["answer_text"]})  # fmt: skip
    for t in _jsonl("r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl", bangla_limit):
        think, closed, _ = t["reason"].replace("<think>", "", 1).partition("</think>")
        if closed:
            out.append({"source": "r1-bangla-mmlu", "id": t["id"], "category": "mcq", "prompt": t["formated_question"],
                        "think": think.strip(), "answer": t["gen_ans"]})  # fmt: skip
    with (CORPUS / "marco-o1-cot-demo" / "CoT_demo.json").open(encoding="utf-8") as fh:
        for i, r in enumerate(json.load(fh)):
            resp = r["response"]
            if "</Thought>" in resp:
                think, _, rest = resp.partition("</Thought>")
                out.append({"source": "marco-o1-cot", "id": str(i), "category": "chat", "prompt": r["instruction"],
                            "think": think.replace("<Thought>", "").strip(),
                            "answer": rest.replace("<Output>", "").replace("</Output>", "").strip()})  # fmt: skip
    return out


def summarize(t: dict[str, str]) -> str:
    return extractive_summary(t["think"], t["answer"], MAX_RATIO, MAX_CHARS, t["prompt"], MAX_SENTS)


def summary_figures(traces: list[dict[str, str]]) -> dict[str, Any]:
    """Sentence-level quality and faithfulness of the extractive summaries (the card's scorer)."""
    n_sent = frag = fill = rep = empty = 0
    with_result = covered = 0
    codes: Counter[str] = Counter()
    per_source: dict[str, Counter[str]] = {}
    scores: list[float] = []
    t0 = time.perf_counter()
    for t in traces:
        s = summarize(t)
        src = per_source.setdefault(t["source"], Counter())
        src["rows"] += 1
        if not s:
            empty += 1
            codes["summary_empty"] += 1
            continue
        sc = score_summary(s, t["think"], t["answer"])
        f = check_faithful(s, t["think"], t["answer"], t["prompt"], MAX_RATIO)
        sents = sentences(s)
        n_sent += len(sents)
        frag += sum(is_fragment(x) for x in sents)
        fill += sum(is_filler(x) for x in sents)
        rep += len(sents) - len({fold(x) for x in sents})
        if sc.final_covered is not None:
            with_result += 1
            covered += sc.final_covered
            src["with_result"] += 1
            src["covered"] += sc.final_covered
        scores.append(f.score)
        code = f.failure or sc.failure(0.0, 0.0, 0.0, True)
        if code:
            codes[code] += 1
            src[code] += 1
        src["faithful"] += f.failure is None
    secs = time.perf_counter() - t0
    n = len(traces)
    return {
        "summary_rows": n,
        "summary_sentences": n_sent,
        "summary_fragment_sentences": frag,
        "summary_repeated_sentences_exact": rep,
        "summary_filler_rate": round(fill / max(n_sent, 1), 4),
        "summary_result_coverage": round(covered / max(with_result, 1), 4),
        "summary_rows_with_result": with_result,
        "summary_empty": empty,
        "summary_pass_rate": round((n - sum(codes.values())) / max(n, 1), 4),
        "summary_codes": dict(codes.most_common()),
        "faithfulness_rate": round(sum(c["faithful"] for c in per_source.values()) / max(n, 1), 4),
        "faithfulness_score_mean": round(sum(scores) / max(len(scores), 1), 4),
        "summary_per_source": {k: dict(v) for k, v in per_source.items()},
        "summary_ms_per_row": round(1000 * secs / max(n, 1), 3),
    }


def overthinking_figures(traces: list[dict[str, str]], z: float = 2.0) -> dict[str, Any]:
    """Thinking length z-scores (log R1 tokens) within category, as the variants stage computes them."""
    from builder.tokens import count_tokens

    toks = count_tokens("deepseek-r1", [t["think"] for t in traces])
    stats = LengthStats()
    for t, n in zip(traces, toks):
        stats.add(t["category"], None, n)
    zs = [stats.z(t["category"], None, n) for t, n in zip(traces, toks)]
    flagged = sum(1 for x in zs if x is not None and x > z)
    return {
        "overthinking_threshold_z": z,
        "overthinking_rate": round(flagged / max(len(zs), 1), 4),
        "overthinking_histogram": histogram(zs),
        "think_tokens_median": sorted(toks)[len(toks) // 2] if toks else 0,
    }


def timing_figures(rows: int, repeats: int = 2) -> dict[str, Any]:
    """responses + variants CPU with the checks on, off and before issue 14 (benchmarks/selfcheck_cost.py)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import selfcheck_cost

    return selfcheck_cost.measure(rows, repeats)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 Bangla traces, 2,000 replies for the timing")
    ap.add_argument("--no-timing", action="store_true", help="skip the responses + variants timing")
    args = ap.parse_args(argv)
    traces = real_traces(1000 if args.quick else None)
    out: dict[str, Any] = {"traces": len(traces)}
    out.update(summary_figures(traces))
    out.update(overthinking_figures(traces))
    if not args.no_timing:
        out.update(timing_figures(2_000 if args.quick else 10_000))
    return out


if __name__ == "__main__":
    print(json.dumps(main(), ensure_ascii=False))
