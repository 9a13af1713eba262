"""Provider answers a paying team meets mid-run (DeepSeek's documented error codes), through the
loopback server: what is stored, what the run says, and what a re-run asks again."""

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
from tests.servers.openai_server import ServerHandle, run_server


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerHandle]:
    with run_server(tokens_per_reply=60) as handle:
        yield handle


@pytest.fixture(autouse=True, params=["openai", "aiohttp"])
def _client(request: pytest.FixtureRequest, srv: ServerHandle) -> Iterator[str]:
    CLIENT["name"] = request.param
    srv.control(reset=True, config={"api_key": None, "models": [], "tokens_per_reply": 60, "latency": 0.0,
                                    "fault_rates": {}})  # fmt: skip
    yield request.param
    CLIENT["name"] = "openai"


def _replies(work: Path) -> dict[str, dict[str, Any]]:
    rows = [r for f in sorted((work / "generate" / "replies").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    return {r["prompt_id"]: r for r in rows}


def test_out_of_balance_stops_the_run_and_a_rerun_asks_the_rest(srv: ServerHandle, tmp_path: Path) -> None:
    # DeepSeek answers 402 "Insufficient Balance" once the account is empty: every later request
    # would be refused too. The run must stop, and a re-run after a top-up must ask what is missing.
    texts = [f"prompt-{i:02d} tell me something" for i in range(10)]
    body = {"error": {"message": "Insufficient Balance", "type": "unknown_error", "param": None, "code": "invalid_request_error"}}
    srv.control(script=[{"match": "prompt-05", "steps": [{"status": 402, "body": body}]}])
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": t} for t in texts])
    recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url, limits={"concurrency": 1})]})
    with pytest.raises(UserError, match="402") as e:
        run_generate(load_recipe(recipe), WorkDir(work))
    assert "\n" not in str(e.value) and "top up" in str(e.value)
    assert srv.stats()["requests_total"] == 6  # nothing sent after the 402
    got = _replies(work)
    assert got[ids[5]]["error_code"] == "insufficient_balance"
    assert {got[i]["error_code"] for i in ids[6:]} == {"not_attempted"}
    # Topped up (the script is spent): the re-run asks the refused prompt and the rest, nothing else.
    run_generate(load_recipe(recipe), WorkDir(work))
    got = _replies(work)
    assert all(got[i]["status"] == "ok" for i in ids), [(got[i]["error_code"]) for i in ids]
    assert srv.stats()["requests_total"] == 11  # 6, then prompts 5..9


def test_a_refused_max_tokens_stops_early_and_the_fixed_recipe_asks_again(srv: ServerHandle, tmp_path: Path) -> None:
    # DeepSeek refuses max_tokens over its limit with a 400. A recipe asking 100000 must stop after
    # fail_fast_after refusals (not send every prompt), and once max_tokens is lowered, as the ledger
    # hint says, the refused prompts are asked again: their stored 400 belonged to the old request.
    srv.control(config={"max_output_tokens": 65536})
    texts = [f"prompt-{i:02d} tell me something" for i in range(12)]
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": t} for t in texts])
    too_big = openai_teacher(srv.base_url, sampling={"max_tokens": 100000}, limits={"concurrency": 1, "fail_fast_after": 3})
    recipe = write_recipe(tmp_path, {"teachers": [too_big]})
    with pytest.raises(UserError, match="max_tokens") as e:
        run_generate(load_recipe(recipe), WorkDir(work))
    assert "\n" not in str(e.value)
    assert srv.stats()["requests_total"] == 3
    recipe = write_recipe(tmp_path, {"teachers": [{**too_big, "sampling": {"max_tokens": 8192}}]})
    run_generate(load_recipe(recipe), WorkDir(work))
    got = _replies(work)
    assert all(got[i]["status"] == "ok" and got[i]["max_tokens"] == 8192 for i in ids), [got[i]["error_code"] for i in ids]
    assert srv.stats()["requests_total"] == 3 + 12


def test_a_billed_reply_with_no_choices_still_counts_its_tokens(srv: ServerHandle, tmp_path: Path) -> None:
    # A 200 whose choices are empty (a provider-side filter) is unusable but billed by its usage:
    # the failed row and the summary's cost must carry those tokens.
    body = {"id": "x", "object": "chat.completion", "model": "deepseek-reasoner", "choices": [],
            "usage": {"prompt_tokens": 20, "completion_tokens": 3000, "completion_tokens_details": {"reasoning_tokens": 2900}}}  # fmt: skip
    srv.control(script=[{"match": "prompt-00", "steps": [{"status": 200, "body": body}]}])
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": "prompt-00 tell me something"}])
    prices = {"deepseek-reasoner": {"input_per_1m": 1.0, "output_per_1m": 2.0}}
    recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url)], "prices": prices})
    run_generate(load_recipe(recipe), WorkDir(work))
    row = _replies(work)[ids[0]]
    assert row["error_code"] == "bad_reply_shape" and row["completion_tokens"] == 3000 and row["reasoning_tokens"] == 2900
    total = json.loads((work / "generate" / "summary.json").read_text())["accounting"][0]["total"]
    assert total["completion_tokens"] == 3000 and total["cost_usd"] == pytest.approx((20 * 1.0 + 3000 * 2.0) / 1e6)


