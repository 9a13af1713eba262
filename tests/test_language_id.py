"""Language identification: the script pass, py3langid for shared scripts, and the checks built on it.

Accuracy is measured on rows whose source states their language (English, Chinese and Bangla
questions; tests/fixtures/adversarial_replies.py), or on data/sample/ in a clone without
../shared/corpus. benchmarks/responses.py prints the same figures with the cost per reply.
"""

from __future__ import annotations

import pytest

from builder import language
from builder.responses.grammar import validate
from builder.responses.shapes import normalize
from tests.fixtures.adversarial_replies import CORPUS, labelled_language_rows, language_accuracy

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real corpus not found at {CORPUS}")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Bonjour, je voudrais réserver une table pour deux personnes ce soir, s'il vous plaît.", "fr"),
        ("Trời ơi! Câu này nghe như mẹ chỉ là một chiếc máy nuôi dưỡng con cái không thôi.", "vi"),
        ("Google, Facebook, Microsoft, Apple und Amazon sind einige der größten Ausgaben für Lobbying.", "de"),
        ("Решетка - это что-то вроде сетки, которую можно нарисовать на бумаге.", "ru"),
        ("یودا، مرد کوچک سبز، در جهانی دیگر با قدرتی بیکران، از جادویی ستارگان", "fa"),
        ("The function is linear, so the answer is 4 and that is all there is to it.", "en"),
        ("a+1/a=4 হলে a2 + 1/a2 এর মান কত?", "bn"),  # formula letters are not English
        ("MSDS এর পূর্ণ নাম কী?", "bn"),  # an acronym is not English
        ("冰雪(snow), 寒冷(cold), 热饮(hot drink), 冬至(Winter solstice)", "zh"),  # terms, no English sentence
        ("答案是正确的，因为 the function is linear。", "mixed"),  # an English clause is English
        ("\\boxed{42}", "unknown"),
    ],
)
def test_identify(text: str, code: str) -> None:
    assert language.identify(text).language == code


def test_short_latin_text_is_uncertain_not_guessed() -> None:
    guess = language.identify("Paris")
    assert guess.language == "en" and "en" in guess.uncertain
    assert language.compatible("en", frozenset({"vi"}), guess.uncertain)  # "some Latin-script language"


def test_compatible() -> None:
    assert not language.compatible("fr", frozenset({"vi"}))  # both sure, both Latin, different
    assert language.compatible("fr", frozenset({"en"}))  # an English prompt's "en" may be a guess itself
    assert not language.compatible("zh", frozenset({"en"}))
    assert not language.compatible("ru", frozenset({"en"}), frozenset({"ru"}))  # another script stays foreign


def test_iso_codes_for_the_card() -> None:
    # "en+bn" rows are a third of the sample: the card must list Bengali too.
    assert language.iso_codes(["en", "bn+en", "mixed", "unknown", "zh", "und"]) == ["bn", "en", "zh"]
    assert language.iso_codes(None) == []


def test_prompt_quoting_two_bengali_letters_keeps_a_clean_english_answer() -> None:
    """The issue's case: script counting alone made this clean English answer 'mixed_language_answer'."""
    prompt = "What is the difference between the Bengali letters ক and খ?"
    answer = "ক is ka and খ is kha. Words with them: কলম, কাগজ, কমলা, কাঁঠাল, খাতা, খবর, খেলা, খরগোশ."
    parsed = normalize(f"<think>\nThe user asks about two letters.\n</think>\n\n{answer}")
    allowed = language.prompt_languages(prompt)
    assert allowed == {"en"}  # two letters do not make a Bangla prompt
    plain = validate(parsed, "stop", allowed, None)
    assert "mixed_language_answer" in plain.codes  # what the script pass alone says
    quoted = validate(parsed, "stop", allowed, None, prompt_scripts=language.prompt_scripts(prompt))
    assert quoted.ok, quoted.codes


def test_english_wrapper_around_bangla_allows_both() -> None:
    prompt = ("Below there is a Bangla multiple choice question with 4 option, you need to find the correct option "
              "for the question.\n    Question in Bangla: নিচের কোনটিতে মেটামারিজম অনুপস্থিত?\n    Options in Bangla: "
              "{'A': 'সেকেন্ডারি অ্যামিন', 'B': 'কিটোন', 'C': 'অ্যালকোহল', 'D': 'ইথার'}")  # fmt: skip
    assert language.prompt_languages(prompt) == {"en", "bn"}
    assert language.prompt_language_label(prompt) == "bn+en"


