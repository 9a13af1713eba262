"""A 200 reply of any shape is stored as a row (a failed `bad_reply_shape` one when it breaks the
protocol): it never stops generation, and a store of any content always exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder.generate.stage import run_generate
from builder.recipe import load_recipe
from builder.teachers.reply_shape import BAD_SHAPE, _problem, checked_row, reply_fields
from builder.workdir import WorkDir
from tests.generate_helpers import openai_teacher, write_prompts, write_recipe
from tests.servers.openai_server import ServerHandle, run_server

GOOD = {"model": "m", "choices": [{"message": {"content": "A"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4}}  # fmt: skip


def _with(**changes: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        node = body
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[keys[-1]] = value
    return body


BAD_BODIES = {
    "usage-string": _with(usage="lots"),
    "tokens-string": _with(usage={"prompt_tokens": "3", "completion_tokens": "4"}),
    "tokens-past-int64": _with(usage={"prompt_tokens": 2**70, "completion_tokens": 1}),
    "tokens-negative": _with(usage={"prompt_tokens": -1, "completion_tokens": 1}),
    "tokens-bool": _with(usage={"prompt_tokens": True, "completion_tokens": 1}),
    "finish-int": _with(choices__0__finish_reason=5),
    "reasoning-int": _with(choices__0__message={"content": "A", "reasoning_content": 123}),
    "reasoning-field-dict": _with(choices__0__message={"content": "A", "reasoning": {"x": 1}}),
    "model-list": _with(model=["a", "b"]),
    "content-int": _with(choices__0__message={"content": 42}),
    "message-string": _with(choices__0__message="hi"),
    "choices-empty": _with(choices=[]),
    "choices-object": _with(choices={"0": {}}),
    "body-list": [GOOD],
    "details-string": _with(usage={"prompt_tokens": 1, "completion_tokens": 1, "completion_tokens_details": "x"}),
    "tool-calls-string": _with(choices__0__message={"content": None, "tool_calls": "get_weather()"}),
    "tool-calls-of-strings": _with(choices__0__message={"content": None, "tool_calls": ["get_weather"]}),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_each_bad_shape_is_a_failed_row(name: str) -> None:
    out = reply_fields(BAD_BODIES[name])
    assert out["status"] == "failed" and out["error_code"] == BAD_SHAPE and out["error_message"]


def test_a_good_body_keeps_every_field() -> None:
    body = _with(choices__0__message={"content": [{"type": "text", "text": "A"}], "reasoning": "T"})
    out = reply_fields(body)
    assert out["status"] == "ok" and out["reasoning"] == "T" and json.loads(out["content"])[0]["text"] == "A"
    assert (out["prompt_tokens"], out["completion_tokens"], out["served_model"]) == (3, 4, "m")


def test_a_stored_row_of_any_shape_exports() -> None:
    row = {"generation_id": "g", "prompt_id": "p", "status": "ok", "prompt_tokens": "12", "content": "A"}
    out = checked_row(row)
    assert out["status"] == "failed" and out["error_code"] == BAD_SHAPE and out["prompt_tokens"] is None
    assert out["generation_id"] == "g" and out["content"] is None
    fine = {"generation_id": "g", "status": "ok", "prompt_tokens": 12, "latency_s": 0.5}
    assert checked_row(fine) is fine


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerHandle]:
    with run_server(tokens_per_reply=60) as handle:
        yield handle


def test_generation_survives_every_bad_shape_and_resumes(srv: ServerHandle, tmp_path: Path) -> None:
    srv.control(reset=True)
    names = list(BAD_BODIES)
    texts = [f"Question number {i} about pears." for i in range(len(names) + 3)]
    srv.control(script=[{"match": t, "steps": [{"status": 200, "body": BAD_BODIES[n]}]} for t, n in zip(texts, names)])
    work = tmp_path / "w"
    write_prompts(work, [{"text": t} for t in texts])
    teacher = {**openai_teacher(srv.base_url), "limits": {"max_attempts": 1, "backoff_base_s": 0, "concurrency": 4}}
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [teacher]}))
    run_generate(recipe, WorkDir(work))
    rows = [r for f in sorted((work / "generate/replies").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(rows) == len(texts)
    bad = [r for r in rows if r["error_code"] == BAD_SHAPE]
    assert len(bad) == len(names) and sum(r["status"] == "ok" for r in rows) == 3
    # a re-run asks the bad ones again (not a permanent code) and now gets good replies
    run_generate(recipe, WorkDir(work))
    rows = [r for f in sorted((work / "generate/replies").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert all(r["status"] == "ok" for r in rows) and len(rows) == len(texts)


TRICKY = {
    "str subclass": {"status": type("S", (str,), {})("ok")},
    "bool count": {"attempts": True},
    "int64 count": {"prompt_tokens": 2**40},  # fine in an int64 column
    "int32 overflow": {"attempts": 2**40},
    "negative count": {"completion_tokens": -1},
    "int latency": {"latency_s": 3},
    "nan latency": {"latency_s": float("nan")},
    "float count": {"max_tokens": 8.0},
}


@pytest.mark.parametrize("name", list(TRICKY))
def test_the_fast_type_check_agrees_with_the_column_by_column_one(name: str) -> None:
    row = {"generation_id": "g", "status": "ok", "content": "A", "latency_s": 0.5, **TRICKY[name]}
    col, v = next(iter(TRICKY[name].items()))
    out = checked_row(dict(row))
    assert (out["status"] == "ok") == (_problem(col, v) == ""), out
