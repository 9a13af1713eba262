"""The recipe's `sources:` list: where prompts come from and how their fields map."""

from __future__ import annotations

from typing import Literal

import regex
from pydantic import Field, field_validator, model_validator

from builder.config.base import CATEGORIES, Name, Strict
from builder.config.release import ISO_639, repo_id_problem

FileFormat = Literal["auto", "jsonl", "json", "parquet", "csv"]


class FieldMap(Strict):
    """Where each logical field lives in a source row. Dotted paths reach into dicts."""

    prompt: str | None = Field(None, description="a single-turn user prompt")
    messages: str | None = Field(None, description="a list of {role, content} (or ShareGPT {from, value})")
    system: str | None = Field(None, description="optional system prompt for single-turn sources")
    response: str | None = Field(None, description="the community's original response (the `original` variant)")
    reference: str | None = Field(None, description="reference answer for verification")
    tests: str | None = Field(None, description="code tests (JSON or dict)")
    category: str | None = Field(None, description="per-row category (mapped through category_map)")
    language: str | None = Field(None, description="per-row language code")
    id: str | None = Field(None, description="source row id; default: file:line or the row index")
    tools: str | None = Field(None, description="tool definitions (list/dict/JSON string)")
    tool_calls: str | None = Field(
        None, description="the community response's tool calls (OpenAI `tool_calls` or [{name, arguments}]; "
        "list or JSON string): the `original` turn's structured `tool_calls`")
    options: str | None = Field(None, description="MCQ options appended to the prompt as 'A. …' lines")
    constraints: str | None = Field(
        None, description="known instruction constraints, a list (or JSON text) of IFEval {id, kwargs}; "
        "unset: read from ifeval tests, else detected from the prompt (builder/constraints)",
    )

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> FieldMap:
        if not self.prompt and not self.messages:
            raise ValueError("give `prompt` (single turn) or `messages` (multi-turn) in fields")
        return self


class SourceConfig(Strict):
    name: Name = Field(description="unique name; rows carry it as `source`")
    kind: Literal["local", "hf"] = Field("local", description="local files, or a Hub dataset via load_dataset")
    path: str | None = Field(None, description="local file or glob, relative to the recipe file")
    format: FileFormat = Field("auto", description="file format; auto: from the extension")
    dataset: str | None = Field(None, description="Hub id (org/name), for kind=hf")
    config: str | None = Field(None, description="Hub dataset config name")
    split: str = Field("train", description="Hub dataset split")
    revision: str | None = Field(None, description="Hub revision (pin it for reproducible builds)")
    fields: FieldMap = Field(description="where each logical field lives in a row")
    reference_regex: str | None = Field(None, description="e.g. '#### (.+)$' for GSM8K-style references")
    category: str = Field("chat", description="used when fields.category is absent")
    category_map: dict[str, str] = Field(default_factory=dict, description="raw category value → category")
    language: str = Field("auto", description="a code like 'en'/'zh', or 'auto' to detect")
    license: str = Field("undeclared", description="the source's license id (goes on every row and the card)")
    attribution: str = Field("", description="attribution text for the card")
    origin_dataset: str | None = Field(
        None, description="local files taken from a Hub dataset: its id (org/name), listed in the card's "
        "source_datasets and linked (kind=hf sources use `dataset`)")
    priority: int = Field(100, description="lower wins exact/near-duplicate ties")
    limit: int | None = Field(None, ge=0, description="read at most this many rows")
    verifier: Literal["auto", "math", "mcq", "code", "ifeval", "none"] = Field(
        "auto", description="how replies to this source are verified; auto: from category and reference"
    )
    tests_format: Literal["raw", "mbpp", "asserts", "humaneval", "ifeval"] = Field(
        "raw", description="how `fields.tests` is laid out; raw: already the verifier's JSON schema"
    )
    prompt_suffix: str = Field("", description="appended to the last user turn (e.g. an MCQ instruction)")

    @field_validator("reference_regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        # Compiled here, as the curate stage does (the `regex` module, MULTILINE), so a typo
        # fails at load time with the key path instead of mid-read; group 1 is the answer.
        if v is None:
            return v
        try:
            pattern = regex.compile(v, regex.M)
        except regex.error as e:
            raise ValueError(f"{v!r} is not a valid regular expression ({e}); fix the pattern") from None
        if pattern.groups < 1:
            raise ValueError(f"{v!r} has no capture group; wrap the answer in ( ), e.g. '#### (.+)$'")
        return v

    @model_validator(mode="after")
    def _where(self) -> SourceConfig:
        if self.kind == "local" and not self.path:
            raise ValueError("a local source needs `path` (a file or glob)")
        if self.kind == "hf" and not self.dataset:
            raise ValueError("an hf source needs `dataset` (a Hub id like org/name)")
        # The other kind's keys would be ignored: a source meant as hf, missing `kind: hf`, or the reverse.
        unused = ["path"] if self.kind == "hf" and self.path else [
            k for k in ("dataset", "config", "revision") if self.kind == "local" and getattr(self, k)]
        if unused:
            raise ValueError(f"`{unused[0]}` is not read for kind: {self.kind}; remove it or set `kind`")
        for raw, cat in self.category_map.items():
            if cat not in CATEGORIES:
                raise ValueError(f"category_map[{raw!r}] = {cat!r}; use one of {CATEGORIES}")
        if self.category not in CATEGORIES:
            raise ValueError(f"category {self.category!r} is unknown; use one of {CATEGORIES}")
        if self.language != "auto" and not all(ISO_639.fullmatch(c) for c in self.language.split("+")):
            # Rows carry it: the card would drop "english", and the language gate find every "en" answer off.
            raise ValueError(f"language {self.language!r} is not an ISO 639 code; write e.g. en, zh or bn+en, or auto")
        if self.origin_dataset and repo_id_problem(self.origin_dataset):
            raise ValueError(f"origin_dataset {self.origin_dataset!r} is not a Hub id; use org/name")
        return self

    @property
    def hub_id(self) -> str | None:
        """The Hub dataset the rows come from (the card's source_datasets), if any."""
        return self.dataset if self.kind == "hf" else self.origin_dataset
