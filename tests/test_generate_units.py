"""Small parts of the generate stage: templates, limits, backoff, the store, the plan estimate."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from builder.errors import UserError
from builder.generate.estimate import estimate
from builder.generate.export import PartWriter
from builder.recipe import load_recipe
from builder.teachers.limits import RateLimiter, TokenBucket, backoff_delay, parse_retry_after
from builder.teachers.prompting import build_messages, load_template, request_tools, template_hash
from builder.teachers.store import StoreWriter, latest, scan
from tests.generate_helpers import PROMPTS_DIR, write_prompts, write_recipe


def test_templates_hash_their_content(tmp_path: Path) -> None:
    r1 = load_template(PROMPTS_DIR / "r1-system.yaml")
    assert r1.hash == template_hash("r1-system", 1, r1.system, "")
    edited = tmp_path / "r1-system.yaml"
    edited.write_text((PROMPTS_DIR / "r1-system.yaml").read_text().replace("helpful", "useful"))
    assert load_template(edited).hash != r1.hash  # an edit changes every generation id that used it
    bad = tmp_path / "other.yaml"
    bad.write_text("id: not-other\nversion: 1\nsystem: null\nsuffix: ''\n")
    with pytest.raises(UserError, match="must equal the file name"):
        load_template(bad)


def test_system_prompt_merges_and_tools_are_wrapped() -> None:
    r1 = load_template(PROMPTS_DIR / "r1-system.yaml")
    msgs = build_messages([{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Go"}], r1)
    assert msgs[0]["content"] == f"{r1.system}\n\nUse tools." and len(msgs) == 2
    tools = request_tools('[{"name": "f", "parameters": {}}]')
    assert tools == [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert request_tools(None) is None and request_tools("not json") is None


def test_stored_tool_calls_go_to_the_teacher_in_openai_wire_shape() -> None:
    plain = load_template(PROMPTS_DIR / "r1-system.yaml")
    call = json.dumps({"type": "function", "function": {"name": "f", "arguments": {"x": 1}}})
    msgs = build_messages([
        {"role": "user", "content": "Go", "tool_calls": None},
        {"role": "assistant", "content": "", "tool_calls": [call, call]},
        {"role": "tool", "content": "1", "tool_calls": None},
        {"role": "tool", "content": "2", "tool_calls": None},
        {"role": "user", "content": "And now?", "tool_calls": None},
    ], plain)
    sent = msgs[2]  # after the template's system turn and the first user turn
    # OpenAI's shape: an id per call, arguments as JSON text; each tool turn answers one call.
    assert sent["tool_calls"] == [
        {"id": f"call_1_{k}", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}} for k in (0, 1)]
    assert [m.get("tool_call_id") for m in msgs[3:5]] == ["call_1_0", "call_1_1"]
    assert "tool_calls" not in msgs[1] and "tool_call_id" not in msgs[-1]


def test_token_bucket_paces_requests() -> None:
    async def go() -> float:
        bucket = TokenBucket(rate=20, capacity=5)
        t0 = time.monotonic()
        for _ in range(15):
            await bucket.take(1)
        return time.monotonic() - t0

    took = asyncio.run(go())
    assert 0.4 <= took < 1.5  # 5 at once, then 10 more at 20/s


def test_tokens_per_minute_is_settled_on_usage() -> None:
    async def go() -> float:
        lim = RateLimiter(None, tokens_per_minute=60_000)  # 1,000 tokens/s, burst 1,000
        t0 = time.monotonic()
        for _ in range(5):
            await lim.acquire(1000)  # charged at max_tokens…
            lim.settle(1000, 100)  # …but only 100 were used: 900 come back
        return time.monotonic() - t0

    assert asyncio.run(go()) < 0.6


def test_backoff_full_jitter_and_retry_after() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(a, 1.0, 8.0, None, rng) for a in range(1, 8) for _ in range(50)]
    assert all(0 <= d <= 8.0 for d in delays) and max(delays) > 4.0
    assert all(backoff_delay(1, 1.0, 8.0, 3.0, rng) >= 3.0 for _ in range(20))
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None


def test_store_latest_wins_and_counts_every_attempt(tmp_path: Path) -> None:
    row = {"generation_id": "g1", "status": "ok", "finish_reason": "length", "max_tokens": 10, "attempts": 2,
           "completion_tokens": 10}  # fmt: skip
    with StoreWriter(tmp_path, "a") as w:
        w.append(row, run="r1", source="s", category="c")
        w.append({**row, "generation_id": "g2", "status": "failed", "error_code": "timeout"}, run="r1", source="s", category="c")
    with StoreWriter(tmp_path, "b") as w:
        w.append({**row, "finish_reason": "stop", "max_tokens": 20, "attempts": 1}, run="r2", source="s", category="c")
    got = latest(tmp_path)
    assert got["g1"].entry.max_tokens == 20 and got["g1"].attempts_total == 3 and got["g1"].records == 2
    assert got["g2"].entry.error_code == "timeout"
    assert len(list(scan(tmp_path))) == 3
    with StoreWriter(tmp_path, "empty"):
        pass
    assert len(list(tmp_path.glob("*.jsonl"))) == 2  # no empty segment left behind


def test_plan_estimate_without_and_with_a_work_dir(tmp_path: Path) -> None:
    teacher = {"name": "r1", "kind": "openai", "model": "deepseek-reasoner", "samples": 2,
               "endpoints": [{"base_url": "http://127.0.0.1:1/v1"}],
               "limits": {"concurrency": 1000, "requests_per_minute": 60}}  # fmt: skip
    prices = {"deepseek-reasoner": {"input_per_1m": 1.0, "output_per_1m": 2.0}}
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [teacher], "prices": prices}))
    est = estimate(recipe, None)
    assert est["prompts"] is None and est["teachers"][0]["requests"] is None
    write_prompts(tmp_path / "w", [{"text": "x" * 400} for _ in range(30)])
    est = estimate(recipe, tmp_path / "w")
    t = est["teachers"][0]
    assert est["prompts"] == 30 and t["requests"] == 60 and t["prompt_tokens_each"] == 100
    assert t["bound_by"] == "requests_per_minute" and t["wall_hours"] == pytest.approx(60 / 1 / 3600, abs=0.01)
    assert t["cost_usd"] == pytest.approx((60 * 100 * 1.0 + 60 * 4000 * 2.0) / 1e6, abs=0.01)


def test_part_writer_shards_swaps_and_keeps_an_empty_schema_shard(tmp_path: Path) -> None:
    out = tmp_path / "replies"
    out.mkdir()
    (out / "part-00009.parquet").write_bytes(b"stale")
    parts = PartWriter(out, shard_rows=2)
    for i in range(5):
        parts.add({"generation_id": f"g{i}", "status": "ok", "not_a_column": 1})  # missing keys -> null
    assert not (out / "part-00000.parquet").exists()  # nothing lands before close
    paths = parts.close()
    assert [p.name for p in paths] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in paths]  # the stale part is gone
    assert parts.total == 5
    assert pq.read_table(paths).column("generation_id").to_pylist() == [f"g{i}" for i in range(5)]
    assert not parts.tmp.exists()
    empty = PartWriter(tmp_path / "none")
    (only,) = empty.close()
    assert pq.read_table(only).num_rows == 0 and empty.total == 0
