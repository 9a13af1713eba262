"""Seeded text edits for benchmarks/adversarial.py: light edits, rephrasings, Unicode look-alikes,
Chinese numerals, number changes, and the near-dedupe families built from them.

Numbers are never touched by an edit unless its name says so (`digit_change`,
`zh_number_change`): a changed number is a new problem, never a duplicate.
"""

from __future__ import annotations

import random
import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_HAS_DIGIT = re.compile(r"\d")
_ZH_NUMERALS = set("零〇一二两三四五六七八九十百千万亿")  # numbers: a character edit never touches them

# ---- text edits ----

_SYN = {
    "buy": "purchase", "buys": "purchases", "bought": "purchased", "sell": "vend", "sells": "vends",
    "sold": "vended", "gets": "receives", "got": "received", "has": "owns", "had": "owned", "gives": "hands",
    "gave": "handed", "makes": "produces", "made": "produced", "wants": "wishes", "needs": "requires",
    "many": "numerous", "each": "every", "total": "overall", "money": "cash", "store": "shop", "car": "vehicle",
    "house": "home", "children": "kids", "friends": "pals", "big": "large", "small": "little",
    "fast": "quick", "begins": "starts", "began": "started", "finds": "discovers", "find": "determine",
    "calculate": "compute", "compute": "calculate", "show": "prove", "explain": "describe", "write": "compose",
    "describe": "explain", "answer": "response", "question": "query", "problem": "task", "number": "count",
    "numbers": "values", "value": "amount", "amount": "quantity", "people": "persons", "week": "7-day span",
    "spends": "uses", "spent": "used", "earns": "makes", "earned": "made", "pays": "spends", "paid": "spent",
    "walks": "strolls", "runs": "jogs", "reads": "peruses", "takes": "needs", "took": "needed",
    "following": "next", "which": "what", "correct": "right", "true": "accurate", "false": "wrong",
    "consider": "take", "suppose": "assume", "given": "provided", "determine": "find", "list": "enumerate",
    "function": "routine", "return": "give back", "returns": "gives back", "string": "text", "integer": "whole number",
}  # fmt: skip
_FORMS = [("How many", "What is the number of"), ("How much", "What amount"), ("What is", "Tell me"),
          ("Find", "Work out"), ("Write", "Please write"), ("Explain", "Can you explain"),
          ("Which of the following", "Which one of these")]  # fmt: skip
_SYN_ZH = {"多少": "几", "一共": "总共", "计算": "求", "如果": "假如", "请": "麻烦", "已知": "设", "问": "请问",
           "每天": "每日", "同学": "学生", "老师": "教师", "可以": "能够", "什么": "啥", "为什么": "为何",
           "怎么": "如何", "介绍": "讲讲", "写": "撰写", "现在": "目前", "知道": "了解", "需要": "要"}  # fmt: skip
