"""The `vllm` backend: `vllm.LLM` in this process (tensor / data parallel on the local GPUs).

vLLM is an optional extra (it pins its own torch), imported only when a recipe asks for it.
Prompts go through the model's chat template (`LLM.chat`); the configured reasoning parser
(e.g. `deepseek_r1`) splits the thinking into `reasoning_content`, as `vllm serve
--reasoning-parser` would. Items are sent in batches of `vllm.batch_size` and every batch is
stored before the next starts, so a crash loses at most one batch; the truncation ladder
re-sends only the replies that ended with "length".
"""

from __future__ import annotations

import time
from typing import Any

from builder.config.generate import TeacherConfig
from builder.errors import UserError
from builder.teachers.items import WorkItem, reply_row
from builder.teachers.store import StoreWriter


def _load_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise UserError(
            "a `kind: vllm` teacher needs vLLM in this environment: pip install 'answer-distill[vllm]' "
            "(on a GPU machine), or run `vllm serve` and use `kind: openai` with its base_url"
        ) from None
    return vllm


def _reasoning_parser(name: str | None, tokenizer: Any) -> Any:
    if not name:
        return None
    try:
        from vllm.reasoning import ReasoningParserManager
    except ImportError:  # older vLLM
        from vllm.entrypoints.openai.reasoning_parsers import ReasoningParserManager  # type: ignore[no-redef]
    return ReasoningParserManager.get_reasoning_parser(name)(tokenizer)


def split_reasoning(parser: Any, text: str) -> tuple[str | None, str | None]:
    """(reasoning, content) with whichever method this vLLM version names."""
    if parser is None:
        return None, text
    fn = getattr(parser, "extract_reasoning", None) or parser.extract_reasoning_content
    try:
        return fn(text, request=None)
    except TypeError:
        return fn(text, None)


def run_vllm(teacher: TeacherConfig, todo: list[WorkItem], writer: StoreWriter, run_id: str) -> int:
    vllm = _load_vllm()
    v = teacher.vllm
    kwargs: dict[str, Any] = {
        "model": teacher.model,
        "tensor_parallel_size": v.tensor_parallel_size,
        "gpu_memory_utilization": v.gpu_memory_utilization,
    }
    if v.data_parallel_size > 1:
        kwargs["data_parallel_size"] = v.data_parallel_size
    if v.max_model_len:
        kwargs["max_model_len"] = v.max_model_len
    llm = vllm.LLM(**kwargs)
    parser = _reasoning_parser(v.reasoning_parser, llm.get_tokenizer())
    s = teacher.sampling
    steps = s.steps()
    stored = 0
    pending = list(todo)
    while pending:
        nxt: list[WorkItem] = []
        for start in range(0, len(pending), v.batch_size):
            batch = pending[start : start + v.batch_size]
            params = [
                vllm.SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=it.max_tokens,
                                    seed=None if s.seed is None else s.seed + it.sample_index)  # fmt: skip
                for it in batch
            ]
            t0 = time.monotonic()
            outs = llm.chat([it.messages for it in batch], sampling_params=params, use_tqdm=False,
                            chat_template_kwargs=v.chat_template_kwargs or None)  # fmt: skip
            per = (time.monotonic() - t0) / max(1, len(batch))  # offline batches have no per-request latency
            for it, out in zip(batch, outs):
                c = out.outputs[0]
                reasoning, content = split_reasoning(parser, c.text)
                row = reply_row(
                    it, teacher, status="ok", content=content, reasoning_content=reasoning,
                    reasoning_format=None if parser else "r1", finish_reason=c.finish_reason,
                    served_model=teacher.model, prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=len(c.token_ids), latency_s=per, attempts=1,
                )  # fmt: skip
                writer.append(row, run=run_id, source=it.source, category=it.category)
                stored += 1
                bigger = [x for x in steps if x > it.max_tokens]
                if c.finish_reason == "length" and bigger:
                    it.max_tokens = bigger[0]
                    nxt.append(it)
            writer.sync()
        pending = nxt
    return stored
