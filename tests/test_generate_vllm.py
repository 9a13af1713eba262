"""The vllm backend. The real run needs a GPU, vLLM and a local model (skipped otherwise);
the stage logic around `vllm.LLM` (batches, reasoning split, truncation ladder, store) is
checked everywhere with a stand-in module that has vLLM's call shapes."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder.errors import UserError
from builder.generate.stage import run_generate
from builder.recipe import load_recipe
from builder.workdir import WorkDir
from tests.generate_helpers import write_prompts, write_recipe


def _teacher(**over: Any) -> dict[str, Any]:
    return {"name": "r1", "kind": "vllm", "model": "local/tiny-r1", "sampling": {"max_tokens": 8, "truncation_ladder": [16]},
            "vllm": {"batch_size": 2}, **over}  # fmt: skip


class _FakeLLM:
    """vLLM's LLM.chat shape: outputs[0].text / token_ids / finish_reason, prompt_token_ids."""

    calls: list[list[int]] = []

    def __init__(self, model: str, **kw: Any) -> None:
        self.model = model

    def get_tokenizer(self) -> object:
        return object()

    def chat(self, messages: list[Any], sampling_params: list[Any], use_tqdm: bool, chat_template_kwargs: Any) -> list[Any]:
        _FakeLLM.calls.append([p.max_tokens for p in sampling_params])
        outs = []
        for msgs, p in zip(messages, sampling_params):
            long = "long" in msgs[-1]["content"]
            n = 12 if long else 4  # a "long" prompt needs 12 tokens: cut at 8, fits in 16
            text = "think " * 3 + "</think>answer"
            finish = "length" if n > p.max_tokens else "stop"
            out = types.SimpleNamespace(text=text, token_ids=list(range(min(n, p.max_tokens))), finish_reason=finish)
            outs.append(types.SimpleNamespace(outputs=[out], prompt_token_ids=[1, 2, 3]))
        return outs


class _Parser:
    def __init__(self, tokenizer: object) -> None:
        pass

    def extract_reasoning_content(self, text: str, request: Any) -> tuple[str, str]:
        think, _, answer = text.partition("</think>")
        return think.strip(), answer


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    vllm = types.ModuleType("vllm")
    vllm.LLM = _FakeLLM  # type: ignore[attr-defined]
    vllm.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)  # type: ignore[attr-defined]
    reasoning = types.ModuleType("vllm.reasoning")
    reasoning.ReasoningParserManager = types.SimpleNamespace(get_reasoning_parser=lambda name: _Parser)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.reasoning", reasoning)
    _FakeLLM.calls = []


def test_vllm_stage_logic_with_a_stand_in(fake_vllm: None, tmp_path: Path) -> None:
    write_prompts(tmp_path / "w", [{"text": "short a"}, {"text": "long b"}, {"text": "short c"}])
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [_teacher()]}))
    run_generate(recipe, WorkDir(tmp_path / "w"))
    rows = [r for f in (tmp_path / "w/generate/replies").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert len(rows) == 3 and all(r["status"] == "ok" and r["endpoint_kind"] == "vllm" for r in rows)
    assert all(r["reasoning_content"] == "think think think" and r["content"] == "answer" for r in rows)
    assert _FakeLLM.calls == [[8, 8], [8], [16]]  # batches of 2, then only the truncated one, larger
    long = next(r for r in rows if r["max_tokens"] == 16)
    assert long["finish_reason"] == "stop" and long["attempts"] == 2
    run_generate(recipe, WorkDir(tmp_path / "w"))
    assert len(_FakeLLM.calls) == 3  # resume: nothing stored is generated again


def test_vllm_missing_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails as if not installed
    write_prompts(tmp_path / "w", [{"text": "q"}])
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [_teacher()]}))
    with pytest.raises(UserError, match="needs vLLM"):
        run_generate(recipe, WorkDir(tmp_path / "w"))


def _gpu() -> bool:
    if importlib.util.find_spec("vllm") is None or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu() or not os.environ.get("ANSWER_DISTILL_VLLM_MODEL"),
                    reason="needs a CUDA GPU, vLLM, and ANSWER_DISTILL_VLLM_MODEL (a local reasoning model)")  # fmt: skip
def test_vllm_real_model(tmp_path: Path) -> None:
    model = os.environ["ANSWER_DISTILL_VLLM_MODEL"]
    write_prompts(tmp_path / "w", [{"text": "What is 7*6?", "category": "math"}, {"text": "Name a prime."}])
    teacher = _teacher(model=model, sampling={"max_tokens": 512, "truncation_ladder": [2048]},
                       vllm={"max_model_len": 4096, "gpu_memory_utilization": 0.5})  # fmt: skip
    run_generate(load_recipe(write_recipe(tmp_path, {"teachers": [teacher]})), WorkDir(tmp_path / "w"))
    rows = [r for f in (tmp_path / "w/generate/replies").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert len(rows) == 2 and all(r["status"] == "ok" and r["completion_tokens"] > 0 for r in rows)
    assert any(r["reasoning_content"] for r in rows)
