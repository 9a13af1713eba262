"""The cheap summarizer and checks give what the plain versions give (issue 14's cost target).

Each fast path is compared with a plain reference written here the obvious way: the sentence
scan with the look-behind split, words without the ASCII path, result statements with every
regex run, the summarizer that filters every sentence before ranking, the sentence cleaner
without its pre-checks, the answer's results without their own cache, the option-letter scan
from its start positions against `finditer`, the equation scan between barriers against the
whole text, and the filler patterns against the one rule they split. Inputs: the repo's
real R1 traces (data/sample/pcmb_traces.jsonl; the shared corpus's R1 and Marco-o1 traces for
the cleaner) and fuzzed strings built from the characters the rules turn on.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import pytest

from builder.variants import repeats as rp
from builder.variants import summarizer as sz
from builder.variants import summary_quality as sq
from tests.test_tokens import CORPUS, _jsonl, needs_corpus

ROOT = Path(__file__).resolve().parents[1]
TRACES = [json.loads(x) for x in (ROOT / "data" / "sample" / "pcmb_traces.jsonl").read_text().splitlines() if x.strip()]
_OLD_SENT = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"”’)])\s+|(?<=[。！？；])\s*|\s*\n\s*")


def _old_sentences(text: str) -> list[str]:
    if "```" in text:
        text = sq._FENCE.sub("\n", text)
    return [s.strip() for s in _OLD_SENT.split(text) if s and s.strip()]


def is_repeat(s: str, seen: list[set[str]], seen_exact: set[str], key: str | None = None) -> bool:
    """The repeat rule written plainly (what repeats.Seen computes with its shortcuts): `s` is the
    same sentence again after folding, >= 80% of an earlier one's words, or the same computation
    again (3+ numbers, one set within the other)."""
    key = rp.fold(s) if key is None else key
    if key in seen_exact:
        return True
    nums = set(re.findall(r"\d+", s))
    if len(nums) >= 3:
        for prev in seen:
            prev_nums = {w for w in prev if w.isdigit()}
            if len(prev_nums) >= 3 and (nums <= prev_nums or prev_nums <= nums):
                return True
    ws = set(key.split())
    return len(ws) >= 4 and any(len(ws & prev) >= 0.8 * max(len(ws), len(prev)) for prev in seen)

def _fuzz(alphabet: str, n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 16))) for _ in range(n)]


def test_sentences_match_the_lookbehind_split() -> None:
    texts = [t["reasoning"] for t in TRACES] + _fuzz('.!?。！？；"”’)\n\r \t\u2028\u3000xa', 20_000, 1)
    for t in texts:
        assert sq.sentences(t) == _old_sentences(t), repr(t[:80])


def test_words_ascii_path_matches_the_general_one() -> None:
    for t in [t["reasoning"][:3000] for t in TRACES] + _fuzz("aZ_9 -'.é", 5_000, 2):
        assert rp.words(t) == [w.casefold() for w in rp.WORD.findall(t)]


def _old_stated(text: str) -> set[str]:
    if not any(k in text.casefold() for k in sq._RESULT_WORDS):
        return set()
    found = {b.replace(" ", "") for b in sq._BOXED.findall(text)}
    found |= {"".join(g).upper() for g in sq._LETTER.findall(text)}
    return found | {(a or b).replace(",", "") for a, b in sq._ANSWER_TAIL.findall(text)}


@pytest.mark.parametrize("text", [
    "So the answer is B.", "Option C is correct.", "B is right, the answer here", "rİght: (B) is right",
    "答案是 C", "选 D", "\\boxed{12} is the result", "The result is 3,200.", "the answer = 7", "no result here",
    "CORRECT OPTION IS (E)", "anſwer is B", "答案是B选项", "the answer is B²", "answer: (B)x", "the answer is Bx",
    "Answer: \\boxed{C} and option d is correct",
])  # fmt: skip
def test_result_statements_match_running_every_regex(text: str) -> None:
    assert sq.stated_results(text) == _old_stated(text)


def test_result_statements_on_real_sentences() -> None:
    for t in TRACES:
        for s in sq.sentences(t["reasoning"])[-40:]:
            assert sq.stated_results(s) == _old_stated(s), s


def _eager_summary(think: str, answer: str, max_ratio: float, max_chars: int, prompt: str, max_sentences: int) -> str:
    """The summarizer as first written: every sentence filtered, then ranked and taken."""
    raw = sq.sentences(think)
    if not raw:
        return ""
    budget = min(max_chars, int(len(think) * max_ratio))
    result = sq.final_result(think, answer)
    prompt_words, vocab = set(rp.words(prompt)), set(rp.words(answer))
    cleaned = []
    for i, r in enumerate(raw):
        s = sz._clean(r)[0]
        if not s or sq.is_fragment(s) or sq.is_filler(s):
            continue
        ws = rp.words(s)
        if sz._restates_prompt(ws, prompt_words) or (i + 1 < len(raw) and sz._CORRECTION.match(raw[i + 1])):
            continue
        stated = sq.stated_results(s)
        if stated and (result is None or result not in stated):
            continue
        cleaned.append((i, s, ws, stated))
    decisive = next((i for i, _, _, st in reversed(cleaned) if result is not None and result in st), -1)
    kept: list[tuple[float, int, str]] = []
    for i, s, ws, stated in cleaned:
        if i != decisive and stated:
            continue
        score = sum(w in vocab for w in ws) / (len(ws) or 1) + (1.0 if sz._MATH.search(s) else 0.0)
        score += (0.5 if sz._CAUSAL.search(s) else 0.0) + (0.5 if not kept else 0.0)
        kept.append((score, i, s))
    by_index = {i: s for _, i, s in kept}
    chosen, seen, exact, used = [], [], set(), 0  # type: ignore[var-annotated]
    for _, i, s in sorted(kept, key=lambda k: (k[1] != decisive, -k[0], k[1])):
        if len(chosen) >= max_sentences:
            break
        if used + len(s) + 1 > budget or is_repeat(s, seen, exact):
            continue
        chosen.append(i)
        used += len(s) + 1
        exact.add(rp.fold(s))
        seen.append(set(rp.fold(s).split()))
    parts, seen, exact = [], [], set()
    for i in sorted(chosen):
        if is_repeat(by_index[i], seen, exact):
            decisive = -1 if i == decisive else decisive
            continue
        parts.append(by_index[i])
        exact.add(rp.fold(by_index[i]))
        seen.append(set(rp.fold(by_index[i]).split()))
    if decisive in chosen and parts and parts[-1] != by_index[decisive]:
        parts.remove(by_index[decisive])
        parts.append(by_index[decisive])
    chosen = [i for i in chosen if by_index[i] in parts]
    if result is not None and decisive not in chosen:
        boxed = {r.replace(" ", "") for r in sq.boxed_values(think + answer)}
        closing = sz._NEUTRAL_RESULT["zh" if sq.is_cjk(think[:400]) else "en"].format(
            f"\\boxed{{{result}}}" if result in boxed else result)  # fmt: skip
        while parts and (len(sz._join(parts + [closing])) > budget or len(parts) >= max_sentences):
            parts.pop()
        parts.append(closing)
        if len(closing) > budget:
            return ""
    return sz._join(parts)


@pytest.mark.parametrize("max_ratio,max_sentences", [(0.35, 8), (0.1, 3), (0.9, 20)])
def test_lazy_filtering_gives_the_eager_summary(max_ratio: float, max_sentences: int) -> None:
    for t in TRACES:
        args = (t["reasoning"], t["answer_text"], max_ratio, 2000, t["question"], max_sentences)
        assert sz.extractive_summary(*args) == _eager_summary(*args), t["id"]


def test_the_cost_benchmark_patches_real_collaborators() -> None:
    """A renamed collaborator must fail the benchmark loudly, not leave the checks on unseen."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import selfcheck_cost

    from builder.variants import stage, summary_job

    on = (stage._constraints_of, summary_job.assess, summary_job.extractive_summary)
    for m in ("checks_off", "legacy"):
        with selfcheck_cost.mode(m):
            assert stage._constraints_of is not on[0] and summary_job.assess is not on[1]
            assert (summary_job.extractive_summary is selfcheck_cost.legacy_summary) == (m == "legacy")
    assert (stage._constraints_of, summary_job.assess, summary_job.extractive_summary) == on
    s = selfcheck_cost.legacy_summary(TRACES[0]["reasoning"], TRACES[0]["answer_text"], 0.35, 2000)
    assert s and len(s) <= 2000


