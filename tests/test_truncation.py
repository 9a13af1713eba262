"""Truncated replies: finish reasons on imports, token budgets, and what the text alone shows.

Rules are in builder/responses/truncation.py. Inputs built to fool them: complete answers that
look cut (option letters, chemical charges, `**` in code, a quote's attribution, unfenced Swift
`\\(`), and cut answers that look complete. Precision is measured on every real answer of the
corpus, recall on the seeded adversarial corpus (tests/fixtures/adversarial_replies.py) built
from the same traces; a clone without ../shared/corpus uses data/sample/.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.reasoning_format import resolve_delimiters
from builder.responses import answer_end, grammar, truncation
from builder.responses.shapes import normalize
from tests.fixtures.adversarial_replies import CORPUS, build_cases, real_triples, score
from tests.generate_helpers import import_run, write_recipe

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real corpus not found at {CORPUS}")

# ---------- the answer's end ----------

CUT = [
    ("Here is the code:\n```python\ndef f(x):\n    return x", "open_fence"),
    ("The area is\n\\[\nA = \\frac{1}{2} b h", "open_math"),
    ("So the value is $$x = \\sqrt{2", "open_math"),
    ("The answer is \\boxed{\\frac{1}{2}", "open_boxed"),
    ("1. **Soil:** rich.\n2. **Forests without", "open_bold"),
    ("Setting this equal to zero gives 2m =", "dangling_end"),
    ("The dot product is 22 + 2m +", "dangling_end"),
    ("It serves as a reminder of the importance of", "dangling_end"),
    ("Key effects:\n1. Higher prices.\n2.", "dangling_end"),
    ("### Transportation Impacts:\n1", "dangling_end"),
    ("它的主要原因是成本高，因为", "dangling_end"),
    ("এটি একটি উদাহরণ এবং", "dangling_end"),
    ("The ratio is fixed. Hence the second reaction will proceed only when", "unterminated_prose"),
    ("Steps:\n1. Mix the flour.\n2. Add the eggs.\n3. Bake for twenty minutes at", "unterminated_prose"),
    ("এ কারণে ইলেকট্রন সহজেই চলাচল করে। ফলে পরিবাহী পদার্থের উচ্চ তড়িৎ পরিব", "unterminated_prose"),
]  # fmt: skip
COMPLETE = [
    "The answer is 42.",
    "**Answer:** A",
    "**সঠিক উত্তর:** C. একটি অর্ধকোষের চার্জের নিরপেক্ষতা বজায় রাখা",
    "সঠিক উত্তর: D. শাহ মুহম্মদ সগীর",
    "The ion formed is Cu²+",
    "The conjugate base is PO₄³-",
    "In Python, x**2 squares x.",
    "Jehovah ****** Allah",
    '"Good design is obvious. Great design is transparent." - Joe Sparano',
    "Benefits:\n- Lower cost\n- Faster delivery\n- Better quality",
    'print("Failed to set up: \\(error.localizedDescription)")\n}\nThat is the whole view.',
    "মালো**। এটি একটি উপন্যাস।",  # a closing ** whose opener the data lost
    "Final Answer\n\\[\n\\boxed{21}\n\\]",
    "no",
    "The capital of France is Paris",  # one short line: nothing says it was cut
    "答案是 42。",
    "#playboy #freedom",
]  # fmt: skip


@pytest.mark.parametrize(("answer", "evidence"), CUT, ids=[e + ":" + a[-20:] for a, e in CUT])
def test_cut_answers_are_caught(answer: str, evidence: str) -> None:
    assert truncation.answer_cut(answer) == evidence


@pytest.mark.parametrize("answer", COMPLETE, ids=[a[-24:] for a in COMPLETE])
def test_complete_answers_that_look_cut_are_not(answer: str) -> None:
    assert truncation.answer_cut(answer) is None


# ---------- the rule order: finish reason, token budget, text ----------


def _codes(content: Any, finish: Any, *, infer: bool = True, **kw: Any) -> tuple[list[str], list[str]]:
    fields = {k: kw.pop(k) for k in ("reasoning", "reasoning_content") if k in kw}
    parsed = normalize(content, fields.get("reasoning_content"), fields.get("reasoning"))
    val = grammar.validate(parsed, finish, None, None, infer_truncation=infer, **kw)
    return val.codes, val.info


def test_finish_reason_decides_when_known() -> None:
    cut = "<think>\nfine\n</think>\n\nThe result is the"
    assert _codes(cut, "length") == (["truncated_in_answer"], ["answer_tags_absent", "cut_finish_length"])
    assert _codes(cut, "stop")[0] == []  # the model chose to stop: not second-guessed
    assert _codes(cut, None)[0] == ["truncated_in_answer"]  # unknown: the text speaks
    assert _codes(cut, None, infer=False)[0] == []  # a caller that asks for no inference
    assert "content_filter" in _codes(cut, "content_filter")[0]
    assert _codes("<think>\nstill thinking about it", "length")[0] == ["unclosed_think", "truncated_in_think"]


def test_token_budget_when_the_finish_reason_is_unknown() -> None:
    done = "<think>\nok\n</think>\n\nThe answer is 4."
    codes, info = _codes(done, None, completion_tokens=4096, max_tokens=4096)
    assert codes == ["truncated_in_answer"] and "cut_token_budget" in info
    assert _codes(done, None, completion_tokens=4095, max_tokens=4096)[0] == []
    assert _codes(done, "stop", completion_tokens=4096, max_tokens=4096)[0] == []  # EOS on the last token
    for bad in ("4096", True, -1, None, 3.5):  # not counts: no verdict from them
        assert _codes(done, None, completion_tokens=bad, max_tokens=4096)[0] == []


def test_prefilled_think_without_close_is_a_think_cut_for_reasoning_teachers_only() -> None:
    text = "Okay, so the user asks about the boiling point. Let me recall the pressure dependence and"
    assert set(_codes(text, None)[0]) == {"missing_think", "truncated_in_think"}
    assert set(_codes(text, "length")[0]) == {"missing_think", "truncated_in_think"}
    # A control teacher's plain answer is a whole reply: cut inside the answer, if at all.
    assert set(_codes(text, None, expects_thinking=False)[0]) == {"missing_think", "truncated_in_answer"}
    assert _codes("Paris is the capital of France.", None, expects_thinking=False)[0] == ["missing_think"]


def test_misrouted_answer_has_its_own_code() -> None:
    think = "Okay, the user wants 2+2. That is 4, simple arithmetic."
    answer = "**Answer:** 4"
    assert "answer_in_reasoning" in _codes(None, "stop", reasoning=f"{think}\n\n{answer}")[0]
    assert "answer_in_reasoning" in _codes("", None, reasoning=f"{think}\n\n{answer}")[0]
    # Reasoning that stops mid-thought is a cut, not a misrouted answer.
    codes = _codes(None, None, reasoning="Okay, the user wants 2+2. Let me think about the")[0]
    assert "truncated_in_think" in codes and "answer_in_reasoning" not in codes
    assert "answer_in_reasoning" not in _codes(None, "length", reasoning=f"{think}\n\n{answer}")[0]


def test_every_evidence_is_an_info_code_in_the_table() -> None:
    assert {truncation.EVIDENCE_PREFIX + e for e in truncation.EVIDENCE} <= grammar.INFO_CODES
    assert set(truncation.CODES) <= grammar.REJECT_CODES


# ---------- precision on real complete answers ----------


def test_no_real_pcmb_sky_or_marco_answer_is_called_cut() -> None:
    triples = [t for t in real_triples() if t.source != "r1-bangla"]
    flagged = [(t.source, t.answer[-80:]) for t in triples if truncation.answer_cut(t.answer)]
    assert flagged == []


def test_real_bangla_answers_rarely_called_cut() -> None:
    """R1's Bangla-MMLU answers: those flagged are mostly cut mid-word in the source data itself."""
    triples = [t for t in real_triples() if t.source == "r1-bangla"]
    answers = [t.answer for t in triples]
    flagged = [t.answer for t in triples if truncation.answer_cut(t.answer, t.prompt)]
    assert len(flagged) <= 0.005 * len(answers), [a[-60:] for a in flagged]


