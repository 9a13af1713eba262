"""detect(prompt) → the IFEval instructions a prompt states, with IFEval's kwargs.

English rules: detect_en.py (format, length, case, start/end) and detect_words.py (keywords,
letters, language); Chinese rules: detect_zh.py. Only the user's own words are read: quoted
material the instruction is *about* is still read (IFEval prompts quote their examples), but a
constraint whose required argument cannot be read is not emitted. `score` compares detections
with IFEval-style ground truth (instruction-level micro precision / recall, argument exact match).

Cost: most prompts state no constraint, so a rule runs only when the lower-cased prompt holds one
of its trigger substrings (all ~270 found in one Aho–Corasick pass: literals.py) and, where a
trigger is a common word ("end", "part", "*", "use") or the rule is slow on long prompts, a
tighter gate its own patterns cannot match without (detect_en_gates.GATES, detect_words.rules, the
literals in detect_zh.rules): a set test, or a part of the rule's pattern run on the lower-cased
text, where plain literal-led patterns get re's fast skips (`re.I` ones on the text do not). Such
a gate is exact only when lower-casing is (detect_en.case_gate: no İ ı ſ K in the prompt); else
it is not used. Gates only skip work: `detect(p, gated=False)` gives the same list
(tests/test_constraints.py compares them; benchmarks/detect_speed.py also with the previous code).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from builder.constraints import detect_en, detect_en_gates, detect_words, detect_zh
from builder.constraints.literals import Literals
from builder.constraints.spec import KWARGS, BadConstraints, Constraint, parse, to_json

_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN3 = re.compile(r"[A-Za-z]{3}")
_RULES = [(rule, detect_en_gates.GATES.get(rule)) for rule in detect_en_gates.RULES]
_RULES_OF: dict[str, int] = {}  # trigger → the rules it lets run, one bit each (rule order kept)
for _i, _rule in enumerate(detect_en_gates.RULES):
    for _t in detect_en_gates.TRIGGERS[_rule]:
        _RULES_OF[_t] = _RULES_OF.get(_t, 0) | 1 << _i
# Every trigger and gate substring of the three rule modules, found in one pass over the lower-cased prompt.
LITERALS = Literals(detect_en_gates.LITERALS | detect_words.LITERALS | detect_zh.LITERALS)


def detect(prompt: str, gated: bool = True) -> list[Constraint]:
    """Every IFEval instruction the prompt states, deduplicated, in a stable order. `gated=False`
    runs every rule its trigger allows, without the tighter gates (tests: the gates change nothing)."""
    text = prompt or ""
    found: list[tuple[str, dict[str, Any]]] = []
    lits: set[str] | None = None
    if _LATIN3.search(text):
        low = detect_en.lowered(text)  # a rule runs only when one of its trigger substrings is there
        lits = LITERALS.find(low)
        gate_low = detect_en.case_gate(text, low) if gated else None
        run = 0
        for t in lits:
            run |= _RULES_OF.get(t, 0)
        while run:  # the rules whose bit is set, lowest (first) first
            rule, gate = _RULES[(run & -run).bit_length() - 1]
            run &= run - 1
            if gate is None or gate_low is None or gate(text, gate_low, lits):
                found += rule(text)
        found += detect_words.rules(text, low, gated, lits)
    if not text.isascii() and _HAN.search(text):
        found += detect_zh.rules(text, gated, LITERALS.find(detect_en.lowered(text)) if lits is None else lits)
    if not found:
        return []
    out: dict[str, Constraint] = {}
    for cid, kw in found:
        try:  # a rule's kwargs go through the same validation as an import's
            (c,) = parse([{"id": cid, "kwargs": kw}])
        except BadConstraints:
            continue
        out.setdefault(c.key(), c)
    return sorted(out.values(), key=lambda c: list(KWARGS).index(c.id))


def last_user_text(messages: list[dict[str, Any]] | None, prompt: str | None = None) -> str:
    if prompt is not None:
        return prompt
    return next((m.get("content") or "" for m in reversed(messages or []) if m.get("role") == "user"), "")


def _norm(v: Any) -> Any:
    if isinstance(v, str):
        return " ".join(v.split()).casefold().strip(" .")
    if isinstance(v, list):
        return sorted(_norm(x) for x in v)
    return v


def args_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Exact match up to case, surrounding spaces and a trailing period; lists as sets."""
    a = {k: v for k, v in a.items() if v is not None}
    b = {k: v for k, v in b.items() if v is not None}
    return a.keys() == b.keys() and all(_norm(a[k]) == _norm(b[k]) for k in a)