# _clean tests each pattern's necessary condition first; the answer's results have their own cache.
def _clean_plain(s: str) -> tuple[str, bool]:
    """`_clean` without its pre-checks (the code before them)."""
    s = sz._MARKUP.sub("", s).strip()
    s = sz._LEAD_ZH.sub("", sz._LEAD.sub("", s)).strip()
    s = sz._HEDGE.sub(lambda m: f"{m.group(1)} is", s)
    if sz._BARE_ANSWER.match(s) and not s.lower().startswith("the "):
        s = "The " + s[0].lower() + s[1:]
    if s and s[0].islower() and not sq.IDENT.match(s):
        s = s[0].upper() + s[1:]
    math = bool(s) and sz._MATH.search(s) is not None
    if math and not s.endswith((".", "!", "?", "。", "！", "？", ":", "：", ",")):
        s += "。" if sq.is_cjk(s) else "."
    return s, math


CLEAN_EDGES = [
    "", " ", "ſo the answer should be B", "ſo, x", "İndeed, it works.", "ıt is", "Kelvin K = 3", "٣. step one",
    "٣) step", "１. full-width digit", "**Bold** claim.", "a ** b", "- item one", "• bullet", "+ plus", "# Heading",
    "## Sub", "1. First step", "12) twelve", "So, the answer should be B", "Okay, wait. The result must be 4",
    "所以答案是 B", "因此，x = 3", "嗯，好的", "综上所述，答案为 C", "故 x=2", "x = 3", "answer is 5", "Answer is (B)",
    "THE ANSWER WOULD BE C", "the option might be D", "the choice will be\nE", "result should  be 7", "so yes the answer is 2",
    "final answer: 42", "In summary, 3 + 4 = 7", "3 × 4", "≤ 5", "\\frac{1}{2}", "$x$", "costs 5 - 3 dollars", "Ｏkay, fine",
    "Thus the value is 3", "thus, x", "and then", "but wait", "Answer ſhould be B", "the ANSWER SHOULD BE b",
    "alſo, x", "Alſo the", "oK, fine", "hmmmm, right", "In summary, yes", "in short x", "Ïn summary", "Additionally, y",
    "Furthermore, z", "final answer is 3", "so yes", "Therefore x", "the", "Theorem 2",
]


