"""The `import` backend: existing reasoning outputs stored as teacher replies.

Replies are matched to curated prompts by (source name, source_row_id), reading the same
file the source read (same reader, same row ids: a glob source's name their file, "sub/a.jsonl:12";
ids that repeat, a non-unique `fields.id`, are told apart by the row's prompt text), or another file
keyed by `id_field` (an id that rows with different prompts share pairs nothing: bad_import).
Layouts:
  fields       `think` + `answer` paths (separate), or `content` + `reasoning_format` (raw)
  am           AM-DeepSeek-R1-Distilled: the assistant message's info.think_content /
               info.answer_content (raw `content` when info lacks them, or when the raw
               reply never closes its <think> / <answer>: the only sign of a cut there)
  openr1       OpenR1: a `generations` list (one sample each), else the assistant message
  openthoughts `conversations` (ShareGPT) assistant value with <|begin_of_thought|>…
A prompt with no imported reply gets no record here; the export writes it as a failed row
"not_in_import", so nothing is lost silently.

Finish reasons and token counts: every layout stores them when the data has them, so the
responses stage can tell a reply cut by the budget from a finished one. `finish_reason`,
`completion_tokens` and `max_tokens` / `max_tokens_field` map them for any layout (a list
value gives one per sample); openr1 reads its `finish_reasons` list by itself. AM and
OpenThoughts rows carry none: their replies are stored with finish_reason null, and the
responses stage judges truncation from the text (builder/responses/truncation.py).

Bad input: a mapped path (or `id_field`) that none of an import's first 100 rows has is a
recipe mistake (a typo, the wrong layout), reported on one line before anything is stored
(exit 2). Rows of a separate reply file that cannot be read or carry no id are counted in one
warning (how many, the first file:line and why): their prompts are stored as not_in_import.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from typing import Any

from builder.config.generate import ImportSpec, TeacherConfig
from builder.config.sources import SourceConfig
from builder.errors import UserError
from builder.recipe import Recipe
from builder.sources.mapping import get_path
from builder.sources.paths import import_source
from builder.sources.readers import BadRow, mapped_rows, read_source
from builder.teachers.items import WorkItem, reply_row
from builder.teachers.store import StoreWriter

LAYOUT_FORMAT = {"am": "r1", "openr1": "r1", "openthoughts": "skythought"}
# Per-sample finish reasons a layout carries without being told (OpenR1-Math-220k).
LAYOUT_FINISH = {"openr1": "finish_reasons"}
_MISSING = get_path({}, "_")  # get_path's "absent" marker
_PEEK_ROWS = 100  # rows read before storing anything, to check the mapped paths exist


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


def _unclosed(raw: str, fmt: str | None) -> bool:
    """The raw reply opens its think or answer tag and never closes it."""
    from builder.reasoning_format import resolve_delimiters

    d = resolve_delimiters(fmt)
    return (d.think_open in raw and d.think_close not in raw) or (d.answer_open in raw and d.answer_close not in raw)


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
        raw = _text(msg.get("content"))
        if answer is not None and not (raw is not None and _unclosed(raw, fmt)):
            return [{"content": answer, "reasoning_content": think}]
        # No info split, or the raw reply never closes its think / answer tag: keep the raw text,
        # the only place the data shows the reply was cut (AM carries no finish reason).
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


def _sample_value(value: Any, index: int) -> Any:
    """A per-sample list's element `index` (None past its end), else the value itself."""
    if isinstance(value, list):
        return value[index] if 0 <= index < len(value) else None
    return None if value is _MISSING else value


def _finish(value: Any) -> str | None:
    # Any other type is kept as text: the responses stage rejects it as abnormal_finish, visibly.
    return None if value is None else value if isinstance(value, str) else str(value)[:64]


