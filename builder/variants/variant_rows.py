"""Variant rows: candidates (a prompt, its selected replies, summary, choice) → rows of one variant
table, chunk by chunk, with every absent prompt recorded in the ledger with its reason."""

from __future__ import annotations

from collections import Counter
from typing import Any

from builder import chat_length
from builder.chat_length import joins_additively
from builder.config.student import StudentConfig
from builder.config.variants import VariantsConfig
from builder.ledger import DROPPED, KEPT, Ledger
from builder.rows import tools_list
from builder.tokens import count_tokens
from builder.variants.format_gate import Survival, apply_gate
from builder.variants.overthinking import CODE as OVERTHINKING
from builder.variants.registry import REGISTRY, Candidate, Skip
from builder.variants.summary_job import summary_columns

# Tokens per message beyond its content (<|im_start|> role \n … <|im_end|> \n): the estimate for a
# student tokenizer without a chat template; with one, conversations are counted as it renders them.
CHATML_OVERHEAD = 5
# Candidates turned into variant rows at a time (their texts and row dicts are held at once).
TOKEN_CHUNK = 2_048


def prompt_tokens(student: StudentConfig, prompts: list[dict[str, Any]]) -> list[int]:
    """Each prompt's student tokens up to the reply, as the student's chat template renders it
    (its default system prompt and tool block included: builder/chat_length.py)."""
    rendered = chat_length.prompt_tokens(student.tokenizer, prompts)
    if rendered is not None:
        return rendered
    # No template: tool definitions go into the system turn, so they count too.
    texts = ["\n".join([*(m["content"] or "" for m in p["messages"]), *(c for m in p["messages"] for c in m.get("tool_calls") or []),
                        p.get("tools_json") or ""]) for p in prompts]
    counts = count_tokens(student.tokenizer, texts)
    return [t + CHATML_OVERHEAD * len(p["messages"]) for t, p in zip(counts, prompts)]


def turn_tokens(tokenizer: str, cands: list[Candidate], turns: list[str]) -> list[int]:
    """Student tokens of each candidate's assistant turn. answer, think_summary, full and adaptive
    turns end in the same reasoning answer after a line break: where the tokenizer's count is
    additive there (chat_length.joins_additively), a turn is its head's count plus the
    answer's, and the answer is counted once per candidate across all variants."""
    heads: list[str | None] = []
    for c, t in zip(cands, turns):
        a = (c.reasoning or {}).get("answer") or ""
        head = t[: len(t) - len(a)] if a and t.endswith(a) else None
        heads.append(head if head is not None and joins_additively(tokenizer, head, a) else None)
    todo = [c for c, h in zip(cands, heads) if h is not None and c.answer_tokens is None]
    for c, n in zip(todo, count_tokens(tokenizer, [(c.reasoning or {}).get("answer") or "" for c in todo])):
        c.answer_tokens = n
    counts = count_tokens(tokenizer, [t if h is None else h for t, h in zip(turns, heads)])
    return [n if h is None else n + (c.answer_tokens or 0) for n, h, c in zip(counts, heads, cands)]


