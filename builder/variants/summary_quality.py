"""What a reader would call a summary: sentence kinds and the per-summary quality scores.

One classifier serves both sides: the extractive summarizer keeps only sentences it calls
complete, impersonal and new, and the scorer that fills the rows' quality columns (and the
card's figures, benchmarks/selfcheck_summaries.py) applies the same rules to any summary,
extractive or LLM-written. Rules, English and Chinese (R1 thinks in Chinese on Chinese
prompts):

    fragment     no sentence-final punctuation, ends on ':' / ',' / '：', starts in lower case or
                 with a list marker, unbalanced brackets or quotes, or under 3 words (2 CJK chars)
    filler       first-person self-talk and hesitation: "Okay, let's see.", "I think", "wait",
                 "maybe", a question, "the user is asking", 嗯 / 让我 / 我需要 / 等等 / 也许 …
    repeat       the same sentence again (case, spacing and punctuation folded), or one whose
                 words are ≥ 80% those of an earlier one
    final result the thinking's final result (an option letter, a boxed value, the last stated
                 "answer is …") stated in the summary; None when the thinking states none
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import regex

from builder.variants.repeats import CJK, WORD, Seen, words_of

# Sentence ends: Latin punctuation needs the space after it ("3.5" and "e.g." stay whole);
# CJK full stops are followed directly by the next sentence; every line break ends one too.
# Per line (a line break always ends a sentence), a boundary match starts at the sentence's own
# final punctuation, kept with the sentence: ~2x faster than splitting on look-behinds. Written
# as one character class (re skips ahead to it in C) with each ending behind a look-behind, it is
# `[.!?][\"”’)]?\s+|[。！？；]\s*`, another ~2x faster.
_SENT = re.compile(r"[.!?。！？；](?:(?<=[.!?])[\"”’)]?\s+|(?<=[。！？；])\s*)")
_SENT_OR_LINE = re.compile(r"[.!?。！？；\n](?:(?<=[.!?])[\"”’)]?[^\S\n]+|(?<=[。！？；])[^\S\n]*|(?<=\n))")
_CJK_STOP, _CLOSERS = frozenset("。！？；"), frozenset("\"”’)")
_FENCE = regex.compile(r"```.*?(?:```|\Z)", regex.S)
_END_OK = (".", "!", "。", "！", ".)", ".\"", ".”", "$.", ")." )
# Stdlib `re` on the hot paths (every thinking sentence): ~3x faster than `regex` here.
_LIST = re.compile(r"^(?:[-*•+]\s|#+\s|\d+[.)]\s|\(?[a-z]\)\s)")
# An opening that is a symbol, not a word: "k2/k1 = 5", "dy/dx", "x = 3", "f(x)", "n = PV/RT".
IDENT = re.compile(r"^[\w']+(?:[^\w\s,.;:!?'’]|\s+[=<>≤≥≡+\-*/^]|$)|^(?![ai]\s)\w(?:\W|$)")
_DEPENDENT = re.compile(r"(?i)^(?:because|which|whereas|although|though|whether)\b")
_MAIN_CLAUSE = re.compile(r"(?i),\s*(?:so(?!\s+that)|then|therefore|hence|thus|we|it|the)\b")
_VERB_WORDS = (
    "is are was were be been being has have had do does did can could will would shall should may might must "
    "gives give gave equals equal means mean makes make becomes become yields yield produces produce causes cause "
    "contains contain matches match uses use depends depend requires require forms form occurs occur acts act "
    "reduces reduce leads lead corresponds correspond holds hold follows follow increases increase decreases "
    "decrease remains remain results result applies apply states state describes describe refers refer "
    "includes include represents represent involves involve shows show works work isn't aren't wasn't doesn't"
)
_VERBS = frozenset(_VERB_WORDS.split())
_PAIRS = (("(", ")"), ("[", "]"), ("{", "}"), ("“", "”"), ("（", "）"))  # balanced in a sentence (is_fragment)
_PAIR_CHAR = re.compile(r'[()\[\]{}“”（）"$]')  # a sentence with none of them is balanced: one C scan, not seven counts
_ASCII_ALPHA = re.compile(r"[A-Za-z]")
# Self-talk, hesitation and chat about the asker, as whole words (case-folded text).
_FILLER_WORDS = (
    r"me|my|myself|let's|let us|okay|ok|hmm+|um+|uh|wait|oh|ah|whoa|oops|yeah|"
    r"alright|maybe|perhaps|probably|not sure|hold on|let me|the user|user's|double-check|"
    r"re-?check|think again|seems like|might be|could be|hopefully|alternatively|that's wrong|that is wrong|"
    r"that's not right|no wait|not correct|i'm confused|confusing|need to output|should output|must output|"
    r"i'm|i'll|i've|i'd|we'll|we'd|makes sense|looks (?:correct|right|good)|sounds right|seems (?:right|correct)|"
    r"to confirm|let me|doesn't make sense|does not make sense|makes no sense|need to think|might not|"
    r"not sure|unsure|or something like that|or something|actually|as above|indeed"
)
_FILLER_VERBS = r"could|can|need|think|will|would|should|am|have|must|know|guess|recall|believe|remember|suppose|wonder"


def _by_first_letter(alternatives: str) -> str:
    """`a|b|…` (each opening on a letter) regrouped as `x(?:…)|y(?:…)`: re tries one group per
    position instead of every alternative (a search finds a match exactly when the flat form does)."""
    parts: list[str] = []
    depth = start = 0
    for i, ch in enumerate(alternatives + "|"):
        depth += (ch == "(") - (ch == ")")
        if ch == "|" and depth == 0:
            parts.append(alternatives[start:i])
            start = i + 1
    groups: dict[str, list[str]] = {}
    for alt in parts:
        groups.setdefault(alt[0], []).append(alt[1:])
    return "|".join(f"{first}(?:{'|'.join(rest)})" for first, rest in groups.items())


# The rule is `(?:^|\W)(?:WORDS)(?:\W|$)|^(?:or|no)\b|\bi (?:VERBS)\b` (tests/test_summary_speed.py
# holds _filler_words to it), written as two patterns that `re` runs without trying every position:
# the opening tried only on an "or" / "no", and one scan of " " + text that opens on \W (re skips
# ahead to it in C; the space is ^), "\bi VERB" one more of its alternatives (a word character
# before the i fails the \W); the words grouped by their first letter (_by_first_letter).
_FILLER_WORD = re.compile(rf"\W(?:(?:{_by_first_letter(_FILLER_WORDS)})(?:\W|$)|i (?:{_FILLER_VERBS})\b)")
_FILLER_OPEN = re.compile(r"(?:or|no)\b")  # matched at the start
# "I" is case-sensitive: "i" is the imaginary unit, and "option I" / "(I)" an MMLU-Pro letter.
# Written `I(?<![\w(]I)…`, not `(?<![\w(])I…`: a pattern that opens on a literal is searched in C.
_FILLER_I = re.compile(r"I(?<![\w(]I)(?:'m|'ll|'ve|'d|’m|’ll)?(?![\w)])")
_LETTER_BEFORE = re.compile(r"(?i)(?:option|choice|answer|is|and|or|:)\s*\(?$")
_FILLER_ZH = re.compile(
    r"我(?!们)|嗯|好的|让我|等等|等一下|不对|也许|或许|大概|可能是|应该是吧|用户|对吧|对吗|吧[？?。]|呢[？?]|好吧|检查|回忆|看起来|似乎|确认一下"
)
# Option letters and boxed values: the results a final answer states.
_BOXED = regex.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
# A stated result, not a mention: "the answer is (B)", "correct option is B", "Option B is correct",
# 答案是 B; "option E says …" states nothing. The letter stays upper-case ("answer is a bit …").
_LETTER = regex.compile(
    r"(?i)\b(?:answer|correct(?:\s+(?:option|choice|answer))?)(?:\s+here)?(?:\s+(?:is|should\s+be|must\s+be|would\s+be|=))?"
    r"(?:\s+(?:option|choice))?\s*[:：]?\s*\**\s*\(?((?-i:[A-J]))\)?(?![\w])"
    r"|(?:\b(?:option|choice)\s*)?(?<![\w(])\(?((?-i:[A-J]))\)?\s+is\s+(?:the\s+)?(?:correct|right|answer)\b"
    r"|(?:答案|选项|选)\s*(?:是|为|：|:)?\s*\(?((?-i:[A-J]))\)?"
)
# Where a _LETTER match can start: at a keyword, or at "(B) is " / "B is " (a "(" match: there and
# at its letter). Stdlib `re`, opening on one character class (searched for in C): ~3x faster than
# an overlapped `regex` scan. A superset of the starts: no \b asked; re's (?i) and \s accept every
# character `regex`'s do (tests/test_summary_speed.py); no _LETTER match starts inside a keyword
# (\b, or a letter after a word character), so a non-overlapping scan misses none.
_LETTER_AT = re.compile(
    r"[ACOaco答选(A-J](?:(?<=[Aa])(?i:nswer)|(?<=[Cc])(?i:orrect|hoice)|(?<=[Oo])(?i:ption)|(?<=答)案|(?<=选)"
    r"|(?<=\()[A-J]\)?\s+(?i:is)\s|(?<=[A-J])\)?\s+(?i:is)\s)"
)
# Every _BOXED / _LETTER / _ANSWER_TAIL match contains one of these (a cheap pre-check).
_RESULT_WORDS = ("answer", "option", "choice", "correct", "boxed", "result", "答案", "选", "结果")
# The words (case-folded) without which _LETTER, or _ANSWER_TAIL, cannot match.
_LETTER_WORDS = ("answer", "correct", "right", "答案", "选")
_TAIL_WORDS = ("answer", "result", "答案", "结果")
# Outside 答案 / 选, a _LETTER match holds a capital A-J that no word character follows (same `regex` \w).
_LETTER_HINT = regex.compile(r"[A-J](?![\w])")
# Where an _ANSWER_TAIL match can start: its keywords, opening on one character class (re skips
# ahead to it in C); re's (?i) accepts every character `regex`'s does.
_TAIL_AT = re.compile(r"[AaRr答结](?:(?<=[Aa])(?i:nswer)|(?<=[Rr])(?i:esult)|(?<=答)案|(?<=结)果)")
_ANSWER_TAIL = regex.compile(r"(?i)(?:answer|result)\s+(?:is|=|:)\s*\$?([-+]?\d[\d,]*(?:\.\d+)?)|(?:答案|结果)(?:是|为)\s*([-+]?\d[\d,]*(?:\.\d+)?)")


def sentences(text: str) -> list[str]:
    """The text's sentences (and lines), fenced code blocks left out. One scan of the whole text:
    a line break is a boundary of its own, and the space after an ending stops at one,
    so each line splits as _line_sentences splits it alone."""
    if "```" in text:
        text = _FENCE.sub("\n", text)
    out: list[str] = []
    start = 0
    for m in _SENT_OR_LINE.finditer(text):
        end = m.start()
        if (ch := text[end]) != "\n":
            end += 1 if ch in _CJK_STOP else 2 if text[end + 1] in _CLOSERS else 1
        if s := text[start:end].strip():
            out.append(s)
        start = m.end()
    if s := text[start:].strip():
        out.append(s)
    return out


def _line_sentences(line: str, out: list[str]) -> None:
    """One line's sentences onto `out` (a line break always ends a sentence: lines split alone)."""
    start = 0
    for m in _SENT.finditer(line):
        end = m.start()
        end += 1 if line[end] in _CJK_STOP else 2 if line[end + 1] in _CLOSERS else 1
        s = line[start:end].strip()
        if s:
            out.append(s)
        start = m.end()
    s = line[start:].strip()
    if s:
        out.append(s)


