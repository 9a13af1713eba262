"""The openai backend against the loopback server, through the real openai.AsyncOpenAI client.

Each test writes curated prompts straight into a work dir (the generate stage reads only
`<work>/curate/prompts`), runs `run_generate`, and checks the replies parquet, the ledger,
summary.json and the server's own request counts (duplicates and retries show there).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder.errors import UserError
from builder.generate.stage import run_generate
from builder.recipe import load_recipe
from builder.workdir import WorkDir
from tests.generate_helpers import CLIENT, openai_teacher, write_prompts, write_recipe
from tests.servers.openai_server import SCENARIOS, ServerHandle, run_server


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerHandle]:
    with run_server(tokens_per_reply=120) as handle:
        yield handle


@pytest.fixture(autouse=True, params=["openai", "aiohttp"])
def _client(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs with openai.AsyncOpenAI and with the lean aiohttp transport."""
    CLIENT["name"] = request.param
    yield request.param
    CLIENT["name"] = "openai"


@pytest.fixture(autouse=True)
def _reset(srv: ServerHandle) -> None:
    srv.control(reset=True, config={"api_key": None, "models": ["deepseek-reasoner", "deepseek-chat"],
                                    "tokens_per_reply": 120, "latency": 0.0, "fault_rates": {},
                                    "timeout_hold": 30.0, "retry_after": 1.0})  # fmt: skip


def _run(tmp: Path, prompts: list[dict[str, Any]], teachers: list[dict[str, Any]], **gen: Any) -> tuple[list[dict[str, Any]], Path]:
    work = tmp / "w"
    write_prompts(work, prompts)
    recipe = write_recipe(tmp, {"teachers": teachers, **gen})
    run_generate(load_recipe(recipe), WorkDir(work))
    return _replies(work), work


def _replies(work: Path) -> list[dict[str, Any]]:
    files = sorted((work / "generate" / "replies").glob("part-*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def _by_text(rows: list[dict[str, Any]], prompts: list[str]) -> dict[str, dict[str, Any]]:
    from builder.rows import prompt_id_for

    ids = {prompt_id_for([{"role": "user", "content": p}], None): p for p in prompts}
    return {ids[r["prompt_id"]]: r for r in rows}


def test_every_reasoning_shape_is_stored_whole(srv: ServerHandle, tmp_path: Path) -> None:
    texts = [f"@@scenario: {s}\nTell me about apples number {i}." for i, s in enumerate(SCENARIOS)]
    rows, work = _run(tmp_path, [{"text": t} for t in texts], [openai_teacher(srv.base_url)])
    got = _by_text(rows, texts)
    assert len(rows) == len(SCENARIOS)
    rc = got[texts[SCENARIOS.index("reasoning_content")]]
    assert rc["status"] == "ok" and rc["reasoning_content"].startswith("Okay, the question is about")
    assert rc["content"] and rc["reasoning"] is None and rc["finish_reason"] == "stop"
    assert rc["reasoning_tokens"] > 0 and rc["completion_tokens"] >= rc["reasoning_tokens"] and rc["prompt_tokens"] > 0
    assert rc["served_model"] == "deepseek-reasoner" and rc["endpoint_kind"] == "openai" and rc["attempts"] == 1
    assert rc["latency_s"] >= 0 and rc["max_tokens"] == 4096
    assert json.loads(rc["sampling_json"]) == {"max_tokens": 4096, "temperature": 0.6, "top_p": 0.95}
    assert got[texts[SCENARIOS.index("reasoning")]]["reasoning"].startswith("Okay")
    assert got[texts[SCENARIOS.index("inline_think")]]["content"].startswith("<think>\n")
    no_open = got[texts[SCENARIOS.index("inline_no_open")]]["content"]
    assert "</think>" in no_open and not no_open.startswith("<think>")
    assert got[texts[SCENARIOS.index("think_and_answer_tags")]]["content"].startswith("<think>")
    assert got[texts[SCENARIOS.index("plain")]]["reasoning_content"] is None
    null = got[texts[SCENARIOS.index("length_null")]]
    assert null["finish_reason"] == "length" and null["content"] is None and null["reasoning_content"]
    assert got[texts[SCENARIOS.index("length_partial")]]["finish_reason"] == "length"
    ledger = pq.read_table(work / "generate" / "ledger.parquet").to_pylist()
    assert len(ledger) == len(SCENARIOS) and all(r["status"] == "kept" for r in ledger)


def test_paper_prompting_and_templates_on_the_wire(srv: ServerHandle, tmp_path: Path) -> None:
    prompts = [
        {"text": "What is 2+2?", "category": "math"},
        {"text": "Write a function that adds.", "category": "code"},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                      {"role": "user", "content": "Tell me a fact."}, {"role": "assistant", "content": "old answer"}],
         "category": "multi_turn"},
    ]  # fmt: skip
    rows, _ = _run(tmp_path, prompts, [openai_teacher(srv.base_url)])
    by_cat = {r["prompt_template_id"]: r for r in rows}
    assert set(by_cat) == {"r1-math", "r1-code", "r1-system"}
    assert all(len(r["prompt_template_hash"]) == 64 for r in rows)
    # The server counts requests by a hash of the messages as sent: rebuild them exactly.
    from builder.teachers.prompting import build_messages, load_template
    from tests.generate_helpers import PROMPTS_DIR
    from tests.servers.openai_server import prompt_hash

    math_sent = build_messages([{"role": "user", "content": "What is 2+2?"}], load_template(PROMPTS_DIR / "r1-math.yaml"))
    assert math_sent[0]["content"].endswith("<think> reasoning process here </think> <answer> answer here </answer>.")
    assert math_sent[1]["content"] == "What is 2+2?\n\nLet's think step by step and output the final answer within \\boxed{}."
    code_sent = build_messages([{"role": "user", "content": "x"}], load_template(PROMPTS_DIR / "r1-code.yaml"))
    assert code_sent[1]["content"].endswith("output the final answer within\n```python\nyour code\n```")
    multi = build_messages(prompts[2]["messages"], load_template(PROMPTS_DIR / "r1-system.yaml"))
    assert [m["role"] for m in multi] == ["system", "user", "assistant", "user"]  # reply to the last user turn
    by_prompt = srv.stats()["by_prompt"]
    assert by_prompt.get(prompt_hash(math_sent)) == 1 and by_prompt.get(prompt_hash(multi)) == 1


