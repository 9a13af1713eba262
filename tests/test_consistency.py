"""Think–answer consistency (builder/responses/consistency.py): per-row verdicts.

Work in progress (issue 14 item 5): the module is not wired into the responses stage yet; the
hand-checked fixture of 30 cases per verdict is not written (see the helper report)."""

from __future__ import annotations

from builder.responses.consistency import MATCH, MISMATCH, NOT_CHECKABLE, check, normalize_text

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
