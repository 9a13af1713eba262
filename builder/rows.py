"""Row schemas of every stage, as explicit ``Features`` (builder/schema.py: `datasets`' feature
types and Arrow schemas, without importing it), in one place.

Stages meet only through parquet shards with these schemas. Columns are flat and typed; the
one nested column is ``messages`` (a list of ``{role, content, tool_calls}``), the standard
chat layout. Internal free-form values (sampling params, code tests, a prompt's tools) are
JSON *strings*. The published tool columns follow TRL's tool-calling dataset format: `tools`
(a list of JSON-schema function definitions) and each message's `tool_calls` are `List(Json())`
— JSON text in Arrow's canonical `arrow.json` extension type, one stable Arrow type whatever a
tool's schema looks like (a struct would change with every parameter name), which `datasets`
(>= 4.7) decodes back to dicts, so `tokenizer.apply_chat_template(messages, tools=tools)` and
TRL's SFTTrainer take a row as it loads. In Python the pipeline holds those items as JSON text;
`arrow_table` writes them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pyarrow as pa

from builder import __version__ as TOOLKIT_VERSION
from builder.schema import Features, Json, List, Value

# 2.0: `tools_json` (a string) became `tools` (List(Json())); messages gained `tool_calls`.
SCHEMA_VERSION = "2.0"

# One tool call, TRL's shape: {"type": "function", "function": {"name", "arguments": {...}}}
# (plus "id" when the source has one); `tool_calls` is null on turns without calls.
TOOL_CALLS = List(Json())
# Tool definitions: [{"type": "function", "function": {"name", "description", "parameters"}}].
TOOLS = List(Json())
MESSAGE = {"role": Value("string"), "content": Value("string"), "tool_calls": TOOL_CALLS}
MESSAGES = List(MESSAGE)

# Fields every row carries so a user can trace it back to its source.
PROVENANCE = {
    "source": Value("string"),
    "source_license": Value("string"),
    "source_row_id": Value("string"),
    "schema_version": Value("string"),
    "toolkit_version": Value("string"),
}

PROMPT_FEATURES = Features(
    {
        "prompt_id": Value("string"),
        "messages": MESSAGES,
        "tools_json": Value("string"),
        "category": Value("string"),
        "language": Value("string"),
        "num_turns": Value("int32"),
        "original_response": Value("string"),
        "original_tool_calls": TOOL_CALLS,  # the community response's tool calls, if it made any
        "reference_answer": Value("string"),
        "tests_json": Value("string"),
        "verifier": Value("string"),
        # IFEval-style instruction constraints the prompt states: JSON [{"id", "kwargs"}] (builder/constraints).
        "constraints_json": Value("string"),
        **PROVENANCE,
    }
)

# The raw teacher reply, stored whole (issue: keep every reasoning field, usage, latency).
REPLY_FEATURES = Features(
    {
        "generation_id": Value("string"),
        "prompt_id": Value("string"),
        "sample_index": Value("int32"),
        "teacher_role": Value("string"),  # "reasoning" | "control" | "summarizer"
        "teacher": Value("string"),  # the recipe's teacher name (generate.teachers[].name)
        "teacher_model": Value("string"),
        "served_model": Value("string"),
        "endpoint_kind": Value("string"),  # "openai" | "vllm" | "import"
        "prompt_template_id": Value("string"),
        "prompt_template_hash": Value("string"),
        "sampling_json": Value("string"),
        "reasoning_format": Value("string"),
        "content": Value("string"),
        "reasoning_content": Value("string"),
        "reasoning": Value("string"),
        "tool_calls_json": Value("string"),  # the teacher's own tool calls (message.tool_calls), JSON text
        "finish_reason": Value("string"),
        "prompt_tokens": Value("int64"),
        "completion_tokens": Value("int64"),
        "reasoning_tokens": Value("int64"),
        "latency_s": Value("float64"),
        "attempts": Value("int32"),
        "max_tokens": Value("int64"),
        "status": Value("string"),  # "ok" | "failed"
        "error_code": Value("string"),
        "error_message": Value("string"),
        "created_at": Value("string"),
        "schema_version": Value("string"),
        "toolkit_version": Value("string"),
    }
)

# One ledger entry per input row per stage: the row's fate and why.
LEDGER_FEATURES = Features(
    {
        "stage": Value("string"),
        "step": Value("string"),
        "source": Value("string"),
        "source_row_id": Value("string"),
        "prompt_id": Value("string"),
        "status": Value("string"),  # "kept" | "dropped" | "quarantined"
        "reason": Value("string"),  # machine-readable code, "" when kept
        "detail": Value("string"),  # e.g. the id this row duplicates, benchmark + item
        "location": Value("string"),  # file:line for bad input
    }
)

# Curate's decontamination report: one row per dropped prompt and the benchmark item it hit.
DECONTAMINATION_FEATURES = Features(
    {
        "benchmark": Value("string"),
        "item_id": Value("string"),
        "prompt_id": Value("string"),
        "source": Value("string"),
        "source_row_id": Value("string"),
        "rule": Value("string"),  # "ngram<N>" | "fuzzy<T>" | "embedded-fuzzy<T>" | "mcq" | "semantic"
        "score": Value("float32"),  # item coverage (ngram), ratio (fuzzy), cosine (semantic): re-filterable
        "span": Value("string"),  # the matched text (<= 300 chars)
        "evidence": Value("string"),  # JSON: score, span and the rule's own detail
    }
)


def arrow_schema(features: Features) -> pa.Schema:
    return features.arrow_schema


def storage_type(t: pa.DataType) -> pa.DataType:
    """`t` with every extension type (Json) replaced by its storage type (string)."""
    if isinstance(t, pa.BaseExtensionType):
        return t.storage_type
    if pa.types.is_list(t):
        return pa.list_(pa.field(t.value_field.name, storage_type(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, storage_type(f.type)) for f in t])
    return t


def arrow_table(data: dict[str, list[Any]] | list[dict[str, Any]] | pa.Table, features: Features) -> pa.Table:
    """Columns or rows (or an Arrow table: its `features` columns) as a table of `features`' schema.
    Arrow cannot build extension arrays from Python values, so Json items (JSON text here) go in
    as strings and are cast."""
    schema = features.arrow_schema
    if isinstance(data, pa.Table):
        table = data.select(list(features))
        return table if table.schema == schema else table.cast(schema)
    storage = pa.schema([pa.field(f.name, storage_type(f.type)) for f in schema], metadata=schema.metadata)
    if isinstance(data, list):
        table = pa.Table.from_pylist([{k: r[k] for k in features} for r in data], schema=storage)
    else:
        table = pa.table({k: data[k] for k in features}, schema=storage)
    return table if storage == schema else table.cast(schema)


def json_text(value: Any) -> str:
    """Compact JSON text, keys in the source's order (a chat template renders them in that
    order): how the pipeline holds a Json item."""
    return orjson.dumps(value).decode()


def tools_list(tools_json: str | None) -> list[str] | None:
    """A prompt's `tools_json` (curate writes a JSON list of function definitions) as the
    published `tools` items, one JSON text per tool; None when there are none. Text that is
    not such a list gives None too: the release's `tools_kept` gate fails a tool-use row
    left without its tools."""
    try:
        tools = orjson.loads(tools_json) if tools_json else None
    except orjson.JSONDecodeError:
        return None
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list) or not tools or not all(isinstance(t, dict) for t in tools):
        return None
    return [json_text(t if isinstance(t.get("function"), dict) else {"type": "function", "function": t}) for t in tools]


def stable_hash(obj: Any, n: int = 32) -> str:
    """sha256 of a canonical JSON encoding; the basis of every id in the toolkit."""
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()[:n]


def prompt_id_for(messages: list[dict[str, Any]], tools_json: str | None) -> str:
    """Hash of the normalized conversation: the same prompt from two sources has one id.
    A turn's tool calls count (appended only where present: other ids stay as they were)."""
    convo = [[m["role"], m["content"], *([m["tool_calls"]] if m.get("tool_calls") else [])] for m in messages]
    return stable_hash({"m": convo, "t": tools_json or ""})


