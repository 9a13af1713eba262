"""S_think: a summary of the teacher's thinking, and the checks every summary must pass.

The extractive summarizer is deterministic and offline (rows say `summarizer=extractive`). It
writes a short impersonal account of the approach and its key steps, not a pick of the
monologue's loudest lines:

1. every thinking sentence is cleaned: leading discourse markers ("So,", "Okay,", "Wait,",
   所以 / 那么 …) are cut and the sentence re-capitalised; "the answer should be X" becomes
   "the answer is X"; a bare equation line gets its full stop;
2. it is dropped when it is a fragment or self-talk (summary_quality: the scorer's own rules),
   restates the prompt, is followed by a correction ("Wait, no …": an abandoned path), or states
   a result other than the thinking's final one;
3. the rest are ranked: the decisive step (the last sentence stating the final result) first,
   then equations, sentences that share the answer's vocabulary, causal steps and the plan;
   they are taken within the budget (at most `max_sentences`), repeats skipped, and printed in
   their original order, the decisive step last (a thinking that checks its result afterwards
   still ends the summary at the result);
4. when no kept sentence states the final result, one closing sentence does ("The answer is B." /
   "答案是 B。"): the summary always ends at the thinking's result.

Budget: min(max_chars, max_ratio x len(think)) characters, separators included.
"""

from __future__ import annotations

import re

from builder.variants.faithfulness import check_faithful
from builder.variants.repeats import Seen, words, words_of
from builder.variants.summary_quality import (
    IDENT,
    SummaryScores,
    boxed_values,
    final_result,
    is_cjk,
    is_filler,
    is_fragment,
    score_summary,
    sentences,
    stated_results,
)

__all__ = ["SummaryGate", "check_summary", "extractive_summary", "final_answers", "sentences"]

_CJK_END = ("。", "！", "？", "；")
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
# Leading discourse markers. Connectives go as they are ("So the …", "Thus x = 3"); interjections
# and ordinals only with their punctuation: "Right triangles …" and "First law …" keep their word.
_LEAD = re.compile(
    r"^(?:(?:(?:so|but|and|then|therefore|thus|hence|actually|so yes)\b[\s,.!:—-]*)"
    r"|(?:(?:okay|ok|alright|well|hmm+|wait|yes|yeah|right|oh|ah|also|anyway|first(?:ly)?|second(?:ly)?|next|"
    r"finally|again|indeed|now|in (?:summary|conclusion|short)|overall|similarly|additionally|moreover|"
    r"furthermore|final answer)\s*[,.!:—-]+\s*))+",
    re.I,
)
_LEAD_LOW = re.compile(_LEAD.pattern)  # its literals are lower-case: without re.I, on lower-cased ASCII
_LEAD_ZH = re.compile(r"^(?:(?:所以|因此|那么|然后|首先|接下来|最后|另外|其次|于是|总之|综上所述?|嗯|好的|因而|故)[，,、\s]*)+")
_MARKUP = re.compile(r"^(?:[-*•+]\s+|#+\s+|\d+[.)]\s+)|\*\*")
_HEDGE = re.compile(r"(?i)\b(answer|result|option|choice)\s+(?:should|must|would|will|might)\s+be\b")
_BARE_ANSWER = re.compile(r"^(?:the\s+)?(?:correct\s+)?answer\s+is\b", re.I)
_CORRECTION = re.compile(
    r"^(?:wait|no[,.!]|hmm|but wait|actually|hold on|oops|that's (?:not|wrong)|that is (?:not|wrong)|i made|"
    r"不对|等等|等一下|不过|错了|不，)",
    re.I,
)
_MATH = re.compile(r"=|\\\(|\\\[|\$|\\frac|\\sqrt|[≤≥×÷]|\d\s*[-+*/^]\s*\d")
_CAUSAL = re.compile(r"(?i)\b(?:because|since|gives|implies|using|formula|law|therefore|so that|means)\b|因为|由于|得到|根据|公式|所以")
# _CAUSAL's words on lower-case ASCII (\w there is [a-z0-9_]), each \b written as a look-behind after
# its first letter: a pattern that opens on a letter is scanned for in C (~1.8x faster).
_CAUSAL_LOW = re.compile(
    r"(?:b(?<![a-z0-9_]b)ecause|s(?<![a-z0-9_]s)(?:ince|o that)|g(?<![a-z0-9_]g)ives|i(?<![a-z0-9_]i)mplies"
    r"|u(?<![a-z0-9_]u)sing|f(?<![a-z0-9_]f)ormula|l(?<![a-z0-9_]l)aw|t(?<![a-z0-9_]t)herefore|m(?<![a-z0-9_]m)eans)"
    r"(?![a-z0-9_])"
)
_NEUTRAL_RESULT = {"en": "The answer is {}.", "zh": "答案是 {}。"}
# Necessary conditions of the patterns above, tested first: _clean runs on every thinking sentence,
# and most match none of them. A non-ASCII first character always runs _LEAD (re.I folds "ſ" to
# "s"); _MARKUP's \d is Unicode (str.isdecimal).
_MARKUP_FIRST = frozenset("-*•+#")
# _LEAD's words (case-folded), "in " for its three "in …" phrases: an ASCII opening that starts with
# none of them cannot match (outside ASCII, re.I folds "ſ" to "s" and "K" to "k": the pattern decides).
_LEAD_WORDS = ("so", "but", "and", "then", "therefore", "thus", "hence", "actually", "okay", "ok", "alright", "well",
               "hmm", "wait", "yes", "yeah", "right", "oh", "ah", "also", "anyway", "first", "second", "next", "finally",
               "again", "indeed", "now", "in ", "overall", "final answer", "similarly", "additionally", "moreover", "furthermore")  # fmt: skip
