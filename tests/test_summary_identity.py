"""The extractive summary and its checks give, text for text, what they gave before issue 16's
speed-ups, and each fast path of that round says what the plain form it replaced says.

tests/fixtures/summary_outputs.json holds a digest of every (summary, failure, scores,
faithfulness) that the code at main ba687b8 gave on the fixture texts below: data/sample's R1
(MMLU-Pro PCMB, Bangla-MMLU) and Marco-o1 traces, whole and cut at a seeded point in the
thinking or the answer, under the recipe defaults' gate and a strict short one. A change meant
to alter summaries rewrites it: `python -m tests.test_summary_identity --write`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from pathlib import Path

import regex

from builder.variants import faithfulness as fa
from builder.variants import summarizer as sz
from builder.variants import summary_quality as sq

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
OUTPUTS = ROOT / "tests" / "fixtures" / "summary_outputs.json"
# Every code point but the surrogates, for the case-folding checks.
ALL_CHARS = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)


def _jsonl(name: str) -> list[dict]:
    return [json.loads(x) for x in (SAMPLE / name).read_text("utf-8").splitlines() if x.strip()]


def _between(text: str, open_: str, close: str) -> str:
    return text.split(open_, 1)[-1].split(close, 1)[0].strip()


def fixture_texts() -> list[tuple[str, str, str]]:
    """(think, answer, prompt): each sample trace whole, its thinking cut, its answer cut."""
    whole = [(d["reasoning"].strip(), d["answer_text"].strip(), d["question"]) for d in _jsonl("pcmb_traces.jsonl")]
    whole += [(_between(d["reason"], "<think>", "</think>"), d["gen_ans"].strip(), d["formated_question"])
              for d in _jsonl("bangla_r1.jsonl")]  # fmt: skip
    whole += [(_between(d["response"], "<Thought>", "</Thought>"), _between(d["response"], "<Output>", "</Output>"),
               d["instruction"]) for d in _jsonl("marco_cot.jsonl")]  # fmt: skip
    rng = random.Random(16)
    cut = [(t[: rng.randint(0, len(t))], a, p) for t, a, p in whole]
    cut += [(t, a[: rng.randint(0, len(a))], p) for t, a, p in whole]
    return whole + cut


GATES = [  # (gate, max_chars, max_sentences): the recipe defaults', and a strict short one
    (sz.SummaryGate(0.35, 0.0, 0.0, 0.0, True, 0.0), 2_000, 8),
    (sz.SummaryGate(0.2, 1.0, 1.0, 1.0, False, 1.0), 600, 4),
]


def outputs() -> list[str]:
    """A digest of each fixture text's summary, failure, scores and faithfulness, per gate."""
    out: list[str] = []
    for think, answer, prompt in fixture_texts():
        for gate, max_chars, max_sents in GATES:
            summary = sz.extractive_summary(think, answer, gate.max_ratio, max_chars, prompt, max_sents)
            failure, sc, faith = sz.assess_summary(summary, think, answer, prompt, gate)
            got = (summary, failure, sc and (sc.sentences, sc.fragment_rate, sc.filler_rate, sc.repetition,
                                             sc.final_covered), faith)  # fmt: skip
            out.append(hashlib.sha1(repr(got).encode()).hexdigest()[:12])
    return out


def test_summaries_and_scores_equal_the_reference() -> None:
    want = json.loads(OUTPUTS.read_text())
    got = outputs()
    assert len(got) == len(want["digests"]) == 2 * want["texts"]
    differ = [i // 2 for i, (a, b) in enumerate(zip(got, want["digests"])) if a != b]
    assert not differ, f"{len(differ)} outputs differ, first fixture texts {differ[:10]}"


# ---------- the fast paths, each against its plain form ----------


def _fuzz(pieces: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(0, 12))) for _ in range(n)]


def _sentences() -> list[str]:
    return [s for t, a, _ in fixture_texts()[:365] for s in sq.sentences(t) + sq.sentences(a)]