def generation_id_for(
    prompt_id: str,
    teacher_model: str,
    sampling: dict[str, Any],
    template_id: str,
    template_hash: str,
    sample_index: int,
) -> str:
    return stable_hash(
        {
            "p": prompt_id,
            "m": teacher_model,
            "s": sampling,
            "t": template_id,
            "th": template_hash,
            "i": sample_index,
        }
    )


def provenance_defaults() -> dict[str, str]:
    return {"schema_version": SCHEMA_VERSION, "toolkit_version": TOOLKIT_VERSION}

# A row of a published variant (HF config). All variants of one prompt share `prompt_id`.
VARIANT_FEATURES = Features(
    {
        "prompt_id": Value("string"),
        "variant": Value("string"),
        "messages": MESSAGES,
        "tools": TOOLS,
        "category": Value("string"),
        "language": Value("string"),
        "num_turns": Value("int32"),
        "generation_id": Value("string"),
        "teacher_model": Value("string"),
        "endpoint_kind": Value("string"),
        "prompt_template_id": Value("string"),
        "prompt_template_hash": Value("string"),
        "summarizer": Value("string"),
        "summary_template_id": Value("string"),
        "summary_template_hash": Value("string"),
        "reply_shape": Value("string"),
        "verify_status": Value("string"),  # "pass" | "fail" | "unverifiable"
        "verify_method": Value("string"),
        "verify_reason": Value("string"),
        "quality_codes": List(Value("string")),  # informational codes on kept rows
        # What the row's turn is when a policy chose it (adaptive; think_summary's format fallback): answer | summary.
        "variant_choice": Value("string"),
        "choice_reason": Value("string"),
        "repetition_score": Value("float32"),
        "think_language": Value("string"),
        "answer_language": Value("string"),
        "teacher_think_tokens": Value("int32"),
        "teacher_answer_tokens": Value("int32"),
        "student_tokens": Value("int32"),  # whole conversation, student tokenizer
        "assistant_student_tokens": Value("int32"),
        # Summary quality and faithfulness (builder/variants/summary_quality.py, faithfulness.py);
        # null on variants without a summary.
        "summary_fragment_rate": Value("float32"),
        "summary_filler_rate": Value("float32"),
        "summary_repetition": Value("float32"),
        "summary_final_covered": Value("bool"),  # null: the thinking states no checkable result
        "faithfulness_score": Value("float32"),
        # Thinking length as a z-score of log teacher tokens within category (and verified
        # difficulty); null without a reasoning reply or a large enough group.
        "overthinking_z": Value("float32"),
        **PROVENANCE,
    }
)