# Their first letters, in every case re.I accepts (ſ for s, İ and ı for i): any other opening
# character cannot start a _LEAD match (tests/test_summary_speed.py checks every code point).
_LEAD_FIRST = frozenset("sbathowyrfnimSBATHOWYRFNIMſİı")
_LEAD_ZH_FIRST = frozenset("所因那然首接最另其于总综嗯好故")
# The openings _BARE_ANSWER (re.I) can match on: t(he), c(orrect), a(nswer), no other character folds to them.
_BARE_FIRST = frozenset("tTcCaA")
_HEDGE_WORDS = ("answer", "result", "option", "choice")
# _MATH's alternatives: "=", "$", these TeX openings, ≤ ≥ × ÷, and a digit operation.
_MATH_TEX = ("\\(", "\\[", "\\frac", "\\sqrt")
_DIGIT_OP = re.compile(r"\d\s*[-+*/^]\s*\d")


def final_answers(text: str) -> set[str]:
    """The final answers a text states: boxed values, option letters, "answer is <number>"."""
    return stated_results(text)


def _clean(s: str) -> tuple[str, bool]:
    """One thinking sentence as a summary sentence: markers cut, hedges settled, capitalised; and
    whether it holds math (a full stop added at the end changes no _MATH match)."""
    if "**" in s or s[:1] in _MARKUP_FIRST or s[:1].isdecimal():
        s = _MARKUP.sub("", s)
    s = s.strip()
    if s[:1] in _LEAD_FIRST and (not (head := s[:13]).isascii() or head.lower().startswith(_LEAD_WORDS)):
        s = _cut_lead(s)
    if s[:1] in _LEAD_ZH_FIRST:
        s = _LEAD_ZH.sub("", s)
    s = s.strip()
    # "be" is ASCII in every _HEDGE match (re.I folds no other character to b or e); the keywords
    # are only outside ASCII ("anſwer").
    if "be" in (low := s.lower()) and (not s.isascii() or any(map(low.__contains__, _HEDGE_WORDS))):
        s = _HEDGE.sub(lambda m: f"{m.group(1)} is", s)
    if s[:1] in _BARE_FIRST and _BARE_ANSWER.match(s) and not s.lower().startswith("the "):
        s = "The " + s[0].lower() + s[1:]
    if s and s[0].islower() and not IDENT.match(s):
        s = s[0].upper() + s[1:]  # "thus the …" was cut to "the …"; "x = 3", "f(x)", "number=85" stay
    math = bool(s) and _has_math(s)
    if math and not s.endswith((".", "!", "?", "。", "！", "？", ":", "：", ",")):
        s += "。" if is_cjk(s) else "."
    return s, math


def _cut_lead(s: str) -> str:
    """_LEAD.sub("", s). On ASCII, re.I is matching the lower-cased text, which keeps every position."""
    if not s.isascii():
        return _LEAD.sub("", s)
    m = _LEAD_LOW.match(s.lower())
    return s[m.end() :] if m else s


