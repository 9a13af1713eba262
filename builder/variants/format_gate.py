"""The format survival gate: a variant row whose prompt carries constraints is checked on its whole
assistant turn with the IFEval checkers (builder/constraints/checks.py).

Only constraints the *bare answer* keeps are the turn's to keep: what the teacher's answer
already breaks is the verifier's finding, not this variant's. A turn that breaks one gets the
recipe's policy (config/variants.py FormatGateConfig): fall back to the answer, drop, or rewrite
(constrain_summary, then one re-check). Every row's outcome is tallied per variant × category:
`survival` = turns keeping all the answer keeps / rows whose answer keeps at least one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from builder.constraints.checks import check
from builder.constraints.spec import Constraint


def kept_by(text: str, items: list[Constraint]) -> list[Constraint]:
    """The constraints `text` definitely keeps (undecidable ones are not counted as kept)."""
    return [c for c in items if check(c.id, c.kwargs, text) is True]


def broken(turn: str, answer: str, items: list[Constraint]) -> list[str]:
    """Ids the bare answer keeps and the whole turn breaks."""
    return [c.id for c in kept_by(answer, items) if check(c.id, c.kwargs, turn) is False]


@dataclass
class Survival:
    """Per variant, per category: rows checked, rows whose answer keeps some constraint, turns that keep
    all of those as built (before the policy) and as released (after it)."""

    counts: dict[str, dict[str, Counter[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Counter)))

    def add(self, variant: str, category: str, answer_keeps: bool, survived_raw: bool, survived_out: bool | None) -> None:
        c = self.counts[variant][category or "unknown"]
        c["checked"] += 1
        if answer_keeps:
            c["answer_keeps"] += 1
            c["survived_raw"] += survived_raw
            if survived_out is None:
                c["dropped"] += 1
            else:
                c["survived"] += survived_out

    def table(self) -> dict[str, dict[str, dict[str, int | float]]]:
        out: dict[str, dict[str, dict[str, int | float]]] = {}
        for v, cats in self.counts.items():
            tot: Counter[str] = Counter()
            out[v] = {}
            for cat, c in sorted(cats.items()):
                tot.update(c)
                out[v][cat] = _row(c)
            out[v]["*"] = _row(tot)
        return out


def _row(c: Counter[str]) -> dict[str, int | float]:
    n = c["answer_keeps"]
    return {"checked": c["checked"], "answer_keeps": n, "survived_raw": c["survived_raw"], "survived": c["survived"],
            "dropped": c["dropped"], "survival_raw": round(c["survived_raw"] / n, 4) if n else 1.0,
            "survival": round(c["survived"] / n, 4) if n else 1.0}  # fmt: skip


@dataclass
class Outcome:
    turn: str | None  # None: dropped (reason in `drop`)
    drop: str = ""
    codes: list[str] = field(default_factory=list)
    choice: tuple[str, str] | None = None


def apply_gate(turn: str, answer: str, summary: str | None, items: list[Constraint], on_break: str,
               gated: bool, variant: str, category: str, survival: Survival) -> Outcome:
    """Check one built turn; apply the policy when `gated`; tally survival. `turn == answer`: nothing to do."""
    from builder.constraints.apply import constrain_summary

    keeps = bool(kept_by(answer, items))
    br = broken(turn, answer, items) if turn != answer else []
    out = Outcome(turn, codes=[f"format_broken:{i}" for i in br])
    if br and gated:
        if on_break == "fallback_answer":
            out = Outcome(answer, codes=[*out.codes, "format_fallback:answer"], choice=("answer", f"format_fallback:{br[0]}"))
        elif on_break == "drop":
            out = Outcome(None, drop=f"format_broken:{br[0]}")
        else:  # rewrite: the mechanical constraints applied to the summary, then one re-check
            new, _ = constrain_summary(summary or "", answer, items)
            again = broken(f"{new}\n\n{answer}", answer, items) if new else br
            if new and not again:
                out = Outcome(f"{new}\n\n{answer}", codes=[*out.codes, "format_rewritten"])
            else:
                out = Outcome(None, drop=f"format_broken:{again[0]}")
    final_ok = None if out.turn is None else not broken(out.turn, answer, items)
    survival.add(variant, category, keeps, not br, final_ok)
    return out