def variant_chunk(
    name: str,
    cands: list[Candidate],
    prompt_tokens: list[int],
    student: StudentConfig,
    ledger: Ledger,
    writer: Any,
    reasons: Counter[str],
    prov: dict[str, str],
    summ: dict[str, str | None],
    gate: tuple[VariantsConfig, set[str], Survival],
) -> None:
    spec = REGISTRY[name]
    fn = spec.fn
    results: list[str | Skip] = [fn(c) for c in cands]
    cfg, gated, survival = gate
    codes: list[list[str]] = [list(c.extra_codes) for c in cands]
    choices = [c.choice if name == "adaptive" else (("summary", "") if spec.needs_summary else None) for c in cands]
    for i, (c, res) in enumerate(zip(cands, results)):
        if not (isinstance(res, str) and c.constraints and cfg.format_gate.enabled and spec.reply == "reasoning"):
            continue
        answer = (c.reasoning or {}).get("answer") or ""
        o = apply_gate(res, answer, c.summary, c.constraints, cfg.format_gate.on_break, name in gated, name,
                       c.prompt["category"] or "", survival)  # fmt: skip
        results[i] = o.turn if o.turn is not None else Skip(o.drop)
        codes[i] += o.codes
        choices[i] = o.choice or choices[i]
    # A community response can be (or end in) tool calls; teacher replies carry none.
    calls = [c.prompt.get("original_tool_calls") if spec.reply is None else None for c in cands]
    a_tokens = turn_tokens(student.tokenizer, cands, ["\n".join([r, *(k or [])]) if isinstance(r, str) else ""
                                                      for r, k in zip(results, calls)])  # fmt: skip
    totals = _totals(student.tokenizer, cands, results, calls, prompt_tokens, a_tokens)
    rows: list[dict[str, Any]] = []
    for c, res, n_tok, total, tool_calls, extra, choice in zip(cands, results, a_tokens, totals, calls, codes, choices):
        p = c.prompt
        if isinstance(res, str) and total > student.max_tokens:
            res = Skip("too_long_for_student")
        if not isinstance(res, str):
            reason = res.reason if isinstance(res, Skip) else "variant_error"
            reasons[reason] += 1
            ledger.record(
                name,
                DROPPED,
                source=p["source"] or "",
                source_row_id=p["source_row_id"] or "",
                prompt_id=p["prompt_id"],
                reason=reason,
                detail=f"{total} tokens" if reason == "too_long_for_student" else "",
            )
            continue
        reply = getattr(c, spec.reply) if spec.reply else None  # the teacher reply the spec builds from
        with_summary = spec.needs_summary and not (choice and choice[0] == "answer")  # adaptive / fallback: answer only
        rows.append(
            {
                "prompt_id": p["prompt_id"],
                "variant": name,
                "messages": [*p["messages"], {"role": "assistant", "content": res, "tool_calls": tool_calls}],
                "tools": tools_list(p["tools_json"]),
                "category": p["category"],
                "language": p["language"],
                "num_turns": p["num_turns"],
                "generation_id": reply["generation_id"] if reply else None,
                # Who actually wrote the reply: the served / imported model when it is known
                # (an import can mix models; an API may serve a dated alias).
                "teacher_model": (reply.get("served_model") or reply["teacher_model"]) if reply else None,
                "endpoint_kind": reply["endpoint_kind"] if reply else None,
                "prompt_template_id": reply["prompt_template_id"] if reply else None,
                "prompt_template_hash": reply["prompt_template_hash"] if reply else None,
                **(summ if with_summary else dict.fromkeys(summ)),
                "reply_shape": reply["shape"] if reply else None,
                "verify_status": reply["verify_status"] if reply else "unverifiable",
                "verify_method": reply["verify_method"] if reply else "none",
                "verify_reason": reply["verify_reason"] if reply else "community_response",
                "quality_codes": [*_codes(reply, c.overthinking_z if spec.reply == "reasoning" else None, cfg.overthinking_z),
                                  *extra],
                "variant_choice": choice[0] if choice else None,
                "choice_reason": choice[1] if choice else None,
                "repetition_score": reply["repetition_score"] if reply else None,
                "think_language": reply["think_language"] if reply else None,
                "answer_language": reply["answer_language"] if reply else None,
                "teacher_think_tokens": reply["teacher_think_tokens"] if reply else None,
                "teacher_answer_tokens": reply["teacher_answer_tokens"] if reply else None,
                "student_tokens": total,
                "assistant_student_tokens": n_tok,
                **summary_columns(c.summary_scores if with_summary else None),
                "overthinking_z": c.overthinking_z if spec.reply == "reasoning" else None,
                "source": p["source"],
                "source_license": p["source_license"],
                "source_row_id": p["source_row_id"],
                **prov,
            }
        )
        ledger.record(
            name, KEPT, source=p["source"] or "", source_row_id=p["source_row_id"] or "", prompt_id=p["prompt_id"]
        )
    writer.write_rows(rows)


def _totals(tokenizer: str, cands: list[Candidate], results: list[str | Skip], calls: list[Any],
            p_tokens: list[int], a_tokens: list[int]) -> list[int]:
    """Each row's whole-conversation student tokens (`student_tokens`, checked against
    `student.max_tokens`): as the student's chat template renders it, else the estimate."""
    if chat_length.turn_end(tokenizer) is None:
        return [p + a + CHATML_OVERHEAD for p, a in zip(p_tokens, a_tokens)]
    turns = [(r, k) if isinstance(r, str) else None for r, k in zip(results, calls)]
    got = chat_length.conversation_tokens(tokenizer, [c.prompt for c in cands], turns, p_tokens, a_tokens)
    return [n if n is not None else 0 for n in got]


def _codes(reply: dict[str, Any] | None, z: float | None, threshold: float) -> list[str]:
    codes = list(reply["info_codes"] or []) if reply else []
    if z is not None and z > threshold:
        codes.append(OVERTHINKING)  # informational: the row stays, users may re-filter
    return codes