def _has_math(s: str) -> bool:
    """_MATH.search(s) is not None: its literal alternatives as substring tests, one regex left."""
    return ("=" in s or "$" in s or ("\\" in s and any(map(s.__contains__, _MATH_TEX)))
            or "≤" in s or "≥" in s or "×" in s or "÷" in s
            # every _DIGIT_OP match holds one of its operators
            or (("-" in s or "+" in s or "*" in s or "/" in s or "^" in s) and _DIGIT_OP.search(s) is not None))  # fmt: skip


def _causal(s: str) -> bool:
    if s.isascii():  # lower() is exact there, and re.I on ASCII is matching the lower-cased text
        return _CAUSAL_LOW.search(s.lower()) is not None
    return _CAUSAL.search(s) is not None


def _restates_prompt(sentence_words: list[str], prompt_words: set[str]) -> bool:
    if len(sentence_words) < 6:
        return False  # fewer than 6 distinct then
    ws = set(sentence_words)
    return len(ws) >= 6 and len(ws & prompt_words) >= 0.6 * len(ws)


def extractive_summary(
    think: str, answer: str, max_ratio: float, max_chars: int, prompt: str = "", max_sentences: int = 8
) -> str:
    """A short impersonal account of the thinking's approach and key steps, ending at its result."""
    raw = sentences(think or "")
    if not raw:
        return ""
    budget = min(max_chars, int(len(think) * max_ratio))
    result = final_result(think, answer)
    prompt_words = set(words(prompt))
    answer_vocab = set(words(answer or ""))
    # Every sentence is cleaned and ranked (cheap); the filters (fragment, filler, the prompt again,
    # an abandoned path, another result) run only on the sentences the ranking reaches, memoised:
    # the summary is the one filtering all of them first would give, at a fraction of the cost.
    # A sentence with a question mark is filler (is_filler) before and after _clean, which cuts no
    # "?": never usable, so neither cleaned nor ranked.
    idx: list[int] = []
    texts: list[str] = []
    maths: list[bool] = []
    for i, r in enumerate(raw):
        if "?" in r or "？" in r:
            continue
        s, math = _clean(r)
        if s:
            idx.append(i)
            texts.append(s)
            maths.append(math)
    wss = words_of(texts)
    by_index = {i: (s, ws) for i, s, ws in zip(idx, texts, wss)}
    stated_of: dict[int, set[str]] = {}
    usable_of: dict[int, bool] = {}
    last = len(raw) - 1

    def stated(i: int) -> set[str]:
        st = stated_of.get(i)
        if st is None:
            st = stated_of[i] = stated_results(by_index[i][0])
        return st

    def usable(i: int) -> bool:
        ok = usable_of.get(i)
        if ok is None:
            s, ws = by_index[i]
            # An `or` of pure tests (the order changes no verdict), by cost over how often each
            # rejects on the real traces: filler rejects a third of the thinking's sentences.
            ok = not ((i < last and _CORRECTION.match(raw[i + 1])) or is_filler(s)  # next one abandons it
                      or _restates_prompt(ws, prompt_words) or is_fragment(s))  # fmt: skip
            if ok:
                st = stated(i)  # an intermediate or abandoned result: never a second answer
                ok = not (st and (result is None or result not in st))
            usable_of[i] = ok
        return ok

    # One conclusion: the last usable sentence stating the result is the decisive step; earlier
    # statements of it are the same conclusion again.
    decisive = -1
    if result is not None:
        decisive = next((i for i in reversed(idx) if result in stated(i) and usable(i)), -1)

    def eligible(i: int) -> bool:
        return usable(i) and (i == decisive or not stated(i))

    plan = next((i for i in idx if eligible(i)), -1)  # the first kept sentence: the plan
    ranked: list[tuple[float, int]] = []
    contains = answer_vocab.__contains__
    for i, s, ws, math in zip(idx, texts, wss, maths):
        score = sum(map(contains, ws)) / (len(ws) or 1)
        if math:  # + 0.0 changes no float: the sum is the one adding every term gives
            score += 1.0
        if _causal(s):
            score += 0.5
        if i == plan:
            score += 0.5
        ranked.append((score, i))
    order = sorted(ranked, key=lambda k: (k[1] != decisive, -k[0], k[1]))
    chosen: list[int] = []
    keys: dict[int, tuple[str, set[str]]] = {}  # a chosen sentence's fold() and its words' set
    seen = Seen()
    used = 0
    for _, i in order:
        if len(chosen) >= max_sentences:
            break
        s, ws = by_index[i]
        cost = len(s) + 1
        if used + cost > budget or not eligible(i):
            continue
        key, wset = " ".join(ws), set(ws)  # fold(s)
        if seen.repeats(s, key, wset):
            continue
        chosen.append(i)
        used += cost
        seen.add(key, wset)
        keys[i] = key, wset
    # Once more in reading order, as the scorer reads it: a kept sentence that repeats an
    # earlier one (the ranking saw them the other way round) goes.
    parts: list[str] = []
    seen = Seen()
    for i in sorted(chosen):
        s = by_index[i][0]
        key, wset = keys[i]
        if seen.repeats(s, key, wset):
            if i == decisive:
                decisive = -1
            continue
        parts.append(s)
        seen.add(key, wset)
    if decisive in chosen and parts and parts[-1] != by_index[decisive][0]:
        # The thinking stated its result, then checked it: the summary ends at the result.
        parts.remove(by_index[decisive][0])
        parts.append(by_index[decisive][0])
    chosen = [i for i in chosen if by_index[i][0] in parts]
    if result is not None and decisive not in chosen:
        # Nothing kept states the result: one neutral closing sentence does, after the
        # steps that fit with it (later, lower-ranked steps make room).
        shown = f"\\boxed{{{result}}}" if result in {r.replace(" ", "") for r in boxed_values(think + answer)} else result
        closing = _NEUTRAL_RESULT["zh" if is_cjk(think[:400]) else "en"].format(shown)
        while parts and (len(_join(parts + [closing])) > budget or len(parts) >= max_sentences):
            parts.pop()
        parts.append(closing)
        if len(closing) > budget:
            return ""
    return _join(parts)