def _sentences_from_end(text: str) -> Iterator[str]:
    """reversed(sentences(text)), the lines split one by one from the last (the caller stops early)."""
    if "```" in text:  # a fence's reach depends on what comes before it
        yield from reversed(sentences(text))
        return
    for line in reversed(text.split("\n")):
        out: list[str] = []
        _line_sentences(line, out)
        yield from reversed(out)


def is_cjk(text: str) -> bool:
    if not CJK.search(text):
        return False
    han = len(CJK.findall(text))
    return han > 0 and han >= 0.3 * len(WORD.findall(text))


# The summarizer classifies a thinking sentence, then the scorer the same sentence in the summary:
# a small cache answers the second time.
@lru_cache(maxsize=2048)
def is_fragment(s: str) -> bool:
    """True when `s` is not a complete sentence (see the module docstring)."""
    s = s.strip()
    if not s or _LIST.match(s):
        return True
    if not s.endswith(_END_OK) and not s.endswith(("?", "？")):
        return True
    n = s.count  # _PAIRS written out: a generator over them cost a fifth of this function
    if _PAIR_CHAR.search(s) and (n("(") != n(")") or n("[") != n("]") or n("{") != n("}") or n("“") != n("”")
                                 or n("（") != n("）") or n('"') % 2 or n("$") % 2):  # fmt: skip
        return True
    ascii_ = s.isascii()
    if not ascii_ and is_cjk(s):  # no CJK character is ASCII
        return len(CJK.findall(s)) < 6 and not any(ch.isdigit() for ch in s)  # "计算平均分。" is a heading
    if s.endswith(("...", "…")):
        return True  # trails off
    if _DEPENDENT.match(s) and not _MAIN_CLAUSE.search(s):
        return True  # "Because that would be secondary." leans on a sentence left out
    if ascii_:  # the ASCII letters are the ASCII characters str.isalpha() accepts
        m = _ASCII_ALPHA.search(s)
        first = m.group() if m else ""
    else:
        first = next((ch for ch in s if ch.isalpha()), "")
    toks = s.split()
    if (first.islower() and not IDENT.match(s)) or len(toks) < 3:
        return True
    head, colon, tail = s.rpartition(":")
    if colon and len(tail.split()) <= 1 and not stated_results(s):
        return True  # "Options in ml: A." — cut at a colon
    # A short sentence with no verb is a note, not a sentence ("Between B and D.", "Not the main reason.").
    return len(toks) < 6 and "=" not in s and not any(t.strip(".,;:!?()").casefold() in _VERBS for t in toks)


