"""Answers cut right after something they set up: builder/responses/unfinished.py.

Each rule gets a truncated reply it must flag and a complete look-alike it must pass, both
through `truncation.find_cut` with no finish reason (the evidence lands in the `cut_*` info
code); and every complete real reply of ../shared/corpus must pass all of them.
"""

from __future__ import annotations

import json

import pytest

from builder.reasoning_format import resolve_delimiters
from builder.responses import grammar, truncation
from builder.responses.shapes import normalize
from builder.responses.unfinished import EVIDENCE, unfinished
from tests.fixtures.adversarial_replies import CORPUS, real_triples

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real corpus not found at {CORPUS}")

MCQ = (
    "Below there is a Bangla multiple choice question.\n    Question in Bangla: প্রথম প্রতিরক্ষা স্তরের উপাদান কোনটি?\n"
    "    Options in Bangla: {'A': 'প্রদাহ', 'B': 'পাকস্থলির এসিড', 'C': 'লিম্ফোসাইট', 'D': '1 F'}"
)
MCQ_MATH = "Find the capacitance.\nOptions: {'A': '0.8 Hz', 'B': '(CH₃)₃C⁺', 'C': 'y = (cos-1 x)2', 'D': '1 F'}"
THINK_B = "Stomach acid kills microbes, a first line barrier. So the correct answer should be B."
THINK_C = "Rain and fog come from condensation; a storm does not. So the answer should be C: ঝড়."
VOWEL = "What is the chance that a letter is a vowel?\nOptions: {'A': '3/26', 'B': '5/26', 'C': '1/13', 'D': '1/26'}"
THINK_VOWEL = "Five vowels among 26 letters: 5/26. So the answer is B."
CUBE = "If a + 1/a = 4, what is a³ + 1/a³?\nOptions: {'A': '14', 'B': '16', 'C': '52', 'D': '64'}"
THINK_CUBE = "Cube it: 64 = a³ + 1/a³ + 3·4, so a³ + 1/a³ = 52. So the answer is C."
BOMB = "What is the kinetic energy of a 500 g bomb dropped from 1 km?\nOptions: {'A': '4900 J', 'B': '9800 J', 'C': '800 J'}"
THINK_BOMB = "mgh = 0.5 × 9.8 × 1000 = 4900 J. So the answer is A."
# MMLU-Pro: the options are not in the prompt; R1's thinking plans its verdict line.
AIR = "One cubic foot of air is heated from 0°C to 546,000°C at constant pressure. To what volume does it expand?"
THINK_AIR = "V2/V1 = 546273/273 ≈ 2001, option I: 2001 ft^3.\n\nThus, final answer: The answer is (I)."
STORM = "Which one is not caused by condensation?\nOptions in Bangla: {'A': 'কুয়াশা', 'B': 'বৃষ্টি', 'C': 'ঝড়', 'D': 'শিশির'}"