def score(pairs: list[tuple[list[Constraint], list[Constraint]]]) -> dict[str, Any]:
    """Micro P/R over instruction ids (multiset per prompt) and argument exact match on matched ids."""
    tp = fp = fn = argok = argn = 0
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for got, gold in pairs:
        gold_left = list(gold)
        for c in got:
            same = [g for g in gold_left if g.id == c.id]
            if not same:
                fp += 1
                per[c.id]["fp"] += 1
                continue
            best = next((g for g in same if args_equal(c.kwargs, g.kwargs)), same[0])
            gold_left.remove(best)
            tp += 1
            per[c.id]["tp"] += 1
            argn += 1
            per[c.id]["argn"] += 1
            if args_equal(c.kwargs, best.kwargs):
                argok += 1
                per[c.id]["argok"] += 1
        for g in gold_left:
            fn += 1
            per[g.id]["fn"] += 1

    def fig(t: int, f: int) -> float:
        return round(t / (t + f), 4) if t + f else 1.0

    return {
        "precision": fig(tp, fp), "recall": fig(tp, fn), "arg_exact": fig(argok, argn - argok),
        "tp": tp, "fp": fp, "fn": fn,
        "per_id": {k: {"precision": fig(v["tp"], v["fp"]), "recall": fig(v["tp"], v["fn"]),
                       "arg_exact": fig(v["argok"], v["argn"] - v["argok"]), "n": v["tp"] + v["fn"]}
                   for k, v in sorted(per.items())},
    }  # fmt: skip


def prompt_constraints(given: Any, tests_json: str | None, user_text: str) -> list[Constraint]:
    """A prompt's constraints: the source's own list when it gives one (validated: BadConstraints
    propagates, the caller quarantines), else an IFEval tests spec's, else what the text states."""
    if given is not None:
        return parse(given)
    if tests_json and '"ifeval"' in tests_json:
        try:
            spec = orjson.loads(tests_json)
            ids, kws = spec["instruction_id_list"], spec.get("kwargs") or [{} for _ in spec["instruction_id_list"]]
            return parse([{"id": i, "kwargs": k} for i, k in zip(ids, kws, strict=True)])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            pass  # an unreadable spec is the verifier's to report; detect instead
    return detect(user_text)


def json_batch(items: list[tuple[str | None, str]]) -> list[str]:
    """`constraints_json` of each (tests_json, user_text) pair of one batch."""
    return [to_json(prompt_constraints(None, t, u)) for t, u in items]


def constraints_json_many(items: Sequence[tuple[str | None, str]], workers: int = 1, chunk: int = 4_096) -> list[str]:
    """`constraints_json` of many (tests_json, user_text) pairs, in order. Detection costs ~30 µs of
    CPU a prompt on the curate benchmark's corpus (benchmarks/detect_speed.py: 3.7x less than
    before; most prompts are gated away after the literal pass): on a large curate run it is split
    over lean workers (executors.lean_map), each sent its batch; `items` is sliced a batch at a time."""
    bounds = [(i, min(i + chunk, len(items))) for i in range(0, len(items), chunk)]
    if workers <= 1 or len(bounds) < 2:
        return [j for lo, hi in bounds for j in json_batch(list(items[lo:hi]))]
    from builder.executors import lean_map

    parts: dict[int, list[str]] = {}
    batches = ((lo, list(items[lo:hi])) for lo, hi in bounds)  # sliced as workers free up
    for (lo, _), part in lean_map(_json_batch_at, batches, workers, preload=[__name__]):
        parts[lo] = part
    return [j for lo, _ in bounds for j in parts[lo]]


def _json_batch_at(job: tuple[int, list[tuple[str | None, str]]]) -> list[str]:
    return json_batch(job[1])