@lru_cache(maxsize=2048)
def is_filler(s: str) -> bool:
    """True for self-talk and hesitation: first person singular, interjections, questions."""
    s = s.strip()
    if "?" in s or "？" in s:
        return True  # a question to oneself is a hesitation, not a step
    if not s.isascii() and _FILLER_ZH.search(s):  # every _FILLER_ZH word is CJK
        return True
    for m in _FILLER_I.finditer(s):
        if not _LETTER_BEFORE.search(s[max(0, m.start() - 12) : m.start()]):
            return True
    return _filler_words(s.casefold().replace("’", "'"))


def _filler_words(low: str) -> bool:
    """The English filler rule on a case-folded sentence."""
    return bool((low.startswith(("or", "no")) and _FILLER_OPEN.match(low)) or _FILLER_WORD.search(" " + low))


def boxed_values(text: str) -> list[str]:
    return _BOXED.findall(text) if "\\boxed{" in text else []


def _may_state(text: str) -> tuple[bool, bool, bool] | None:
    """Which of _BOXED, _LETTER, _ANSWER_TAIL can match `text` (a word each needs); None: none can."""
    low = text.casefold()
    if not any(map(low.__contains__, _RESULT_WORDS)):
        return None
    if "\u0130" in text:  # "İ" matches (?i)"i" but casefolds to two characters: run them all
        return True, True, True
    letter = any(map(low.__contains__, _LETTER_WORDS)) and ("答案" in text or "选" in text or bool(_LETTER_HINT.search(text)))
    return "\\boxed{" in text, letter, any(map(low.__contains__, _TAIL_WORDS))


