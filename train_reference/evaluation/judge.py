"""LLM-judged benchmarks: MT-Bench (FastChat's single-answer grading) and AlignBench.

The judge is any OpenAI-compatible endpoint named in the recipe (the paper used GPT-4).
Every score is stored with the judge's name and the sha256 of each prompt it was given.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train_reference.evaluation.config import BenchmarkConfig, EvalConfig, EvalUserError, JudgeConfig
from train_reference.evaluation.generation import chat_generate, contexts_cut


class JudgeUnreachable(RuntimeError):
    """The judge endpoint could not be connected to (refused, DNS, timeout)."""


_RATING = re.compile(r"Rating:\s*\[\[\s*(\d+(?:\.\d+)?)\s*\]\]", re.I)
_BRACKETS = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
# FastChat's backup pattern, a single bracket; only after "Rating:" here, so a cited "[1]" is not one.
_SINGLE = re.compile(r"Rating:\s*\[\s*(\d+(?:\.\d+)?)\s*\](?!\])", re.I)


def parse_rating(text: str | None) -> float | None:
    """The judge's 1-10 rating: the last "Rating: [[x]]", else the last "[[x]]", else the
    last "Rating: [x]" (FastChat scores that form too; dropping it left the turn unrated)."""
    if not text:
        return None
    hits = _RATING.findall(text) or _BRACKETS.findall(text) or _SINGLE.findall(text)
    if not hits:
        return None
    value = float(hits[-1])
    return value if 1.0 <= value <= 10.0 else None


def prompt_hash(system: str, template: str) -> str:
    return hashlib.sha256(f"{system}\n\x00\n{template}".encode()).hexdigest()


@dataclass
class Verdict:
    rating: float | None
    text: str | None
    error: str | None = None


class Judge:
    """An AsyncOpenAI client with bounded concurrency; connection failures are fatal."""

    def __init__(self, cfg: JudgeConfig) -> None:
        from openai import AsyncOpenAI

        self.cfg = cfg
        self._key = os.environ.get(cfg.api_key_env) or "EMPTY"  # local servers need none
        self.client = AsyncOpenAI(
            base_url=cfg.base_url,
            api_key=self._key,
            timeout=cfg.timeout_s,
            max_retries=cfg.max_retries,
        )
        self.sem = asyncio.Semaphore(cfg.max_concurrency)

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key != "EMPTY" else text

    async def rate(self, system: str, user: str) -> Verdict:
        import openai

        async with self.sem:
            try:
                resp = await self.client.chat.completions.create(
                    model=self.cfg.model,
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": user},
                    ],
                    temperature=self.cfg.temperature,
                    max_tokens=self.cfg.max_tokens,
                )
            except openai.APIConnectionError as exc:  # includes timeouts
                raise JudgeUnreachable(f"judge unreachable ({self.cfg.base_url})") from exc
            except openai.APIStatusError as exc:
                return Verdict(None, None, self._redact(f"HTTP {exc.status_code}: {exc.message}"))
        text = resp.choices[0].message.content if resp.choices else None
        rating = parse_rating(text)
        return Verdict(rating, text, None if rating is not None else "no rating in reply")

    async def rate_all(self, prompts: list[tuple[str, str]]) -> list[Verdict]:
        """All ratings; the first call goes alone so a dead judge fails fast."""
        if not prompts:
            return []
        first = await self.rate(*prompts[0])
        rest = await asyncio.gather(*(self.rate(s, u) for s, u in prompts[1:]))
        return [first, *rest]

    async def close(self) -> None:
        await self.client.close()


def check_reachable(cfg: JudgeConfig) -> None:
    """Raise JudgeUnreachable unless the endpoint answers at all (any HTTP status will do:
    some servers do not list models). Checked before hours of generation, not after."""

    async def main() -> None:
        import openai

        judge = Judge(cfg.model_copy(update={"max_retries": 0}))
        try:
            await judge.client.models.list()
        except openai.APIConnectionError as exc:
            raise JudgeUnreachable(f"judge unreachable ({cfg.base_url})") from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            # Else every rating would come back 401 after hours of generation, all unrated.
            state = "is set" if os.environ.get(cfg.api_key_env) else "is not set"
            raise EvalUserError(f"judge {cfg.base_url}: refused the key (HTTP {exc.status_code}); "
                                f"${cfg.api_key_env} {state}: set it to the judge's key") from None  # fmt: skip
        except openai.APIStatusError:
            pass
        finally:
            await judge.close()

    asyncio.run(main())


def run_judged(prompts: list[tuple[str, str]], cfg: JudgeConfig) -> list[Verdict]:
    async def main() -> list[Verdict]:
        judge = Judge(cfg)
        try:
            return await judge.rate_all(prompts)
        finally:
            await judge.close()

    return asyncio.run(main())


def _no_rating(verdicts: list[Verdict]) -> str:
    first = next((v.error for v in verdicts if v.error), "no reply")
    return f"judge gave no rating ({first})"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise ValueError(f"{path} line {n}: not valid JSON") from None
    return rows


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


# --- MT-Bench -----------------------------------------------------------------------------

# FastChat grades these categories against GPT-4 reference answers.
NEED_REF = {"math", "reasoning", "coding"}


def mt_bench_judge_prompts(
    questions: list[dict[str, Any]],
    first: list[str],
    second: list[str],
    refs: dict[int, list[str]],
    judge_prompts: dict[str, dict[str, Any]],
) -> tuple[list[tuple[str, str]], list[tuple[int, int, str]], dict[str, str]]:
    """(system, user) judge prompts for each question's two turns, what each one is
    (question index, turn, prompt name), and the sha256 of every prompt used."""
    prompts: list[tuple[str, str]] = []
    used: dict[str, str] = {}
    meta: list[tuple[int, int, str]] = []  # (question index, turn, prompt name)
    for i, q in enumerate(questions):
        ref = refs.get(q["question_id"]) if q["category"] in NEED_REF else None
        math = "math-" if ref else ""
        for turn in (1, 2):
            name = f"single-{math}v1" + ("-multi-turn" if turn == 2 else "")
            jp = judge_prompts[name]
            fields = {
                "question": q["turns"][0], "answer": first[i],
                "question_1": q["turns"][0], "answer_1": first[i],
                "question_2": q["turns"][1], "answer_2": second[i],
                "ref_answer_1": ref[0] if ref else "", "ref_answer_2": ref[1] if ref else "",
            }  # fmt: skip
            prompts.append((jp["system_prompt"], jp["prompt_template"].format(**fields)))
            used[name] = prompt_hash(jp["system_prompt"], jp["prompt_template"])
            meta.append((i, turn, name))

    return prompts, meta, used


def run_mt_bench(lm: Any, b: BenchmarkConfig, cfg: EvalConfig, items_file: Path) -> dict[str, Any]:
    """Two-turn generations, then single-answer 1-10 grading of each turn (FastChat's
    single-v1 / single-math-v1 prompts and their multi-turn forms); the score is the mean
    over all rated turns, as FastChat's show_result reports it."""
    assert cfg.judge is not None
    files = b.resolved_files()
    questions = _read_jsonl(files["questions"])[: b.limit]
    refs = {r["question_id"]: r["choices"][0]["turns"] for r in _read_jsonl(files["references"])}
    judge_prompts = {p["name"]: p for p in _read_jsonl(files["judge_prompts"])}
    max_new = b.max_new_tokens or cfg.max_new_tokens
    t0 = time.monotonic()

    convs = [[{"role": "user", "content": q["turns"][0]}] for q in questions]
    first = chat_generate(lm, convs, max_new, b.temperature, b.top_p)
    convs2 = [
        [*c, {"role": "assistant", "content": a}, {"role": "user", "content": q["turns"][1]}]
        for c, a, q in zip(convs, first, questions, strict=True)
    ]
    second = chat_generate(lm, convs2, max_new, b.temperature, b.top_p)
    # A second turn longer than the model's window loses its start (question 1) to lm-eval.
    cut = {"turn_1": contexts_cut(lm, convs, max_new), "turn_2": contexts_cut(lm, convs2, max_new)}

    prompts, meta, used = mt_bench_judge_prompts(questions, first, second, refs, judge_prompts)

    verdicts: list[Verdict] | None = None
    try:
        verdicts = run_judged(prompts, cfg.judge)
    finally:
        # Generations are kept even when judging fails, for a later re-judge or inspection.
        _write_mt_items(items_file, questions, first, second, meta, verdicts)
    ratings: dict[int, list[float]] = {1: [], 2: []}
    by_cat: dict[str, list[float]] = {}
    for (i, turn, _), v in zip(meta, verdicts, strict=True):
        if v.rating is not None:
            ratings[turn].append(v.rating)
            by_cat.setdefault(questions[i]["category"], []).append(v.rating)
    all_r = ratings[1] + ratings[2]
    if not all_r:
        raise RuntimeError(_no_rating(verdicts))
    return {
        "score": _mean(all_r),
        "metric": "mean single-answer rating (1-10) over both turns",
        "turn_scores": {f"turn_{t}": _mean(r) for t, r in ratings.items()},
        "category_scores": {c: _mean(r) for c, r in sorted(by_cat.items())},
        "unrated": len(verdicts) - len(all_r),
        "contexts_cut": cut,  # prompts cut from the left to fit the model's window (None: served)
        "judge": {"model": cfg.judge.model, "base_url": cfg.judge.base_url},
        "judge_prompt_sha256": used,
        "items_file": str(items_file),
        "n_items": len(questions),
        "seconds": round(time.monotonic() - t0, 2),
    }