def test_sentences_in_one_scan_equal_line_by_line() -> None:
    def by_line(text: str) -> list[str]:
        if "```" in text:
            text = sq._FENCE.sub("\n", text)
        out: list[str] = []
        for line in text.split("\n"):
            sq._line_sentences(line, out)
        return out

    pieces = [".", "!", "?", "。", "！", "？", "；", '"', "”", "’", ")", "\n", "\r", " ", "\t", "\u2028", "\u3000", "\x1c",
              "x", "ab", "```", "3.5"]  # fmt: skip
    for t in [t for t, a, _ in fixture_texts()] + _fuzz(pieces, 30_000, 1):
        assert sq.sentences(t) == by_line(t), repr(t[:80])


def test_numbers_pattern_equals_the_plain_one() -> None:
    plain = re.compile(r"(?<![^\W\d_])(?<![\d.])[-+]?\d[\d,]*(?:\.\d+)?(?!\d)")
    pieces = ["-", "+", "1", "23", "4.5", ".", ",", "x", "é", "_", "٣", "²", "\n", "-+", "a1", "1a", "--", "1,000"]
    for t in _sentences() + _fuzz(pieces, 30_000, 2):
        assert fa._NUM.findall(t) == plain.findall(t), repr(t)


def test_answer_tails_from_their_keywords_equal_finditer() -> None:
    pieces = ["answer", "ANSWER", "anſwer", "result", "answeresult", "is", "İs", "ıs", "=", ":", "$", "-", "3", "1,000",
              "2.5", "答案", "结果", "是", "为", " ", "\n", "\x1c", "x"]  # fmt: skip
    found = 0
    for t in _sentences() + _fuzz(pieces, 30_000, 3):
        plain = [(m.start(), (m.group(1) or m.group(2)).replace(",", "")) for m in sq._ANSWER_TAIL.finditer(t)]
        assert sq._answer_tails(t) == plain, repr(t)
        found += bool(plain)
    assert found > 300


def test_keyword_scans_fold_case_at_least_as_widely_as_regex() -> None:
    """_LETTER_AT and _TAIL_AT (stdlib re) stand in for `regex` patterns: re's (?i) must accept
    every character `regex`'s does for each of their letters, and re's \\s every `regex` \\s."""
    for letter in set("answercorrectoptionchoiceisresult"):
        assert set(regex.findall(f"(?i){letter}", ALL_CHARS)) <= set(re.findall(f"(?i){letter}", ALL_CHARS)), letter
    assert set(regex.findall(r"\s", ALL_CHARS)) <= set(re.findall(r"\s", ALL_CHARS))
    # The first characters those scans open on are exactly the ones (?i) accepts.
    for letter, cls in (("a", "Aa"), ("c", "Cc"), ("o", "Oo"), ("r", "Rr")):
        assert set(regex.findall(f"(?i){letter}", ALL_CHARS)) == set(cls)


def test_clean_openings_cover_every_character_re_folds() -> None:
    """_clean skips _LEAD and _BARE_ANSWER on an opening outside _LEAD_FIRST / _BARE_FIRST: every
    character re.I matches to a first letter of theirs is in the set."""
    lead_first = {w[0] for w in sz._LEAD_WORDS}
    assert set(re.findall(f"(?i)[{''.join(lead_first)}]", ALL_CHARS)) <= sz._LEAD_FIRST
    assert set(re.findall("(?i)[tca]", ALL_CHARS)) <= sz._BARE_FIRST
    assert sz._LEAD_LOW.pattern == sz._LEAD.pattern == sz._LEAD.pattern.lower()
    pieces = ["so", "So,", "SO", "ſo", "okay", "OK", "oK", "well.", "in summary,", "In Short:", "İn", "hmm", "—", "-", ",",
              "x", "é", " ", "\t", "İ", "ß", "answer", "yes"]  # fmt: skip
    for s in _sentences() + _fuzz(pieces, 20_000, 4):
        assert sz._cut_lead(s) == sz._LEAD.sub("", s), repr(s)


def write() -> None:
    """Rewrite the reference digests with this checkout's code."""
    OUTPUTS.write_text(json.dumps({"texts": len(fixture_texts()), "digests": outputs()}) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