@needs_corpus
def test_real_thinking_rarely_reads_as_a_final_answer() -> None:
    triples = [t for t in real_triples() if t.fmt == "r1"]
    alone = sum(truncation.ends_with_final_answer(t.think) for t in triples)
    joined = sum(truncation.ends_with_final_answer(t.think + "\n\n" + t.answer) for t in triples)
    assert alone <= 0.005 * len(triples) and joined >= 0.99 * len(triples)


# ---------- recall on the adversarial corpus ----------


@pytest.fixture(scope="module")
def scored() -> dict[str, Any]:
    triples = real_triples()
    random.Random(7).shuffle(triples)
    return score(build_cases(triples[:160], seed=7))


def test_adversarial_corpus_recall(scored: dict[str, Any]) -> None:
    rc = scored["right_code"]
    assert rc["truncated:with_finish"]["rate"] == 1.0
    assert rc["truncated:tokens"]["rate"] == 1.0
    assert rc["cut_think:none"]["rate"] >= 0.99
    assert rc["misrouted_all"]["rate"] >= 0.97
    for where in ("in_code", "in_math"):
        key = f"cut_answer:none:{where}"
        assert key not in rc or rc[key]["rate"] == 1.0
    # Text alone: most mid-sentence cuts; a cut after a full sentence looks finished (measured,
    # not hidden: benchmarks/responses.py prints the full-corpus figures).
    assert rc["cut_answer:none"]["rate"] >= 0.93
    assert rc["truncated:text_only:evident"]["rate"] >= 0.97