def _count(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 else None


def reply_meta(spec: ImportSpec, row: dict[str, Any], index: int) -> dict[str, Any]:
    """finish_reason / completion_tokens / max_tokens of sample `index`, where the row has them."""
    finish_path = spec.finish_reason or (LAYOUT_FINISH.get(spec.layout) if not spec.content else None)
    out: dict[str, Any] = {}
    if finish_path:
        out["finish_reason"] = _finish(_sample_value(get_path(row, finish_path), index))
    if spec.completion_tokens:
        out["completion_tokens"] = _count(_sample_value(get_path(row, spec.completion_tokens), index))
    if spec.max_tokens is not None:
        out["max_tokens"] = spec.max_tokens
    elif spec.max_tokens_field:
        out["max_tokens"] = _count(_sample_value(get_path(row, spec.max_tokens_field), index))
    return out


def _check_paths(recipe: Recipe, teacher: TeacherConfig, index: int, spec: ImportSpec, head: list[Any]) -> None:
    """Every mapped path (and `id_field`) must exist in at least one of the first rows: a typo
    fails before storing, instead of leaving every prompt `not_in_import`, labelled expected."""
    if not head:
        return
    paths = {**({"id_field": spec.id_field} if spec.path and spec.id_field else {}), **spec.mapped_paths()}
    for key, path in paths.items():
        if all(get_path(row, path) is _MISSING for _, row, _ in head):
            where = re.sub(r"(:|#)\d+$", "", str(head[0][2]))  # the file, not its first row
            fix = "point `id_field` at the field holding the source's row ids" if key == "id_field" else (
                f"fix the dotted path (e.g. info.finish_reason, messages.-1.content) or remove `{key}`")
            raise UserError(
                f"{recipe.path}: generate.teachers[{teacher.name}].imports[{index}].{key}: {path!r} is in none of "
                f"the first {len(head)} rows of {where}; {fix}"
            )


def _spec_rows(recipe: Recipe, spec: ImportSpec, src: SourceConfig, warnings: list[str], skipped: list[str],  # type: ignore[no-untyped-def]
               where: str):  # fmt: skip
    """(row id as curate saw it, raw row, location) for every row of the import file; the row id
    is None where a separate file's row has no usable `id_field`. Rows of a separate file that
    cannot be read go to `skipped` as "location: reason": nothing here leaves without a word."""
    if spec.path:
        for item in read_source(recipe, import_source(src, spec), warnings, where):  # errors name the import's key, not the source
            if isinstance(item, BadRow):
                skipped.append(f"{item.location}: {item.reason}")
                continue
            rid = get_path(item.data, spec.id_field or "")
            # get_path's "missing" marker is none of these; a bool is no row id either.
            ok = isinstance(rid, (str, int, float)) and not isinstance(rid, bool)
            yield (str(rid) if ok else None), item.data, item.location
        return
    for item in read_source(recipe, src, warnings):  # same reader and limit as curate: same ids
        if isinstance(item, BadRow):
            continue  # curate quarantined this row: it has no prompt to answer
        rid = get_path(item.data, src.fields.id) if src.fields.id else None
        # curate's rule (map_row, then `or` the reader's id): an empty or absent id is the row's own
        yield (None if rid is _MISSING or rid is None else str(rid)) or item.row_id, item.data, item.location


def _repeated_source_ids(recipe: Recipe, src: SourceConfig) -> dict[str, int]:
    """The `fields.id` values that rows with different prompts carry, with how many prompts: a separate
    reply file keyed by them cannot tell which one a reply answers, even when curate kept only one."""
    first: dict[str, int] = {}  # id -> its first prompt's text hash (one int a row: a big source fits)
    others: defaultdict[str, set[int]] = defaultdict(set)
    for rid, rec, _ in mapped_rows(recipe, src):  # rows curate quarantined carry no prompt's id
        users = [m["content"] for m in rec["messages"] if m["role"] == "user"]
        text = hash(_loose(users[-1]) if users else "")
        if first.setdefault(rid, text) != text:
            others[rid].add(text)
    return {k: len(v) + 1 for k, v in others.items()}


_NOT_WORD = re.compile(r"[\W_]+")


def _loose(text: str) -> str:
    """Letters and digits only, NFKC and casefolded: what curate's normalizing and a template keep."""
    import unicodedata

    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def _asked_by(src: SourceConfig, row: dict[str, Any], items: list[WorkItem]) -> list[WorkItem]:
    """The items whose prompt is this source row's (its last user turn inside the prompt as sent).
    A source's ids need not be unique (a repeated `fields.id`, an id equal to an id-less row's line): the id
    only finds the candidates, the text decides, so no prompt gets another row's reply."""
    from builder.sources.mapping import RowProblem, map_row

    try:
        users = [m["content"] for m in map_row(src, row, None)["messages"] if m["role"] == "user"]
    except RowProblem:
        return []  # curate quarantined it: no prompt asks it
    text = users[-1].strip() if users else ""
    if not text:
        return []
    sent = ["\n".join(str(m.get("content") or "") for m in it.messages) for it in items]
    if all(text in s for s in sent):  # the common case, at C speed: curate's normalizing left the text as is
        return items
    key = _loose(text)
    return [it for it, s in zip(items, sent) if text in s or (key and key in _loose(s))]


def _skipped_warning(recipe: Recipe, teacher: TeacherConfig, spec: ImportSpec, skipped: list[str]) -> str:
    """One line for the rows of an import file that answer no prompt because they cannot be read."""
    return (f"teacher {teacher.name}: import of {spec.source}: {len(skipped)} row(s) of "
            f"{recipe.resolve(spec.path or '')} skipped "
            f"(first: {skipped[0]}); the prompts they answer are stored as not_in_import; fix the file")


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
    repeats: dict[str, dict[str, int]] = {}  # source -> its shared ids: one pass a source, not one a reply file
    for spec_index, spec in enumerate(teacher.imports):
        src = by_name.get(spec.source)
        if src is None:
            raise UserError(
                f"{recipe.path}: generate.teachers[{teacher.name}].imports: source {spec.source!r} is not "
                f"a recipe source; use one of {sorted(by_name)}"
            )
        seen: dict[str, None] = {}  # file order: the warning below names the first id
        dup = matched = 0
        asked = next((k[1] for k in wanted if k[0] == src.name), None)  # a prompt id still to answer
        skipped: list[str] = []
        rows = _spec_rows(recipe, spec, src, warnings, skipped, f"generate.teachers[{teacher.name}].imports[{spec_index}]")
        head = list(itertools.islice(rows, _PEEK_ROWS))
        _check_paths(recipe, teacher, spec_index, spec, head)
        other_row: dict[tuple[str, str], str] = {}  # an id whose source row holds another prompt: where
        repeated: dict[str, int] = {}
        if spec.path and src.fields.id:
            if src.name not in repeats:
                repeats[src.name] = _repeated_source_ids(recipe, src)
            repeated = repeats[src.name]
        for rid, row, location in itertools.chain(head, rows):
            if rid is None:
                skipped.append(f"{location}: no {spec.id_field!r} (id_field) value")
                continue
            key = (src.name, rid)
            if rid in seen:
                dup += 1
                if spec.path:  # a separate file's repeat cannot tell which reply is meant: the first one
                    continue
            seen[rid] = None
            items = wanted.pop(key, None)
            if items and not spec.path:  # the source's own rows: only the prompt this row holds
                mine = _asked_by(src, row, items)
                if len(mine) < len(items):
                    wanted[key] = [it for it in items if it not in mine]
                    other_row.setdefault(key, location)
                items = mine
            if not items:
                continue
            matched += 1
            # An id several prompts of the source carry (fields.id not unique) cannot tell which one
            # this row answers: each gets a failed row, never another question's reply.
            shared = max(len({it.prompt_id for it in items}), repeated.get(rid, 1))
            replies = extract(spec, row) if shared == 1 else []
            served = (_text(get_path(row, spec.model_field)) if spec.model_field else None) or spec.served_model
            for it in items:
                it.max_tokens = 0
                if it.sample_index >= len(replies):
                    code = "not_in_import" if replies else "bad_import"
                    msg = (f"{location}: has {len(replies)} replies, no sample {it.sample_index}" if replies
                           else f"{location}: id {rid!r} is on {shared} rows of source {src.name}; "
                           "make its ids unique" if shared > 1
                           else f"{location}: no usable reply text for layout {spec.layout!r}")
                    writer.append(reply_row(it, teacher, status="failed", error_code=code, error_message=msg,
                                            served_model=served or teacher.model, attempts=0),
                                  run=run_id, source=it.source, category=it.category)  # fmt: skip
                    continue
                rep = replies[it.sample_index]
                writer.append(
                    reply_row(it, teacher, status="ok", served_model=served or teacher.model, attempts=0,
                              content=rep.get("content"), reasoning_content=rep.get("reasoning_content"),
                              reasoning_format=rep.get("reasoning_format"), **reply_meta(spec, row, it.sample_index)),
                    run=run_id, source=it.source, category=it.category,
                )  # fmt: skip
                stored += 1
        for key, location in other_row.items():  # no row of the source with this id holds its prompt
            for it in wanted.pop(key, []):
                writer.append(reply_row(it, teacher, status="failed", error_code="bad_import", served_model=teacher.model,
                                        error_message=f"{location}: the row with id {key[1]!r} holds another prompt "
                                        f"(ids of source {src.name} repeat); make its ids unique", attempts=0),
                              run=run_id, source=it.source, category=it.category)  # fmt: skip
        if skipped:
            warnings.append(_skipped_warning(recipe, teacher, spec, skipped))
        if spec.path and seen and asked is not None and not matched:  # an id_field that holds other ids
            warnings.append(f"teacher {teacher.name}: import of {spec.source}: none of the {len(seen):,} ids in "
                            f"{recipe.resolve(spec.path)} is a prompt's id (e.g. {next(iter(seen))!r} vs the "
                            f"source's {asked!r}); check id_field and the source's fields.id")
        if dup:
            warnings.append(f"teacher {teacher.name}: import of {spec.source} has {dup} repeated ids; " + (
                "the first was used" if spec.path else "each prompt took the row holding its text"))
    return stored
