"""`evaluate.py --base-url URL --model NAME`: a served model scored through lm-eval's
OpenAI-compatible chat backend (`local-chat-completions`) and our judge, against the loopback
server (tests/servers/): a Table 1 comes out, MMLU (log-likelihood) is skipped with its reason,
and a wrong name or a dead server is one line, exit 2, before any item is sent."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import pytest

from tests.corpus import corpus_dir
from tests.servers.openai_server import run_server
from train_reference.evaluation.served import SKIP_LOGLIKELIHOOD, api_root

ROOT = Path(__file__).resolve().parents[1]
SHARED = corpus_dir()
SMOKE = str(ROOT / "recipes" / "eval" / "cpu_smoke.yaml")
VERDICT = {"content": "Fair.\n\nRating: [[7]]"}
needs_api = pytest.mark.skipif(
    importlib.util.find_spec("tenacity") is None,
    reason="lm-eval's chat backend needs its api extra (tenacity): pip install -e '.[eval]'",
)


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from train_reference.evaluate import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_api_root_accepts_what_users_paste() -> None:
    for url in ("http://h:8000/v1", "http://h:8000/v1/", "http://h:8000/v1/chat/completions"):
        assert api_root(url) == "http://h:8000/v1"


@needs_api
def test_served_model_gets_a_table_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    with run_server(scenario="plain", models=["served-model", "test-judge"]) as srv:
        # Only the judge's prompts ask for "[[rating]]": its verdicts are scripted, the model's
        # answers are the server's own synthetic text.
        srv.control(script=[{"match": "[[rating]]", "steps": [VERDICT] * 20}])
        monkeypatch.setenv("EVAL_JUDGE_BASE_URL", srv.base_url)
        rc, out, err = _main(capsys, "--config", SMOKE, "--base-url", srv.base_url, "--model", "served-model",
                             "--output-dir", str(tmp_path / "out"), "--concurrency", "2")  # fmt: skip
        stats = srv.stats()
    assert rc == 0, err[-3000:]
    assert "| AM-32B-R1-Answer-SFT (paper) |" in out
    ours = next(line for line in out.splitlines() if line.startswith("| **served-model (ours)**"))
    cells = [c.strip() for c in ours.strip("|").split("|")][1:]
    assert "skipped" in cells and cells[-1] == "7.00", ours  # MMLU skipped; MT-Bench judged 7
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert report["backend"] == "openai-chat" and report["base_url"] == srv.base_url
    res = report["benchmarks"]
    assert res["mmlu"]["status"] == SKIP_LOGLIKELIHOOD
    for name in ("gsm8k", "humaneval", "ifeval", "mt_bench"):
        assert res[name]["status"] == "ok", (name, res[name]["status"])
        assert Path(res[name]["items_file"]).read_text().strip(), name
    assert res["mt_bench"]["score"] == 7.0
    assert res["mt_bench"]["contexts_cut"] == {"turn_1": None, "turn_2": None}  # the server tokenizes, not us
    have_gpqa = (SHARED / "limo-eval" / "gpqa.jsonl").is_file()
    have_align = (SHARED / "alignbench" / "data_v1.1_release.jsonl").is_file()
    # Every request reached the server: the model's (gsm8k 2, humaneval 1, ifeval 2, MT-Bench
    # 2 questions x 2 turns; GPQA 8 samples, AlignBench 2 when present) and the judge's.
    model_calls = 2 + 1 + 2 + 4 + (8 if have_gpqa else 0) + (2 if have_align else 0)
    judge_calls = 4 + (2 if have_align else 0)
    assert stats["by_path"]["POST /v1/chat/completions"] == model_calls + judge_calls


def test_unknown_model_and_dead_server_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("EVAL_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    with run_server(scenario="plain", models=["served-model"]) as srv:
        rc, _, err = _main(capsys, "--config", SMOKE, "--base-url", srv.base_url, "--model", "other",
                           "--output-dir", str(tmp_path / "o"))  # fmt: skip
        sent = srv.stats()["by_path"].get("POST /v1/chat/completions", 0)
    assert rc == 2 and sent == 0
    assert err.strip().splitlines() == [f"evaluate: error: {srv.base_url}: model 'other' is not served there; it serves: served-model"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, _, err = _main(capsys, "--config", SMOKE, "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m",
                       "--output-dir", str(tmp_path / "o"))  # fmt: skip
    assert rc == 2 and "server unreachable" in err and "Traceback" not in err
    rc, _, err = _main(capsys, "--config", SMOKE, "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                       "--api-key-env", "NO_SUCH_VAR_FOR_EVAL")  # fmt: skip
    assert rc == 2 and "NO_SUCH_VAR_FOR_EVAL" in err
