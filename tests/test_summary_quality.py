"""Summary quality and faithfulness (issue 14 items 3 and 6): the scorer, the summarizer on
adversarial thinking, and the hand-checked rows of real traces in tests/fixtures/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builder.config.variants import SummarizerConfig
from builder.variants.faithfulness import check_faithful, entities, formulas, numbers
from builder.variants.summarizer import SummaryGate, assess_summary, check_summary, extractive_summary
from builder.variants.summary_quality import final_result, is_filler, is_fragment, score_summary, sentences
from tests.fixtures.stages import SAMPLE

FIXTURES = Path(__file__).parent / "fixtures"


def _sample_rows() -> dict[tuple[str, str], dict[str, str]]:
    """(file, id) → prompt / think / answer of data/sample's real traces, as the fixtures name them."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for line in (SAMPLE / "pcmb_traces.jsonl").read_text(encoding="utf-8").splitlines():
        t = json.loads(line)
        opts = "\n".join(f"{chr(65 + k)}. {o}" for k, o in enumerate(t["options"]))
        out["pcmb_traces.jsonl", t["id"]] = {"prompt": f"{t['question']}\n{opts}", "think": t["reasoning"],
                                             "answer": t["answer_text"]}  # fmt: skip
    for line in (SAMPLE / "bangla_r1.jsonl").read_text(encoding="utf-8").splitlines():
        t = json.loads(line)
        think = t["reason"].replace("<think>", "", 1).partition("</think>")[0].strip()
        out["bangla_r1.jsonl", t["id"]] = {"prompt": t["formated_question"], "think": think, "answer": t["gen_ans"]}
    for line in (SAMPLE / "marco_cot.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        think, closed, rest = r["response"].partition("</Thought>")
        if closed:
            out["marco_cot.jsonl", r["id"]] = {
                "prompt": r["instruction"], "think": think.replace("<Thought>", "").strip(),
                "answer": rest.replace("<Output>", "").replace("</Output>", "").strip(),
            }  # fmt: skip
    return out


ROWS = _sample_rows()
HANDCHECKED: list[dict[str, Any]] = json.loads((FIXTURES / "summaries_handchecked.json").read_text())["rows"]
FAITH_CASES: list[dict[str, Any]] = json.loads((FIXTURES / "faithfulness_handchecked.json").read_text())["cases"]


# ---------- the scorer's sentence kinds ----------


@pytest.mark.parametrize(
    "sentence",
    [
        "Using the quadratic formula:", "So, the roots are:", "Options in ml: A.", "Between B and D.",
        "Not the main reason.", "The steps in ozonolysis...", "Because that would be a secondary carbon.",
        "- Dorothy: 90 分", "and then we add them.", '"Chromosomal sex in mammals has been shown.', "计算平均分。",
    ],
)  # fmt: skip
def test_fragments(sentence: str) -> None:
    assert is_fragment(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Okay, let's see.", "wait, should i use the other formula?", "Is there any other value?",
        "Hmm, maybe it is C.", "I think the answer is B.", "The user is asking about salts.",
        "That doesn't make sense because haploid=10.", "A might not be right.", "Need to think more.",
        "嗯，我需要计算平均分。", "让我再检查一遍。", "一切看起来都正确。",
    ],
)  # fmt: skip
def test_fillers(sentence: str) -> None:
    assert is_filler(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "The answer is I.", "Option (I) is correct.", "So 1 ± i√3 are the roots.", "x = 3.", "k2/k1 = 5.",
        "Mirror equation: 1/u + 1/v = 1/f.", "平均分是 252 / 3 = 84 分。", "Phosphorus is solid.",
    ],
)  # fmt: skip
def test_complete_impersonal_sentences_pass(sentence: str) -> None:
    assert not is_fragment(sentence) and not is_filler(sentence)


def test_final_result_is_the_last_of_the_answers_kind() -> None:
    assert final_result("So the answer is C. Wait, no. The answer is B.", "The answer is (B).") == "B"
    # "1.8 mm" is an intermediate value when the answer states a letter.
    assert final_result("Likely answer is 1.8 mm, which is option I. The answer is I.", "The answer is (I)") == "I"
    assert final_result("Adding gives \\boxed{12}.", "") == "12"
    assert final_result("Roses are red.", "A poem.") is None


def test_scores_count_each_defect() -> None:
    sc = score_summary("Okay, let's see. The sum is 4. The sum is 4. Using the formula:", "so the answer is 4", "")
    assert sc.sentences == 4
    # "Okay, let's see." is self-talk and, verbless, a fragment too; "Using the formula:" is cut at a colon.
    assert sc.filler_rate == pytest.approx(0.25) and sc.fragment_rate == pytest.approx(0.5)
    assert sc.repetition == pytest.approx(0.25)
    assert sc.final_covered is True
    assert score_summary("The sum is five.", "the answer is 4", "").final_covered is False