_WRAP_EN = [
    "Please solve the following problem.\n\n{}",
    "{}\n\nExplain your reasoning step by step.",
    "Q: {}\nA:",
    'I found this in my homework and I\'m stuck:\n"{}"\nCan you walk me through it?',
    "Here is a task for you. Read it carefully.\n\n---\n{}\n---\n\nGive a short, correct answer.",
    "{ctx}\n\nAlso, separately: {}",
    "Background: {ctx}\n\nNow the actual question: {}\nThanks!",
    "{}\n\n(After answering, also do this: {ctx})",
]
_WRAP_ZH = [
    "请解答下面的问题：\n{}",
    "{}\n请一步一步地思考，并给出最终答案。",
    "我在复习时遇到这道题：{}\n应该怎么做？",
    "{ctx}\n\n另外，请回答：{}",
    "背景：{ctx}\n\n问题：{}\n谢谢！",
]
_FULLWIDTH = {c: chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
_ZH_PUNCT = str.maketrans({",": "，", "?": "？", "!": "！", ":": "：", ";": "；", "(": "（", ")": "）"})


def to_fullwidth(text: str, digits_only: bool = False) -> str:
    if digits_only:
        return "".join(chr(ord(c) + 0xFEE0) if "0" <= c <= "9" else c for c in text)
    return text.translate(_FULLWIDTH)


class Editor:
    """Seeded text edits. Numbers are never edited unless a method says so."""

    def __init__(self, rng: random.Random, vocab: list[str], zh_chars: list[str]) -> None:
        self.rng, self.vocab, self.zh_chars = rng, vocab, zh_chars

    def surface(self, text: str) -> str:
        r = self.rng
        op = r.randrange(8)
        if op == 0:
            return text.lower() if r.random() < 0.5 else text.upper()
        if op == 1:
            return re.sub(" ", lambda _: r.choice([" ", "  ", "\n", " \t"]), text)
        if op == 2:
            return text.rstrip("?.!。？") + r.choice(["?", "!", ".", "。", " ?", ""])
        if op == 3:
            return self.fold(text, "fold_quotes")
        if op == 4:
            return self.fold(text, "fold_spaces")
        if op == 5:
            return self.fold(text, "fold_fullwidth")
        if op == 6:
            return text.replace(",", "，") if _CJK.search(text) else text.replace(", ", " , ")
        return "  " + text + "\n"

    def fold(self, text: str, kind: str) -> str:
        r = self.rng
        if kind == "fold_fullwidth":
            return to_fullwidth(text)
        if kind == "fold_digits":
            return to_fullwidth(text, digits_only=True)
        if kind == "fold_spaces":
            return re.sub(" ", lambda _: r.choice(["\u00a0", "\u2009", "\u202f", "\u3000", "\u2002"]), text)
        if kind == "fold_quotes":
            t = re.sub(r"(\w)'(\w)", "\\1\u2019\\2", text)
            t = re.sub(r'"([^"]*)"', "\u201c\\1\u201d", t)
            return t.replace("'", "\u2018") if t == text else t
        if kind == "fold_dashes":
            return re.sub(r"(?<=\D)-|-(?=\D)", lambda _: r.choice(["\u2013", "\u2014", "\u2010"]), text)
        if kind == "fold_cjk_punct":
            return text.translate(_ZH_PUNCT).replace(". ", "。").replace(".\n", "。\n")
        if kind == "fold_zero_width":
            chars = list(text)
            for _ in range(max(1, len(chars) // 40)):
                chars.insert(r.randrange(len(chars) + 1), r.choice(["\u200b", "\ufeff", "\u00ad", "\u2060"]))
            return "".join(chars)
        if kind == "fold_nfd":
            import unicodedata

            return unicodedata.normalize("NFD", text)
        if kind == "fold_mixed":
            for k in r.sample(["fold_fullwidth", "fold_spaces", "fold_quotes", "fold_dashes", "fold_zero_width"], 3):
                text = self.fold(text, k)
            return text
        raise ValueError(kind)

    def word_edit(self, text: str) -> str:
        r = self.rng
        words = text.split(" ")
        slots = [i for i, w in enumerate(words)
                 if w and not _HAS_DIGIT.search(w) and "$" not in w and "\\" not in w and not _CJK.search(w)]  # fmt: skip
        if not slots:
            return text
        i = r.choice(slots)
        op = r.randrange(4)
        if op == 0:
            words[i] = r.choice(self.vocab)
        elif op == 1:
            del words[i]
        elif op == 2:
            words.insert(i, r.choice(self.vocab))
        else:  # a typo inside the word
            w = words[i]
            if len(w) >= 4:
                k = r.randrange(1, len(w) - 1)
                words[i] = w[:k] + w[k + 1] + w[k] + w[k + 2 :]
            else:
                words[i] = r.choice(self.vocab)
        return " ".join(words)

    def char_edit(self, text: str) -> str:
        r = self.rng
        chars = list(text)
        slots = [i for i, c in enumerate(chars) if _CJK.match(c) and c not in _ZH_NUMERALS]
        if not slots:
            return text
        i = r.choice(slots)
        op = r.randrange(3)
        choices = [c for c in self.zh_chars if c not in _ZH_NUMERALS] or ["字"]
        if op == 0:
            chars[i] = r.choice(choices)
        elif op == 1:
            del chars[i]
        else:
            chars.insert(i, r.choice(choices))
        return "".join(chars)

    def light(self, text: str) -> str:
        """Lightly edited: content edits by length, then one or two surface edits."""
        n_cjk = len(_CJK.findall(text))
        if n_cjk * 2 >= len(text.split()) and n_cjk >= 15:
            for _ in range(max(1, round(n_cjk / 25))):
                text = self.char_edit(text)
        else:
            n = len(text.split())
            if n >= 10:
                for _ in range(max(1, round(n / 15))):
                    text = self.word_edit(text)
        for _ in range(self.rng.randint(1, 2)):
            text = self.surface(text)
        return text

    def rephrase(self, text: str) -> str:
        """Reworded: synonyms (about half the words that have one), question forms, sentence order."""
        r = self.rng
        if _CJK.search(text):
            for a, b in _SYN_ZH.items():
                if a in text and r.random() < 0.8:
                    text = text.replace(a, b)
            parts = [p for p in re.split(r"(?<=[，。？！])", text) if p]
            if len(parts) >= 3:
                q = parts.pop()
                parts.insert(0, q)
            return "".join(parts)
        for a, b in _FORMS:
            if a in text:
                text = text.replace(a, b, 1)
        words = text.split(" ")
        for i, w in enumerate(words):
            core = w.strip(".,?!;:").lower()
            if core in _SYN and r.random() < 0.6:
                words[i] = w.lower().replace(core, _SYN[core])
        text = " ".join(words)
        sents = re.split(r"(?<=[.?!])\s+", text)
        if len(sents) >= 3:
            q = sents.pop()
            sents.insert(0, q)
            text = " ".join(sents)
        return text


# ---- Chinese numerals ----

_ZH_DIGIT = "零一二三四五六七八九"
_CLASSIFIERS = "个只本元米人辆张条支块次天岁棵朵"


def zh_numeral(n: int) -> str:
    """1..99 in Chinese numerals (2 before a classifier reads 两)."""
    if n < 10:
        return "两" if n == 2 else _ZH_DIGIT[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _ZH_DIGIT[tens]) + "十" + (_ZH_DIGIT[ones] if ones else "")


# not after a Chinese numeral: "十5个" → "十五个" or "一2次" → "一两次" would change the number, not its form
_ZH_COUNT = re.compile(f"(?<![\\d.零〇一二两三四五六七八九十百千万亿])([1-9]\\d?)(?=[{_CLASSIFIERS}])")


def zh_numeral_form(text: str) -> str | None:
    """'3个' -> '三个': the same number written in Chinese numerals."""
    m = _ZH_COUNT.search(text)
    if not m:
        return None
    return text[: m.start()] + zh_numeral(int(m.group(1))) + text[m.end() :]


def zh_number_change(text: str, rng: random.Random, as_digit: bool = False) -> tuple[str, tuple[int, int]] | None:
    """'3个' -> '五个' (or '5个'): a different number, and (where, new number); None when the text
    has no counted number."""
    m = _ZH_COUNT.search(text)
    if not m:
        return None
    new = _other_number(int(m.group(1)), rng)
    return text[: m.start()] + (str(new) if as_digit else zh_numeral(new)) + text[m.end() :], (m.start(), new)


def _other_number(old: int, rng: random.Random) -> int:
    """Another number in 1..99."""
    return rng.choice([k for k in range(max(1, old - 8), min(99, old + 8) + 1) if k != old])


def digit_change(text: str, rng: random.Random) -> tuple[str, tuple[int, int]] | None:
    """(text with one number changed, (where, new number)) or None."""
    nums = list(re.finditer(r"\d+", text))
    if not nums:
        return None
    m = rng.choice(nums)
    new = int(m.group()) + rng.randint(1, 9)
    return text[: m.start()] + str(new) + text[m.end() :], (m.start(), new)


# ---- near-dedupe families ----

FOLD_KINDS = ["fold_fullwidth", "fold_digits", "fold_spaces", "fold_quotes", "fold_dashes", "fold_cjk_punct",
              "fold_zero_width", "fold_nfd", "fold_mixed"]  # fmt: skip
MERGE_KINDS = {"near_dup", "zh_dup", "short_dup", "exact_dup", "zh_numeral_form", "mixed_dup", *FOLD_KINDS}
KEEP_KINDS = {"number_variant", "number_fullwidth", "number_zh", "number_zh_digit"}


def dedupe_variants(bases: list[tuple[int, str, str]], seed: int, n: int, zh_chars: list[str],
                    vocab: list[str]) -> list[tuple[int | tuple, str, str, str]]:  # fmt: skip
    """(family, text, lang, kind) variants of (family, text, lang) bases. A number change is a new
    problem: its family is a key (base family, where, new number) the caller maps to a new family
    id, so two variants that changed the same number to the same value are one family."""
    rng = random.Random(seed)
    ed = Editor(rng, vocab, zh_chars)
    out: list[tuple[int | tuple, str, str, str]] = []
    zh = [b for b in bases if b[2] == "zh"]
    zh_counted = [b for b in zh if _ZH_COUNT.search(b[1])]
    mixed = [b for b in bases if _CJK.search(b[1]) and re.search(r"[A-Za-z]{3,}", b[1])]
    with_digits = [b for b in bases if _HAS_DIGIT.search(b[1])]
    en_text = [b for b in bases if b[2] == "en"]
    accented = [b for b in bases if re.search("[à-ÿ]", b[1])] or bases  # once: per draw it was O(bases) each
    while len(out) < n:
        roll = rng.random()
        if roll < 0.55:
            kind = rng.choice(FOLD_KINDS)
            pool = zh if kind == "fold_cjk_punct" else with_digits if kind == "fold_digits" else bases
            if kind == "fold_nfd":
                pool = accented
            if kind in ("fold_quotes", "fold_dashes"):
                pool = en_text
            fam, text, lang = rng.choice(pool)
            v = ed.fold(text, kind)
            if v != text:
                out.append((fam, v, lang, kind))
        elif roll < 0.65 and zh_counted:
            fam, text, lang = rng.choice(zh_counted)
            v = zh_numeral_form(text)
            if v:
                out.append((fam, v, lang, "zh_numeral_form"))
        elif roll < 0.75 and mixed:
            # as make_corpus's near duplicates: a content edit (a Latin word or a CJK character) per
            # started 30 tokens from 30 tokens up, then a surface or look-alike edit
            fam, text, lang = rng.choice(mixed)
            size = len(_CJK.findall(text)) + len(re.findall(r"[A-Za-z]+", text))
            v = text
            for _ in range(size // 30):
                v = ed.word_edit(v) if rng.random() < 0.5 else ed.char_edit(v)
            v = ed.surface(v) if size >= 30 and rng.random() < 0.5 else ed.fold(v, rng.choice(FOLD_KINDS))
            if v != text:
                out.append((fam, v, lang, "mixed_dup"))
        elif roll < 0.85 and with_digits:
            fam, text, lang = rng.choice(with_digits)
            got = digit_change(text, rng)
            if got:
                out.append(
                    ((fam, *got[1]), to_fullwidth(got[0], digits_only=rng.random() < 0.5), lang, "number_fullwidth")
                )
        elif zh_counted:
            fam, text, lang = rng.choice(zh_counted)
            if rng.random() < 0.5:  # 3个 -> 5个
                got = zh_number_change(text, rng, as_digit=True)
                if got:
                    out.append(((fam, *got[1]), got[0], lang, "number_zh_digit"))
                continue
            # 3个 -> 三个 (same number: merges) and 五个 (another number: stays apart from both)
            m = _ZH_COUNT.search(text)
            assert m is not None
            old = int(m.group(1))
            new = _other_number(old, rng)
            same = text[: m.start()] + zh_numeral(old) + text[m.end() :]
            other = text[: m.start()] + zh_numeral(new) + text[m.end() :]
            out.append((fam, same, lang, "zh_numeral_form"))
            out.append(((fam, m.start(), new), other, lang, "number_zh"))
    return out