# ---------- evidence that needs the prompt or the line's shape ----------

MCQ = "Which gas?\nOptions: {'A': 'অক্সিজেন', 'B': 'বিদ্যুৎ চুম্বকীয় আবেশ', 'C': 'নাইট্রোজেন', 'D': 'হিলিয়াম'}"
CUT_WITH_PROMPT = [
    ("The correct answer is B.\n\n**Explanation:**", "", "open_label"),
    ("Thus the full rotation is 360 degrees.\nThe minute hand of a clock completes a full rotation (360", "",
     "open_bracket"),
    ('The word comes from Sanskrit.\n\n**Explanation:**  \n"', "", "dangling_end"),
    ("Transformers work by induction.\n\n**Answer:** B. বি", MCQ, "partial_option"),
    ("The charge moves.\nTotal = 46 + 12 + 48", MCQ, "no_final_result"),
    ("The correct answer is **A: নাগরিকত্ব**.\n\n**Reasoning:**  \nরোহিঙ্গাদ", "", "unterminated_prose"),
    ("The answer is **D: ATP**. ATP stores energy for the cell. Other", "", "unterminated_prose"),
    ("Solve it step by step.\nSo x = 2 + 3 = 5", "Find x. Put the final answer within \\boxed{}.", "no_final_result"),
    ("The roots are found.\nSo x equals two", "Find x.", "unterminated_prose"),
    ("The correct answer is **C. টাইফয়েড**\n\n**ব্যাখ্যা:** সালম", "", "unterminated_prose"),  # a prose label
    ("Thus v = 10 m/s.\n\n**Answer:** A. 10 m/", "", "dangling_end"),
    ("Multiply.\nSo `(1 + 8i)/5 = 1/5 + (8", "", "open_bracket"),
    ('Compare them.\nSentence A: "a train', "", "open_bracket"),
    # The cut lands where the question's own words end: not the prompt's option, still a cut.
    ("The correct answer is **D: 6.66 D**.\n\n**Explanation:**  \nদুটি অভিন্ন লেন্স সংস্পর্শে",
     "দুটি অভিন্ন লেন্স সংস্পর্শে রাখা হলো। Options: {'A': 'x', 'B': 'y', 'C': 'z', 'D': '6.66 D'}", "unterminated_prose"),
    ("Answer follows.\nThe correct answer is **A: জাইকা** (JICA), যা জাপানের বৈদেশিক সাহায্য সংস্থা হিসেব", "",
     "unterminated_prose"),
]  # fmt: skip
COMPLETE_WITH_PROMPT = [
    ("Premise does not entail it.\nit is not possible to tell",
     "Options:\n- yes\n- it is not possible to tell\n- no"),
    ("Transformers work by induction.\n\n**Answer:** B. বিদ্যুৎ চুম্বকীয় আবেশ", MCQ),
    ("The blank is a tool.\n\n**Answer:** pencil", "Fill the blank: ___ is to write"),
    ("Work it out.\nThe answer is A", MCQ),
    ("The result follows.\n\\boxed{7}", "Put the final answer within \\boxed{}."),
    ("Jim has spent $50.00 ($20 and $30).", ""),
    ("It matches.\n\n**Answer:**  \nB. '(2n+1)π '", MCQ),
]