# ---------- the summarizer on thinking built to fool it ----------


def test_abandoned_paths_fillers_and_repeated_conclusions_are_dropped() -> None:
    think = (
        "Okay, let's see. The equation is x^2 - 5x + 6 = 0. Using the quadratic formula: So, the roots are: "
        "Is there any other value? Maybe I should factor. So the answer is C. Wait, no, C is x = 4. "
        "Factoring gives (x - 2)(x - 3) = 0. So the roots are 2 and 3. So the answer is B. So the answer is B. "
        "Yes, the answer should be B."
    )
    s = extractive_summary(think, "The answer is B.", 0.6, 2000)
    assert s == "The equation is x^2 - 5x + 6 = 0. Factoring gives (x - 2)(x - 3) = 0. The roots are 2 and 3. The answer is B."
    sc = score_summary(s, think, "The answer is B.")
    assert (sc.fragment_rate, sc.filler_rate, sc.repetition, sc.final_covered) == (0, 0, 0, True)


def test_chinese_thinking_gives_an_impersonal_chinese_summary() -> None:
    think = (
        "嗯，我需要计算平均分。首先，Dorothy得了90分。那么，Ivanna的得分是90 * (3/5) = 54分。然后，Tatuya的得分是"
        "54 * 2 = 108分。总分是90 + 54 + 108 = 252分。平均分是252 / 3 = 84分。让我再检查一遍。所以答案是84。"
    )
    s = extractive_summary(think, "平均分是84分。", 0.6, 2000)
    assert "我" not in s and "嗯" not in s and s.endswith("答案是84。") and "。 " not in s  # CJK sentences join without spaces
    sc = score_summary(s, think, "平均分是84分。")
    assert (sc.fragment_rate, sc.filler_rate, sc.repetition, sc.final_covered) == (0, 0, 0, True)


def test_a_result_no_kept_sentence_states_gets_a_closing_sentence() -> None:
    think = "The force is mass times acceleration, 2 * 3 = 6 newtons. Hmm, so maybe it's option C? Yeah, C."
    s = extractive_summary(think, "The answer is (C).", 0.9, 2000)
    assert s.endswith("The answer is C.") and "Hmm" not in s and "maybe" not in s


def test_the_result_comes_last_when_the_thinking_checked_it_afterwards() -> None:
    think = "The rate is 10^6 per second. The answer is G. Check: 10^6 * 86400 = 8.64e10 per day, consistent."
    s = extractive_summary(think, "The answer is (G)", 0.9, 2000)
    assert s.endswith("The answer is G.")


# ---------- the recipe's thresholds ----------


def test_thresholds_from_the_recipe_quarantine_with_codes() -> None:
    think = "Okay, let's see. The sum is 1 + 3 = 4. " * 6 + "So the answer is \\boxed{4}."
    answer, prompt = "The sum is \\boxed{4}.", "What is 1 + 3?"
    strict = SummaryGate.of(SummarizerConfig())
    assert check_summary("Hmm, I think the sum is 1 + 3 = 4.", think, answer, prompt, 0.35, strict) == "summary_filler"
    assert check_summary("The sum is: 1 + 3 = 4. Adding:", think, answer, prompt, 0.35, strict) == "summary_fragment"
    assert check_summary("The sum is 1 + 3 = 4. The sum is 1 + 3 = 4.", think, answer, prompt, 0.35, strict) == (
        "summary_repetitive"
    )
    assert check_summary("The sum is found by adding.", think, answer, prompt, 0.35, strict) == "summary_missing_result"
    lenient = SummaryGate.of(SummarizerConfig(max_filler_rate=1.0, require_final_result=False))
    assert check_summary("Hmm, I think the sum is 1 + 3 = 4.", think, answer, prompt, 0.35, lenient) is None
    failure, scores, faith = assess_summary("The sum is 1 + 3 = 4. The answer is \\boxed{4}.", think, answer, prompt, strict)
    assert failure is None and scores is not None and scores.final_covered and faith == 1.0


# ---------- faithfulness ----------


def test_atoms_are_read_from_the_summary() -> None:
    text = "Marie Curie measured 1,200 counts in Paris. Then x^2 + 1 = 10 and \\(a_1 = 3\\) hold."
    assert numbers(text) == {"1200", "2", "1", "10", "3"}
    assert {"x^2+1=10", "a_1=3"} <= formulas(text)
    assert entities(text) == {"Curie", "Paris"}  # sentence-initial "Marie" is capitalised by grammar


