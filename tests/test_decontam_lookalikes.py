"""Leaks hidden with invisible characters or look-alike letters still match (matching keys only).

A zero-width joiner, an invisible separator or a bidi mark inside an English word split the
word in two, and Cyrillic/Greek letters drawn like Latin ones ("thе" with a Cyrillic е) made
other words: before this fold, 95-100% of such leaks of real benchmark items passed. Russian
and Greek words keep their letters, and stored text is never changed. Numbers written with LaTeX
("1{,}000", "1\\,000"), SI (thin, no-break space) or plain-space ("1 000", not in lists) thousands
separators read as "1000", and a
leak that writes the item's "2" as "two" holds the item's numbers. Accents strewn over Latin letters are
dropped from the matching key, and so are multiple-choice labels ("A. ", "(B)").
"""

from __future__ import annotations

import re

from builder.config.curate import DecontamConfig
from builder.curate.decontam import BenchmarkIndex
from builder.curate.decontam_tokens import words
from builder.curate.normalize import fold_text, normalize_text

ITEM = ("A rectangular garden is 24 meters long and 15 meters wide. A path of uniform width runs around the "
        "inside edge of the garden, and the area left for planting is 252 square meters. How wide is the path?")  # fmt: skip


def _index(item_id: str = "garden", text: str = ITEM) -> BenchmarkIndex:
    idx = BenchmarkIndex(DecontamConfig())
    idx.add("bench", item_id, text)
    idx.finish()
    return idx


def _inside_words(text: str, mark: str) -> str:
    return re.sub(r"([a-z]{3})([a-z])", lambda m: m.group(1) + mark + m.group(2), text)


def test_format_characters_inside_words_do_not_hide_a_leak() -> None:
    idx = _index()
    for mark in ("\u200d", "\u200c", "\u2063", "\u200e", "\u202c", "\ufe0f"):
        leak = _inside_words(ITEM, mark)
        if mark in "\u200d\u200c":
            assert normalize_text(leak) == leak  # the stored text keeps ZWJ/ZWNJ
        hit = idx.match(leak)
        assert hit is not None and hit.item_id == "garden", repr(mark)


def test_cyrillic_and_greek_look_alikes_do_not_hide_a_leak() -> None:
    idx = _index()
    cyrillic = ITEM.translate(str.maketrans("aeopcxyAT", "аеорсхуАТ"))
    greek = ITEM.translate(str.maketrans("oAT", "οΑΤ"))
    for leak in (cyrillic, greek):
        hit = idx.match(leak)
        assert hit is not None and hit.item_id == "garden"


def test_look_alike_fold_leaves_real_cyrillic_and_greek_words() -> None:
    assert fold_text("thе сat") == "the cat"
    assert fold_text("Привет мир, hello") == "Привет мир, hello"
    assert fold_text("οδός and ν = 5") == "οδός and v = 5"  # a lone look-alike word folds
    assert fold_text("Привет мир") == "Привет мир"  # no Latin letter: nothing to imitate
    assert fold_text("tri\u200dangle") == "triangle"
    assert _index().match("Найдите площадь сада 24 на 15 метров и ширину дорожки.") is None


PRICE = ("A school buys 1250 notebooks at a bulk price and pays 3750 dollars in total. "
         "If the supplier later offers a discount of 10 percent on every order above 2000 dollars, "
         "how much would the school have saved on this order?")  # fmt: skip


def test_latex_and_thin_space_thousands_separators_do_not_hide_a_leak() -> None:
    idx = _index("price", PRICE)
    for sep in ("{,}", "\\,", "\u202f", "\u2009", "\u00a0"):
        leak = re.sub(r"(\d)(\d{3})\b", lambda m, s=sep: m.group(1) + s + m.group(2), PRICE)
        hit = idx.match(leak)
        assert hit is not None and hit.item_id == "price", repr(sep)
    assert words("$a\\,b$ and 3\\,14") == ["a", "b", "and", "3", "14"]


