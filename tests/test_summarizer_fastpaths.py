"""The summarizer's fast paths change no output: `_clean` (each pattern's necessary condition tested
first) equals the plain sequence of substitutions on every sentence of real R1 / Marco-o1 traces,
on edge strings aimed at the pre-checks (case folding outside ASCII, Unicode digits, markup, CJK
markers) and on fuzz; the answer's results come from their own cache and equal the plain scan."""

from __future__ import annotations

import json
import random

from builder.variants import summarizer as sm
from builder.variants.summary_quality import IDENT, _results_in_order, answer_results, is_cjk, sentences
from tests.test_tokens import CORPUS, _jsonl, needs_corpus


def _clean_plain(s: str) -> tuple[str, bool]:
    """`_clean` without its pre-checks (the code before them)."""
    s = sm._MARKUP.sub("", s).strip()
    s = sm._LEAD_ZH.sub("", sm._LEAD.sub("", s)).strip()
    s = sm._HEDGE.sub(lambda m: f"{m.group(1)} is", s)
    if sm._BARE_ANSWER.match(s) and not s.lower().startswith("the "):
        s = "The " + s[0].lower() + s[1:]
    if s and s[0].islower() and not IDENT.match(s):
        s = s[0].upper() + s[1:]
    math = bool(s) and sm._MATH.search(s) is not None
    if math and not s.endswith((".", "!", "?", "。", "！", "？", ":", "：", ",")):
        s += "。" if is_cjk(s) else "."
    return s, math


EDGES = [
    "", " ", "ſo the answer should be B", "ſo, x", "İndeed, it works.", "ıt is", "Kelvin K = 3", "٣. step one",
    "٣) step", "１. full-width digit", "**Bold** claim.", "a ** b", "- item one", "• bullet", "+ plus", "# Heading",
    "## Sub", "1. First step", "12) twelve", "So, the answer should be B", "Okay, wait. The result must be 4",
    "所以答案是 B", "因此，x = 3", "嗯，好的", "综上所述，答案为 C", "故 x=2", "x = 3", "answer is 5", "Answer is (B)",
    "THE ANSWER WOULD BE C", "the option might be D", "the choice will be\nE", "result should  be 7", "so yes the answer is 2",
    "final answer: 42", "In summary, 3 + 4 = 7", "3 × 4", "≤ 5", "\\frac{1}{2}", "$x$", "costs 5 - 3 dollars", "Ｏkay, fine",
    "Thus the value is 3", "thus, x", "and then", "but wait", "Answer ſhould be B", "the ANSWER SHOULD BE b",
    "alſo, x", "Alſo the", "oK, fine", "hmmmm, right", "In summary, yes", "in short x", "Ïn summary", "Additionally, y",
    "Furthermore, z", "final answer is 3", "so yes", "Therefore x", "the", "Theorem 2",
]


def _fuzz(n: int) -> list[str]:
    rng = random.Random(14)
    pieces = ["so", "So,", "okay", "answer", "should", "be", "is", "the", "**", "-", "1.", "٣", "=", "x", "ſ", "İ", "所以",
              "嗯", " ", "\t", ",", "B", "result", "$", "\\", "3", "+", "Wait", "final answer", "in summary"]  # fmt: skip
    return ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(1, 9))) for _ in range(n)]


def _traces() -> list[str]:
    texts = [d["reason"] for d in _jsonl("r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl")[::10]]
    texts += [d["reasoning"] for d in _jsonl("r1-mmlupro-pcmb-traces/pcmb_traces.jsonl")[::3]]
    texts += [d["response"] for d in json.loads((CORPUS / "marco-o1-cot-demo/CoT_demo.json").read_text("utf-8"))]
    return texts


@needs_corpus
def test_clean_equals_the_plain_substitutions() -> None:
    sents = [s for t in _traces() for s in sentences(t)]
    assert len(sents) > 5_000
    for s in [*sents, *EDGES, *_fuzz(3_000)]:
        assert sm._clean(s) == _clean_plain(s), s


@needs_corpus
def test_answer_results_equal_the_plain_scan() -> None:
    answers = [d["answer_text"] for d in _jsonl("r1-mmlupro-pcmb-traces/pcmb_traces.jsonl")]
    answers += [d["gen_ans"] for d in _jsonl("r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl")[::10]]
    assert sum(bool(answer_results(a)) for a in answers) > 20
    for a in answers:
        assert answer_results(a) == _results_in_order.__wrapped__(a) == _results_in_order(a)
