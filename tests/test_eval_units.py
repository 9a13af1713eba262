"""Unit tests of the evaluation pieces that need no model: parsing, pass@k, config, report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from train_reference.evaluation import codeexec, contamination, judge, paper
from train_reference.evaluation.config import EvalUserError, load_config
from train_reference.evaluation.report import render_markdown
from train_reference.evaluation.tasks import ad_utils

ROOT = Path(__file__).resolve().parents[1]


def test_parse_rating() -> None:
    assert judge.parse_rating("Good answer.\n\nRating: [[7]]") == 7.0
    assert judge.parse_rating("Rating: [[3]] ... on reflection Rating: [[8.5]]") == 8.5
    assert judge.parse_rating("score [[6]]") == 6.0
    assert judge.parse_rating("Rating: [[11]]") is None  # out of the 1-10 scale
    assert judge.parse_rating("Rating: 7") is None
    assert judge.parse_rating(None) is None


def test_mt_bench_prompts_use_references_for_math_and_both_turns() -> None:
    d = ROOT / "data/eval/mt_bench"
    questions = [json.loads(x) for x in (d / "question.jsonl").open()]
    refs = {
        r["question_id"]: r["choices"][0]["turns"] for r in map(json.loads, (d / "reference_answer_gpt-4.jsonl").open())
    }
    jps = {p["name"]: p for p in map(json.loads, (d / "judge_prompts.jsonl").open())}
    pick = [
        next(q for q in questions if q["category"] == "writing"),
        next(q for q in questions if q["category"] == "math"),
    ]
    prompts, meta, used = judge.mt_bench_judge_prompts(pick, ["A1w", "A1m"], ["A2w", "A2m"], refs, jps)
    assert [m[2] for m in meta] == ["single-v1", "single-v1-multi-turn", "single-math-v1", "single-math-v1-multi-turn"]
    ref = refs[pick[1]["question_id"]]
    assert ref[0] in prompts[2][1] and "A1m" in prompts[2][1]
    assert ref[1] in prompts[3][1] and "A2m" in prompts[3][1] and pick[1]["turns"][1] in prompts[3][1]
    assert "A2w" in prompts[1][1] and "A1w" in prompts[1][1]
    assert all("{" not in k for k in used) and len(used) == 4
    assert prompts[0][0] == jps["single-v1"]["system_prompt"]


def test_alignbench_overall_weights_reasoning_and_language_halves() -> None:
    cats = {"数学计算": 4.0, "逻辑推理": 6.0, "文本写作": 8.0, "角色扮演": 8.0, "中文理解": 2.0}
    # reasoning avg 5.0, language avg 6.0 -> 5.5 (not the plain mean over categories, 5.6)
    assert judge.alignbench_overall(cats) == pytest.approx(5.5)
    assert judge.alignbench_overall({}) is None


def test_pass_at_k_estimator() -> None:
    assert codeexec.pass_at_k(8, 0, 1) == 0.0
    assert codeexec.pass_at_k(8, 8, 1) == 1.0
    assert codeexec.pass_at_k(8, 2, 1) == pytest.approx(0.25)
    assert codeexec.pass_at_k(10, 3, 5) == pytest.approx(1 - (7 * 6 * 5 * 4 * 3) / (10 * 9 * 8 * 7 * 6))


def test_humaneval_sandbox_scores_canonical_right_and_wrong_code_wrong() -> None:
    rows = [json.loads(line) for line in (ROOT / "data/eval/humaneval/test.jsonl").open()]
    doc = rows[0]
    good_body = "```python\n" + doc["prompt"] + doc["canonical_solution"] + "```"
    bad_body = f"```python\ndef {doc['entry_point']}(*a):\n    return None\n```"
    loop = f"def {doc['entry_point']}(*a):\n    while True:\n        pass\n"
    out = codeexec.score_samples(doc["prompt"], doc["test"], doc["entry_point"], [good_body])
    assert out["pass@1"] == 1.0, out["checks"]
    # A bare body continuation (base-model style) is also accepted.
    body_only = codeexec.score_samples(doc["prompt"], doc["test"], doc["entry_point"], [doc["canonical_solution"]])
    assert body_only["pass@1"] == 1.0
    out = codeexec.score_samples(doc["prompt"], doc["test"], doc["entry_point"], [good_body, bad_body])
    assert out["pass@1"] == 0.5
    res = codeexec.check_program(loop, doc["test"], doc["entry_point"], timeout_s=2)
    assert not res["passed"] and res["outcome"] in {"timeout", "cpu_limit"}


def test_gpqa_letter_extraction_and_samples_average() -> None:
    assert ad_utils.extract_letter("so...\nAnswer: (C)") == "C"
    assert ad_utils.extract_letter("The answer is B.") == "B"
    assert ad_utils.extract_letter("\\boxed{D}") == "D"
    assert ad_utils.extract_letter("I am not sure") is None
    doc = {"answer": "B"}
    res = ad_utils.gpqa_process_results(doc, [["Answer: B", "Answer: A", "Answer: B", "x"]])
    assert res == {"pass@1": 0.5}


def test_gpqa_hub_shuffle_is_deterministic_and_tracks_the_answer() -> None:
    import datasets

    row = {
        "Question": "Which is heaviest?",
        "Correct Answer": "lead",
        "Incorrect Answer 1": "air",
        "Incorrect Answer 2": "water",
        "Incorrect Answer 3": "wood",
    }
    a = ad_utils.gpqa_process_docs(datasets.Dataset.from_list([row]))[0]
    b = ad_utils.gpqa_process_docs(datasets.Dataset.from_list([row]))[0]
    assert a["question"] == b["question"]
    assert f"{a['answer']}) lead" in a["question"]


def test_contamination_from_manifest(tmp_path: Path) -> None:
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"decontamination": {"benchmarks": ["GSM8K", "MT-Bench", "gpqa"]}}))
    names = {b: [] for b in ("gsm8k", "mt_bench", "gpqa_diamond", "ifeval")}
    cov, src = contamination.coverage(man, names)
    assert cov == {
        "gsm8k": "covered", "mt_bench": "covered", "gpqa_diamond": "covered",
        "ifeval": "not covered",
    }  # fmt: skip
    assert src == str(man)
    cov, _ = contamination.coverage(tmp_path / "absent.json", names)
    assert set(cov.values()) == {"unknown (manifest absent)"}
    man.write_text(json.dumps({"decontamination": {}}))
    cov, _ = contamination.coverage(man, names)
    assert all(v.startswith("unknown") for v in cov.values())


def test_recipe_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("benchmarks:\n  - name: gsm8k\n    task: gsm8k\n  - name: hellaswag\n")
    with pytest.raises(EvalUserError, match=r"benchmarks\[1\]\(hellaswag\)\.name: unknown benchmark 'hellaswag'"):
        load_config(bad)
    bad.write_text("benchmarks: [\n")
    with pytest.raises(EvalUserError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("benchmarks: []\nbackend: tpu\n")
    with pytest.raises(EvalUserError, match="backend"):
        load_config(bad)
    with pytest.raises(EvalUserError, match="recipe not found"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_recipes_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVAL_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    cfg = load_config(ROOT / "recipes/eval/paper.yaml")
    by = {b.name: b for b in cfg.benchmarks}
    assert [b.name for b in cfg.benchmarks] == [c for c, _ in paper.COLUMNS]
    assert (by["gpqa_diamond"].samples, by["gpqa_diamond"].temperature, by["gpqa_diamond"].top_p) == (8, 0.6, 0.95)
    assert all(by[n].greedy for n in ("gsm8k", "mmlu", "humaneval", "ifeval", "mt_bench", "alignbench"))
    assert by["mmlu"].num_fewshot == 5 and cfg.max_new_tokens == 16384 and cfg.apply_chat_template
    smoke = load_config(ROOT / "recipes/eval/cpu_smoke.yaml")
    assert smoke.judge is not None and smoke.judge.base_url == "http://127.0.0.1:9/v1"


def test_shipped_mt_bench_files_match_attribution() -> None:
    text = (ROOT / "data/eval/ATTRIBUTION.md").read_text()
    for name in ("question.jsonl", "reference_answer_gpt-4.jsonl", "judge_prompts.jsonl"):
        digest = hashlib.sha256((ROOT / "data/eval/mt_bench" / name).read_bytes()).hexdigest()
        assert digest in text, name


def test_table_has_paper_rows_and_marks_failures() -> None:
    report = {
        "model_name": "m",
        "backend": "hf",
        "apply_chat_template": True,
        "decontamination_source": "none",
        "judge": None,
        "benchmarks": {
            "gsm8k": {"status": "ok", "score": 12.345, "settings": {"decoding": "greedy"}},
            "mt_bench": {"status": "failed: judge unreachable (x)", "settings": {}},
        },
    }
    md = render_markdown(report)
    assert "| AM-32B-R1-Answer-SFT (paper) | 40.3 | 92.2 | 82.5 | 90.9 | 76.9 | 6.90 | 7.60 |" in md
    assert "| **m (ours)** | n/a | 12.3 | n/a | n/a | n/a | n/a | failed |" in md
    assert "failed: judge unreachable (x)" in md


def test_judge_base_url_names_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from train_reference.evaluation.config import JudgeConfig

    monkeypatch.setenv("AD_TEST_JUDGE_PORT", "8123")
    assert JudgeConfig(base_url="http://127.0.0.1:${AD_TEST_JUDGE_PORT}/v1", model="j").base_url == (
        "http://127.0.0.1:8123/v1"
    )
    monkeypatch.delenv("AD_TEST_JUDGE_PORT")
    with pytest.raises(ValidationError, match="environment variable not set"):
        JudgeConfig(base_url="http://127.0.0.1:${AD_TEST_JUDGE_PORT}/v1", model="j")
