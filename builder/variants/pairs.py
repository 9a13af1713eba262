"""Preference pairs (the `pairs` config): n samples of one prompt → one DPO row.

TRL's conversational preference format: `prompt` (the conversation up to the assistant turn),
`chosen` and `rejected` (one assistant message each), plus why the rejected one lost.

    chosen     the first sample (lowest sample index) that passed verification; without one, the
               best-scoring kept sample (lowest repetition score, then sample index)
    rejected   the first sample, in this order of reasons, that is
                 verified_fail   failed verification (quarantined `verify_fail`)
                 truncated       cut in its answer (`truncated_in_answer`)
                 repetitive      a repetition loop (`repetition_loop`)
                 inconsistent    its thinking and answer disagree (`think_answer_mismatch`)
    never two identical texts: a rejected answer equal to the chosen one (whitespace folded) is
    skipped, and the next candidate tried.

Both sides are the replies' answers (A_reason): the student is a non-reasoning model. A reply
cut inside its thinking has no answer to prefer against, so it is no candidate. A prompt with
no pair is absent with a reason (`single_sample`, `no_chosen`, `no_rejected`, `identical_texts`).
"""

from __future__ import annotations

from typing import Any

from builder.variants.registry import Skip

REASONS = ("verified_fail", "truncated", "repetitive", "inconsistent")
_CODES = {
    "verified_fail": ("verify_fail",),
    "truncated": ("truncated_in_answer",),
    "repetitive": ("repetition_loop",),
    "inconsistent": ("think_answer_mismatch",),
}


def rejection_reason(sample: dict[str, Any]) -> str | None:
    """Why a sample is a rejected side, or None when it is not one."""
    codes = {*(sample.get("reject_codes") or []), *(sample.get("info_codes") or [])}
    if sample.get("verify_status") == "fail":
        codes.add("verify_fail")
    return next((r for r in REASONS if any(c in codes for c in _CODES[r])), None)


def _kept(sample: dict[str, Any]) -> bool:
    return not sample.get("reject_codes") and bool((sample.get("answer") or "").strip())


def _key(text: str) -> str:
    return " ".join(text.split())


def _index(sample: dict[str, Any]) -> int:
    i = sample.get("sample_index")
    return i if i is not None else 1 << 30


def pick_pair(samples: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], str] | Skip:
    """(chosen, rejected, rejection_reason) among one prompt's reasoning samples, or why not."""
    if len(samples) < 2:
        return Skip("single_sample")
    ordered = sorted(samples, key=lambda s: (_index(s), s.get("generation_id") or ""))
    kept = [s for s in ordered if _kept(s) and rejection_reason(s) is None]
    passed = [s for s in kept if s.get("verify_status") == "pass"]
    if passed:
        chosen = passed[0]
    elif kept:
        chosen = min(kept, key=lambda s: (float(s.get("repetition_score") or 0.0), _index(s)))
    else:
        return Skip("no_chosen")
    candidates = [(s, rejection_reason(s)) for s in ordered if s is not chosen]
    ranked = sorted(
        ((s, r) for s, r in candidates if r is not None and (s.get("answer") or "").strip()),
        key=lambda sr: (REASONS.index(sr[1]), _index(sr[0])),
    )
    if not ranked:
        return Skip("no_rejected")
    for s, r in ranked:
        if _key(s["answer"]) != _key(chosen["answer"]):
            return chosen, s, r
    return Skip("identical_texts")


def pair_row(prompt: dict[str, Any], chosen: dict[str, Any], rejected: dict[str, Any], reason: str,
             prov: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """One row of the pairs table (builder.rows.PAIR_FEATURES)."""
    return {
        "prompt_id": prompt["prompt_id"],
        "prompt": list(prompt["messages"]),
        "chosen": [{"role": "assistant", "content": chosen["answer"]}],
        "rejected": [{"role": "assistant", "content": rejected["answer"]}],
        "rejection_reason": reason,
        "chosen_generation_id": chosen["generation_id"],
        "rejected_generation_id": rejected["generation_id"],
        "chosen_verify_status": chosen.get("verify_status"),
        "rejected_verify_status": rejected.get("verify_status"),
        "teacher_model": chosen.get("served_model") or chosen.get("teacher_model"),
        "category": prompt["category"],
        "language": prompt["language"],
        "source": prompt["source"],
        "source_license": prompt["source_license"],
        "source_row_id": prompt["source_row_id"],
        **prov,
    }


# The columns of `parsed` / `quarantine` a pair needs.
SAMPLE_COLS = ["generation_id", "prompt_id", "teacher_role", "sample_index", "teacher_model", "served_model", "answer",
               "reject_codes", "info_codes", "verify_status", "repetition_score"]  # fmt: skip


def _many(ids: Any) -> Any:
    """The prompt ids that occur at least twice in a table with a prompt_id column."""
    import pyarrow.compute as pc

    counts = ids.select(["prompt_id"]).group_by("prompt_id").aggregate([("prompt_id", "count")])
    return counts.filter(pc.greater_equal(counts["prompt_id_count"], 2))["prompt_id"]


def multi_samples_of(t: Any) -> dict[str, list[dict[str, Any]]]:
    """prompt_id → every reasoning sample (kept or quarantined) of prompts with two or more, from a
    table of samples (SAMPLE_COLS; a bucket's: a prompt's samples are all in its bucket), in order."""
    import pyarrow.compute as pc

    t = t.filter(pc.equal(t["teacher_role"], "reasoning"))
    many = _many(t)
    out: dict[str, list[dict[str, Any]]] = {}
    if len(many) == 0:
        return out
    for r in t.filter(pc.is_in(t["prompt_id"], many)).to_pylist():
        out.setdefault(r["prompt_id"], []).append(r)
    return out


def write_pairs(cands: list[Any], samples: dict[str, list[dict[str, Any]]], ledger: Any, writer: Any,
                reasons: Any, prov: dict[str, str], step: str = "pairs") -> None:  # fmt: skip
    """One pairs row per candidate prompt that has a pair; the rest absent with their reason."""
    from builder.ledger import DROPPED, KEPT

    ledger.enter(step, len(cands))
    rows = []
    for c in cands:
        p = c.prompt
        where = {"source": p["source"] or "", "source_row_id": p["source_row_id"] or "", "prompt_id": p["prompt_id"]}
        got = pick_pair(samples.get(p["prompt_id"], []))
        if isinstance(got, Skip):
            reasons[got.reason] += 1
            ledger.record(step, DROPPED, reason=got.reason, detail="", **where)
            continue
        rows.append(pair_row(p, *got, prov))
        ledger.record(step, KEPT, **where)
    writer.write_rows(rows)
