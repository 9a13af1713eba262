"""The `import` backend: existing reasoning outputs stored as teacher replies.

Replies are matched to curated prompts by (source name, source_row_id), reading the same
file the source read (same reader, same row ids), or another file keyed by `id_field`.
Layouts:
  fields       `think` + `answer` paths (separate), or `content` + `reasoning_format` (raw)
  am           AM-DeepSeek-R1-Distilled: the assistant message's info.think_content /
               info.answer_content (raw `content` when info lacks them)
  openr1       OpenR1: a `generations` list (one sample each), else the assistant message
  openthoughts `conversations` (ShareGPT) assistant value with <|begin_of_thought|>…
A prompt with no imported reply gets no record here; the export writes it as a failed row
"not_in_import", so nothing is lost silently.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from builder.config.generate import ImportSpec, TeacherConfig
from builder.config.sources import SourceConfig
from builder.errors import UserError
from builder.recipe import Recipe
from builder.sources.mapping import get_path
from builder.sources.readers import BadRow, read_source
from builder.teachers.items import WorkItem, reply_row
from builder.teachers.store import StoreWriter

LAYOUT_FORMAT = {"am": "r1", "openr1": "r1", "openthoughts": "skythought"}


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _unwrap(think: str, fmt: str | None) -> str:
    """`<think>…</think>` around a separate thinking field: keep the inside, untouched."""
    from builder.reasoning_format import resolve_delimiters

    d = resolve_delimiters(fmt)
    s = think.strip()
    if s.startswith(d.think_open) and s.endswith(d.think_close):
        return s[len(d.think_open) : len(s) - len(d.think_close)].strip()
    return think


def _assistant(messages: Any, role_key: str = "role", text_key: str = "content") -> dict[str, Any] | None:
    if not isinstance(messages, list):
        return None
    for m in reversed(messages):
        if isinstance(m, dict) and m.get(role_key) in ("assistant", "gpt"):
            return m
    return None


def extract(spec: ImportSpec, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The replies in one row (several for OpenR1 `generations`); [] when none is usable."""
    fmt = spec.reasoning_format or LAYOUT_FORMAT.get(spec.layout)
    if spec.layout == "fields" or spec.content or spec.answer:
        if spec.content:
            raw = _text(get_path(row, spec.content))
            return [{"content": raw, "reasoning_format": fmt}] if raw is not None else []
        answer = _text(get_path(row, spec.answer)) if spec.answer else None
        if answer is None:
            return []
        think = _text(get_path(row, spec.think)) if spec.think else None
        return [{"content": answer, "reasoning_content": _unwrap(think, fmt) if think else think}]
    if spec.layout == "am":
        msg = _assistant(row.get("messages"))
        if msg is None:
            return []
        info = msg.get("info") if isinstance(msg.get("info"), dict) else {}
        think, answer = _text(info.get("think_content")), _text(info.get("answer_content"))
        if answer is not None:
            return [{"content": answer, "reasoning_content": think}]
        raw = _text(msg.get("content"))
        return [{"content": raw, "reasoning_format": fmt}] if raw is not None else []
    if spec.layout == "openr1":
        gens = row.get("generations")
        if isinstance(gens, list) and gens:
            return [{"content": g, "reasoning_format": fmt} for g in gens if isinstance(g, str)]
        msg = _assistant(row.get("messages"))
        raw = _text(msg.get("content")) if msg else None
        return [{"content": raw, "reasoning_format": fmt}] if raw is not None else []
    # openthoughts: ShareGPT turns
    msg = _assistant(row.get("conversations"), "from", "value")
    raw = _text(msg.get("value")) if msg else None
    return [{"content": raw, "reasoning_format": fmt}] if raw is not None else []


def _spec_rows(recipe: Recipe, spec: ImportSpec, src: SourceConfig, warnings: list[str]):  # type: ignore[no-untyped-def]
    """(row id as curate saw it, raw row, location) for every row of the import file."""
    if spec.path:
        other = src.model_copy(update={"path": spec.path, "format": spec.format, "limit": None, "kind": "local"})
        for item in read_source(recipe, other, warnings):
            if isinstance(item, BadRow):
                continue
            rid = get_path(item.data, spec.id_field or "")
            if isinstance(rid, (str, int, float)):  # get_path's "missing" marker is none of these
                yield str(rid), item.data, item.location
        return
    for item in read_source(recipe, src, warnings):  # same reader and limit as curate: same ids
        if isinstance(item, BadRow):
            continue
        rid = get_path(item.data, src.fields.id) if src.fields.id else None
        ok = rid is not None and isinstance(rid, (str, int, float))
        yield (str(rid) if ok else item.row_id), item.data, item.location


def run_import(
    recipe: Recipe,
    teacher: TeacherConfig,
    todo: list[WorkItem],
    writer: StoreWriter,
    run_id: str,
    warnings: list[str],
) -> int:
    """Store an imported reply for every item in `todo` that has one; returns how many."""
    by_name = {s.name: s for s in recipe.sources}
    wanted: dict[tuple[str, str], list[WorkItem]] = defaultdict(list)
    for it in todo:
        wanted[(it.source, it.source_row_id)].append(it)
    stored = 0
    for spec in teacher.imports:
        src = by_name.get(spec.source)
        if src is None:
            raise UserError(
                f"{recipe.path}: generate.teachers[{teacher.name}].imports: source {spec.source!r} is not "
                f"a recipe source; use one of {sorted(by_name)}"
            )
        seen: set[str] = set()
        dup = 0
        for rid, row, location in _spec_rows(recipe, spec, src, warnings):
            key = (src.name, rid)
            if rid in seen:
                dup += 1
                continue
            seen.add(rid)
            items = wanted.pop(key, None)
            if not items:
                continue
            replies = extract(spec, row)
            served = (_text(get_path(row, spec.model_field)) if spec.model_field else None) or spec.served_model
            for it in items:
                it.max_tokens = 0
                if it.sample_index >= len(replies):
                    code = "not_in_import" if replies else "bad_import"
                    msg = (f"{location}: has {len(replies)} replies, no sample {it.sample_index}" if replies
                           else f"{location}: no usable reply text for layout {spec.layout!r}")
                    writer.append(reply_row(it, teacher, status="failed", error_code=code, error_message=msg,
                                            served_model=served or teacher.model, attempts=0),
                                  run=run_id, source=it.source, category=it.category)  # fmt: skip
                    continue
                rep = replies[it.sample_index]
                writer.append(
                    reply_row(it, teacher, status="ok", served_model=served or teacher.model, attempts=0,
                              content=rep.get("content"), reasoning_content=rep.get("reasoning_content"),
                              reasoning_format=rep.get("reasoning_format")),
                    run=run_id, source=it.source, category=it.category,
                )  # fmt: skip
                stored += 1
        if dup:
            warnings.append(f"teacher {teacher.name}: import of {spec.source} has {dup} repeated ids; the first was used")
    return stored