def test_429_retry_after_is_honoured_and_counted(srv: ServerHandle, tmp_path: Path) -> None:
    texts = ["@@fault: 429 x2\n@@retry_after: 0.5\nrate limited question"]
    t0 = time.monotonic()
    rows, work = _run(tmp_path, [{"text": t} for t in texts], [openai_teacher(srv.base_url)])
    took = time.monotonic() - t0
    assert rows[0]["status"] == "ok" and rows[0]["attempts"] == 3
    assert took >= 1.0  # two Retry-After waits of 0.5 s, though the backoff cap is 0.2 s
    assert srv.stats()["by_status"] == {"429": 2, "200": 1}
    total = json.loads((work / "generate" / "summary.json").read_text())["accounting"][0]["total"]
    assert total["requests"] == 3 and total["retried"] == 2


def test_5xx_timeouts_drops_and_malformed_bodies_are_retried(srv: ServerHandle, tmp_path: Path) -> None:
    srv.control(config={"timeout_hold": 5.0})
    texts = ["@@fault: 500 x2\na", "@@fault: 503 x1\nb", "@@fault: timeout x1\nc", "@@fault: drop x1\nd",
             "@@fault: malformed x1\ne"]  # fmt: skip
    teacher = openai_teacher(srv.base_url, limits={"timeout_s": 1.0})
    rows, _ = _run(tmp_path, [{"text": t} for t in texts], [teacher])
    got = _by_text(rows, texts)
    assert all(r["status"] == "ok" for r in rows), [(r["error_code"], r["error_message"]) for r in rows]
    assert [got[t]["attempts"] for t in texts] == [3, 2, 2, 2, 2]
    assert srv.stats()["by_fault"] == {"500": 2, "503": 1, "timeout": 1, "drop": 1, "malformed": 1}