@pytest.mark.parametrize(("answer", "prompt", "evidence"), CUT_WITH_PROMPT, ids=[e + ":" + a[-16:] for a, _, e in CUT_WITH_PROMPT])
def test_cut_answers_caught_with_the_prompt(answer: str, prompt: str, evidence: str) -> None:
    assert truncation.answer_cut(answer, prompt) == evidence


@pytest.mark.parametrize(("answer", "prompt"), COMPLETE_WITH_PROMPT, ids=[a[-20:] for a, _ in COMPLETE_WITH_PROMPT])
def test_complete_answers_with_the_prompt_are_not_cut(answer: str, prompt: str) -> None:
    assert truncation.answer_cut(answer, prompt) is None


def test_multiple_choice_prompts_are_recognised() -> None:
    assert answer_end.is_multiple_choice(MCQ)
    assert answer_end.is_multiple_choice("Pick one.\nA. red\nB. green\nC. blue\nD. none")
    assert not answer_end.is_multiple_choice("A. Smith wrote the book. Who was the publisher?")


def test_adversarial_corpus_precision(scored: dict[str, Any]) -> None:
    assert scored["right_code"]["clean"]["rate"] <= 0.005
    assert scored["right_code"]["clean:stop"]["rate"] == 0.0


def test_corpus_is_seeded() -> None:
    triples = real_triples()[:30]
    a = [(c.kind, c.where, c.finish, json.dumps(c.row, sort_keys=True)) for c in build_cases(triples, seed=3)]
    b = [(c.kind, c.where, c.finish, json.dumps(c.row, sort_keys=True)) for c in build_cases(triples, seed=3)]
    assert a == b


# ---------- imports: finish reasons and token counts are kept ----------


def test_fields_import_maps_finish_reason_and_tokens(tmp_path: Path) -> None:
    rows = [
        {"id": "1", "problem": "What is 1+1?", "t": "add them", "a": "2", "meta": {"finish": "stop", "n": 12}},
        {"id": "2", "problem": "What is 2+2?", "t": "add", "a": "The sum is", "meta": {"finish": "length", "n": 64}},
    ]
    imp = {"think": "t", "answer": "a", "finish_reason": "meta.finish", "completion_tokens": "meta.n", "max_tokens": 64}
    got = {r["content"]: r for r in import_run(tmp_path, rows, imp)}
    assert (got["2"]["finish_reason"], got["2"]["completion_tokens"], got["2"]["max_tokens"]) == ("stop", 12, 64)
    assert got["The sum is"]["finish_reason"] == "length"


def test_openr1_layout_reads_its_finish_reasons(tmp_path: Path) -> None:
    rows = [{"id": "o1", "problem": "Find x.", "generations": ["<think>a</think>x=1", "<think>b, so"],
             "finish_reasons": ["stop", "length"]}]  # fmt: skip
    out = import_run(tmp_path, rows, {"layout": "openr1"}, samples=2)
    assert {r["sample_index"]: r["finish_reason"] for r in out} == {0: "stop", 1: "length"}


