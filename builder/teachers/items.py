"""Work items (one per prompt × teacher × sample) and the reply rows stored for them."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import orjson

from builder.config.generate import TeacherConfig
from builder.rows import REPLY_FEATURES, generation_id_for, provenance_defaults
from builder.teachers.prompting import Template, build_messages, request_tools, template_for

# Failures a re-run does not request again: the same request would fail the same way.
PERMANENT_CODES = frozenset({"content_filter", "context_length_exceeded", "bad_request"})
# Ledger reasons without the "failed:" prefix: the request worked, the prompt is the problem.
PLAIN_REASONS = frozenset({"content_filter", "context_length_exceeded", "not_in_import"})


@dataclass(slots=True)
class WorkItem:
    generation_id: str
    prompt_id: str
    sample_index: int
    messages: list[dict[str, str]]  # as sent: template applied
    tools: list[dict[str, Any]] | None
    template: Template
    source: str
    source_row_id: str
    category: str
    max_tokens: int = 0  # this attempt's budget (set when the item is scheduled)


def build_items(
    teacher: TeacherConfig,
    prompts: dict[str, list[Any]],
    templates: dict[str, Template],
    mapping: dict[str, str],
) -> list[WorkItem]:
    """Every (prompt, sample) for one teacher, in prompt order: deterministic on every node."""
    ident = teacher.sampling.identity() if teacher.kind != "import" else {}  # imports: sampling unknown
    items: list[WorkItem] = []
    for i, pid in enumerate(prompts["prompt_id"]):
        tpl = templates[template_for(prompts["category"][i], mapping)]
        msgs = build_messages(prompts["messages"][i], tpl)
        tools = request_tools(prompts["tools_json"][i])
        for s in range(teacher.samples):
            gid = generation_id_for(pid, teacher.model, ident, tpl.id, tpl.hash, s)
            items.append(WorkItem(gid, pid, s, msgs, tools, tpl, prompts["source"][i],
                                  prompts["source_row_id"][i], prompts["category"][i]))  # fmt: skip
    return items


_now: list[Any] = [-1, ""]  # (whole second, its text): one datetime per second, not per reply


def now_iso() -> str:
    t = int(time.time())
    if t != _now[0]:
        _now[:] = [t, dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")]
    return _now[1]


def sampling_json(teacher: TeacherConfig, max_tokens: int, sample_index: int) -> str:
    """What was sent: the seed of sample i is seed + i."""
    s = teacher.sampling
    body: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": max_tokens}
    if s.seed is not None:
        body["seed"] = s.seed + sample_index
    if s.extra_body:
        body["extra_body"] = s.extra_body
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def reply_row(item: WorkItem, teacher: TeacherConfig, **fields: Any) -> dict[str, Any]:
    """A REPLY_FEATURES row for `item`; `fields` fill the reply part (content, usage, status…)."""
    row: dict[str, Any] = dict.fromkeys(REPLY_FEATURES)
    row.update(
        generation_id=item.generation_id,
        prompt_id=item.prompt_id,
        sample_index=item.sample_index,
        teacher_role=teacher.role,
        teacher=teacher.name,
        teacher_model=teacher.model,
        endpoint_kind=teacher.kind,
        prompt_template_id=item.template.id,
        prompt_template_hash=item.template.hash,
        sampling_json=sampling_json(teacher, item.max_tokens, item.sample_index) if teacher.kind != "import" else "{}",
        max_tokens=item.max_tokens if teacher.kind != "import" else None,
        created_at=now_iso(),
        **provenance_defaults(),
    )
    row.update(fields)
    return row


def ledger_reason(error_code: str) -> str:
    return error_code if error_code in PLAIN_REASONS else f"failed:{error_code}"