def test_attempts_made_before_an_abort_are_accounted(srv: ServerHandle, tmp_path: Path) -> None:
    # One request is between retries (a 500, backing off) when another gets a 402 and the run
    # stops: the summary's request count must still equal what the server received.
    texts = ["@@fault: 500\nprompt-A tell me something", "prompt-B1 fine\n@@latency: 0.3", "prompt-B2 refused"]
    srv.control(script=[{"match": "prompt-B2", "steps": [{"status": 402}]}])
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": t} for t in texts])
    teacher = openai_teacher(srv.base_url, limits={"concurrency": 2, "backoff_base_s": 1.0, "backoff_max_s": 1.0})
    recipe = write_recipe(tmp_path, {"teachers": [teacher]})
    with pytest.raises(UserError, match="402"):
        run_generate(load_recipe(recipe), WorkDir(work))
    sent = srv.stats()["requests_total"]
    total = json.loads((work / "generate" / "summary.json").read_text())["accounting"][0]["total"]
    assert total["requests"] == sent
    row = _replies(work)[ids[0]]
    assert row["error_code"] == "server_error" and row["attempts"] >= 1


def test_replies_without_usage_are_said_to_be_missing_from_the_cost(srv: ServerHandle, tmp_path: Path) -> None:
    # A proxy that drops `usage`: the reply is kept, but the summary must not pass its cost as complete.
    body = {"id": "x", "object": "chat.completion", "model": "deepseek-reasoner",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "4",
                                                                          "reasoning_content": "2+2"}}]}  # fmt: skip
    srv.control(script=[{"match": "prompt-00", "steps": [{"status": 200, "body": body}]}])
    work = tmp_path / "w"
    write_prompts(work, [{"text": "prompt-00 tell me something"}, {"text": "prompt-01 tell me more"}])
    prices = {"deepseek-reasoner": {"input_per_1m": 1.0, "output_per_1m": 2.0}}
    recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url)], "prices": prices})
    run_generate(load_recipe(recipe), WorkDir(work))
    summary = json.loads((work / "generate" / "summary.json").read_text())
    assert any("1 stored replies came without usage" in w for w in summary["warnings"]), summary["warnings"]


def test_a_later_teachers_template_typo_is_found_before_anything_is_paid(srv: ServerHandle, tmp_path: Path) -> None:
    first = openai_teacher(srv.base_url)
    second = openai_teacher(srv.base_url, name="r1-again", model="deepseek-chat", templates={"default": "r1-sytem"})
    work = tmp_path / "w"
    write_prompts(work, [{"text": f"prompt-{i:02d} tell me something"} for i in range(3)])
    recipe = write_recipe(tmp_path, {"teachers": [first, second]})
    with pytest.raises(UserError, match="r1-sytem"):
        run_generate(load_recipe(recipe), WorkDir(work))
    assert srv.stats()["requests_total"] == 0


def test_check_names_a_misspelt_template_before_the_build(srv: ServerHandle, tmp_path: Path) -> None:
    from builder.check import run_check

    srv.control(config={"models": ["deepseek-reasoner"]})  # GET /models lists the teachers' model
    second = openai_teacher(srv.base_url, name="r1-again", templates={"math": "r1-maht"})
    report = run_check(load_recipe(write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url), second]})))
    assert any("teachers[r1-again].templates.math" in p and "'r1-maht' not found" in p for p in report.problems), report.problems
    assert len(report.problems) == 1


def test_check_reads_the_templates_each_teacher_is_prompted_with(tmp_path: Path) -> None:
    """An import-only recipe is stamped with `plain`, never the default `r1-system`: check asks for
    `plain` (generate loads it) and not for the reasoning template no teacher of it uses."""
    from builder.check import CheckReport, check_files

    (tmp_path / "prompts").mkdir()
    (tmp_path / "r.jsonl").write_text('{"id": "1", "a": "yes"}\n')
    teacher = {"name": "imp", "kind": "import", "model": "m",
               "imports": [{"source": "demo", "path": str(tmp_path / "r.jsonl"), "id_field": "id", "answer": "a"}]}
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [teacher], "prompts_dir": str(tmp_path / "prompts")}))
    report = CheckReport()
    check_files(recipe, report)
    missing = [p for p in report.problems if "prompt template" in p]
    assert len(missing) == 1 and "teachers[imp] (import): prompt template 'plain' not found" in missing[0], missing


