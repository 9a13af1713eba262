"""What each published column means: the card's column tables read these next to the types
declared in `builder.rows.VARIANT_FEATURES` and `PAIR_FEATURES` (`Features` carry no per-column text).

A column the Features declare without a description here is a test failure
(tests/test_card.py), so a new column cannot reach the Hub undescribed.
"""

from __future__ import annotations

from builder.schema import Features, List, Value

DESCRIPTIONS: dict[str, str] = {
    "prompt_id": "hash of the normalized conversation; the same prompt has the same id in every config",
    "variant": "the config this row belongs to (answer, original, think_summary, full, control)",
    "messages": "the chat: user (and earlier) turns, then one final assistant turn — the training target",
    "tools": "the tool definitions offered to the model, in the layout TRL's chat templates take (tool-use rows)",
    "category": "chat, math, code, tool_use, multi_turn or instruction_following (the paper's mix)",
    "language": "the prompt's language code(s); `en+bn` marks a prompt in two languages",
    "num_turns": "user turns in the prompt",
    "generation_id": "hash of (prompt, teacher model, sampling, template, sample index): the teacher reply used",
    "teacher_model": "the model that wrote the assistant turn; empty for `original`",
    "endpoint_kind": "how the teacher was reached: openai (API or vLLM server), vllm (offline) or import",
    "prompt_template_id": "the system prompt / template the teacher was asked with",
    "prompt_template_hash": "sha256 prefix of that template's text",
    "summarizer": "what wrote the thinking summary (`think_summary` only): extractive or llm:<model>",
    "summary_template_id": "the summarizer's prompt template (llm summarizer only)",
    "summary_template_hash": "sha256 prefix of the summarizer's template",
    "reply_shape": "where the teacher's thinking was found (reasoning_content, inline tags, …)",
    "verify_status": "pass / fail / unverifiable: whether a checker confirmed the teacher's answer",
    "verify_method": "the checker used: math, mcq, code, ifeval or none",
    "verify_reason": "why the checker decided as it did (empty on a plain pass)",
    "quality_codes": "informational codes on kept rows (e.g. a boxed answer missing)",
    "variant_choice": "`adaptive` (and a gated fallback): summary (summary + answer) or answer (the answer only)",
    "choice_reason": "why that choice was made (the recipe policy's rule that decided)",
    "repetition_score": "share of repeated n-grams in the reply (0 = none); loops score near 1",
    "think_language": "detected language of the teacher's thinking",
    "answer_language": "detected language of the teacher's answer",
    "teacher_think_tokens": "thinking tokens: the teacher's usage report where it gives them, else counted with the "
                            "teacher tokenizer (responses.teacher_tokenizer; imported replies have no report)",
    "teacher_answer_tokens": "answer tokens: the teacher's usage report where it gives them, else counted with the "
                             "teacher tokenizer",
    "student_tokens": "the whole conversation's length with the student's tokenizer, as its chat template renders it",
    "assistant_student_tokens": "the assistant turn's length with the student's tokenizer",
    "summary_fragment_rate": "share of the summary's sentences that are fragments (`think_summary`; 0 = none)",
    "summary_filler_rate": "share of the summary's sentences that are filler or self-talk (`think_summary`)",
    "summary_repetition": "share of the summary's sentences that repeat an earlier one (`think_summary`)",
    "summary_final_covered": "whether the summary states the thinking's final result (null: none checkable)",
    "faithfulness_score": "share of the summary's numbers, formulas and names found in the thinking or prompt",
    "overthinking_z": "thinking length (log teacher tokens) as a z-score within its category (or verified difficulty)",
    # The `pairs` config (builder.rows.PAIR_FEATURES).
    "prompt": "`pairs`: the conversation up to the reply, as messages",
    "chosen": "`pairs`: the preferred assistant turn (a verified pass, or the best-scoring kept sample)",
    "rejected": "`pairs`: the assistant turn that lost (never the same text as `chosen`)",
    "rejection_reason": "`pairs`: why the rejected sample lost: verified_fail, truncated, repetitive or inconsistent",
    "chosen_generation_id": "`pairs`: the teacher reply behind `chosen`",
    "rejected_generation_id": "`pairs`: the teacher reply behind `rejected`",
    "chosen_verify_status": "`pairs`: verify_status of the chosen reply",
    "rejected_verify_status": "`pairs`: verify_status of the rejected reply",
    "source": "the community dataset the prompt came from (see Sources)",
    "source_license": "that source's license; filter on it to keep only rows whose terms suit you",
    "source_row_id": "the row's id in its source",
    "schema_version": "version of this row layout",
    "toolkit_version": "answer-distill version that built the row",
}


def type_name(feature: object) -> str:
    """A feature's type as the card shows it: `string`, `list<string>`, `list<{role, content}>`."""
    if isinstance(feature, Value):
        return feature.dtype
    if isinstance(feature, List):
        inner = feature.feature
        if isinstance(inner, dict):
            return "list<{" + ", ".join(inner) + "}>"
        return f"list<{type_name(inner)}>"
    if isinstance(feature, dict):
        return "{" + ", ".join(feature) + "}"
    return type(feature).__name__


def undescribed(features: Features) -> list[str]:
    return [name for name in features if not DESCRIPTIONS.get(name)]


def table(features: Features) -> list[dict[str, str]]:
    """One entry per declared column, in declaration order: name, type, description."""
    return [{"name": n, "type": type_name(f), "description": DESCRIPTIONS.get(n, "(not described)")}
            for n, f in features.items()]