def test_exhausted_retries_fail_with_a_reason_and_are_retried_on_rerun(srv: ServerHandle, tmp_path: Path) -> None:
    texts = ["@@fault: 500 x3\nstubborn", "fine"]
    teacher = openai_teacher(srv.base_url, limits={"max_attempts": 2})
    rows, work = _run(tmp_path, [{"text": t} for t in texts], [teacher])
    got = _by_text(rows, texts)
    assert got[texts[0]]["status"] == "failed" and got[texts[0]]["error_code"] == "server_error"
    assert got[texts[0]]["attempts"] == 2
    ledger = {r["reason"] for r in pq.read_table(work / "generate" / "ledger.parquet").to_pylist()}
    assert "failed:server_error" in ledger
    # Re-run: the transient failure is requested again (attempt 3 fails, 4 succeeds); "fine" is not.
    run_generate(load_recipe(tmp_path / "recipe.yaml"), WorkDir(work))
    got = _by_text(_replies(work), texts)
    assert got[texts[0]]["status"] == "ok" and got[texts[0]]["attempts"] == 4  # every attempt counted
    assert srv.stats()["requests_total"] == 5


def test_permanent_errors_are_recorded_not_retried(srv: ServerHandle, tmp_path: Path) -> None:
    texts = ["@@fault: content_filter\nforbidden", "@@fault: context_length\nhuge", "@@bogus: 1\nbad directive"]
    rows, work = _run(tmp_path, [{"text": t} for t in texts], [openai_teacher(srv.base_url)])
    got = _by_text(rows, texts)
    assert got[texts[0]]["error_code"] == "content_filter" and got[texts[0]]["finish_reason"] == "content_filter"
    assert got[texts[1]]["error_code"] == "context_length_exceeded" and "maximum context length" in got[texts[1]]["error_message"]
    assert got[texts[2]]["error_code"] == "bad_request"
    assert all(r["status"] == "failed" and r["attempts"] == 1 for r in rows)
    assert srv.stats()["requests_total"] == 3
    reasons = {r["reason"] for r in pq.read_table(work / "generate" / "ledger.parquet").to_pylist()}
    assert reasons == {"content_filter", "context_length_exceeded", "failed:bad_request"}
    run_generate(load_recipe(tmp_path / "recipe.yaml"), WorkDir(work))  # permanent: never re-sent
    assert srv.stats()["requests_total"] == 3


def test_prompt_over_context_is_one_failed_row(srv: ServerHandle, tmp_path: Path) -> None:
    srv.control(config={"max_context_tokens": 200})
    texts = ["short question", "long " * 400]
    rows, _ = _run(tmp_path, [{"text": t} for t in texts], [openai_teacher(srv.base_url)])
    got = _by_text(rows, texts)
    assert got[texts[0]]["status"] == "ok"
    assert got[texts[1]]["error_code"] == "context_length_exceeded" and got[texts[1]]["attempts"] == 1


def test_truncation_ladder_retries_only_truncated_replies(srv: ServerHandle, tmp_path: Path) -> None:
    texts = ["@@tokens: 100\nshort one", "@@tokens: 700\nlong one", "@@tokens: 5000\nendless one"]
    teacher = openai_teacher(srv.base_url, sampling={"max_tokens": 200, "truncation_ladder": [400, 800]})
    rows, work = _run(tmp_path, [{"text": t} for t in texts], [teacher])
    got = _by_text(rows, texts)
    assert (got[texts[0]]["max_tokens"], got[texts[0]]["attempts"], got[texts[0]]["finish_reason"]) == (200, 1, "stop")
    assert (got[texts[1]]["max_tokens"], got[texts[1]]["attempts"], got[texts[1]]["finish_reason"]) == (800, 3, "stop")
    assert (got[texts[2]]["max_tokens"], got[texts[2]]["attempts"], got[texts[2]]["finish_reason"]) == (800, 3, "length")
    assert json.loads(got[texts[1]]["sampling_json"])["max_tokens"] == 800
    assert srv.stats()["requests_total"] == 7
    book = json.loads((work / "generate" / "summary.json").read_text())["accounting"][0]
    assert book["total"]["records"] == 7  # superseded truncated replies were paid for and are counted
    # A longer ladder in the recipe continues from the stored 800, not from scratch.
    teacher["sampling"]["truncation_ladder"] = [400, 800, 1600]
    write_recipe(tmp_path, {"teachers": [teacher]})
    run_generate(load_recipe(tmp_path / "recipe.yaml"), WorkDir(work))
    got = _by_text(_replies(work), texts)
    assert got[texts[2]]["max_tokens"] == 1600 and srv.stats()["requests_total"] == 8


