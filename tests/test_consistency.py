"""Think–answer consistency (builder/responses/consistency.py): per-row verdicts, and the
hand-checked real cases of tests/fixtures/consistency_cases.jsonl.

The fixture (sources and licenses in tests/fixtures/consistency_cases.SOURCE.md): 138 real
traces from the corpus, each read by hand and given a verdict (`human`) with a note where it
took judgement: 30 mismatches (13 real R1 Bangla-MMLU traces whose answer commits to another
letter than the thinking concluded, 17 real traces with the answer's letter edited), 30 that
a reader cannot check (code, open questions, a thinking whose tail states no result, a
self-contradicting answer), 78 matches (30 the checker calls match, 48 drawn from those it
calls not checkable, to measure what it misses)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from builder.responses.consistency import MATCH, MISMATCH, NOT_CHECKABLE, check, normalize_text
from tests.fixtures.adversarial_replies import CORPUS, real_triples

CASES = [
    json.loads(line) for line in (Path(__file__).parent / "fixtures" / "consistency_cases.jsonl").open(encoding="utf-8")
]

MCQ = "Pick one.\nA. red\nB. green\nC. blue\nD. none"


def test_mcq_match_and_mismatch() -> None:
    think = "Blue light scatters most. Maybe the answer is A. No. So the answer is C."
    assert check(think, "The correct answer is **C. blue**.", MCQ).verdict == MATCH
    got = check(think, "The correct answer is **B. green**.", MCQ)
    assert (got.verdict, got.think, got.answer) == (MISMATCH, "C", "B")


def test_mcq_last_commitment_wins_over_an_earlier_hedge() -> None:
    think = "Alternatively, maybe the answer is A. But I think I'll go with option D: none."
    assert check(think, "**Answer:** D", MCQ).think == "D"


def test_math_boxed_and_stated_values() -> None:
    assert check("so 12/4 = 3, the answer is 3.", "Thus \\boxed{3}", category="math").verdict == MATCH
    got = check("Therefore the answer is \\boxed{\\frac{1}{2}}", "\\boxed{0.5}", category="math")
    assert got.verdict == MATCH
    got = check("so the total is 42.", "The total is \\boxed{41}.", category="math")
    assert (got.verdict, got.think, got.answer) == (MISMATCH, "42", "41")
    # A number that is only the start of an expression is not the result.
    assert check("the result is 6 + 9i", "\\boxed{6 + 9i}", category="math").think != "6"


def test_short_answers_compare_normalized_text() -> None:
    assert check("So the answer is Paris.", "**Paris**").verdict == MATCH
    assert check("So the answer is Paris.", "Lyon").verdict == MISMATCH
    assert normalize_text("“The Tetrahedron.”") == "tetrahedron"


def test_not_checkable() -> None:
    assert check("I think about it.", "A long essay.\nWith two lines and no final result.").verdict == NOT_CHECKABLE
    assert check(None, "x").verdict == NOT_CHECKABLE
    assert check("hmm", "**Answer:** C", MCQ).verdict == NOT_CHECKABLE  # the thinking committed to nothing
    assert check("x", "y").to_json().startswith('{"verdict":')


def _verdicts() -> Counter[tuple[str, str]]:
    return Counter((c["human"], check(c["think_tail"], c["answer"], c["prompt"], c["category"]).verdict) for c in CASES)


def test_hand_checked_cases_never_contradict_the_reader() -> None:
    """Precision: on 138 hand-read real cases the checker's match / mismatch is always the
    reader's; where the reader cannot check, neither does it."""
    got = _verdicts()
    assert (
        Counter(c["human"] for c in CASES)[MISMATCH] >= 30 and Counter(c["human"] for c in CASES)[NOT_CHECKABLE] >= 30
    )
    assert got[(MATCH, MISMATCH)] == got[(MISMATCH, MATCH)] == 0, got
    assert got[(NOT_CHECKABLE, MATCH)] == got[(NOT_CHECKABLE, MISMATCH)] == 0, got


def test_hand_checked_recall() -> None:
    """Every hand-found mismatch is caught; matches it cannot read (an answer whose opening the
    data lost, a result stated in other words) stay not_checkable (measured 37 of 78)."""
    got = _verdicts()
    assert got[(MISMATCH, MISMATCH)] == 30
    assert got[(MATCH, MATCH)] >= 35


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real corpus not found at {CORPUS}")
def test_real_r1_traces_mostly_checkable_and_consistent() -> None:
    """A sample of the corpus's R1 traces (Bangla-MMLU, MMLU-Pro PCMB): most are checkable,
    and the thinking and the answer rarely disagree (benchmarks/responses.py has the full figures)."""
    triples = [t for t in real_triples() if t.source in ("r1-bangla", "r1-pcmb")]
    got = Counter(check(t.think, t.answer, t.prompt).verdict for t in random.Random(3).sample(triples, 800))
    assert got[MATCH] >= 0.9 * 800
    assert got[MISMATCH] <= 0.01 * 800


def test_skipped_patterns_hold_their_literals() -> None:
    """_think_letter skips a pattern whose literals (_NEEDS) are all absent: every match of it, on the
    hand-checked traces' tails and on fuzz built from its words, holds one of them."""
    from builder.responses import consistency as cs

    rng = random.Random(30)
    words = ["So", "so", "go", "going", "with", "on", "option", "Option", "choice", "answer", "is", "likely", "the",
             "correct", "right", "wrong", "not", "false", "odd", "one", "exception", "incorrect", "must", "be", "here",
             "That", "should", "looks", "makes", "making", "Definitely", "which", "that", "corresponds", "to", "stick",
             "settle", "A", "B", "(C)", "(option D)", "J", ".", ",", ":", "\n", "\\boxed{B}", "\\boxed{", "says", "x"]  # fmt: skip
    fuzz = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 14))) for _ in range(20_000)]
    tails = [str(c.get("think_tail") or "") for c in CASES]
    tails += ["I'll go with option B.", "Hmm. So, the answer is C.", "the answer is probably D", "choose option E",
              "The correct option is F", "the answer must be G", "Thus, option H is right", "which is option I",
              "option J is tiny, which should be the correct", "So B looks correct", "(option C) is the one",
              "the answer here is D", "making E the best", "Definitely A.", "option B is tiny. That must be the right",
              "B is correct", "C is incorrect", "the odd one is D", "\\boxed{B}"]  # fmt: skip
    hits = Counter()  # type: ignore[var-annotated]
    for text in [*tails, *fuzz]:
        for pat, needs in cs._NEEDS.items():
            if pat.search(text):
                hits[pat.pattern] += 1
                assert any(n in text for n in needs), (pat.pattern[:60], text)
    assert len(hits) == len(cs._NEEDS)  # every pattern was seen matching
