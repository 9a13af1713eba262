"""Row schemas of every stage, as explicit Hugging Face ``Features``, in one place.

Stages meet only through parquet shards with these schemas. Columns are flat and typed; the
one nested column is ``messages`` (a list of ``{role, content}``), the standard chat layout.
Anything free-form (sampling params, tool definitions, code tests) is a JSON *string*, so a
downstream user never has to hand-write Features.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pyarrow as pa
from datasets import Features, List, Value

from builder import __version__ as TOOLKIT_VERSION

SCHEMA_VERSION = "1.0"

MESSAGE = {"role": Value("string"), "content": Value("string")}
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
        "reference_answer": Value("string"),
        "tests_json": Value("string"),
        "verifier": Value("string"),
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
        "rule": Value("string"),  # "ngram<N>" | "fuzzy<T>" | "embedded-fuzzy<T>" | "semantic"
        "score": Value("float32"),  # item coverage (ngram), ratio (fuzzy), cosine (semantic): re-filterable
        "span": Value("string"),  # the matched text (<= 300 chars)
        "evidence": Value("string"),  # JSON: score, span and the rule's own detail
    }
)


def arrow_schema(features: Features) -> pa.Schema:
    return features.arrow_schema


def stable_hash(obj: Any, n: int = 32) -> str:
    """sha256 of a canonical JSON encoding; the basis of every id in the toolkit."""
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()[:n]


def prompt_id_for(messages: list[dict[str, str]], tools_json: str | None) -> str:
    """Hash of the normalized conversation: the same prompt from two sources has one id."""
    convo = [[m["role"], m["content"]] for m in messages]
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
        "tools_json": Value("string"),
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
        "repetition_score": Value("float32"),
        "think_language": Value("string"),
        "answer_language": Value("string"),
        "teacher_think_tokens": Value("int32"),
        "teacher_answer_tokens": Value("int32"),
        "student_tokens": Value("int32"),  # whole conversation, student tokenizer
        "assistant_student_tokens": Value("int32"),
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