def test_confident_latin_mismatch_is_caught() -> None:
    prompt = "Trời ơi! Câu này nghe như mẹ chỉ là một chiếc máy nuôi dưỡng con cái không thôi. Bạn nghĩ sao?"
    parsed = normalize("<think>\nSuy nghĩ về câu hỏi này.\n</think>\n\n"
                       "I think the question is about parenting, and the answer is that mothers need rest too.")  # fmt: skip
    val = validate(parsed, "stop", language.prompt_languages(prompt), None)
    assert "language_mismatch_answer" in val.codes and val.answer_language == "en"


def test_model_ships_with_the_package() -> None:
    from pathlib import Path

    from py3langid.langid import MODEL_DIR, MODEL_FILE

    assert (Path(MODEL_DIR) / MODEL_FILE).is_file()  # no download: the model is in the wheel
    assert set(language.SHARED_SCRIPTS["Latin"]) <= set(language._models()["Latin"].labels)


def test_labelled_rows_accuracy() -> None:
    """Row level, per language: identify() on the row, and the row's `language` label."""
    rows = labelled_language_rows()
    acc = language_accuracy(rows)
    assert acc["en"]["accuracy"] >= 0.99
    # Strict identify() on Chinese / Bangla questions: translation tasks quoting English and
    # formula-only questions are honestly "mixed" / "unknown" (measured ~0.98 on the corpus).
    assert acc["zh"]["accuracy"] >= 0.95 and acc["bn"]["accuracy"] >= 0.95
    for lang, texts in rows.items():
        labels = [language.prompt_language_label(t) for t in texts]
        named = [lab for lab in labels if lab != language.UNKNOWN]
        assert sum(lang in lab.split("+") for lab in named) >= 0.99 * len(named), lang


@needs_corpus
def test_labelled_rows_accuracy_on_the_corpus() -> None:
    """Issue 12's target, per language at the row level (measured en 0.9996, zh 0.9944, bn 0.992;
    the misses left are translation prompts whose text is mostly the English to translate)."""
    rows = labelled_language_rows()
    acc = language_accuracy(rows)
    assert all(acc[lang]["accuracy"] >= 0.99 for lang in ("en", "zh", "bn")), acc
    for lang, texts in rows.items():
        labels = [language.prompt_language_label(t) for t in texts]
        assert sum(lang in lab.split("+") for lab in labels) >= 0.99 * len(labels), lang


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('请将英语"I was the youngest son, and the youngest but two."翻译成中文', "zh"),
        ("翻译以下句子：This book is very interesting.", "zh"),
        ("为以下代码片段编写注释。\ndef factorial(n):\n if n == 0:\n  return 1", "zh"),
        ("কাজ এর পরিমাণ শূন্য হলে, বল ও সরণের মধ্যবর্তী কোণ কত? (If the work done is zero, what is the angle?)", "bn"),
        ("tan-1x+tan-1y+tan-1z=π হলে, x+y+z=?", "bn"),
        ("The word “নদী” means river in English, and it is used in many poems about the countryside.", "en"),
    ],
)
def test_mixed_rows_are_judged_on_their_frame(text: str, code: str) -> None:
    assert language.identify(text).language == code


def test_frame_pass_is_off_for_a_prompts_allowed_languages() -> None:
    """An English instruction around a quoted Bangla question still allows both."""
    text = "Below there is a Bangla question, answer it.\n    Question in Bangla: 'আন্তর্জাতিক শিক্ষক দিবস কবে পালিত হয়?'"
    assert language.identify(text, frame=False).language == language.MIXED
    assert {"en", "bn"} <= language.prompt_languages(text, cached=False)
    assert language.prompt_language_label("xy+x2y2=1 হলে dy/dx=?") == "bn"


def test_greek_letters_in_formulas_are_not_greek() -> None:
    from builder.language import prompt_language_label

    text = ("Below there is a Bangla multiple choice question. Question in Bangla: x³+2x²-3x+4=0 "
            "সমীকরণের মুলগুলি α,β,γ হলে 1α+1β+1γ =?")
    assert "el" not in prompt_language_label(text).split("+")
    assert prompt_language_label("Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο και τρέχει μακριά") == "el"
