"""Answer cuts that look finished as text: the thinking's conclusion never stated, a last word
that is a piece of one the reply uses whole, prose cut before a closing span — and the thinking
cut while it weighed its options, which must not pass for vLLM's misrouted answer.

Rules: builder/responses/conclusion.py, partial_word.py, answer_end.py, truncation.py. Each
rule is tried on inputs built to fool it (another letter stated, the option's wording instead
of its letter, a Bangla digit for an ASCII one, "So I end up…" read as option I) and on every
complete real reply of ../shared/corpus; the tuned / held-out figures are in
benchmarks/truncation_split.py.
"""

from __future__ import annotations

import pytest

from builder.reasoning_format import resolve_delimiters
from builder.responses import truncation
from builder.responses.conclusion import missing_conclusion, option_texts
from builder.responses.partial_word import partial_word
from builder.responses.shapes import normalize
from tests.fixtures.adversarial_replies import CORPUS, real_triples

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real corpus not found at {CORPUS}")

MCQ = "Which island is hilly?\nOptions in Bangla: {'A': 'পাহাড়পুর (Paharpur)', 'B': 'কুতুবদিয়া', 'C': '৯০', 'D': 'মহেশখালি (Moheshkhali)'}"
THINK_D = "Moheshkhali has hills, including the Adinath temple. So the answer should be D."
THINK_H = "The cat learned to associate the sound with food: classical conditioning.\n\nThus final answer: H."


# ---------- the thinking's conclusion ----------


@pytest.mark.parametrize(
    ("think", "answer", "prompt"),
    [
        (THINK_H, "The cat's behavior is a classic example of classical conditioning.", "Why does the cat come?"),
        (THINK_H, "\n\nThe molarity", ""),
        (THINK_D, "বাংলাদেশের একমাত্র পাহাড়বিশিষ্ট দ্বীপটি কক্সবাজার জেলায় অবস্থিত।", MCQ),
        ("Adding them gives 7 + 5 = 12.\n\nSo the final answer is \\boxed{12}.", "We add the two numbers.", "7 + 5?"),
    ],
    ids=["pcmb-no-letter", "pcmb-stub", "bangla-no-option", "math-no-value"],
)
def test_a_conclusion_the_answer_never_reaches_is_a_cut(think: str, answer: str, prompt: str) -> None:
    assert missing_conclusion(think, answer, prompt)
    parsed = normalize(answer, think, None, None, resolve_delimiters("r1"))
    cut = truncation.find_cut(parsed, None, prompt=prompt)
    assert cut is not None and (cut.code, cut.evidence) == ("truncated_in_answer", "missing_conclusion")
    # A known "stop" is trusted: the text rules do not run.
    assert truncation.find_cut(parsed, "stop", prompt=prompt) is None


@pytest.mark.parametrize(
    ("think", "answer", "prompt"),
    [
        (THINK_H, "It is conditioning.\n\nThe answer is (H).", ""),
        (THINK_H, "It is conditioning.\n\nThe answer is (B).", ""),  # another letter: a mismatch, not a cut
        (THINK_D, "বাংলাদেশের একমাত্র পাহাড়বিশিষ্ট দ্বীপ হলো মহেশখালি।", MCQ),  # the option's wording
        (THINK_D, "The hilly island is Moheshkhali, in Cox's Bazar.", MCQ),  # the wording's other part
        ("The price is 72 / 0.8 = 90. So the answer is C.", "প্রকৃত মূল্য ৯০ টাকা।", MCQ),  # Bangla digits
        ("So I end up with x = 6. The solution is clear.", "Therefore, the solution is \\(\\boxed{6}\\).", "Solve x."),
        ("So I end up with x = 6.", "Multiplying both sides gives x = 6.", "Solve x."),  # "I" is no option
        ("In conclusion, 2.5625 is the improper fraction 41/16.", "2.5625 as a fraction is 41/16.", "Simplify."),
        ("", "The answer is 4.", "2 + 2?"),  # no thinking: nothing to compare with
        (THINK_H, "Here is the function.\n\n```python\ndef f(n):\n    return n * 2\n```", "Write f."),  # closed code
    ],
    ids=["letter", "other-letter", "wording", "wording-part", "bangla-digits", "boxed", "pronoun-I", "math-last",
         "no-think", "closed-code"],
)  # fmt: skip
def test_an_answer_that_states_a_result_is_not_cut(think: str, answer: str, prompt: str) -> None:
    assert not missing_conclusion(think, answer, prompt)


def test_an_option_cut_at_its_decimal_point() -> None:
    prompt = "Find μ.\nOptions: {'A': '0.25', 'B': '0.40', 'C': '0.5', 'D': '0.8'}"
    assert truncation.answer_cut("Solving gives μ = 0.40.\n\n**Answer:** B. 0.", prompt) == "partial_option"
    assert truncation.answer_cut("Solving gives μ = 0.5.\n\n**Answer:** C. 0.5.", prompt) is None


def test_option_texts_read_dicts_and_lines() -> None:
    assert option_texts(MCQ)["D"] == "মহেশখালি (Moheshkhali)"
    assert option_texts("Pick.\nA. red\n(B) green\nC) blue") == {"A": "red", "B": "green", "C": "blue"}