# A preference pair (the `pairs` config, builder/variants/pairs.py): TRL's conversational
# preference format (prompt / chosen / rejected as message lists) plus why the rejected side lost.
PAIR_FEATURES = Features(
    {
        "prompt_id": Value("string"),
        "prompt": MESSAGES,
        "chosen": MESSAGES,
        "rejected": MESSAGES,
        "rejection_reason": Value("string"),  # verified_fail | truncated | repetitive | inconsistent
        "chosen_generation_id": Value("string"),
        "rejected_generation_id": Value("string"),
        "chosen_verify_status": Value("string"),
        "rejected_verify_status": Value("string"),
        "teacher_model": Value("string"),
        "category": Value("string"),
        "language": Value("string"),
        **PROVENANCE,
    }
)

# A parsed, validated and verified reply (the responses stage). Quarantined rows keep the
# same schema in their own folder, with their reject codes.
PARSED_FEATURES = Features(
    {
        "generation_id": Value("string"),
        "prompt_id": Value("string"),
        "teacher_role": Value("string"),
        "sample_index": Value("int32"),
        "teacher": Value("string"),
        "teacher_model": Value("string"),
        "served_model": Value("string"),
        "endpoint_kind": Value("string"),
        "prompt_template_id": Value("string"),
        "prompt_template_hash": Value("string"),
        "finish_reason": Value("string"),
        "think": Value("string"),
        "answer": Value("string"),
        "shape": Value("string"),
        "reject_codes": List(Value("string")),
        "info_codes": List(Value("string")),
        "verify_status": Value("string"),
        "verify_method": Value("string"),
        "verify_reason": Value("string"),
        # Think–answer consistency evidence: {"verdict", "kind", "think", "answer"} (responses/consistency.py).
        "consistency_json": Value("string"),
        "repetition_score": Value("float32"),
        "think_language": Value("string"),
        "answer_language": Value("string"),
        "teacher_think_tokens": Value("int32"),
        "teacher_answer_tokens": Value("int32"),
        "student_answer_tokens": Value("int32"),
        "selected": Value("bool"),
        # Why the selected row won over the other kept replies of its prompt and role: the
        # generate.precedence key that decided (e.g. "teacher_order"), or "only_reply".
        "selected_by": Value("string"),
        "schema_version": Value("string"),
        "toolkit_version": Value("string"),
    }
)
