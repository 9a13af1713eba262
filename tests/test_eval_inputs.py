"""Bad evaluation inputs stop before any model loads (one line, exit 2), and what a results
file records for a rerun: seed, judge decoding, prompt templates, contamination flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from train_reference.evaluation import contamination, lmeval_runner
from train_reference.evaluation.config import EvalUserError, load_config
from train_reference.evaluation.runner import evaluate

ROOT = Path(__file__).resolve().parents[1]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from train_reference.evaluate import main

    code = main(list(args))
    _, err = capsys.readouterr()
    return code, err


def _model(tmp_path: Path) -> Path:
    m = tmp_path / "model"
    m.mkdir(exist_ok=True)
    (m / "config.json").write_text("{}")
    return m


def _recipe(tmp_path: Path, extra: str = "") -> Path:
    """One optional benchmark whose data is absent: the run loads no model and no lm-eval."""
    r = tmp_path / "r.yaml"
    r.write_text(
        f"backend: hf\nseed: 77\ninclude_default_tasks: false\n{extra}benchmarks:\n"
        f"  - name: gsm8k\n    task: ad_gsm8k_local\n    optional: true\n"
        f"    data_files: {{test: {tmp_path}/gone.jsonl}}\n"
        f"  - name: humaneval\n    task: ad_humaneval_local\n    optional: true\n"
        f"    data_files: {{test: {tmp_path}/gone2.jsonl}}\n"
    )
    return r


@pytest.mark.parametrize(
    ("flag", "value"), [("--limit", "-1"), ("--limit", "0"), ("--max-new-tokens", "0"), ("--concurrency", "0")]
)
def test_cli_counts_below_one_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    code, err = _cli(capsys, "--config", str(_recipe(tmp_path)), "--model", str(_model(tmp_path)),
                     "--output-dir", str(tmp_path / "out"), flag, value)  # fmt: skip
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"evaluate: error: {flag} {value}"), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flag", "value"), [("--limit", "abc"), ("--concurrency", "2.5"), ("--max-new-tokens", "1e3")])
def test_cli_counts_that_are_not_whole_numbers_are_the_same_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    # argparse checks the counts (its type= functions), with the message main() used to give.
    code, err = _cli(capsys, "--config", str(_recipe(tmp_path)), "--model", str(_model(tmp_path)), flag, value)
    assert code == 2 and err == f"evaluate: error: {flag} {value}: must be a whole number of at least 1\n", err
    from train_reference.evaluate import count

    with pytest.raises(argparse.ArgumentTypeError, match=r"^--limit 0: must be a whole number of at least 1$"):
        count("--limit")("0")
    assert count("--limit")("3") == 3
    code, err = _cli(capsys, "--model", str(_model(tmp_path)))  # argparse's own errors: one line too
    assert code == 2 and err == "evaluate: error: the following arguments are required: --config\n", err


def test_named_manifest_absent_or_not_a_manifest_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(_recipe(tmp_path)), "--model", str(_model(tmp_path)), "--output-dir", str(tmp_path / "out")]
    code, err = _cli(capsys, *base, "--manifest", str(tmp_path / "relase" / "manifest.json"))
    assert code == 2 and "release manifest not found" in err and len(err.strip().splitlines()) == 1, err
    bad = tmp_path / "bad.json"
    bad.write_text('{"decontamination": ')
    code, err = _cli(capsys, *base, "--manifest", str(bad))
    assert code == 2 and "not valid JSON" in err, err
    bad.write_text('{"configs": {}}')
    code, err = _cli(capsys, *base, "--manifest", str(bad))
    assert code == 2 and "no decontamination.benchmarks list" in err, err
    assert not (tmp_path / "out").exists()
    with pytest.raises(EvalUserError, match="release manifest not found"):
        evaluate(load_config(_recipe(tmp_path, "release_manifest: /nonexistent/m.json\n")), str(_model(tmp_path)),
                 out_dir=tmp_path / "out2")  # fmt: skip


def test_partly_decontaminated_benchmark_is_not_reported_covered(tmp_path: Path) -> None:
    # As builder/release writes it: aime25 has two files, one absent; gpqa's only file absent.
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"decontamination": {
        "benchmarks": ["gsm8k", "humaneval", "humaneval"], "skipped_absent": ["humaneval", "gpqa_diamond"]}}))  # fmt: skip
    cov, _ = contamination.coverage(man, {b: [] for b in ("gsm8k", "humaneval", "gpqa_diamond", "ifeval")})
    assert cov["gsm8k"] == "covered"
    assert cov["humaneval"].startswith("partially covered")
    assert cov["gpqa_diamond"].startswith("not covered (its file was absent")
    assert cov["ifeval"] == "not covered"


def test_results_record_seed_and_flag_benchmarks_not_decontaminated(tmp_path: Path) -> None:
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"decontamination": {"benchmarks": ["gsm8k"], "skipped_absent": []}}))
    report = evaluate(load_config(_recipe(tmp_path)), str(_model(tmp_path)), out_dir=tmp_path / "out",
                      manifest=str(man))  # fmt: skip
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["seed"] == 77 == report["seed"]
    assert saved["not_decontaminated"] == ["humaneval"]
    md = (tmp_path / "out" / "table.md").read_text()
    assert "**Warning:** the training release was not (fully) decontaminated against humaneval" in md
    assert "seed 77" in md


def test_results_record_each_tasks_prompt_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lm_eval

    def fake_simple_evaluate(**kw: object) -> dict:
        return {
            "results": {"ad_gsm8k_local": {"alias": "x", "exact_match,flexible-extract": 0.5}},
            "versions": {"ad_gsm8k_local": 3.0}, "n-shot": {"ad_gsm8k_local": 2},
            "configs": {"ad_gsm8k_local": {
                "doc_to_text": "Question: {{question}}\nAnswer:", "target_delimiter": " ",
                "fewshot_delimiter": "\n\n", "num_fewshot": 2, "repeats": 1, "dataset_path": "json",
                "generation_kwargs": {"until": ["Question:"], "do_sample": False, "temperature": 0.0},
                "process_results": len}},
            "samples": {"ad_gsm8k_local": [{"doc_id": 0}, {"doc_id": 1}]},
        }  # fmt: skip

    monkeypatch.setattr(lm_eval, "simple_evaluate", fake_simple_evaluate)
    cfg = load_config(_recipe(tmp_path))
    tm = type("TM", (), {"task_index": {}})()  # no YAML entry: the task runs by name
    rec = lmeval_runner.run_benchmark(None, tm, cfg.benchmarks[0], cfg, "hf", tmp_path)
    tpl = rec["prompt_templates"]["ad_gsm8k_local"]
    assert tpl["doc_to_text"] == "Question: {{question}}\nAnswer:"
    assert tpl["generation_kwargs"]["until"] == ["Question:"] and tpl["num_fewshot"] == 2
    assert "dataset_path" not in tpl and "process_results" not in tpl
    json.dumps(rec)  # plain JSON
    assert rec["n_items"] == 2 and rec["score"] == 50.0


def _mt_recipe(tmp_path: Path, questions: Path, prompts: str = "data/eval/mt_bench/judge_prompts.jsonl") -> Path:
    r = tmp_path / "mt.yaml"
    r.write_text(
        "backend: hf\ninclude_default_tasks: false\n"
        "judge: {base_url: 'http://127.0.0.1:9/v1', model: j, max_retries: 0, timeout_s: 2}\n"
        "benchmarks:\n  - name: mt_bench\n    data_files:\n"
        f"      questions: {questions}\n"
        "      references: data/eval/mt_bench/reference_answer_gpt-4.jsonl\n"
        f"      judge_prompts: {prompts}\n"
    )
    return r


def test_malformed_mt_bench_files_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = (ROOT / "data/eval/mt_bench/question.jsonl").read_text().splitlines()
    math = next(json.loads(x) for x in real if json.loads(x)["category"] == "math")
    cases = {
        "line 2: not valid JSON": [real[0], real[1][:-5]],
        "line 1: expected question_id and two turns": [json.dumps({**json.loads(real[0]), "turns": ["only one"]})],
        "field 'category' missing": [json.dumps({"question_id": 1, "turns": ["a", "b"]})],
        # A math question whose reference is missing would be graded by the general prompt.
        "math question 999 has no reference answer": [json.dumps({**math, "question_id": 999})],
    }  # fmt: skip
    for needle, lines in cases.items():
        q = tmp_path / "q.jsonl"
        q.write_text("\n".join(lines) + "\n")
        code, err = _cli(capsys, "--config", str(_mt_recipe(tmp_path, q)), "--model", str(_model(tmp_path)),
                         "--output-dir", str(tmp_path / "out"))  # fmt: skip
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (needle, err)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(x for x in (ROOT / "data/eval/mt_bench/judge_prompts.jsonl").read_text().splitlines()
                                 if '"single-math-v1"' not in x) + "\n")  # fmt: skip
    q = ROOT / "data/eval/mt_bench/question.jsonl"
    code, err = _cli(capsys, "--config", str(_mt_recipe(tmp_path, q, str(prompts))), "--model", str(_model(tmp_path)))
    assert code == 2 and "judge prompt 'single-math-v1' missing" in err, err


def test_missing_model_under_a_local_folder_is_not_taken_for_a_hub_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from train_reference.evaluation.runner import check_model_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    with pytest.raises(EvalUserError, match="out/sft: model path does not exist"):
        check_model_path("out/sft")
    check_model_path("Qwen/Qwen2.5-32B")  # no ./Qwen folder: a Hub id


def test_malformed_lmeval_data_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = tmp_path / "test.jsonl"
    test.write_text('{"question": "1+1?", "answer": "#### 2"}\n{"question": "2+2?", "answer": \n')
    r = tmp_path / "g.yaml"
    r.write_text("backend: hf\ninclude_default_tasks: false\nbenchmarks:\n  - name: gsm8k\n    task: ad_gsm8k_local\n"
                 f"    data_files: {{train: data/eval/gsm8k/train.jsonl, test: {test}}}\n")  # fmt: skip
    code, err = _cli(capsys, "--config", str(r), "--model", str(_model(tmp_path)), "--output-dir", str(tmp_path / "o"))
    assert code == 2 and f"{test} line 2: not valid JSON (data_files.test)" in err, err
    assert len(err.strip().splitlines()) == 1


def test_judge_refusing_the_key_is_exit_2_before_generation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.servers.openai_server import run_server

    monkeypatch.delenv("AD_EVL_JUDGE_KEY", raising=False)
    with run_server(scenario="plain", models=["j"], api_key="sk-judge-secret-1234") as srv:
        r = tmp_path / "mt.yaml"
        r.write_text(
            "backend: hf\ninclude_default_tasks: false\n"
            f"judge: {{base_url: '{srv.base_url}', model: j, api_key_env: AD_EVL_JUDGE_KEY, max_retries: 0}}\n"
            "benchmarks:\n  - name: mt_bench\n    data_files:\n"
            "      questions: data/eval/mt_bench/question.jsonl\n"
            "      references: data/eval/mt_bench/reference_answer_gpt-4.jsonl\n"
            "      judge_prompts: data/eval/mt_bench/judge_prompts.jsonl\n"
        )
        code, err = _cli(capsys, "--config", str(r), "--model", str(_model(tmp_path)), "--output-dir", str(tmp_path / "o"))
        assert code == 2 and "refused the key (HTTP 401); $AD_EVL_JUDGE_KEY is not set" in err, err
        monkeypatch.setenv("AD_EVL_JUDGE_KEY", "sk-wrong-key-987654")
        code, err = _cli(capsys, "--config", str(r), "--model", str(_model(tmp_path)), "--output-dir", str(tmp_path / "o"))
        assert code == 2 and "$AD_EVL_JUDGE_KEY is set" in err and "987654" not in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("benchmark", "needle"),
    [
        # Ignored by the benchmark, yet recorded in the results as if used.
        ("{name: mt_bench, samples: 4}", r"\(mt_bench\).*samples: mt_bench draws one generation per item"),
        ("{name: mmlu, task: mmlu, samples: 4}", r"\(mmlu\).*samples: mmlu draws one generation per item"),
        ("{name: alignbench, samples: 2}", r"samples: alignbench draws one generation per item"),
        ("{name: mt_bench, num_fewshot: 5}", r"num_fewshot: mt_bench does not use it"),
        ("{name: gsm8k, task: gsm8k, judge_prompt_file: p.json}", r"judge_prompt_file: gsm8k does not use it"),
    ],
)
def test_keys_a_benchmark_never_reads_are_a_recipe_error(tmp_path: Path, benchmark: str, needle: str) -> None:
    r = tmp_path / "k.yaml"
    r.write_text(f"benchmarks:\n  - {benchmark}\n")
    with pytest.raises(EvalUserError, match=needle):
        load_config(r)


def test_output_dir_that_is_a_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").write_text("a file\n")
    code, err = _cli(capsys, "--config", str(_recipe(tmp_path)), "--model", str(_model(tmp_path)),
                     "--output-dir", str(tmp_path / "taken"))  # fmt: skip
    assert code == 2 and "cannot write results there" in err and "Traceback" not in err, err