def test_a_reply_the_provider_interrupted_is_failed_and_asked_again(srv: ServerHandle, tmp_path: Path) -> None:
    # DeepSeek ends a reply cut by its own resource shortage with finish_reason
    # "insufficient_system_resource": not an answer, and not final either.
    step = {"reasoning_content": "Let me think about", "content": "The answer is", "finish_reason": "insufficient_system_resource"}
    srv.control(script=[{"match": "prompt-00", "steps": [step]}])
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": "prompt-00 tell me something"}])
    recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url)]})
    run_generate(load_recipe(recipe), WorkDir(work))
    row = _replies(work)[ids[0]]
    assert row["status"] == "failed" and row["error_code"] == "insufficient_system_resource" and row["completion_tokens"]
    run_generate(load_recipe(recipe), WorkDir(work))
    assert _replies(work)[ids[0]]["status"] == "ok" and srv.stats()["requests_total"] == 2


def test_a_refusal_that_echoes_the_key_never_leaks_it(srv: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-planted-0123456789abcdef"
    monkeypatch.setenv("PROVIDER_KEY", key)
    body = {"error": {"message": f"Invalid parameter for key {key}", "type": "invalid_request_error", "code": None}}
    srv.control(script=[{"match": "prompt-", "steps": [{"status": 400, "body": body}] * 3}])
    work = tmp_path / "w"
    write_prompts(work, [{"text": f"prompt-{i:02d} tell me something"} for i in range(5)])
    teacher = openai_teacher(srv.base_url, endpoints=[{"base_url": srv.base_url, "api_key_env": "PROVIDER_KEY"}],
                             limits={"concurrency": 1, "fail_fast_after": 3})  # fmt: skip
    with pytest.raises(UserError) as e:
        run_generate(load_recipe(write_recipe(tmp_path, {"teachers": [teacher]})), WorkDir(work))
    assert key not in str(e.value) and "rejected the request" in str(e.value)
    for f in (work / "generate").rglob("*"):
        if f.is_file():
            assert key.encode() not in f.read_bytes(), f


def _in_a_day() -> str:
    import email.utils

    return email.utils.formatdate(time.time() + 86400, usegmt=True)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("retry_after", ["86400", "http-date"])
def test_a_day_long_retry_after_is_capped_said_and_asked_again(srv: ServerHandle, tmp_path: Path, retry_after: str) -> None:
    # A provider answering 429 with Retry-After: 86400 (or an HTTP date a day away) must not stall
    # the run for a day in silence: each wait is held to limits.retry_after_max_s, the run says so, and
    # a prompt refused on every attempt ends as a retryable failure that a re-run asks again.
    value = _in_a_day() if retry_after == "http-date" else retry_after
    refusal = {"status": 429, "headers": {"Retry-After": value},
               "body": {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": None}}}  # fmt: skip
    srv.control(script=[{"match": "prompt-00", "steps": [refusal] * 3}])
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": "prompt-00 tell me something"}, {"text": "prompt-01 tell me more"}])
    teacher = openai_teacher(srv.base_url, limits={"max_attempts": 3, "retry_after_max_s": 0.3})
    recipe = write_recipe(tmp_path, {"teachers": [teacher]})
    started = time.monotonic()
    run_generate(load_recipe(recipe), WorkDir(work))
    assert time.monotonic() - started < 20
    got = _replies(work)
    assert got[ids[0]]["error_code"] == "rate_limited" and got[ids[0]]["attempts"] == 3
    assert got[ids[1]]["status"] == "ok"
    warnings = json.loads((work / "generate" / "summary.json").read_text())["warnings"]
    said = [w for w in warnings if "asked to wait" in w]
    assert len(said) == 1 and "retry_after_max_s = 0.3 s" in said[0] and "\n" not in said[0], warnings
    run_generate(load_recipe(recipe), WorkDir(work))  # the script is spent: the provider answers now
    assert _replies(work)[ids[0]]["status"] == "ok" and srv.stats()["requests_total"] == 3 + 1 + 1


@pytest.mark.timeout(60)
def test_a_capped_wait_in_a_datatrove_task_reaches_the_summary(srv: ServerHandle, tmp_path: Path) -> None:
    refusal = {"status": 429, "headers": {"Retry-After": "86400"}}
    srv.control(script=[{"match": "prompt-03", "steps": [refusal]}])
    work = tmp_path / "w"
    write_prompts(work, [{"text": f"prompt-{i:02d} tell me something"} for i in range(6)])
    teacher = openai_teacher(srv.base_url, limits={"retry_after_max_s": 0.1})
    recipe = write_recipe(tmp_path, {"teachers": [teacher], "tasks": 2}, executor={"kind": "local", "tasks": 2, "workers": 2})
    run_generate(load_recipe(recipe), WorkDir(work))
    assert all(r["status"] == "ok" for r in _replies(work).values())
    warnings = json.loads((work / "generate" / "summary.json").read_text())["warnings"]
    assert sum("asked to wait 86,400 s" in w for w in warnings) == 1, warnings
    assert not list((work / "generate" / "store" / "r1").glob("warnings-*.txt"))


# 200 answers carrying an error object, as OpenAI-compatible gateways send them.
_RATE = {"error": {"message": "Rate limit exceeded: free-models-per-min", "code": 429}}  # OpenRouter
_OVERLOAD = {"error": {"message": "Overloaded", "type": "overloaded_error"}}
_INVALID = {"error": {"message": "Invalid max_tokens value, the valid range is [1, 8192]",
                      "type": "invalid_request_error", "param": None, "code": "invalid_request_error"}}  # fmt: skip
_BALANCE = {"error": {"message": "Insufficient Balance", "type": "unknown_error", "param": None,
                      "code": "invalid_request_error"}}  # fmt: skip


@pytest.mark.parametrize("body", [_RATE, _OVERLOAD], ids=["rate_limit", "overload"])
def test_a_200_rate_limit_or_overload_error_body_is_retried(srv: ServerHandle, tmp_path: Path, body: dict[str, Any]) -> None:
    srv.control(script=[{"match": "prompt-00", "steps": [{"status": 200, "body": body}]}])
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": "prompt-00 tell me something"}])
    run_generate(load_recipe(write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url)]})), WorkDir(work))
    row = _replies(work)[ids[0]]
    assert row["status"] == "ok" and row["attempts"] == 2, (row["error_code"], row["error_message"])