# (evidence, truncated answer, complete look-alike, prompt, thinking)
CASES = [
    ("short_option", "ব্যাখ্যা শেষ।\n\n**সঠিক উত্তর:** B. পাকস্থলির",
     "ব্যাখ্যা শেষ।\n\n**সঠিক উত্তর:** B. পাকস্থলির এসিড", MCQ, THINK_B),
    ("short_option", "It is about 1 farad.\n\n**Answer:** D) 1", "It is about 1 farad.\n\n**Answer:** D) 1 F।",
     MCQ_MATH, ""),
    ("short_option", "f = 5/6.28.\n\n**Answer:** A) 0", "f = 5/6.28.\n\n**Answer:** A) 0.8 Hz", MCQ_MATH, ""),
    ("short_option", "The correct answer is option C: y = (cos⁻¹ x)", "The correct answer is option C: y = (cos⁻¹ x)².",
     MCQ_MATH, ""),
    ("bodiless_item", "Given,\n- Dot product: A·B = 18\n- Cross product",
     "Given,\n- Dot product\n- Cross product", "", ""),
    ("bodiless_item", "- **বিকল্প A** ভুল, কারণ এটি গুণ।\n- **বিকল্প B**", "- **বিকল্প A**\n- **বিকল্প B**", "", ""),
    ("bodiless_item", "Steps:\n1. Add the numbers.\n2. Divide by two.\n3. Round it.\n4",
     "Steps:\n1. Add the numbers.\n2. Divide by two.\n3. Round it.\n3", "", ""),
    ("bodiless_item", "প্রতিটি ব্লক একটি একক।\n\n1", "প্রতিটি ব্লক একটি একক।\n\n**Answer:**\n\n1", "", ""),
    ("unpunctuated_item", '- "হাসি হাসি" (B) ভাব বা অবস্থা প্রকাশ করে,\n- "গরম গরম" (C) তাপমাত্রা বা সময় নির',
     '- "হাসি হাসি" (B) ভাব বা অবস্থা প্রকাশ করে,\n- "গরম গরম" (C) তাপমাত্রা বা সময় নির্দেশ করে।', "", ""),
    ("open_one_liner", "The correct answer is option A. To find", "The correct answer is option A.", "", ""),
    ("dangling_dash", "এই সময়সীমার মধ্যে ১৯৫২-", "এই সময়সীমার মধ্যে ১৯৫২-৫৪।", "", ""),
    ("bodiless_item", "**বিকল্প:**\nA. তেল\nB. গ্যাস\nC. কয়লা\nD", "**বিকল্প:**\nA. তেল\nB. গ্যাস\nC. কয়লা\nD. সৌর", "", ""),
    ("open_intro", "We need a loop over the list.\n\nHere's how it works.", "We need a loop.\n\nHere is the code: `f(x)`.",
     "", ""),
    ("open_intro", "There are three of them. The steps are as follows.", "There are a total of 46 open parking spots.",
     "", ""),
    ("dangling_word", "The work is maximized when the cosine is 1, leading to the highest value in",
     "Remember to log in", "", ""),
    ("dangling_word", "- **A: 2.89×10⁴ s (28,900 s)** is", "- **A: 2.89×10⁴ s (28,900 s)** fits", "", ""),
    ("dangling_equals", "3 দ্বারা গুণ করে: 9x -3y -5=", "3 দ্বারা গুণ করে: 9x -3y -5=0", "", ""),
    ("dangling_dash", "বড় মাছ ছোট মাছকে গিলে খায়—", "বড় মাছ ছোট মাছকে গিলে খায়।", "", ""),
    ("dangling_dash", "২০১৫ সালে বাংলাদেশকে নিম্ন-", "২০১৫ সালে বাংলাদেশকে নিম্ন-মধ্যম আয়ের দেশ।", "", ""),
    ("clause_before_span", 'বাগধারাটি কৃপণ স্বভাব বোঝাতে। এখানে "গোফ" (গোঁফ) এবং "খেজুর"',
     'বাগধারাটি কৃপণ স্বভাব বোঝাতে। এখানে "গোফ" (গোঁফ) এবং "খেজুর" মিলেছে।', "", ""),
    ("clause_before_span", "Tollens' reagent tells them apart. Other options like Lucas reagent (B)",
     "Solving gives 5. The answer is (B)", "", ""),
    ("clause_before_span", 'এটি দ্রুততা বোঝায়। "তরতর"', 'এটি দ্রুততা বোঝায়, যেমন "তরতর"।', "", ""),
    ("unpunctuated_item", "- **C** ভুল, কারণ 1 atm = 760 mmHg নয়।\n- **D** সঠিক, কারণ 1 atm = 101",
     "- **C** ভুল, কারণ 1 atm = 760 mmHg নয়।\n- **D** সঠিক, কারণ 1 atm = 101325 Pa।", "", ""),
    ("unpunctuated_item", "- **TMV (A)** has a rod-shaped structure.\n- **HIV (D)** is a retrovirus",
     "- **TMV (A)** rod-shaped\n- **HIV (D)** spherical", "", ""),
    ("bangla_unterminated", "OH⁻ আয়ন একটি ক্ষারক। OH⁻ এর সাথে H⁺ যুক্ত হয়ে H₂O (পানি) তৈরি করে। তাই, OH⁻",
     "OH⁻ আয়ন একটি ক্ষারক। OH⁻ এর সাথে H⁺ যুক্ত হয়ে H₂O (পানি) তৈরি করে। তাই, OH⁻ এর অনুবন্ধী অম্ল H₂O।", "", ""),
    ("bangla_unterminated", "নাইট্রোজেনের পারমাণবিক সংখ্যা 7।\nঅর্থাৎ নিরপেক্ষ অবস্থায় নাইট্রোজেনের ইলেকট্রন সংখ্যা 7",
     "হিজরি সন গণনা শুরু হয়।\nঅনুপাত = C/d = π ≈ ৩", "", ""),
    ("open_section", "The correct answer is **B: +5**.\n\n**Explanation:**\nIn H₃PO₄, hydrogen (H)",
     "The correct answer is **B: +5**.\n\n**Explanation:**\nIn H₃PO₄, hydrogen is +1 and oxygen −2.", "", ""),
    ("open_section", "The correct answer is **C: 7.2×10^6 J**।\n**ব্যাখ্যা:**\n1 কিলোওয়াট-ঘণ্টা (kWh) = 3.6 × 10^6",
     "**Calculation:**\n**d = 770 ÷ 55 = 14 Mpc**\n\n**Answer:** A. 14 Mpc", "", ""),
    ("open_connective", "**2H₂ + O₂ → 2H₂O**\nএখানে, 2", "**2H₂ + O₂ → 2H₂O**\nএখানে, 2 মোল পানি উৎপন্ন হয়।", "", ""),
    ("open_one_liner", "To solve the equation \\( x = \\sqrt{11 - 2x} + 4 \\), we start by isolating the root",
     "To be precise, x = 5.", "", ""),
    ("open_one_liner", "The correct answer is option A, as microorganisms offer rapid reproduction, large populations",
     "The correct answer is option A: microorganisms", "", ""),
    ("unproven_choice", "The correct answer is C: ঝড়।\n\n**Explanation:**\nকুয়াশা, বৃষ্টি ও শিশির ঘনীভবনে সৃষ্টি হয়।",
     "The correct answer is C: ঝড়।\n\n**Explanation:**\nকুয়াশা, বৃষ্টি ও শিশির ঘনীভবনে হয়, ঝড় নয়।", STORM, THINK_C),
    ("unclosed_statement", "The correct answer is C", "The correct answer is C.", STORM, THINK_C),
    ("unclosed_statement", "The correct answer is option B: 5/26", "Five of 26 letters, option B.\n\nThe answer is B",
     VOWEL, THINK_VOWEL),
    ("unclosed_statement", "The correct answer is: **C: ঝড়**", "The correct answer is: **C: ঝড়**।", STORM, THINK_C),
    ("bangla_decimal", "এখানে, R = 6400 km, h = 3200 km।\n(2/3)² = 4/9\ng' = 9.9 × (4/9) = 4.",
     "Numerator: 1 + 9/16 = 25/16.\nResult: (25/16) ÷ (7/16) = 25/7.", "", ""),
    ("statement_fragment", "The correct answer is **A: 4900 J**.\nWhen a 500g (0.5 kg) bomb is dropped from 1",
     "The correct answer is **A: 4900 J**.\nWhen a 500 g bomb falls 1 km, mgh = 4900 J.", BOMB, THINK_BOMB),
    ("statement_fragment", "The correct answer is **A: 4900 J**.\nJust before impact it has fallen 1",
     "The correct answer is A, as mgh = 0.5 × 9.8 × 1000 J = 4900 J.\n\nThe answer is (A)", BOMB, THINK_BOMB),
    ("unfinished_walk", "**B: 5/26**.\n\nAmong the options:\n- **A: 3/26** (wrong)\n- **B: 5/26** (right)\n- **C: 1/13** (wrong)",
     "**B: 5/26**.\n\nOther options:\n- **A: 3/26** (wrong)\n- **C: 1/13** and **D: 1/26** (wrong)", VOWEL, THINK_VOWEL),
    ("unreached_value", "The correct answer is **C: 52**.\n\nGiven a + 1/a = 4, squaring gives a² + 1/a² = 14.",
     "The correct answer is **C: 52**.\n\nCubing a + 1/a = 4 gives a³ + 1/a³ = 64 − 12 = 52.", CUBE, THINK_CUBE),
    ("unstated_letter", "At constant pressure V₂/V₁ = T₂/T₁ = 546,273 K / 273 K ≈ 2001.",
     "At constant pressure V₂/V₁ = T₂/T₁ ≈ 2001, so about 2001 ft³.\n\nThe answer is (I).", AIR, THINK_AIR),
]  # fmt: skip