def stated_results(text: str) -> set[str]:
    """Results a text states: option letters, boxed values, "answer is <number>"."""
    return set(_results_in_order(text))


@lru_cache(maxsize=8)  # the summarizer and the scorer ask for the same trace's result in turn
def final_result(think: str, answer: str = "") -> str | None:
    """The thinking's final result: the last one it states, of the kind the answer states.

    An MCQ thinking ends "So the answer is B." (an answer that states a letter makes the
    thinking's last letter the result, not an intermediate "1.8 mm"); a math one "\\boxed{12}"
    or "the answer is 12". Falls back to the answer's own result when the thinking states none;
    None when neither states a checkable result (chat, code, open questions).
    """
    ans = answer_results(answer or "")
    want_letter = any(is_letter(a) for a in ans) if ans else None
    tail = think[-1500:] if think else ""
    for s in _sentences_from_end(tail):
        got = [g for g in _results_in_order(s) if want_letter is None or is_letter(g) == want_letter]
        if got:
            return got[-1]
    return ans[-1] if ans else None


def is_letter(result: str) -> bool:
    return len(result) == 1 and "A" <= result <= "J"


# The faithfulness check and the scorer read the same summary's and answer's results in turn.
@lru_cache(maxsize=64)
def _results_in_order(text: str) -> tuple[str, ...]:
    kinds = _may_state(text)
    if kinds is None:
        return ()
    boxed, letter, tail = kinds
    hits: list[tuple[int, str]] = [(m.start(), m.group(1).replace(" ", "")) for m in _BOXED.finditer(text)] if boxed else []
    if letter:
        hits += _letters(text)
    if tail:
        hits += _answer_tails(text)
    return tuple(v for _, v in sorted(hits))