HOUSE = ("Mr. Tan sold his house for $400 000. He paid the transfer fees that amount to 3% of the selling price, "
         "and he also paid $250 000 for the remaining loan amount of the house. How much is his net profit?")  # fmt: skip


def test_a_plain_space_thousands_separator_does_not_hide_a_leak() -> None:
    # "1 250" for 1250: before, the leak's numbers were "1", "250", … and the number check failed
    idx = _index("price", PRICE)
    for leak in (PRICE.replace("1250", "1 250").replace("3750", "3 750").replace("2000", "2 000"),
                 PRICE.replace("2000", "2 000")):  # fmt: skip
        hit = idx.match(leak)
        assert hit is not None and hit.item_id == "price", leak
    # and an item that writes "$400 000" is caught by a leak that writes "$400,000" or "$400000"
    idx = _index("house", HOUSE)
    for sep in (",", ""):
        hit = idx.match(HOUSE.replace("400 000", f"400{sep}000").replace("250 000", f"250{sep}000"))
        assert hit is not None and hit.item_id == "house", repr(sep)
    assert words("between 2 and 3 000, 2 132 contracts") == ["between", "2", "and", "3000", "2132", "contracts"]
    # numbers a plain space may just as well keep apart stay apart: lists, and groups with no 000
    # after a 3-digit head ("110 120 230", "sizes 12 345 678")
    for text in ("sizes 12 345 678", "60 80 140", "Total 110 120 230", 'viewBox="0 0 980 820"', "1 000 2 000",
                 "1 2 3", "3.5 000", "pages 640 480"):  # fmt: skip
        assert words(text) == words(text.replace(" ", " ; ")), text


MARBLES = ("A bubble in the shape of a hemisphere of radius 1 is on a tabletop. Inside the bubble are five "
           "congruent spherical marbles, four of which are sitting on the table and one of which is sitting "
           "atop the others. All marbles are tangent to the bubble, and their centers are at a height of 2 "
           "units above the table. Compute the radius of each marble.")  # fmt: skip


def test_a_leak_that_writes_its_numbers_as_words_is_caught() -> None:
    idx = _index("marbles", MARBLES)
    leak = MARBLES.replace("radius 1 ", "radius one ").replace("of 2 units", "of two units")
    hit = idx.match(leak)
    assert hit is not None and hit.item_id == "marbles"
    # the number words both texts share ("five", "four", "one of which") never stand in for the
    # item's changed numbers: radius 10 at height 20 is another problem
    assert idx.match(MARBLES.replace("radius 1 ", "radius 10 ").replace("of 2 units", "of 20 units")) is None
    assert idx.match(MARBLES.replace("radius 1 ", "radius ten ").replace("of 2 units", "of twenty units")) is None


def test_accents_strewn_over_letters_do_not_hide_a_leak() -> None:
    leak = re.sub(r"([aeiou])", "\\1\u0301", ITEM)  # á é í ó ú, composed by NFC in the stored text
    hit = _index().match(normalize_text(leak))
    assert hit is not None and hit.item_id == "garden"
    assert fold_text("café, Ça, naïve") == "cafe, Ca, naive"
    assert fold_text("नमस्ते 中文") == "नमस्ते 中文"  # marks of other scripts are part of their letters


def test_a_multiple_choice_item_copied_with_option_labels_is_caught() -> None:
    # the benchmark stores question and bare choices (text_fields: [question, choices])
    item = "\n".join(["Which of these planets has the shortest year?", "Mercury", "Venus", "Earth", "Mars"])
    idx = _index("planets", item)
    question, *choices = item.split("\n")
    for layout in ("{k}. {c}", "({k}) {c}", "{k}) {c}"):
        lines = [layout.format(k="ABCD"[i], c=c) for i, c in enumerate(choices)]
        hit = idx.match("\n".join([question, *lines, "Answer:"]))
        assert hit is not None and hit.item_id == "planets", layout
    inline = question + " (A) Mercury (B) Venus (C) Earth (D) Mars"
    assert idx.match(inline) is not None
    assert words("A cat sat.\nA. Mercury\n(b) Venus") == ["a", "cat", "sat", "mercury", "venus"]