def _clean_fuzz(n: int) -> list[str]:
    rng = random.Random(14)
    pieces = ["so", "So,", "okay", "answer", "should", "be", "is", "the", "**", "-", "1.", "٣", "=", "x", "ſ", "İ", "所以",
              "嗯", " ", "\t", ",", "B", "result", "$", "\\", "3", "+", "Wait", "final answer", "in summary"]  # fmt: skip
    return ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(1, 9))) for _ in range(n)]


def _traces() -> list[str]:
    texts = [d["reason"] for d in _jsonl("r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl")[::10]]
    texts += [d["reasoning"] for d in _jsonl("r1-mmlupro-pcmb-traces/pcmb_traces.jsonl")[::3]]
    texts += [d["response"] for d in json.loads((CORPUS / "marco-o1-cot-demo/CoT_demo.json").read_text("utf-8"))]
    return texts


@needs_corpus
def test_clean_equals_the_plain_substitutions() -> None:
    sents = [s for t in _traces() for s in sq.sentences(t)]
    assert len(sents) > 5_000
    for s in [*sents, *CLEAN_EDGES, *_clean_fuzz(3_000)]:
        assert sz._clean(s) == _clean_plain(s), s


@needs_corpus
def test_answer_results_equal_the_plain_scan() -> None:
    answers = [d["answer_text"] for d in _jsonl("r1-mmlupro-pcmb-traces/pcmb_traces.jsonl")]
    answers += [d["gen_ans"] for d in _jsonl("r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl")[::10]]
    assert sum(bool(sq.answer_results(a)) for a in answers) > 20
    for a in answers:
        assert sq.answer_results(a) == sq._results_in_order.__wrapped__(a) == sq._results_in_order(a)


def _letters_plain(text: str) -> list[tuple[int, str]]:
    return [(m.start(), "".join(g for g in m.groups() if g).upper()) for m in sq._LETTER.finditer(text)]


def _letter_fuzz(n: int) -> list[str]:
    rng = random.Random(16)
    pieces = ["answer", "Answer", "ANSWER", "correct", "option", "choice", "is", "IS", "İs", "ſ", "anſwer", "the", "right",
              "here", "should be", "=", ":", "：", "**", "(", ")", "B", "J", "K", "b", "答案", "选项", "选", "是", " ", "  ",
              "\n", "\t", "x", "_", "é", "\u0301", "1"]  # fmt: skip
    return ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(1, 14))) for _ in range(n)]