def test_a_200_invalid_request_error_body_is_a_bad_request(srv: ServerHandle, tmp_path: Path) -> None:
    # Refused as the 400 it stands for: a permanent failure that a re-run of the same recipe does not pay for again.
    srv.control(script=[{"match": "prompt-00", "steps": [{"status": 200, "body": _INVALID}]}])
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": "prompt-00 tell me something"}, {"text": "prompt-01 tell me more"}])
    recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url, limits={"concurrency": 1})]})
    run_generate(load_recipe(recipe), WorkDir(work))
    got = _replies(work)
    assert got[ids[0]]["error_code"] == "bad_request" and got[ids[0]]["attempts"] == 1
    assert "Invalid max_tokens" in got[ids[0]]["error_message"] and got[ids[1]]["status"] == "ok"
    run_generate(load_recipe(recipe), WorkDir(work))
    assert srv.stats()["requests_total"] == 2


def test_a_200_insufficient_balance_error_body_stops_the_run(srv: ServerHandle, tmp_path: Path) -> None:
    texts = [f"prompt-{i:02d} tell me something" for i in range(5)]
    srv.control(script=[{"match": "prompt-02", "steps": [{"status": 200, "body": _BALANCE}]}])
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": t} for t in texts])
    recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url, limits={"concurrency": 1})]})
    with pytest.raises(UserError, match="top up"):
        run_generate(load_recipe(recipe), WorkDir(work))
    assert srv.stats()["requests_total"] == 3
    got = _replies(work)
    assert got[ids[2]]["error_code"] == "insufficient_balance"
    assert {got[i]["error_code"] for i in ids[3:]} == {"not_attempted"}


def test_error_bodies_are_read_as_the_status_they_stand_for() -> None:
    from builder.teachers.error_reply import error_reply

    def status(body: Any) -> int | None:
        got = error_reply(body)
        return None if got is None else got.status_code

    assert [status(b) for b in (_RATE, _OVERLOAD, _INVALID, _BALANCE)] == [429, 503, 400, 402]
    assert status({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota"}}) == 429
    assert status({"error": {"message": "context length exceeded", "code": "context_length_exceeded"}}) == 400
    assert status({"error": "Too Many Requests"}) == 429
    assert status({"error": {"message": "something odd"}}) == 500  # unknown: retried, not final
    assert status({"choices": [{"message": {"content": "hi"}}], "error": None}) is None
    assert status({"choices": []}) is None  # no error object: the reply-shape checks decide
    assert status({"error": {"code": " 402 ", "message": "x"}}) == 402  # a status sent as a string of digits
    assert status({"error": {"code": True, "message": "rate limit"}}) == 429  # a bool is no status: the words decide
    assert status({"error": {"code": 200, "message": "overloaded"}}) == 503  # a non-error number neither