def test_samples_seed_and_prices(srv: ServerHandle, tmp_path: Path) -> None:
    teacher = openai_teacher(srv.base_url, samples=3, sampling={"seed": 7})
    prices = {"deepseek-reasoner": {"input_per_1m": 1.0, "output_per_1m": 10.0}}
    rows, work = _run(tmp_path, [{"text": "one", "source": "s1"}, {"text": "two", "source": "s2", "category": "math"}],
                      [teacher], prices=prices)  # fmt: skip
    assert sorted(r["sample_index"] for r in rows) == [0, 0, 1, 1, 2, 2]
    assert len({r["generation_id"] for r in rows}) == 6
    assert all(json.loads(r["sampling_json"])["seed"] == 7 + r["sample_index"] for r in rows)
    assert len({r["content"] for r in rows}) == 6  # each sample its own seed, so its own reply
    book = json.loads((work / "generate" / "summary.json").read_text())["accounting"][0]
    total = book["total"]
    assert total["cost_usd"] == pytest.approx((total["prompt_tokens"] * 1.0 + total["completion_tokens"] * 10.0) / 1e6)
    assert set(book["by_source"]) == {"s1", "s2"} and set(book["by_category"]) == {"chat", "math"}
    assert len(book["by_run"]) == 1


def test_endpoints_are_load_balanced(tmp_path: Path) -> None:
    with run_server(latency=0.05, tokens_per_reply=50) as a, run_server(latency=0.05, tokens_per_reply=50) as b:
        teacher = openai_teacher(a.base_url, endpoints=[{"base_url": a.base_url}, {"base_url": b.base_url}])
        rows, _ = _run(tmp_path, [{"text": f"q{i}"} for i in range(40)], [teacher])
        na, nb = a.stats()["requests_total"], b.stats()["requests_total"]
    assert len(rows) == 40 and na + nb == 40 and min(na, nb) >= 10


def test_requests_per_minute_limit(srv: ServerHandle, tmp_path: Path) -> None:
    teacher = openai_teacher(srv.base_url, limits={"requests_per_minute": 600})  # 10/s, 1 s burst
    t0 = time.monotonic()
    rows, _ = _run(tmp_path, [{"text": f"q{i}"} for i in range(25)], [teacher])
    assert len(rows) == 25 and time.monotonic() - t0 >= 1.4  # 10 at once, then 15 more at 10/s


