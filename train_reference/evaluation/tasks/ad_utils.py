"""Hooks named by our lm-eval task YAMLs (`!function ad_utils.NAME`)."""

from __future__ import annotations

import hashlib
import random
import re
import sys
from pathlib import Path
from typing import Any

# lm-eval imports this file by path, outside our package: make the repo importable.
_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from train_reference.evaluation.codeexec import score_samples  # noqa: E402


def keep_all(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """A filter that keeps every sample (lm-eval's default keeps only the first)."""
    return resps


def _samples(results: list[Any]) -> list[str]:
    """The per-doc responses, whether lm-eval passes [samples] or samples."""
    if results and isinstance(results[0], list):
        return [str(r) for r in results[0]]
    return [str(r) for r in results]


def humaneval_process_results(doc: dict, results: list[Any]) -> dict[str, float]:
    scored = score_samples(doc["prompt"], doc["test"], doc["entry_point"], _samples(results))
    return {"pass@1": scored["pass@1"]}


# --- GPQA ---------------------------------------------------------------------------

# "answer" in any case, the letter upper case only: "the answer is a subtle one" names no
# choice. Markdown bold may sit around the colon ("**Answer:** C") or the letter.
_LETTER_PATTERNS = [
    re.compile(r"(?i:answer)\s*(?:(?i:is)|:)?[\s:*]*\(?([ABCD])\)?\**(?![A-Za-z])"),
    re.compile(r"\\boxed\{\s*\(?([ABCD])\)?\s*\}"),
    re.compile(r"^\s*\(?([ABCD])\)?[.)]?\s*$", re.M),
]


def extract_letter(text: str) -> str | None:
    """The last stated choice, "Answer: X" or \\boxed{X}, whichever comes later (a reply that
    says "the answer is B" and then settles on \\boxed{C} chose C); else a line that is only X."""
    stated = [m for pat in _LETTER_PATTERNS[:2] for m in pat.finditer(text)]
    if stated:
        return max(stated, key=lambda m: m.start(1)).group(1).upper()
    hits = _LETTER_PATTERNS[2].findall(text)
    return hits[-1].upper() if hits else None


def _clean(text: str | None) -> str:
    return " ".join((text or "").replace(" [title]", ". ").split())


def gpqa_process_docs(dataset: Any) -> Any:
    """Hub rows -> {question with lettered options, answer letter}; the option order is a
    fixed shuffle seeded by the question, so every run and backend sees the same order."""

    def one(doc: dict) -> dict:
        correct = _clean(doc["Correct Answer"])
        options = [correct] + [_clean(doc[f"Incorrect Answer {i}"]) for i in (1, 2, 3)]
        _shuffle(options, doc["Question"])
        lines = "\n".join(f"{'ABCD'[i]}) {o}" for i, o in enumerate(options))
        return {
            "question": f"{doc['Question'].strip()}\n\n{lines}",
            "answer": "ABCD"[options.index(correct)],
        }

    return dataset.map(one)


def _shuffle(options: list[str], question: str) -> None:
    seed = int(hashlib.sha256(question.encode()).hexdigest()[:16], 16)
    random.Random(seed).shuffle(options)


# A LIMO question: stem, then "A. ..." to "D. ..." lines, then maybe one instruction line.
_LIMO = re.compile(r"^(.*?)\nA\. (.*?)\nB\. (.*?)\nC\. (.*?)\nD\. (.*?)(?:\n\n[^\n]*)?\s*$", re.S)


def gpqa_limo_process_docs(dataset: Any) -> Any:
    """LIMO rows embed the options in `question`, the correct one always first (every answer
    is "A"): a model that always says A would score 100%. The options get the Hub path's
    fixed shuffle seeded by the stem, and the answer letter follows the correct option.
    The row's own instruction line (LIMO's asks for the letter in \\boxed{}) is dropped: the
    task's prompt asks for "Answer: X", as on the Hub path; a prompt asking for both left
    the model to choose which to follow."""

    def one(doc: dict) -> dict:
        question, answer = doc["question"].strip(), str(doc["answer"]).strip().upper()
        m = _LIMO.match(question)
        if not m or answer not in ("A", "B", "C", "D"):
            return {"question": question, "answer": answer}
        options = [m.group(i).strip() for i in (2, 3, 4, 5)]
        correct = options["ABCD".index(answer)]
        _shuffle(options, m.group(1))
        lines = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(options))
        return {"question": f"{m.group(1)}\n{lines}", "answer": "ABCD"[options.index(correct)]}

    return dataset.map(one)


def gpqa_process_results(doc: dict, results: list[Any]) -> dict[str, float]:
    samples = _samples(results)
    right = [extract_letter(s) == str(doc["answer"]).strip().upper() for s in samples]
    return {"pass@1": sum(right) / len(right) if right else 0.0}


# --- IFEval (lm-eval's checker; imported lazily: it pulls in nltk and langdetect) ---------


def ifeval_process_results(doc: dict, results: list[Any]) -> dict[str, Any]:
    from lm_eval.tasks.ifeval.utils import process_results

    return process_results(doc, results)


def ifeval_agg_inst_level_acc(items: list[list[bool]]) -> float:
    from lm_eval.tasks.ifeval.utils import agg_inst_level_acc

    return agg_inst_level_acc(items)