def _write_mt_items(
    path: Path,
    questions: list[dict],
    first: list[str],
    second: list[str],
    meta: list[tuple[int, int, str]],
    verdicts: list[Verdict] | None,
) -> None:
    judged: dict[tuple[int, int], dict[str, Any]] = {}
    if verdicts is not None:
        for (i, turn, name), v in zip(meta, verdicts, strict=True):
            judged[(i, turn)] = {
                "prompt": name, "rating": v.rating, "judgment": v.text, "error": v.error,
            }  # fmt: skip
    with path.open("w", encoding="utf-8") as f:
        for i, q in enumerate(questions):
            rec = {
                "question_id": q["question_id"],
                "category": q["category"],
                "turns": q["turns"],
                "answers": [first[i], second[i]],
                "judgments": [judged.get((i, 1)), judged.get((i, 2))],
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


# --- AlignBench ---------------------------------------------------------------------------

# AlignBench's categories and the dimensions its paper grades each kind on. Its official
# judge prompt carries no license, so the prompt below is our own; a recipe may point
# `judge_prompt_file` at a local copy of the official one ({"system", "template"} JSON).
REASONING = {"数学计算", "逻辑推理"}
_DIMENSIONS = {
    "fact": ["factual correctness (事实正确性)", "meeting the user's needs (满足用户需求)",
             "clarity (清晰度)", "completeness (完备性)"],
    "reasoning": ["factual correctness (事实正确性)", "meeting the user's needs (满足用户需求)",
                  "logical coherence (逻辑连贯性)", "completeness (完备性)"],
    "creative": ["factual correctness (事实正确性)", "meeting the user's needs (满足用户需求)",
                 "logical coherence (逻辑连贯性)", "creativity (创造性)", "richness (丰富度)"],
}  # fmt: skip
_KIND = {"数学计算": "reasoning", "逻辑推理": "reasoning", "文本写作": "creative", "角色扮演": "creative"}

ALIGNBENCH_SYSTEM = (
    "You grade answers written by an AI assistant to Chinese-language user requests. Compare "
    "the answer with the reference answer, which is trustworthy, and judge it on each listed "
    "dimension, explaining briefly. Be strict about mistakes: an answer with a wrong "
    "conclusion cannot score above 4, however fluent. Length alone earns nothing. Finish with "
    'one overall score from 1 to 10 on the last line, written exactly as "Rating: [[score]]".'
)
ALIGNBENCH_TEMPLATE = (
    "Category: {category} / {subcategory}\n"
    "Dimensions to judge: {dimensions}\n\n"
    "[User request]\n{question}\n\n"
    "[Reference answer]\n{reference}\n\n"
    "[AI assistant's answer]\n{answer}\n"
)


def _alignbench_prompt(b: BenchmarkConfig) -> tuple[str, str]:
    if not b.judge_prompt_file:
        return ALIGNBENCH_SYSTEM, ALIGNBENCH_TEMPLATE
    from train_reference.evaluation.config import resolve_path

    data = json.loads(resolve_path(b.judge_prompt_file).read_text(encoding="utf-8"))
    return data["system"], data["template"]


def alignbench_overall(by_cat: dict[str, float]) -> float | None:
    """AlignBench's headline: the mean of its reasoning average (math, logic) and its
    language average (the other six categories), each a mean of category means."""
    reasoning = [v for c, v in by_cat.items() if c in REASONING]
    language = [v for c, v in by_cat.items() if c not in REASONING]
    parts = [m for m in (_mean(reasoning), _mean(language)) if m is not None]
    return _mean(parts)


def run_alignbench(lm: Any, b: BenchmarkConfig, cfg: EvalConfig, items_file: Path) -> dict[str, Any]:
    assert cfg.judge is not None
    rows = _read_jsonl(b.resolved_files()["questions"])[: b.limit]
    system, template = _alignbench_prompt(b)
    t0 = time.monotonic()
    answers = chat_generate(
        lm,
        [[{"role": "user", "content": r["question"]}] for r in rows],
        b.max_new_tokens or cfg.max_new_tokens,
        b.temperature,
        b.top_p,
    )
    prompts = []
    for r, a in zip(rows, answers, strict=True):
        dims = _DIMENSIONS[_KIND.get(r["category"], "fact")]
        prompts.append((system, template.format(
            category=r["category"], subcategory=r.get("subcategory", ""),
            dimensions="; ".join(dims), question=r["question"],
            reference=r.get("reference") or "(none)", answer=a,
        )))  # fmt: skip
    verdicts: list[Verdict] | None = None
    try:
        verdicts = run_judged(prompts, cfg.judge)
    finally:
        with items_file.open("w", encoding="utf-8") as f:
            for k, (r, a) in enumerate(zip(rows, answers, strict=True)):
                v = verdicts[k] if verdicts else None
                rec = {
                    "question_id": r["question_id"], "category": r["category"],
                    "question": r["question"], "answer": a,
                    "rating": v.rating if v else None, "judgment": v.text if v else None,
                    "error": v.error if v else None,
                }  # fmt: skip
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    by_cat: dict[str, list[float]] = {}
    for r, v in zip(rows, verdicts, strict=True):
        if v.rating is not None:
            by_cat.setdefault(r["category"], []).append(v.rating)
    cat_means = {c: statistics.fmean(v) for c, v in sorted(by_cat.items())}
    overall = alignbench_overall(cat_means)
    if overall is None:
        raise RuntimeError(_no_rating(verdicts))
    return {
        "score": overall,
        "metric": "AlignBench overall = mean(reasoning avg, language avg) of 1-10 ratings",
        "category_scores": cat_means,
        "unrated": len(verdicts) - sum(len(v) for v in by_cat.values()),
        "judge_prompt": "official (from judge_prompt_file)" if b.judge_prompt_file else "ours",
        "judge": {"model": cfg.judge.model, "base_url": cfg.judge.base_url},
        "judge_prompt_sha256": {"alignbench": prompt_hash(system, template)},
        "items_file": str(items_file),
        "n_items": len(rows),
        "seconds": round(time.monotonic() - t0, 2),
    }