def _answer_tails(text: str) -> list[tuple[int, str]]:
    """(start, number) of every _ANSWER_TAIL.finditer match, _ANSWER_TAIL tried only where _TAIL_AT
    finds one of its keywords ("answer" and "result" overlap in "answeresult": searched again from
    the next character, not past the keyword), left to right, past the end of the last match."""
    out: list[tuple[int, str]] = []
    end = 0
    f = _TAIL_AT.search(text)
    while f is not None:
        at = f.start()
        if at >= end and (m := _ANSWER_TAIL.match(text, at)) is not None:
            out.append((at, (m.group(1) or m.group(2)).replace(",", "")))
            end = m.end()
        f = _TAIL_AT.search(text, at + 1)
    return out


def _letters(text: str) -> list[tuple[int, str]]:
    """(start, letter) of every _LETTER.finditer match: _LETTER is tried only where _LETTER_AT
    says one can start, left to right, past the end of the last match."""
    out: list[tuple[int, str]] = []
    end = 0
    for f in _LETTER_AT.finditer(text):
        start = f.start()
        for at in (start, start + 1) if text[start] == "(" else (start,):
            if at >= end and (m := _LETTER.match(text, at)) is not None:
                out.append((at, "".join(g for g in m.groups() if g).upper()))
                end = m.end()
    return out


@lru_cache(maxsize=4)
def answer_results(answer: str) -> tuple[str, ...]:
    """The results a row's answer states, in order. Its own cache: the summarizer asks (final_result),
    then the faithfulness check, and the thinking's sentences in between would evict a long answer
    from _results_in_order's (its letter scan is the costliest of the row)."""
    return _results_in_order.__wrapped__(answer)


def covers(summary: str, result: str | None) -> bool | None:
    """Does the summary state `result`? None when there is no result to state."""
    if result is None:
        return None
    stated = stated_results(summary)
    if result in stated:
        return True
    if len(result) == 1 and result.isalpha():
        return False  # a bare letter elsewhere ("a", "B12") is no statement of the option
    return result.replace(" ", "") in summary.replace(" ", "")


@dataclass(frozen=True, slots=True)
class SummaryScores:
    sentences: int
    fragment_rate: float
    filler_rate: float
    repetition: float  # share of sentences that repeat an earlier one
    final_covered: bool | None

    def failure(self, max_fragment: float, max_filler: float, max_repetition: float, require_result: bool) -> str | None:
        """The first quality threshold the summary breaks, as a quarantine code, else None."""
        if self.fragment_rate > max_fragment:
            return "summary_fragment"
        if self.filler_rate > max_filler:
            return "summary_filler"
        if self.repetition > max_repetition:
            return "summary_repetitive"
        if require_result and self.final_covered is False:
            return "summary_missing_result"
        return None


def score_summary(summary: str, think: str, answer: str = "") -> SummaryScores:
    """The quality scores of one summary against the thinking it summarizes."""
    sents = sentences(summary)
    n = len(sents) or 1
    frag = sum(is_fragment(s) for s in sents)
    fill = sum(is_filler(s) for s in sents)
    seen = Seen()
    rep = 0
    for s, ws in zip(sents, words_of(sents)):
        key, wset = " ".join(ws), set(ws)  # fold(s)
        if seen.repeats(s, key, wset):
            rep += 1
        seen.add(key, wset)
    return SummaryScores(len(sents), frag / n, fill / n, rep / n, covers(summary, final_result(think, answer)))


class Tally:
    """Run-wide summary figures for the variants summary and quality.json (the card's source):
    sentence-weighted rates over every scored summary, and result coverage where there is one."""

    def __init__(self) -> None:
        self.summaries = self.with_result = self.covered = 0
        self.fragment = self.filler = self.repetition = self.faithfulness = 0.0

    def add(self, scores: tuple[float, float, float, bool | None, float] | None) -> None:
        if scores is None:
            return
        frag, fill, rep, covered, faith = scores
        self.summaries += 1
        self.fragment, self.filler, self.repetition = self.fragment + frag, self.filler + fill, self.repetition + rep
        self.faithfulness += faith
        if covered is not None:
            self.with_result += 1
            self.covered += covered

    def figures(self) -> dict[str, float | int]:
        n = self.summaries or 1
        return {
            "scored": self.summaries,
            "fragment_rate_mean": round(self.fragment / n, 4),
            "filler_rate_mean": round(self.filler / n, 4),
            "repetition_mean": round(self.repetition / n, 4),
            "final_result_coverage": round(self.covered / (self.with_result or 1), 4),
            "with_final_result": self.with_result,
            "faithfulness_score_mean": round(self.faithfulness / n, 4),
        }
