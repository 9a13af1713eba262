"""limits.max_cost_usd, through the loopback server: no request that could pass the cap is sent,
the run stops in one line with what was spent, and a re-run with a higher cap resumes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder.errors import UserError
from builder.generate.stage import run_generate
from builder.recipe import load_recipe
from builder.workdir import WorkDir
from tests.generate_helpers import openai_teacher, write_prompts, write_recipe
from tests.servers.openai_server import ServerHandle, run_server

# $1,000 per 1M completion tokens: a reply of ~60 tokens costs ~$0.06, a 100-token budget holds $0.10.
PRICES = {"deepseek-reasoner": {"input_per_1m": 1.0, "output_per_1m": 1000.0}}


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerHandle]:
    with run_server(tokens_per_reply=60) as handle:
        yield handle


def _replies(work: Path) -> dict[str, dict[str, Any]]:
    rows = [r for f in sorted((work / "generate" / "replies").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    return {r["prompt_id"]: r for r in rows}


def _spent(work: Path) -> float:
    return float(json.loads((work / "generate" / "summary.json").read_text())["accounting"][0]["total"]["cost_usd"])


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_spending_cap_stops_before_it_is_passed_and_a_higher_cap_resumes(srv: ServerHandle, tmp_path: Path,
                                                                             concurrency: int) -> None:  # fmt: skip
    srv.control(reset=True)
    work = tmp_path / "w"
    ids = write_prompts(work, [{"text": f"prompt-{i:02d} tell me something"} for i in range(20)])

    def recipe(cap: float) -> Path:
        teacher = openai_teacher(srv.base_url, sampling={"max_tokens": 100},
                                 limits={"concurrency": concurrency, "max_cost_usd": cap})  # fmt: skip
        return write_recipe(tmp_path, {"teachers": [teacher], "prices": PRICES})

    with pytest.raises(UserError, match="spending cap reached") as e:
        run_generate(load_recipe(recipe(0.5)), WorkDir(work))
    msg = str(e.value)
    spent = _spent(work)
    assert "\n" not in msg and f"${spent:,.4f} spent" in msg and "raise generate.teachers[r1].limits.max_cost_usd" in msg
    # Never past the cap; short of it by at most what the requests in flight held (a 100-token budget each).
    assert 0.5 - (concurrency + 1) * 0.1 < spent <= 0.5
    got = _replies(work)
    asked = [i for i in ids if got[i]["status"] == "ok"]
    assert len(asked) == srv.stats()["requests_total"] and 3 <= len(asked) < 20
    assert {got[i]["error_code"] for i in ids if i not in asked} == {"not_attempted"}
    # The same cap again: what is left under it may be asked, never more (the store's spend counts).
    with pytest.raises(UserError, match="spending cap reached"):
        run_generate(load_recipe(recipe(0.5)), WorkDir(work))
    assert _spent(work) <= 0.5
    # A cap the store has already spent: nothing is sent.
    sent = srv.stats()["requests_total"]
    with pytest.raises(UserError, match="spending cap reached"):
        run_generate(load_recipe(recipe(_spent(work))), WorkDir(work))
    assert srv.stats()["requests_total"] == sent
    # A higher cap resumes: the rest are asked, nothing twice.
    run_generate(load_recipe(recipe(100.0)), WorkDir(work))
    assert all(r["status"] == "ok" for r in _replies(work).values())
    assert srv.stats()["requests_total"] == 20


@pytest.mark.parametrize(("teacher", "prices", "said"), [
    ({}, {}, "no price for model 'deepseek-reasoner' in generate.prices"),
    ({"kind": "vllm", "endpoints": []}, PRICES, "a vllm teacher is not billed per request"),
])  # fmt: skip
def test_a_cap_that_cannot_be_counted_is_refused_at_load(tmp_path: Path, teacher: dict[str, Any],
                                                         prices: dict[str, Any], said: str) -> None:  # fmt: skip
    t = {**openai_teacher("http://127.0.0.1:9/v1", limits={"max_cost_usd": 5}), **teacher}
    path = write_recipe(tmp_path, {"teachers": [t], "prices": prices})
    with pytest.raises(UserError, match="teachers\\[r1\\].limits.max_cost_usd") as e:
        load_recipe(path)
    assert said in str(e.value) and "\n" not in str(e.value)


def test_a_summarizer_cap_without_a_price_is_refused_at_load(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, {"teachers": []})
    data = path.read_text() + (
        "variants:\n  summarizer:\n    kind: llm\n    teacher:\n      kind: openai\n      model: m\n"
        "      endpoints: [{base_url: 'http://127.0.0.1:9/v1'}]\n      limits: {max_cost_usd: 1}\n"
    )
    path.write_text(data)
    with pytest.raises(UserError, match="variants.summarizer.teacher.limits.max_cost_usd: no price for model 'm'"):
        load_recipe(path)


def test_datatrove_tasks_share_the_cap(srv: ServerHandle, tmp_path: Path) -> None:
    # Two local tasks, each with half of what the cap leaves; the line says the whole store's spend.
    srv.control(reset=True)
    work = tmp_path / "w"
    write_prompts(work, [{"text": f"prompt-{i:02d} tell me something"} for i in range(20)])
    teacher = openai_teacher(srv.base_url, sampling={"max_tokens": 100}, limits={"concurrency": 2, "max_cost_usd": 0.5})
    recipe = write_recipe(tmp_path, {"teachers": [teacher], "prices": PRICES, "tasks": 2},
                          executor={"kind": "local", "tasks": 2, "workers": 2})  # fmt: skip
    with pytest.raises(UserError, match="spending cap reached") as e:
        run_generate(load_recipe(recipe), WorkDir(work))
    spent = _spent(work)
    assert 0 < spent <= 0.5 and f"${spent:,.4f} spent" in str(e.value)
    assert not list((work / "generate" / "store" / "r1").glob("abort-*.txt"))


def test_plan_sets_the_estimate_beside_the_cap_and_what_is_spent(srv: ServerHandle, tmp_path: Path) -> None:
    """`plan` said nothing of the cap: a cap too low for the build showed only when the run stopped."""
    from builder.generate.estimate import cost_lines, estimate

    srv.control(reset=True)
    work = tmp_path / "w"
    write_prompts(work, [{"text": f"prompt-{i:02d} tell me something"} for i in range(20)])

    def recipe(cap: float) -> Path:
        teacher = openai_teacher(srv.base_url, sampling={"max_tokens": 100}, limits={"max_cost_usd": cap})
        return write_recipe(tmp_path, {"teachers": [teacher], "prices": PRICES})

    assert any(line.startswith("spending cap r1: $0.50 (limits.max_cost_usd) for $0.00 spent + $")
               and line.endswith("the run would stop at the cap before it is done; raise it to finish")
               for line in cost_lines(estimate(load_recipe(recipe(0.5)), work)))  # fmt: skip
    with pytest.raises(UserError, match="spending cap reached"):
        run_generate(load_recipe(recipe(0.5)), WorkDir(work))
    lines = cost_lines(estimate(load_recipe(recipe(50.0)), work))
    assert any(line.startswith(f"spending cap r1: $50.00 (limits.max_cost_usd) for ${_spent(work):,.2f} spent + $")
               and line.endswith(": within it") for line in lines), lines  # fmt: skip


def test_the_held_worst_case_bounds_real_prompt_tokens_where_chars_over_four_does_not(tmp_path: Path) -> None:
    """The cap held chars/4 prompt tokens: DeepSeek-R1's tokenizer gives Chinese text about one
    token per character, so a prompt could cost more than was held and the spend pass the cap."""
    from types import SimpleNamespace

    from builder.teachers.budget import worst_prompt_tokens
    from builder.teachers.openai_backend import request_body
    from builder.tokens import count_tokens

    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [openai_teacher("http://127.0.0.1:9/v1")]}))
    assert recipe.generate is not None
    teacher = recipe.generate.teachers[0]
    texts = ["一个长方形的长是宽的三倍，周长是四十八厘米，求面积。" * 20, "def f(x):\n    return {k: v**2 for k, v in x}\n" * 30,
             "🙂🎉 ∑∫√ — ok " * 40]  # fmt: skip
    for text in texts:
        item = SimpleNamespace(messages=[{"role": "user", "content": text}], tools=None, sample_index=0, max_tokens=10)
        (real,) = count_tokens("deepseek-r1", [text])
        assert real <= worst_prompt_tokens(request_body(teacher, item), 1)  # type: ignore[arg-type]
    (zh,) = count_tokens("deepseek-r1", [texts[0]])
    assert zh > len(texts[0]) // 4 + 1  # the old hold was short here