def _cut(answer: str, prompt: str, think: str) -> truncation.Cut | None:
    parsed = normalize(answer, think or "Thinking.", None, None, resolve_delimiters("r1"))
    return truncation.find_cut(parsed, None, prompt=prompt)


@pytest.mark.parametrize(("evidence", "cut", "clean", "prompt", "think"), CASES, ids=[c[0] for c in CASES])
def test_cut_is_caught_and_its_look_alike_passes(evidence: str, cut: str, clean: str, prompt: str, think: str) -> None:
    found = _cut(cut, prompt, think)
    assert found is not None and (found.code, found.evidence) == ("truncated_in_answer", evidence), found
    assert unfinished(think, cut, prompt) == evidence
    assert _cut(clean, prompt, think) is None, unfinished(think, clean, prompt)


def test_a_known_finish_is_trusted() -> None:
    """A model that stopped ("stop") after "Here is the code:" chose to: the text rules do not run."""
    parsed = normalize("Here is the code:", "Thinking.", None, "stop", resolve_delimiters("r1"))
    assert truncation.find_cut(parsed, "stop") is None


def test_every_rule_has_an_info_code_and_a_case() -> None:
    assert {truncation.EVIDENCE_PREFIX + e for e in EVIDENCE} <= grammar.INFO_CODES
    assert set(EVIDENCE) == {c[0] for c in CASES}


