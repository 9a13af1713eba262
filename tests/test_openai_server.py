"""Tests of the loopback OpenAI-compatible test server, driven by the real openai client.

How reasoning fields arrive in openai 3.x: `ChatCompletionMessage` does not declare
`reasoning_content` / `reasoning`, but its pydantic config allows extras, so they are in
`message.model_extra` and also readable as attributes (`getattr(msg, "reasoning_content")`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.servers.openai_server import (
    SCENARIOS,
    ServerHandle,
    prompt_hash,
    run_server,
    run_server_process,
)

MODEL = "deepseek-reasoner"
MATH = "How many apples are left? Let's think step by step and output the final answer within \\boxed{}."


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerHandle]:
    with run_server(tokens_per_reply=200) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _reset(srv: ServerHandle) -> None:
    srv.control(
        reset=True,
        config={
            "scenario": "reasoning_content",
            "latency": 0.0,
            "fault_rates": {},
            "api_key": None,
            "served_model": None,
            "max_context_tokens": 65536,
            "tokens_per_reply": 200,
            "timeout_hold": 30.0,
            "retry_after": 1.0,
        },
    )


def client(srv: ServerHandle, **kw: Any) -> openai.AsyncOpenAI:
    kw.setdefault("api_key", "sk-test")
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 10)
    return openai.AsyncOpenAI(base_url=srv.base_url, **kw)


def chat(srv: ServerHandle, content: str, client_kw: dict[str, Any] | None = None, **kw: Any) -> Any:
    async def go() -> Any:
        async with client(srv, **(client_kw or {})) as c:
            kw.setdefault("model", MODEL)
            return await c.chat.completions.create(messages=[{"role": "user", "content": content}], **kw)

    return asyncio.run(go())


def extra(msg: Any, name: str) -> Any:
    return (msg.model_extra or {}).get(name)


# ----------------------------------------------------------------------------- scenarios


def test_reasoning_content_shape_and_usage(srv: ServerHandle) -> None:
    r = chat(srv, MATH + "\n@@answer: 42")
    msg, choice = r.choices[0].message, r.choices[0]
    think = extra(msg, "reasoning_content")
    assert think and msg.reasoning_content == think  # type: ignore[attr-defined]  # extras
    assert msg.content.endswith("\\boxed{42}.")
    assert "@@" not in think + msg.content
    assert choice.finish_reason == "stop"
    u = r.usage
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert 0 < u.completion_tokens_details.reasoning_tokens < u.completion_tokens
    assert abs(u.completion_tokens - 200) <= 20
    assert r.model == MODEL


def test_reasoning_field(srv: ServerHandle) -> None:
    msg = chat(srv, "Why is the sky blue?\n@@scenario: reasoning").choices[0].message
    assert extra(msg, "reasoning") and extra(msg, "reasoning_content") is None
    assert msg.content and "<think>" not in msg.content


@pytest.mark.parametrize(
    ("scenario", "start", "middle"),
    [
        ("inline_think", "<think>\n", "\n</think>\n\n"),
        ("inline_no_open", "Okay", "\n</think>\n\n"),
        ("think_and_answer_tags", "<think>", "</think> <answer>"),
    ],
)
def test_inline_shapes(srv: ServerHandle, scenario: str, start: str, middle: str) -> None:
    msg = chat(srv, f"{MATH}\n@@scenario: {scenario}\n@@answer: 7").choices[0].message
    assert extra(msg, "reasoning_content") is None
    assert msg.content.startswith(start) and msg.content.count(middle) == 1
    assert msg.content.count("<think>") == (0 if scenario == "inline_no_open" else 1)
    tail = "\\boxed{7}.</answer>" if scenario == "think_and_answer_tags" else "\\boxed{7}."
    assert msg.content.endswith(tail)


def test_same_answer_across_shapes(srv: ServerHandle) -> None:
    base = chat(srv, "Explain recursion.").choices[0].message
    plain = chat(srv, "Explain recursion.\n@@scenario: plain").choices[0].message
    inline = chat(srv, "Explain recursion.\n@@scenario: inline_think").choices[0].message
    assert plain.content == base.content
    assert extra(plain, "reasoning_content") is None
    assert inline.content == f"<think>\n{extra(base, 'reasoning_content')}\n</think>\n\n{base.content}"


def test_length_null_and_partial(srv: ServerHandle) -> None:
    r = chat(srv, "Explain recursion.\n@@scenario: length_null")
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content is None and extra(r.choices[0].message, "reasoning_content")
    full = chat(srv, "Explain recursion.").choices[0].message
    r = chat(srv, "Explain recursion.\n@@scenario: length_partial")
    assert r.choices[0].finish_reason == "length"
    part = r.choices[0].message.content
    assert part and len(part) < len(full.content) and full.content.startswith(part)


def test_deterministic_and_prompt_derived(srv: ServerHandle) -> None:
    a1 = chat(srv, "Tell me about volcanoes.").choices[0].message
    a2 = chat(srv, "Tell me about volcanoes.").choices[0].message
    b = chat(srv, "Tell me about glaciers.").choices[0].message
    assert (a1.content, extra(a1, "reasoning_content")) == (
        a2.content,
        extra(a2, "reasoning_content"),
    )
    assert a1.content != b.content
    assert "volcanoes" in extra(a1, "reasoning_content")


def test_max_tokens_truncation_ladder(srv: ServerHandle) -> None:
    prompt = "Prove the claim.\n@@tokens: 400\n@@scenario: inline_think"
    short = chat(srv, prompt, max_tokens=100)
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens <= 100
    assert "</think>" not in short.choices[0].message.content
    long = chat(srv, prompt, max_tokens=1000)
    assert long.choices[0].finish_reason == "stop"
    assert long.choices[0].message.content.startswith(short.choices[0].message.content)
    # max_tokens cutting inside the thinking of a reasoning_content reply gives content null
    r = chat(srv, "Prove the claim.\n@@tokens: 400", max_completion_tokens=50)
    assert r.choices[0].finish_reason == "length" and r.choices[0].message.content is None


def test_n_choices_and_sampling_params(srv: ServerHandle) -> None:
    r = chat(srv, "Name a colour.", n=3, seed=5, temperature=0.6, top_p=0.95)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert len({c.message.content for c in r.choices}) == 3
    assert r.usage.completion_tokens >= 3 * 150


def test_served_model_name_is_reported(srv: ServerHandle) -> None:
    srv.control(config={"served_model": "deepseek-ai/DeepSeek-R1-0528"})
    assert chat(srv, "hi").model == "deepseek-ai/DeepSeek-R1-0528"


def test_judge_and_summary_replies(srv: ServerHandle) -> None:
    judge = chat(
        srv,
        "Please act as an impartial judge and rate the response on a scale of 1 to 10 "
        'by strictly following this format: "[[rating]]".\n@@scenario: plain\n@@rating: 8',
    )
    assert judge.choices[0].message.content.endswith("Rating: [[8]]")
    summary = (
        chat(
            srv,
            "Summarize the following reasoning: photosynthesis converts sunlight.\n@@scenario: plain",
        )
        .choices[0]
        .message.content
    )
    assert summary.startswith("The reasoning examines") and len(summary) < 200
    assert any(w in summary for w in ("photosynthesis", "converts", "sunlight", "reasoning"))


def test_streaming_matches_non_streaming(srv: ServerHandle) -> None:
    async def go() -> tuple[str, str, Any]:
        async with client(srv) as c:
            stream = await c.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Stream me."}],
                stream=True,
                stream_options={"include_usage": True},
            )
            think, content, usage = [], [], None
            async for chunk in stream:
                if chunk.usage:
                    usage = chunk.usage
                for ch in chunk.choices:
                    think.append(extra(ch.delta, "reasoning_content") or "")
                    content.append(ch.delta.content or "")
            return "".join(think), "".join(content), usage

    think, content, usage = asyncio.run(go())
    ref = chat(srv, "Stream me.")
    assert content == ref.choices[0].message.content
    assert think == extra(ref.choices[0].message, "reasoning_content")
    assert usage is not None and usage.completion_tokens == ref.usage.completion_tokens


def test_models_endpoint(srv: ServerHandle) -> None:
    async def go() -> list[str]:
        async with client(srv) as c:
            return [m.id async for m in c.models.list()]

    assert MODEL in asyncio.run(go())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_returns_text(srv: ServerHandle, scenario: str) -> None:
    r = chat(srv, f"Describe a cat.\n@@scenario: {scenario}")
    msg = r.choices[0].message
    text = (msg.content or "") + (extra(msg, "reasoning_content") or "") + (extra(msg, "reasoning") or "")
    assert len(text) > 100 and "@@" not in text
    assert r.choices[0].finish_reason == ("length" if scenario.startswith("length") else "stop")
    assert srv.stats()["by_scenario"] == {scenario: 1}


# ----------------------------------------------------------------------------- errors


def test_auth(srv: ServerHandle) -> None:
    srv.control(config={"api_key": "sk-right-key"})
    with pytest.raises(openai.AuthenticationError) as err:
        chat(srv, "hi", client_kw={"api_key": "sk-wrong-key-1234"})
    assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
    assert "sk-wrong-key" not in str(err.value)  # only the tail is echoed
    assert chat(srv, "hi", client_kw={"api_key": "sk-right-key"}).choices


def test_unknown_model(srv: ServerHandle) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        chat(srv, "hi", model="gpt-nonexistent")
    assert err.value.code == "model_not_found"


def test_unknown_directive_is_rejected(srv: ServerHandle) -> None:
    for bad in ("@@scenaro: plain", "@@fault: 42O", "@@scenario: nope", "@@fault: 429 twice"):
        with pytest.raises(openai.BadRequestError):
            chat(srv, f"hi\n{bad}")
    assert srv.stats()["by_status"] == {"400": 4}


def test_429_retry_after_then_success(srv: ServerHandle) -> None:
    with pytest.raises(openai.RateLimitError) as err:
        chat(srv, "busy?\n@@fault: 429\n@@retry_after: 3")
    assert err.value.response.headers["retry-after"] == "3"
    # x1: only the first attempt of this prompt fails, so the client's own retry succeeds
    prompt = "busy again?\n@@fault: 429 x1\n@@retry_after: 0.05"
    t0 = time.monotonic()
    r = chat(srv, prompt, client_kw={"max_retries": 1})
    assert r.choices[0].message.content and time.monotonic() - t0 >= 0.05
    st = srv.stats()
    assert st["by_prompt"][prompt_hash([{"role": "user", "content": prompt}])] == 2
    assert st["by_status"] == {"429": 2, "200": 1}
    assert st["duplicate_prompts"] == 1


@pytest.mark.parametrize(
    ("fault", "exc"),
    [("500", openai.InternalServerError), ("503", openai.InternalServerError)],
)
def test_server_errors(srv: ServerHandle, fault: str, exc: type[Exception]) -> None:
    with pytest.raises(exc) as err:
        chat(srv, f"hi\n@@fault: {fault}")
    assert err.value.status_code == int(fault)


def test_timeout_does_not_block_the_server(srv: ServerHandle) -> None:
    async def go() -> None:
        async with client(srv, timeout=0.3) as c:
            hung = asyncio.create_task(
                c.chat.completions.create(
                    model=MODEL,
                    messages=[{"role": "user", "content": "slow\n@@fault: timeout"}],
                )
            )
            # the held request must not stop others from being served meanwhile
            ok = await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "fast"}])
            assert ok.choices and not hung.done()
            with pytest.raises(openai.APITimeoutError):
                await hung

    t0 = time.monotonic()
    asyncio.run(go())
    assert time.monotonic() - t0 < 5
    deadline = time.monotonic() + 5
    while srv.stats()["in_flight"] and time.monotonic() < deadline:  # server notices the hang-up
        time.sleep(0.02)
    st = srv.stats()
    assert st["in_flight"] == 0 and st["by_status"].get("drop") == 1


def test_dropped_connection(srv: ServerHandle) -> None:
    with pytest.raises(openai.APIConnectionError):
        chat(srv, "hi\n@@fault: drop")
    assert srv.stats()["by_status"] == {"drop": 1}


def test_malformed_json(srv: ServerHandle) -> None:
    # openai 3.x does not wrap this: the raw json.JSONDecodeError (a ValueError) surfaces.
    with pytest.raises(ValueError):
        chat(srv, "hi\n@@fault: malformed")


def test_context_length_exceeded(srv: ServerHandle) -> None:
    srv.control(config={"max_context_tokens": 50})
    with pytest.raises(openai.BadRequestError) as err:
        chat(srv, "word " * 100)
    assert err.value.code == "context_length_exceeded"
    assert chat(srv, "short").choices


def test_content_filter(srv: ServerHandle) -> None:
    r = chat(srv, "hi\n@@fault: content_filter")
    assert r.choices[0].finish_reason == "content_filter" and r.choices[0].message.content is None


def test_seeded_fault_rates_are_per_prompt_and_attempt(srv: ServerHandle) -> None:
    srv.control(config={"fault_rates": {"500": 0.5}, "seed": 3})

    async def run_all() -> list[bool]:
        async with client(srv) as c:

            async def one(i: int) -> bool:
                try:
                    await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"q{i}"}])
                    return True
                except openai.InternalServerError:
                    return False

            return list(await asyncio.gather(*(one(i) for i in range(40))))

    first = asyncio.run(run_all())
    assert 5 < first.count(False) < 35
    second = asyncio.run(run_all())  # attempt 2 of each prompt: an independent draw
    assert second != first
    srv.control(reset=True)  # attempts restart at 1: the same draws as the first round
    assert asyncio.run(run_all()) == first
    # with retries, every prompt eventually gets through (a short Retry-After keeps it fast)
    srv.control(reset=True, config={"fault_rates": {"429": 0.4}, "retry_after": 0.01})

    async def with_retries() -> int:
        async with client(srv, max_retries=10) as c:
            rs = await asyncio.gather(
                *(
                    c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"q{i}"}])
                    for i in range(40)
                )
            )
            return len(rs)

    assert asyncio.run(with_retries()) == 40
    st = srv.stats()
    assert st["by_status"]["200"] == 40 and st["by_status"]["429"] >= 5


# ----------------------------------------------------------------------------- control, stats


def test_script_queues_fixed_responses(srv: ServerHandle) -> None:
    srv.control(
        script=[
            {
                "match": "SCRIPTED",
                "steps": [
                    {"status": 503},
                    {
                        "content": "exact answer",
                        "reasoning_content": "exact thought",
                        "finish_reason": "stop",
                    },
                    {"scenario": "plain"},
                ],
            }
        ]
    )
    with pytest.raises(openai.InternalServerError):
        chat(srv, "a SCRIPTED prompt")
    other = chat(srv, "unrelated prompt")  # does not consume steps
    assert extra(other.choices[0].message, "reasoning_content")
    msg = chat(srv, "SCRIPTED again").choices[0].message
    assert (msg.content, extra(msg, "reasoning_content")) == (
        "exact answer",
        "exact thought",
    )
    assert extra(chat(srv, "SCRIPTED 3").choices[0].message, "reasoning_content") is None
    assert extra(chat(srv, "SCRIPTED 4").choices[0].message, "reasoning_content")  # queue empty


def test_control_config_and_reset(srv: ServerHandle) -> None:
    srv.control(config={"scenario": "inline_no_open"})
    assert "</think>" in chat(srv, "hi").choices[0].message.content
    assert srv.stats()["requests_total"] == 1
    srv.reset()
    assert srv.stats()["requests_total"] == 0
    with pytest.raises(Exception, match="400"):
        srv.control(config={"scenario": "no_such"})


def test_in_flight_max_and_latency(srv: ServerHandle) -> None:
    srv.control(config={"latency": 0.3})

    async def go() -> None:
        async with client(srv) as c:
            await asyncio.gather(
                *(
                    c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"p{i}"}])
                    for i in range(20)
                )
            )

    t0 = time.monotonic()
    asyncio.run(go())
    elapsed = time.monotonic() - t0
    assert 0.3 <= elapsed < 1.5  # concurrent, not serial (20 x 0.3 s = 6 s)
    st = srv.stats()
    assert st["in_flight_max"] == 20 and st["by_status"] == {"200": 20}
    assert len(st["by_prompt"]) == 20 and st["duplicate_prompts"] == 0


def test_subprocess_server_and_cli() -> None:
    with run_server_process(served_model="served-x", scenario="plain", api_key="k1") as proc:
        assert proc.pid > 0
        r = chat(proc, "hi", client_kw={"api_key": "k1"})
        assert r.model == "served-x" and extra(r.choices[0].message, "reasoning_content") is None
        with pytest.raises(openai.AuthenticationError):
            chat(proc, "hi", client_kw={"api_key": "nope"})
        assert proc.stats()["pid"] == proc.pid
        assert proc.control(config={"latency": 0.0})["config"]["api_key"] == "***"
