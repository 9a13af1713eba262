"""A constraint: an IFEval instruction id with IFEval's own kwargs names, and its JSON form.

`constraints_json` (a prompt column) is a JSON list of ``{"id": "<ifeval id>", "kwargs": {...}}``:
the same ids and kwargs names as IFEval's `instruction_id_list` / `kwargs`, so a user can score
or re-check them with IFEval's own code. `parse` validates a list from outside (an import, a
recipe) and raises `BadConstraints` with a one-line reason; `contradictions` names pairs no
text can satisfy at once (recorded on the row, never a crash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from builder.constraints.checks import CHECKERS

# Every id's kwargs names (IFEval's), and which of them are integers.
KWARGS: dict[str, tuple[str, ...]] = {
    "punctuation:no_comma": (),
    "length_constraints:number_words": ("relation", "num_words"),
    "length_constraints:number_sentences": ("relation", "num_sentences"),
    "length_constraints:number_paragraphs": ("num_paragraphs",),
    "length_constraints:nth_paragraph_first_word": ("num_paragraphs", "nth_paragraph", "first_word"),
    "detectable_format:number_bullet_lists": ("num_bullets",),
    "detectable_format:constrained_response": (),
    "detectable_format:number_highlighted_sections": ("num_highlights",),
    "detectable_format:multiple_sections": ("section_spliter", "num_sections"),
    "detectable_format:json_format": (),
    "detectable_format:title": (),
    "combination:repeat_prompt": ("prompt_to_repeat",),
    "combination:two_responses": (),
    "startend:end_checker": ("end_phrase",),
    "startend:quotation": (),
    "detectable_content:postscript": ("postscript_marker",),
    "detectable_content:number_placeholders": ("num_placeholders",),
    "change_case:english_lowercase": (),
    "change_case:english_capital": (),
    "change_case:capital_word_frequency": ("capital_relation", "capital_frequency"),
    "keywords:existence": ("keywords",),
    "keywords:frequency": ("keyword", "relation", "frequency"),
    "keywords:forbidden_words": ("forbidden_words",),
    "keywords:letter_frequency": ("letter", "let_relation", "let_frequency"),
    "language:response_language": ("language",),
}
INTS = {"num_words", "num_sentences", "num_paragraphs", "nth_paragraph", "num_bullets", "num_highlights",
        "num_sections", "num_placeholders", "capital_frequency", "frequency", "let_frequency"}  # fmt: skip
LISTS = {"keywords", "forbidden_words"}
RELATIONS = ("less than", "at least")
KNOWN_IDS = frozenset(KWARGS)
assert frozenset(CHECKERS) == KNOWN_IDS, "every checker has a kwargs spec and back"


class BadConstraints(ValueError):
    """A constraints list from outside is malformed; the message is one line."""


@dataclass(frozen=True, slots=True)
class Constraint:
    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kwargs": dict(self.kwargs)}

    def key(self) -> str:
        return orjson.dumps(self.as_dict(), option=orjson.OPT_SORT_KEYS).decode()


def to_json(items: list[Constraint]) -> str:
    return orjson.dumps([c.as_dict() for c in items]).decode()


def _value(cid: str, name: str, v: Any) -> Any:
    if name in INTS:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise BadConstraints(f"{cid}: {name} must be a non-negative integer, got {v!r}")
    elif name in LISTS:
        if not isinstance(v, list) or not v or not all(isinstance(w, str) and w.strip() for w in v):
            raise BadConstraints(f"{cid}: {name} must be a non-empty list of words, got {v!r}")
    elif name in ("relation", "capital_relation", "let_relation"):
        if v not in RELATIONS:
            raise BadConstraints(f"{cid}: {name} must be one of {list(RELATIONS)}, got {v!r}")
    elif not isinstance(v, str) or not v.strip():
        raise BadConstraints(f"{cid}: {name} must be non-empty text, got {v!r}")
    return v


def parse(data: str | list[Any] | None) -> list[Constraint]:
    """Validate a constraints list (JSON text or parsed); None/"" is no constraint."""
    if data is None or data == "":
        return []
    if isinstance(data, str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise BadConstraints(f"not JSON ({e})") from None
    if not isinstance(data, list):
        raise BadConstraints(f"must be a JSON list of {{id, kwargs}} objects, got {type(data).__name__}")
    out: list[Constraint] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or set(item) - {"id", "kwargs"} or "id" not in item:
            raise BadConstraints(f"item {i}: must be an object with `id` and optional `kwargs`")
        cid, kw = item["id"], item.get("kwargs") or {}
        if cid not in KWARGS:
            raise BadConstraints(f"item {i}: unknown instruction id {cid!r}")
        if not isinstance(kw, dict):
            raise BadConstraints(f"item {i}: kwargs must be an object")
        kw = {k: v for k, v in kw.items() if v is not None}  # HF's IFEval copy pads kwargs with nulls
        unknown = set(kw) - set(KWARGS[cid])
        missing = set(KWARGS[cid]) - set(kw)
        if unknown or missing:
            raise BadConstraints(f"item {i}: {cid} takes kwargs {list(KWARGS[cid])}; "
                                 f"unknown {sorted(unknown)}, missing {sorted(missing)}")  # fmt: skip
        out.append(Constraint(cid, {k: _value(cid, k, v) for k, v in kw.items()}))
    return out


def _bounds(rel: str, n: int) -> tuple[int, float]:
    return (n, float("inf")) if rel == "at least" else (0, n - 1)


def contradictions(items: list[Constraint]) -> list[str]:
    """Pairs of constraints no single text can satisfy, as `a|b` ids (recorded, not fatal)."""
    ids = {c.id for c in items}
    out: list[str] = []
    if {"change_case:english_lowercase", "change_case:english_capital"} <= ids:
        out.append("change_case:english_lowercase|change_case:english_capital")
    langs = {c.kwargs["language"] for c in items if c.id == "language:response_language"}
    if len(langs) > 1:
        out.append("language:response_language|language:response_language")
    if langs - {"en"} and ids & {"change_case:english_lowercase", "change_case:english_capital"}:
        out.append("language:response_language|change_case:english")
    if "detectable_format:json_format" in ids and "startend:quotation" in ids:
        pass  # a JSON string literal is both: satisfiable
    forbidden = {w.casefold() for c in items if c.id == "keywords:forbidden_words" for w in c.kwargs["forbidden_words"]}
    required = {w.casefold() for c in items if c.id == "keywords:existence" for w in c.kwargs["keywords"]}
    required |= {c.kwargs["keyword"].casefold() for c in items
                 if c.id == "keywords:frequency" and c.kwargs["relation"] == "at least" and c.kwargs["frequency"] > 0}
    if forbidden & required:
        out.append("keywords:forbidden_words|keywords:existence")
    for cid, rel, num in (("length_constraints:number_words", "relation", "num_words"),
                          ("length_constraints:number_sentences", "relation", "num_sentences")):  # fmt: skip
        lo, hi = 0, float("inf")
        for c in items:
            if c.id == cid:
                a, b = _bounds(c.kwargs[rel], c.kwargs[num])
                lo, hi = max(lo, a), min(hi, b)
        if lo > hi:
            out.append(f"{cid}|{cid}")
    return out