# ---------- a piece of a word ----------


@pytest.mark.parametrize(
    ("text", "context", "expected"),
    [
        ("অন্যান্য অপশন যেমন ডায়াকাইনেসি", "Option C: ডায়াকাইনেসিস is late prophase.", True),
        ("The value is approxim", "It is approximately 5.", True),
        ("সঠিক উত্তর: C. আপেক্ষিক আর্দ্রতা", "'C': 'আপেক্ষিক আর্দ্রতা'", False),  # the option, whole
        ("The capital is Paris", "Which city is the capital of France?", False),  # no longer word
        ("The answer is in", "Look inside the box.", False),  # a short Latin word
        ("答案是北", "北京是首都。", False),  # no word breaks in Chinese
        ("- **A. brunnencens** সম্", "Options: A, B", True),  # ends on a virama
        ("**সঠিক উত্তর:** C. আলাউদ্দীন হোসেন শাহ্", "'C': 'আলাউদ্দীন হোসেন শাহ্'", False),  # a virama word, whole
    ],
)
def test_partial_word(text: str, context: str, expected: bool) -> None:
    assert partial_word(text, context) is expected


# ---------- closing spans, exponents ----------


@pytest.mark.parametrize(
    "answer",
    [
        "The correct answer is **C**.\n\n**Explanation**: ভ্যানডার ওয়ালসের সমীকরণটি বাস্তব গ্যাসের আচরণ বর্ণনা করে, যেখানে চাপ (P)",
        "The correct answer is **D:40**. It follows from the rule.\n\nWhen a 3×3 matrix \\( A \\)",
        "Given:\n- Wavelength (λ) = 5000 Å = 5 × 10⁻",
        "সুতরাং, DO এর পরিমাণ = (৬ গ্রাম × ১০<sup>৫</sup> গ্রাম) ÷ ১০<",
        "অথবা, সমাকলন করে পাই:  \n∫<sub>",
        "মোট মোল = 1.282 mol।  \n   মোল ভগ্নাংশ = 0.",
        "The roots sum to 1.\n\nThe correct answer is D: x²-x-",
        "Ionic packing enhances the attraction. Thus, **CaF₂**",
        "The correct answer is C: √",
        "The correct answer is B: 4×",
        "Both are subsets.\n- Therefore, the correct hierarchy is ℤ ⊂",
        "It simplifies to 1/3.\n\n**Answer:** D)",
        "লব = (২×৩×৪) × ১০^{-",
        "ঘনত্ব ৩৬-৩৮% থাকে। এটির নির্দিষ্ট মাধ্যাকর্ষণ প্রায় ১.",
        "The correct answer is C: 1/4.\n\nEach toss has two faces.\nBoth tosses are fair.\n"
        "When a coin is tossed twice, there are 4",
    ],
)
def test_prose_cut_before_a_closing_span_or_an_exponent(answer: str) -> None:
    assert truncation.answer_cut(answer) in ("unterminated_prose", "dangling_end")


@pytest.mark.parametrize(
    "answer",
    [
        "Some reasons.\n\nThe answer is (B)",
        "**Answer:** A (C₆H₅COOH)",
        "It is PO₄³⁻",
        "Thus x = 0.",  # an English full stop after a number
        "So it is (A)",
        "মূল দুটি α ও 3α।  \nগুণফল থেকে পাই α² = 4/9।  \nসুতরাং k/12 = ±2/3।  \nতাই k = ±8",  # a result line
    ],
)
def test_answer_lines_ending_on_a_span_are_complete(answer: str) -> None:
    assert truncation.answer_cut(answer) is None


# ---------- thinking cut while weighing Bangla options ----------


def test_thinking_cut_mid_option_is_not_a_misrouted_answer() -> None:
    think = "Let me weigh them.\n\nOption B: সাইটোকাইনেসিস – Cytokinesis, not it.\n\nOption C: ডায়াকাইনেসি"
    parsed = normalize(None, None, think, None, resolve_delimiters("r1"))
    cut = truncation.find_cut(parsed, None)
    assert cut is not None and cut.code == "truncated_in_think"
    # With finish "stop" the model chose to stop there: the misrouted reading stands.
    whole = "Weighing done.\n\n**Answer:** C. ডায়াকাইনেসিস"
    stopped = truncation.find_cut(normalize(None, None, whole, "stop", resolve_delimiters("r1")), "stop")
    assert stopped is not None and stopped.code == "answer_in_reasoning"


# ---------- precision on every complete real reply ----------


@needs_corpus
def test_new_rules_flag_no_complete_real_reply() -> None:
    """The corpus's complete replies (thinking + answer + prompt, finish unknown): the rules of
    this file flag none; all text rules together stay under 0.5 %."""
    flagged: dict[str, list[str]] = {}
    triples = real_triples()
    for t in triples:
        cut = truncation.find_cut(normalize(t.answer, t.think, None, None, resolve_delimiters("r1")), None,
                                  prompt=t.prompt)  # fmt: skip
        if cut is not None:
            flagged.setdefault(cut.evidence, []).append(t.answer[-60:])
    assert not flagged.get("missing_conclusion") and not flagged.get("partial_word"), flagged
    assert sum(map(len, flagged.values())) <= 0.005 * len(triples)