def test_letter_scan_from_start_positions_equals_finditer() -> None:
    """_letters tries _LETTER only where _LETTER_START matches: same matches, same order, on real
    thinking and answers (whole texts, not sentences: matches follow one another) and fuzz."""
    texts = [t["reasoning"] for t in TRACES] + [t.get("answer_text") or "" for t in TRACES]
    edges = ["(B) is correct", "option (B) is the answer", "B is right", "the answer is (B)x answer: C", "a(B) is right",
             "_B is right", "答案是B选C", "correct option is İs", "B  \n is correct"]  # fmt: skip
    found = 0
    for t in [*texts, *edges, *_letter_fuzz(20_000)]:
        got = sq._letters(t)
        assert got == _letters_plain(t), repr(t[:120])
        found += bool(got)
    assert found > 1_000


def _eq_fuzz(n: int) -> list[str]:
    rng = random.Random(17)
    pieces = ["x", "ab", "abc", "abcd", "so", "the", "is", "gives", "=", "≤", "<", ">", " ", "\n", "3", "3.5", ".", ",",
              "(", ")", "^", "²", "×", "'", "-", "é", "\u0301", "\u0345", "ſ", "K", "İ", "ﬀ", "٣", "Ⅸ", "$", "\\", ":"]  # fmt: skip
    return ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(1, 16))) for _ in range(n)]


def test_equations_between_barriers_equal_the_whole_text_scan() -> None:
    """faithfulness._equations runs _EQ only between the characters no match can hold: the same
    matches as _EQ over the whole text, on real thinking (formulas, prose) and fuzz."""
    from builder.variants import faithfulness as fa

    texts = [t["reasoning"] for t in TRACES] + [t.get("answer_text") or "" for t in TRACES]
    found = 0
    for t in [*texts, "x = 3.5. So y=2, and the dy/dx ≤ 4", "abcd=3", "ab=cd", "so=the", *_eq_fuzz(20_000)]:
        got = fa._equations(t)
        assert got == [m.group(0) for m in fa._EQ.finditer(t)], repr(t[:120])
        found += bool(got)
    assert found > 1_000


def _filler_fuzz(n: int) -> list[str]:
    rng = random.Random(18)
    pieces = ["i", "I", "I'm", "i’m", " ", "me", "or", "no", "Or", "ok", "hmm", "hm", "um", "let's", "let’s", "x", "_", "é",
              "'", "-", "\n", "could", "think", "a", "user's", "re-check", "recheck", "not sure", "ſ", "İ", "option",
              "(I)", "?", "wait", "we'd", "9"]  # fmt: skip
    return ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(0, 12))) for _ in range(n)]


def test_filler_split_patterns_equal_the_one_rule() -> None:
    """is_filler's patterns (_FILLER_OPEN, _FILLER_WORD with the "i VERB" rule in it) say what the
    rule as one pattern says (the form it had before the split)."""
    one_rule = re.compile(rf"(?:^|\W)(?:{sq._FILLER_WORDS})(?:\W|$)|^(?:or|no)\b|\bi (?:{sq._FILLER_VERBS})\b")
    split = sq._filler_words

    sents = [s.casefold().replace("’", "'") for t in TRACES for s in sq.sentences(t["reasoning"])]
    hits = 0
    for low in [*sents, *(s.casefold().replace("’", "'") for s in _filler_fuzz(30_000))]:
        want = bool(one_rule.search(low))
        assert split(low) == want, repr(low[:120])
        hits += want
    assert hits > 1_000


def test_filler_i_opens_on_its_literal_and_finds_the_same() -> None:
    plain = re.compile(r"(?<![\w(])I(?:'m|'ll|'ve|'d|’m|’ll)?(?![\w)])")
    rng = random.Random(19)
    fuzz = ["".join(rng.choice(["I", "i", "(", ")", "'m", "’ll", "x", " ", "_", "é", "II", "\n"]) for _ in range(rng.randint(0, 10)))
            for _ in range(30_000)]  # fmt: skip
    texts = [s for t in TRACES for s in sq.sentences(t["reasoning"])] + fuzz
    assert sum(bool(plain.search(t)) for t in texts) > 1_000
    for t in texts:
        assert [m.span() for m in sq._FILLER_I.finditer(t)] == [m.span() for m in plain.finditer(t)], repr(t[:120])


# The fast paths of this round: each against the plain form it replaced, on real sentences and fuzz.
def _unicode_fuzz(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = [chr(rng.randint(0, 0x3100)) for _ in range(2_000)] + list("中文İßΣσςſK_9a \n\t\u0307\u2028\x1c্া×Δ²")
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(n)]


def test_words_by_translate_equal_the_word_pattern() -> None:
    sents = [s for t in TRACES for s in sq.sentences(t["reasoning"])]
    texts = [*sents, *_unicode_fuzz(20_000, 20), "İstanbul ΑΣ 中文ab_c", "a\u0307b"]
    for t in texts:
        assert rp.words(t) == [w.casefold() for w in rp.WORD.findall(t)], repr(t)
    rng = random.Random(21)
    for _ in range(2_000):  # batches, some holding a line break (the fallback)
        batch = rng.sample(texts, rng.randint(0, 6))
        assert rp.words_of(batch) == [rp.words(t) for t in batch]