def test_a_summary_adds_a_number_formula_or_name_it_fails() -> None:
    think, prompt = "The mass is 2 kg and a = 3 m/s^2, so F = ma = 6 N by Newton's law.", "Find the force."
    ok = check_faithful("F = ma = 6 N by Newton's law.", think, "6 N", prompt, 0.9)
    assert ok.failure is None and ok.score == 1.0
    bad = check_faithful("F = ma = 7 N by Newton's law.", think, "6 N", prompt, 0.9)
    assert bad.failure == "summary_unfaithful_number" and "7" in bad.unsupported and bad.score < 1
    assert check_faithful("F = m/a gives the force.", think, "6 N", prompt, 0.9).failure == "summary_unfaithful_formula"
    assert check_faithful("The force follows from a law by Galileo.", think, "6 N", prompt, 0.9).failure == (
        "summary_unfaithful_entity"
    )
    # Superscripts are no digits of the number before them: "3²" holds a 3 (found on real R1 traces).
    sq = "9 is a perfect square (3²), and 95² = 9025."
    src = "Note that 9 = 3², the square of three. Also 95² = 9025 here, by long multiplication."
    assert check_faithful(sq, src, "", "", 0.9).failure is None
    # Below the recipe's min_faithfulness only: 1 of 3 atoms unsupported passes at 0.6.
    assert check_faithful("F = ma = 7 N by Newton's law.", think, "6 N", prompt, 0.9, min_score=0.6).failure is None


@pytest.mark.parametrize("case", FAITH_CASES, ids=lambda c: f"{c['id'][:10]}-{c['expect']}")
def test_handchecked_faithfulness_cases(case: dict[str, Any]) -> None:
    r = ROWS[case["file"], case["id"]]
    got = check_faithful(case["summary"], r["think"], r["answer"], r["prompt"], 0.35)
    assert got.failure == case["expect"], (case["why"], got)


def test_faithfulness_cases_cover_every_code() -> None:
    assert len(FAITH_CASES) == 30
    expected = {c["expect"] for c in FAITH_CASES}
    assert expected == {None} | {f"summary_unfaithful_{w}" for w in ("number", "formula", "entity", "answer",
                                                                    "language", "length")}  # fmt: skip


# ---------- 30 real rows read by hand ----------


def test_handchecked_rows_are_the_summaries_that_were_read() -> None:
    """The summarizer's output on the 30 reviewed rows is what the reviewer read: a change to the
    summarizer fails here until the new summaries are read again (tests/fixtures/summaries_handchecked.json)."""
    assert len(HANDCHECKED) == 30
    for row in HANDCHECKED:
        r = ROWS[row["file"], row["id"]]
        assert extractive_summary(r["think"], r["answer"], 0.35, 2000, r["prompt"]) == row["summary"], row["id"]


def test_handchecked_rows_meet_the_targets_by_the_scorer_and_by_the_reader() -> None:
    ok = 0
    for row in HANDCHECKED:
        r = ROWS[row["file"], row["id"]]
        sc = score_summary(row["summary"], r["think"], r["answer"])
        assert (sc.fragment_rate, sc.filler_rate) == (0, 0), row["id"]
        assert sc.repetition == 0, row["id"]
        assert sc.final_covered in (True, None), row["id"]
        assert check_faithful(row["summary"], r["think"], r["answer"], r["prompt"], 0.35).failure is None
        assert all(len(s) > 0 for s in sentences(row["summary"]))
        ok += row["verdict"] == "ok"
    # The reader's verdicts: 26 of 30 read as summaries; the 4 flawed ones (steps repeated in
    # other words, jumbled derivatives, a source with mojibake) are what the scorer cannot see.
    assert ok == 26


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"summarizer": {"max_filler_rate": 2}}, "max_filler_rate"),
        ({"summarizer": {"min_faithfulness": -0.1}}, "min_faithfulness"),
        ({"summarizer": {"max_sentences": 0}}, "max_sentences"),
        ({"overthinking_z": 0}, "overthinking_z"),
        ({"summarizer": {"max_fragment_rat": 0.1}}, "max_fragment_rat"),  # a typo
    ],
)
def test_bad_threshold_values_are_one_line_user_errors(section: dict[str, Any], key: str) -> None:
    from builder.errors import UserError
    from tests.fixtures.stages import sample_recipe

    with pytest.raises(UserError) as e:
        sample_recipe(variants=section)
    msg = str(e.value)
    assert "\n" not in msg and key in msg and "variants" in msg