@needs_corpus
def test_no_complete_real_reply_is_flagged() -> None:
    """Every complete real reply of the corpus (5,568 thinking + answer + prompt triples) passes
    every rule of unfinished.py (the few the older rules flag end mid-word in the source data)."""
    flagged = []
    for t in real_triples():
        if unfinished(t.think, t.answer, t.prompt) is None:
            continue  # the cheap check first; find_cut (older rules first) only for the few it flags
        cut = truncation.find_cut(normalize(t.answer, t.think, None, None, resolve_delimiters("r1")), None,
                                  prompt=t.prompt)  # fmt: skip
        if cut is not None and cut.evidence in EVIDENCE:
            flagged.append((cut.evidence, t.answer[-80:]))
    assert not flagged, flagged[:5]


@needs_corpus
def test_no_complete_mmlu_pro_reply_is_flagged_with_its_options_listed() -> None:
    """The corpus's MMLU-Pro prompts come without their options; a recipe maps `options` into the
    prompt ("A. …" lines, as sources/mapping.py and recipes/sample.yaml do), which turns on the
    multiple-choice rules: none may flag these 413 complete replies either ("The correct answer
    is B, as …" then "The answer is (B)")."""
    rows = [json.loads(line) for line in (CORPUS / "r1-mmlupro-pcmb-traces" / "pcmb_traces.jsonl").open()]
    flagged = []
    for r in rows:
        options = "\n".join(f"{'ABCDEFGHIJ'[i]}. {o}" for i, o in enumerate(r["options"]))
        prompt = f"{r['question'].rstrip()}\n\n{options}\n\nAnswer with the letter of the correct option."
        if (evidence := unfinished(r["reasoning"].strip(), r["answer_text"].strip(), prompt)) is not None:
            flagged.append((evidence, r["answer_text"][-80:]))
    assert len(rows) > 400 and not flagged, flagged[:5]