def _join(parts: list[str]) -> str:
    out = ""
    for s in parts:
        out = s if not out else out + ("" if out.endswith(_CJK_END) else " ") + s
    return out


class SummaryGate:
    """The recipe's summary thresholds (variants.summarizer), applied to every summary."""

    __slots__ = ("max_ratio", "max_fragment_rate", "max_filler_rate", "max_repetition", "require_result", "min_faithfulness")

    def __init__(self, max_ratio: float = 0.35, max_fragment_rate: float = 1.0, max_filler_rate: float = 1.0,
                 max_repetition: float = 1.0, require_result: bool = False, min_faithfulness: float = 0.0) -> None:
        self.max_ratio = max_ratio
        self.max_fragment_rate = max_fragment_rate
        self.max_filler_rate = max_filler_rate
        self.max_repetition = max_repetition
        self.require_result = require_result
        self.min_faithfulness = min_faithfulness

    @classmethod
    def of(cls, cfg: object) -> SummaryGate:
        """From a SummarizerConfig (config may not import a stage, so the stage converts)."""
        g = getattr
        return cls(g(cfg, "max_ratio"), g(cfg, "max_fragment_rate"), g(cfg, "max_filler_rate"), g(cfg, "max_repetition"),
                   g(cfg, "require_final_result"), g(cfg, "min_faithfulness"))


def assess_summary(
    summary: str, think: str, answer: str, prompt_text: str, gate: SummaryGate
) -> tuple[str | None, SummaryScores | None, float | None]:
    """(failure code or None, quality scores, faithfulness score) of one summary."""
    if not summary or not summary.strip():
        return "summary_empty", None, None
    if any(t in summary for t in _TAGS):
        return "summary_has_tags", None, None  # would leak reasoning markup into a non-reasoning SFT set
    faith = check_faithful(summary, think or "", answer or "", prompt_text, gate.max_ratio, gate.min_faithfulness)
    scores = score_summary(summary, think or "", answer or "")
    failure = faith.failure or scores.failure(
        gate.max_fragment_rate, gate.max_filler_rate, gate.max_repetition, gate.require_result
    )
    return failure, scores, faith.score


def check_summary(
    summary: str, think: str, answer: str, prompt_text: str, max_ratio: float, gate: SummaryGate | None = None
) -> str | None:
    """None when the summary is usable, else a machine-readable failure code."""
    g = gate or SummaryGate(max_ratio)
    return assess_summary(summary, think, answer, prompt_text, g)[0]