def test_causal_and_math_tests_equal_their_patterns() -> None:
    rng = random.Random(22)
    pieces = ["because", "Since", "SO THAT", "so  that", "gives", "implies", "using", "formula", "law", "laws", "flaw",
              "therefore", "means", "_", "x", "1", " ", "-", "é", "ſince", "K", "=", "$", "\\(", "\\frac", "≤", "×", "3",
              "+", "^", "/", "*", "\t", "2"]  # fmt: skip
    fuzz = ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(0, 8))) for _ in range(30_000)]
    texts = [s for t in TRACES for s in sq.sentences(t["reasoning"])] + fuzz + _unicode_fuzz(5_000, 23)
    hits = 0
    for t in texts:
        assert sz._causal(t) == (sz._CAUSAL.search(t) is not None), repr(t)
        assert sz._has_math(t) == (sz._MATH.search(t) is not None), repr(t)
        hits += sz._causal(t)
    assert hits > 1_000


def test_seen_repeats_equal_is_repeat() -> None:
    rng = random.Random(24)
    sents = [s for t in TRACES for s in sq.sentences(t["reasoning"])]
    words = ["1", "2", "3", "4", "5", "x", "the", "mass", "is", "ratio", "٣", "²"]
    sents += [" ".join(rng.choice(words) for _ in range(rng.randint(1, 9))) for _ in range(3_000)]
    for _ in range(3_000):
        seen, exact, fast, given = [], set(), rp.Seen(), rp.Seen()  # type: ignore[var-annotated]
        for s in rng.sample(sents, rng.randint(1, 12)):
            key, wset = rp.fold(s), set(rp.words(s))  # `given`: the caller passes the words' set
            assert fast.repeats(s, key) == given.repeats(s, key, wset) == is_repeat(s, seen, exact, key), s
            if rng.random() < 0.7:
                fast.add(key)
                given.add(key, wset)
                exact.add(key)
                seen.append(set(key.split()))


def test_sentences_from_the_end_are_the_sentences_reversed() -> None:
    texts = [t["reasoning"][-1500:] for t in TRACES] + _fuzz('.!?。！？；"”’)\n\r \t```xa', 20_000, 25)
    for t in texts:
        assert list(sq._sentences_from_end(t)) == list(reversed(sq.sentences(t))), repr(t[:80])


def _fragment_plain(s: str) -> bool:
    """is_fragment before its pair pre-scan and ASCII paths."""
    s = s.strip()
    if not s or sq._LIST.match(s):
        return True
    if not s.endswith(sq._END_OK) and not s.endswith(("?", "？")):
        return True
    if any(s.count(a) != s.count(b) for a, b in sq._PAIRS) or s.count('"') % 2 or s.count("$") % 2:
        return True
    if sq.is_cjk(s):
        return len(rp.CJK.findall(s)) < 6 and not any(ch.isdigit() for ch in s)
    if s.endswith(("...", "…")):
        return True
    if sq._DEPENDENT.match(s) and not sq._MAIN_CLAUSE.search(s):
        return True
    first = next((ch for ch in s if ch.isalpha()), "")
    toks = s.split()
    if (first.islower() and not sq.IDENT.match(s)) or len(toks) < 3:
        return True
    head, colon, tail = s.rpartition(":")
    if colon and len(tail.split()) <= 1 and not sq.stated_results(s):
        return True
    return len(toks) < 6 and "=" not in s and not any(t.strip(".,;:!?()").casefold() in sq._VERBS for t in toks)


def test_fragment_fast_paths_equal_the_plain_rule() -> None:
    rng = random.Random(26)
    pieces = ["The", "mass", "is", "3", "(", ")", "[", "]", "{", "}", "“", "”", "（", "）", '"', "$", ".", ":", "x", "a",
              "Because", "é", "中文", "...", " ", "1.", "-", "so", "equals"]  # fmt: skip
    fuzz = ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(0, 10))) + rng.choice([".", "", "?"])
            for _ in range(30_000)]  # fmt: skip
    for s in [*(s for t in TRACES for s in sq.sentences(t["reasoning"])), *fuzz, *_unicode_fuzz(5_000, 27)]:
        assert sq.is_fragment.__wrapped__(s) == _fragment_plain(s), repr(s)