def test_am_layout_has_no_finish_reason_and_the_text_decides(tmp_path: Path) -> None:
    """AM-DeepSeek-R1-Distilled: no finish reason; a reply cut in its answer must still be caught.

    Its info.answer_content drops the <answer> tags, so a cut after a whole sentence would look
    finished there: the raw reply, whose <answer> never closes, is stored instead."""
    def am(i: str, raw: str, answer: str) -> dict[str, Any]:
        return {"id": i, "problem": f"What is {i}?", "messages": [
            {"role": "user", "content": f"What is {i}?"},
            {"role": "assistant", "content": raw, "info": {"think_content": "add", "answer_content": answer}}]}

    rows = [am("a1", "<think>\nadd\n</think>\n<answer>\nOne plus one is two.", "One plus one is two."),
            am("a2", "<think>\nadd\n</think>\n<answer>\n2\n</answer>", "2"),
            am("a3", "<think>\nadd them up, one and", "")]  # fmt: skip
    got = {r["prompt_id"]: r for r in import_run(tmp_path, rows, {"layout": "am"})}
    verdicts = {}
    for row in got.values():
        assert row["status"] == "ok" and row["finish_reason"] is None
        parsed = normalize(row["content"], row["reasoning_content"], row["reasoning"],
                           None, resolve_delimiters(row["reasoning_format"]))  # fmt: skip
        val = grammar.validate(parsed, None, None, None, infer_truncation=True)
        verdicts[row["content"]] = [c for c in val.codes if c.startswith("truncated")]
    assert verdicts == {
        "2": [],  # complete: the info split, as before
        "<think>\nadd them up, one and": ["truncated_in_think"],
        "<think>\nadd\n</think>\n<answer>\nOne plus one is two.": ["truncated_in_answer"],
    }


def test_mapping_an_absent_field_is_one_line_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"id": "1", "problem": "p", "a": "x"}) + "\n")
    src = {"name": "src", "path": str(data), "fields": {"prompt": "problem", "id": "id"}}
    teacher = {"name": "r1", "kind": "import", "model": "m",
               "imports": [{"source": "src", "answer": "a", "finish_reason": "meta.finish_reason"}]}  # fmt: skip
    path = write_recipe(tmp_path, {"teachers": [teacher]}, sources=[src])
    work = tmp_path / "w"
    runner = CliRunner()
    assert runner.invoke(app, ["curate", str(path), "--work", str(work)]).exit_code == 0
    res = runner.invoke(app, ["generate", str(path), "--work", str(work)])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.stderr + res.stdout
    assert "imports[0].finish_reason" in lines[0] and "'meta.finish_reason'" in lines[0] and "data.jsonl" in lines[0]
    assert "Traceback" not in res.stdout + res.stderr
    assert not list((work / "generate" / "store").rglob("*.jsonl"))  # nothing stored


@needs_corpus
def test_real_replies_cut_by_a_token_cap_are_caught_from_text() -> None:
    """DeepSeek-R1-Distill-Llama-8B replies generated with a ~1,000-token cap: those that closed
    their thinking and then ran into the cap were cut in the answer; short ones were not."""
    from builder.tokens import count_tokens

    rows = json.loads((CORPUS / "r1distill-llama8b-thinking-llms-interp" /
                       "responses_deepseek-r1-distill-llama-8b.json").read_text(encoding="utf-8"))  # fmt: skip
    gens = [r["full_response"].split("<｜Assistant｜>", 1)[1] for r in rows]
    closed = [(n, g.split("</think>", 1)[1]) for n, g in zip(count_tokens("deepseek-r1", gens), gens) if "</think>" in g]
    at_cap = [a for n, a in closed if n >= 985]
    short = [a for n, a in closed if n < 900]
    assert len(at_cap) >= 50 and len(short) >= 150
    assert sum(truncation.answer_cut(a) is not None for a in at_cap) >= 0.6 * len(at_cap)  # measured 53 / 74
    assert sum(truncation.answer_cut(a) is not None for a in short) == 0  # measured 0 / 174