def test_planted_api_key_never_leaks(
    srv: ServerHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "pl4nted-S3CRET-value-9f8e7d6c5b4a"
    srv.control(config={"api_key": key})
    monkeypatch.setenv("TEACHER_CRED", key)  # a name without KEY/TOKEN: our own scrub must catch it
    texts = ["@@fault: 500 x1\nx", "@@fault: context_length\ny", "z"]
    teacher = openai_teacher(srv.base_url, endpoints=[{"base_url": srv.base_url, "api_key_env": "TEACHER_CRED"}],
                             limits={"fail_fast_after": 2})  # fmt: skip
    rows, work = _run(tmp_path, [{"text": t} for t in texts], [teacher])
    assert sum(r["status"] == "ok" for r in rows) == 2
    # The server now wants another key: the one we send is refused, and must not show up anywhere.
    srv.control(config={"api_key": "a-different-key-000000"})
    work2 = tmp_path / "w2"
    write_prompts(work2, [{"text": f"again {i}"} for i in range(5)])
    with pytest.raises(UserError) as e:
        run_generate(load_recipe(tmp_path / "recipe.yaml"), WorkDir(work2))
    out = capsys.readouterr()
    assert key not in str(e.value) and key not in out.out + out.err
    files = [f for w in (work, work2) for f in w.rglob("*") if f.is_file()]
    assert len(files) > 5
    for f in files:
        assert key.encode() not in f.read_bytes(), f
    assert any(r["error_code"] == "auth_failed" for r in _replies(work2))


def test_wrong_key_fails_fast_with_one_line(srv: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv.control(config={"api_key": "right-key-123456"})
    monkeypatch.setenv("MY_TEACHER_KEY", "wrong-key-654321")
    teacher = openai_teacher(srv.base_url, endpoints=[{"base_url": srv.base_url, "api_key_env": "MY_TEACHER_KEY"}],
                             limits={"concurrency": 2, "fail_fast_after": 4})  # fmt: skip
    work = tmp_path / "w"
    write_prompts(work, [{"text": f"q{i}"} for i in range(50)])
    recipe = write_recipe(tmp_path, {"teachers": [teacher]})
    with pytest.raises(UserError) as e:
        run_generate(load_recipe(recipe), WorkDir(work))
    msg = str(e.value)
    assert "refused the API key" in msg and "\n" not in msg and "wrong-key-654321" not in msg
    assert srv.stats()["requests_total"] <= 6  # stopped after 4 in a row (+ the other slot in flight)
    rows = _replies(work)
    assert len(rows) == 50 and all(r["status"] == "failed" for r in rows)
    codes = {r["error_code"] for r in rows}
    assert codes == {"auth_failed", "not_attempted"}


def test_missing_key_variable_is_a_user_error(srv: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABSENT_TEACHER_KEY", raising=False)
    teacher = openai_teacher(srv.base_url, endpoints=[{"base_url": srv.base_url, "api_key_env": "ABSENT_TEACHER_KEY"}])
    with pytest.raises(UserError, match="ABSENT_TEACHER_KEY.*is not set"):
        _run(tmp_path, [{"text": "q"}], [teacher])


def test_unknown_model_fails_fast(srv: ServerHandle, tmp_path: Path) -> None:
    teacher = openai_teacher(srv.base_url, model="no-such-model", limits={"concurrency": 1, "fail_fast_after": 3})
    with pytest.raises(UserError, match="does not serve model 'no-such-model'"):
        _run(tmp_path, [{"text": f"q{i}"} for i in range(10)], [teacher])
    assert srv.stats()["requests_total"] == 3


def test_no_endpoint_reachable(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    teacher = openai_teacher(f"http://127.0.0.1:{port}/v1", limits={"concurrency": 4, "fail_fast_after": 4})
    t0 = time.monotonic()
    with pytest.raises(UserError, match=f"cannot reach http://127.0.0.1:{port}/v1"):
        _run(tmp_path, [{"text": f"q{i}"} for i in range(10)], [teacher])
    assert time.monotonic() - t0 < 10


def test_recipe_without_teacher(tmp_path: Path) -> None:
    write_prompts(tmp_path / "w", [{"text": "q"}])
    with pytest.raises(UserError, match="no generate.teachers"):
        run_generate(load_recipe(write_recipe(tmp_path, None)), WorkDir(tmp_path / "w"))
    with pytest.raises(UserError, match="no generate.teachers"):
        run_generate(load_recipe(write_recipe(tmp_path, {"teachers": []})), WorkDir(tmp_path / "w"))


def test_missing_curate_output(tmp_path: Path, srv: ServerHandle) -> None:
    recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url)]})
    with pytest.raises(UserError, match="run `answer-distill curate` first"):
        run_generate(load_recipe(recipe), WorkDir(tmp_path / "empty"))


def test_the_teachers_own_tool_calls_are_stored(srv: ServerHandle, tmp_path: Path) -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Bern"}'}}]
    srv.control(script=[{"match": "Weather in Bern", "steps": [{"content": None, "tool_calls": calls,
                                                                 "finish_reason": "tool_calls"}]}])  # fmt: skip
    rows, _ = _run(tmp_path, [{"text": "Weather in Bern?"}, {"text": "Tell me about pears."}], [openai_teacher(srv.base_url)])
    got = _by_text(rows, ["Weather in Bern?", "Tell me about pears."])
    called = got["Weather in Bern?"]
    assert called["status"] == "ok" and called["finish_reason"] == "tool_calls" and called["content"] is None
    assert json.loads(called["tool_calls_json"]) == calls
    assert got["Tell me about pears."]["tool_calls_json"] is None
