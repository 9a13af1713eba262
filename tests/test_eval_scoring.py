"""Scoring of model outputs we write by hand: answer extraction and pass@1 on replies shaped
the way chat models write them (markdown, prose around the answer, example blocks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train_reference.evaluation import codeexec
from train_reference.evaluation.tasks import ad_utils

ROOT = Path(__file__).resolve().parents[1]


def test_gpqa_prose_word_a_is_not_a_choice() -> None:
    # "answer is a ..." is English, not option A: it must not override the stated choice.
    assert ad_utils.extract_letter("Answer: C\n\nThis answer is a good one.") == "C"
    assert ad_utils.extract_letter("The answer is a subtle one; I cannot decide.") is None
    doc = {"answer": "C"}
    res = ad_utils.gpqa_process_results(doc, [["Answer: C\nThe answer is a classic trap."]])
    assert res == {"pass@1": 1.0}


def test_gpqa_markdown_bold_answer_line() -> None:
    assert ad_utils.extract_letter("Reasoning...\n\n**Answer:** C") == "C"
    assert ad_utils.extract_letter("**Final answer:** (D)") == "D"
    assert ad_utils.extract_letter("**Answer: B**") == "B"
    assert ad_utils.extract_letter("ANSWER: A") == "A"


def test_humaneval_reply_with_a_usage_example_block_passes() -> None:
    doc = json.loads((ROOT / "data/eval/humaneval/test.jsonl").open().readline())
    reply = (
        "Here is the function:\n\n```python\n" + doc["prompt"] + doc["canonical_solution"] + "```\n\n"
        f"Example usage:\n\n```python\nprint({doc['entry_point']}([1.0, 2.0], 0.5))\n```\n"
    )
    out = codeexec.score_samples(doc["prompt"], doc["test"], doc["entry_point"], [reply])
    assert out["pass@1"] == 1.0, out["checks"]


def test_humaneval_sandbox_that_cannot_start_is_not_a_wrong_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.sandbox import SandboxResult

    calls = []

    def broken(*a: object, **k: object) -> SandboxResult:
        calls.append(1)
        return SandboxResult("sandbox_error", None, None, "", "[Errno 11] Resource temporarily unavailable", (), 0.0)

    monkeypatch.setattr(codeexec, "run_sandboxed", broken)
    with pytest.raises(RuntimeError, match="sandbox could not run a candidate"):
        codeexec.check_program("def f():\n    return 1\n", "def check(c):\n    assert c() == 1\n", "f")
    assert len(calls) == 2  # tried once more before giving up


def test_table_says_how_many_judgments_were_left_out_of_a_mean() -> None:
    from train_reference.evaluation.report import render_markdown

    report = {
        "model_name": "m", "backend": "hf", "apply_chat_template": True, "decontamination_source": "none",
        "judge": None,
        "benchmarks": {"mt_bench": {"status": "ok", "score": 8.0, "n_items": 80, "unrated": 37, "settings": {}}},
    }  # fmt: skip
    md = render_markdown(report)
    assert "| 80 (37 judgments unrated) |" in md
    assert "left out of the means: mt_bench 37" in md


def test_gpqa_reads_the_choice_stated_last() -> None:
    reply = "At first the answer is B, since...\nWait, that ignores spin.\n\nFinal: \\boxed{C}"
    assert ad_utils.extract_letter(reply) == "C"
    assert ad_utils.extract_letter("\\boxed{A} was my guess; on reflection the answer is D.") == "D"
    assert ad_utils.extract_letter("Options weighed.\n(B)\n") == "B"


def test_judge_single_bracket_rating_is_read_as_fastchat_does() -> None:
    from train_reference.evaluation.judge import parse_rating

    assert parse_rating("The answer is thorough and correct.\n\nRating: [8]") == 8.0
    assert parse_rating("rating: [ 6.5 ]") == 6.5
    assert parse_rating("As shown in [1], the answer is wrong.") is None  # a citation, not a rating
    assert parse_rating("Rating: [[3]] (not [9])") == 3.0


def test_humaneval_fence_with_any_info_string() -> None:
    doc = json.loads((ROOT / "data/eval/humaneval/test.jsonl").open().readline())
    for fence in ("```python3", "```Python 3", "```py3"):
        reply = f"Sure.\n\n{fence}\n{doc['prompt']}{doc['canonical_solution']}```\nThis runs in O(n^2).\n"
        out = codeexec.score_samples(doc["prompt"], doc["test"], doc["entry_point"], [reply])
        assert out["pass@1"] == 1.0, (fence, out["checks"])


def test_gpqa_limo_rows_do_not_keep_the_answer_always_first() -> None:
    import datasets

    # Made-up rows in the LIMO layout (GPQA's own rows are never copied here): right one first.
    rows = [{"id": i, "answer": "A", "question": f"Which number is {i}?\n\n\nA. {i}\nB. {i + 1}\nC. {i + 2}\n"
             f"D. {i + 3}\n\nPlease reason step-by-step and put your choice letter with \\boxed{{}} in the end."}
            for i in range(40)]  # fmt: skip
    out = ad_utils.gpqa_limo_process_docs(datasets.Dataset.from_list(rows))
    again = ad_utils.gpqa_limo_process_docs(datasets.Dataset.from_list(rows))
    letters = [r["answer"] for r in out]
    assert len(set(letters)) == 4, letters  # no position an always-"A" model could exploit
    for i, r in enumerate(out):
        assert f"\n{r['answer']}. {i}\n" in r["question"] + "\n"  # the letter follows the right option
        assert r["question"].rsplit("\n", 1)[1].startswith("D. ")  # the options end the question
        assert r["question"].startswith(f"Which number is {i}?")
        assert r == again[i]


def _gpqa_prompt(doc: dict) -> str:
    """The prompt lm-eval renders from the GPQA task's doc_to_text (both paths share it)."""
    import jinja2
    import yaml

    text = (ROOT / "train_reference/evaluation/tasks/ad_gpqa_diamond.yaml").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("doc_to_text:"))
    return jinja2.Template(yaml.safe_load(line)["doc_to_text"]).render(**doc)


def test_gpqa_limo_prompt_asks_for_one_answer_format_as_the_hub_path_does() -> None:
    import datasets

    # One made-up question in both layouts (GPQA's own rows are never copied here).
    hub = {"Question": "Which gas is noble?", "Correct Answer": "Neon", "Incorrect Answer 1": "Nitrogen",
           "Incorrect Answer 2": "Oxygen", "Incorrect Answer 3": "Chlorine"}
    limo = {"id": 1, "answer": "A", "question": "Which gas is noble?\n\n\nA. Neon\nB. Nitrogen\nC. Oxygen\n"
            "D. Chlorine\n\nPlease reason step-by-step and put your choice letter without any other text "
            "with \\boxed{} in the end."}  # fmt: skip
    hub_prompt = _gpqa_prompt(ad_utils.gpqa_process_docs(datasets.Dataset.from_list([hub]))[0])
    limo_doc = ad_utils.gpqa_limo_process_docs(datasets.Dataset.from_list([limo]))[0]
    limo_prompt = _gpqa_prompt(limo_doc)

    def after_options(prompt: str) -> str:  # what the prompt asks after its last option line
        return prompt.split("\nD")[1].split("\n", 1)[1]

    assert after_options(limo_prompt) == after_options(hub_prompt)
    assert "boxed" not in limo_prompt and limo_prompt.count('"Answer: X"') == 1, limo_prompt
    assert limo_prompt.startswith("Which gas is noble?") and f"{limo_doc['answer']}. Neon" in limo_prompt
