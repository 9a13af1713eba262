"""Adversarial corpus for curate: seeded, built from real data in ../shared/corpus.

Every row says what it is (`kind`) and what must happen to it:

- leaks (must go as contaminated), one benchmark item each, never one item in two rows:
  ``leak_verbatim``; ``leak_embedded`` (inside a longer instruction, often around a real
  prompt of the same language); ``leak_edited`` (lightly edited: one word edit per started 15
  words for items of >= 10 words, one character edit per 25 CJK characters, plus case,
  spacing, punctuation and Unicode look-alike changes; numbers untouched); ``leak_rephrased``
  (synonyms, question-form rewrites and sentence order; scored apart).
- clean prompts (must stay): ``clean_real`` (real prompts from non-benchmark sets: GSM8K
  train, MMLU dev/val, OlympiadBench, AMC, Minerva, MBPP, Alpaca, Arena-Hard; Chinese math
  (CMATH, Gaokao, middle and grade school, Kaoyan), C-Eval, CMMLU, BELLE, Alpaca-ZH);
  ``clean_lookalike`` (a real prompt with a generic span of a benchmark item spliced in:
  8-12 words or CJK characters and at most 30% of the item); ``clean_boilerplate`` (a real
  prompt with instruction sentences that several IFEval items share). Real prompts that hold
  a whole benchmark item verbatim, or share a 30-word verbatim run with one (MMLU dev/val
  quote the same history passages as test), are not clean and are left out (`exact_containment`).
- near-dedupe families (`family` ties a variant to its base): Unicode look-alikes of a base
  (``fold_fullwidth``, ``fold_digits``, ``fold_spaces``, ``fold_quotes``, ``fold_dashes``,
  ``fold_cjk_punct``, ``fold_zero_width``, ``fold_nfd``, ``fold_mixed``: must merge);
  ``zh_numeral_form`` ("3个" ↔ "三个", same number: must merge); ``mixed_dup`` (CJK + Latin
  prompts with a word or character edit per 30 tokens, plus a surface or look-alike edit:
  must merge); number changes in those forms
  (``number_fullwidth``, ``number_zh``, ``number_zh_digit``: must stay).

Used by benchmarks/curate.py and tests/test_decontam_precision.py; GPQA rows are only read
from ../shared at run time, never copied.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
REPO_BENCH = ROOT / "data" / "benchmarks"

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_WORD = re.compile(r"\w+")
_HAS_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Bench:
    name: str
    path: Path
    fields: tuple[str, ...]
    id_field: str
    lang: str


def benchmark_specs(corpus: Path = CORPUS) -> list[Bench]:
    """The benchmarks recipes/paper.yaml names, those whose file is present."""
    specs = [
        Bench("gsm8k", REPO_BENCH / "gsm8k_test.jsonl", ("question",), "id", "en"),
        Bench("math500", REPO_BENCH / "math500.jsonl", ("problem",), "id", "en"),
        Bench("humaneval", REPO_BENCH / "humaneval.jsonl", ("prompt",), "id", "en"),
        Bench("ifeval", REPO_BENCH / "ifeval.jsonl", ("prompt",), "id", "en"),
        Bench("mt_bench", REPO_BENCH / "mt_bench.jsonl", ("turns",), "id", "en"),
        Bench("mmlu", REPO_BENCH / "mmlu_test.jsonl", ("question",), "id", "en"),
        Bench("gpqa_diamond", corpus / "limo-eval" / "gpqa.jsonl", ("question",), "id", "en"),
        Bench("aime24", corpus / "limo-eval" / "aime.jsonl", ("problem",), "id", "en"),
        Bench("aime25", corpus / "aime2025" / "aime2025_I.jsonl", ("problem",), "id", "en"),
        Bench("aime25", corpus / "aime2025" / "aime2025_II.jsonl", ("problem",), "id", "en"),
        Bench("alignbench", corpus / "alignbench" / "data_v1.1_release.jsonl", ("question",), "question_id", "zh"),
    ]
    return [b for b in specs if b.path.is_file()]


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_items(b: Bench) -> list[tuple[str, str]]:
    """(item id, text) of a benchmark file, fields joined by newlines as the decontam index does."""
    out = []
    for i, r in enumerate(_jsonl(b.path)):
        parts: list[str] = []
        for f in b.fields:
            v = r[f]
            parts.extend(str(x) for x in v) if isinstance(v, list) else parts.append(str(v))
        out.append((str(r.get(b.id_field, i)), "\n".join(parts)))
    return out


def _csv_rows(zpath: Path, prefixes: tuple[str, ...], question_col: int, header: bool) -> list[str]:
    out: list[str] = []
    with zipfile.ZipFile(zpath) as z:
        for name in sorted(z.namelist()):
            if name.endswith(".csv") and name.startswith(prefixes):
                rows = list(csv.reader(io.TextIOWrapper(z.open(name), encoding="utf-8")))
                out += [r[question_col] for r in rows[1 if header else 0 :] if len(r) > question_col]
    return out


def load_clean(corpus: Path = CORPUS) -> list[tuple[str, str, str]]:
    """(text, lang, source) of real prompts from sets that are not the recipe's benchmarks."""
    c = corpus
    out: list[tuple[str, str, str]] = []

    def add(texts: list[str], lang: str, source: str) -> None:
        out.extend((t, lang, source) for t in texts if isinstance(t, str) and t.strip())

    add([r["question"] for r in _jsonl(c / "gsm8k" / "train.jsonl")], "en", "gsm8k_train")
    add(_csv_rows(c / "mmlu-ceval-cmmlu" / "mmlu.zip", ("data/dev/", "data/val/"), 0, False), "en", "mmlu_dev_val")
    add([r["question"] for r in _jsonl(c / "limo-eval" / "olympiadbench.jsonl")], "en", "olympiadbench")
    add([r["problem"] for r in _jsonl(c / "limo-eval" / "amc.jsonl")], "en", "amc23")
    add([r["question"] for r in _jsonl(c / "limo-eval" / "minerva.jsonl")], "en", "minerva")
    add([r["text"] for r in _jsonl(c / "mbpp" / "mbpp.jsonl")], "en", "mbpp")
    for name, lang in (("alpaca_en_demo.json", "en"), ("alpaca_zh_demo.json", "zh")):
        rows = json.loads((c / "llamafactory-demo-data" / name).read_text(encoding="utf-8"))
        add(["\n".join(x for x in (r["instruction"], r["input"]) if x) for r in rows], lang, name.split("_demo")[0])
    for name in ("question_v0.1.jsonl", "question_v2.0.jsonl"):
        for r in _jsonl(c / "arena-hard" / name):
            t = r["prompt"]
            add([t], "zh" if len(_CJK.findall(t)) > len(t) // 4 else "en", "arena_hard")
    zh_math = c / "qwen25math-eval-zh"
    for name in ("cmath", "cn_middle_school", "gaokao2024_I", "gaokao2024_II", "gaokao2024_mix", "gaokao_math_cloze",
                 "gaokao_math_qa"):  # fmt: skip
        add([r["question"] for r in _jsonl(zh_math / f"{name}.jsonl")], "zh", f"zh_math_{name}")
    add([r["problem"] for r in _jsonl(c / "limo-eval" / "grade_school_math.jsonl")], "zh", "zh_grade_school_math")
    add([r["problem"] for r in _jsonl(c / "limo-eval" / "kaoyan.jsonl")], "zh", "kaoyan")
    add([r["question"] for r in _jsonl(c / "belle-eval-zh" / "eval_set.jsonl")], "zh", "belle_eval")
    dpo = json.loads((c / "llamafactory-demo-data" / "dpo_zh_demo.json").read_text(encoding="utf-8"))
    add([r["conversations"][0]["value"] for r in dpo], "zh", "dpo_zh")
    add(_csv_rows(c / "mmlu-ceval-cmmlu" / "ceval.zip", ("dev/", "val/"), 1, True), "zh", "ceval_dev_val")
    add(_csv_rows(c / "mmlu-ceval-cmmlu" / "cmmlu.zip", ("dev/", "test/"), 1, True), "zh", "cmmlu")
    seen: set[str] = set()
    return [r for r in out if not (r[0] in seen or seen.add(r[0]))]


# ---- exact containment: a "clean" prompt holding a whole item verbatim is a real leak ----


def _wordseq(text: str) -> str:
    import unicodedata

    t = unicodedata.normalize("NFKC", text).casefold()
    toks = re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff]|[^\W\u3400-\u4dbf\u4e00-\u9fff]+", t)
    return " " + " ".join(toks) + " "


def shares_a_passage(texts: list[str], items: list[str], run: int = 30) -> list[bool]:
    """Whether each text shares a verbatim run of `run` words (CJK characters count as words)
    with some item: a quoted passage (MMLU's history sources) is benchmark text, not clean."""
    grams: set[int] = set()
    for t in items:
        ws = _wordseq(t).split()
        grams.update(hash(" ".join(ws[k : k + run])) for k in range(len(ws) - run + 1))
    out = []
    for t in texts:
        ws = _wordseq(t).split()
        out.append(any(hash(" ".join(ws[k : k + run])) in grams for k in range(len(ws) - run + 1)))
    return out


def contains_an_item(texts: list[str], items: list[str], min_words: int = 6) -> list[bool]:
    """Whether each text is an item or holds a whole item of >= `min_words` words (an
    independent, plain check: an index of item prefixes, then a substring test)."""
    seqs = [s for s in (_wordseq(t) for t in items) if len(s.split()) >= min_words]
    heads: dict[str, list[str]] = {}
    for s in seqs:
        heads.setdefault(" ".join(s.split()[:min_words]), []).append(s)
    whole = {_wordseq(t) for t in items}
    out = []
    for t in texts:
        w = _wordseq(t)
        ws = w.split()
        hit = w in whole  # a short item, word for word
        for k in range(len(ws) - min_words + 1):
            for s in heads.get(" ".join(ws[k : k + min_words]), ()):
                if s in w:
                    hit = True
                    break
            if hit:
                break
        out.append(hit)
    return out


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
        slots = [i for i, c in enumerate(chars) if _CJK.match(c)]
        if not slots:
            return text
        i = r.choice(slots)
        op = r.randrange(3)
        if op == 0:
            chars[i] = r.choice(self.zh_chars)
        elif op == 1:
            del chars[i]
        else:
            chars.insert(i, r.choice(self.zh_chars))
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


_ZH_COUNT = re.compile(f"(?<![\\d.])([1-9]\\d?)(?=[{_CLASSIFIERS}])")


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


# ---- the decontamination set ----


@dataclass
class Row:
    text: str
    lang: str
    kind: str
    source: str  # benchmark name for leaks, clean source otherwise
    item_id: str = ""


def _vocab(clean: list[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    en = [w for t, lang, _ in clean[:20000] if lang == "en" for w in t.split() if w.isalpha()]
    zh = [c for t, lang, _ in clean[:20000] if lang == "zh" for c in _CJK.findall(t)]
    return en, zh


def boilerplate_sentences(items: list[str], min_items: int = 3) -> list[str]:
    """Sentences that at least `min_items` items share (IFEval's instruction phrases)."""
    counts: dict[str, int] = {}
    for t in items:
        for s in set(re.split(r"(?<=[.?!])\s+", t)):
            if len(s.split()) >= 6:
                counts[s] = counts.get(s, 0) + 1
    return sorted(s for s, c in counts.items() if c >= min_items)


HOSTS = {"alpaca_en", "alpaca_zh", "arena_hard", "mbpp", "belle_eval", "dpo_zh"}


def decontam_set(
    seed: int = 0, per_class: int = 300, corpus: Path = CORPUS, clean_limit: int | None = None
) -> list[Row]:
    """Leaks of every benchmark (one item per row), clean real prompts and look-alikes."""
    rng = random.Random(seed)
    specs = benchmark_specs(corpus)
    clean_all = load_clean(corpus)
    en_vocab, zh_chars = _vocab(clean_all)
    ed = Editor(rng, en_vocab, zh_chars)
    ctx = {"en": [t for t, lang, _ in clean_all if lang == "en" and len(t) < 600],
           "zh": [t for t, lang, _ in clean_all if lang == "zh" and len(t) < 300]}  # fmt: skip
    rows: list[Row] = []
    all_items: list[str] = []
    by_bench: dict[str, tuple[Bench, list[tuple[str, str]]]] = {}
    for b in specs:
        items = load_items(b)
        all_items += [t for _, t in items]
        prev = by_bench.get(b.name)
        by_bench[b.name] = (b, (prev[1] if prev else []) + items)
    seen_text: dict[str, int] = {}
    for t in all_items:
        seen_text[_wordseq(t)] = seen_text.get(_wordseq(t), 0) + 1
    classes = ["leak_verbatim", "leak_embedded", "leak_edited", "leak_rephrased"]
    for name, (b, items) in by_bench.items():
        # attributable items: at least 6 words, text not shared with another item
        ok = [(i, t) for i, t in items if len(_wordseq(t).split()) >= 6 and seen_text[_wordseq(t)] == 1]
        rng.shuffle(ok)
        per = min(per_class, len(ok) // len(classes))
        for ci, kind in enumerate(classes):
            for item_id, text in ok[ci * per : (ci + 1) * per]:
                if kind == "leak_verbatim":
                    t = text
                elif kind == "leak_embedded":
                    wraps = _WRAP_ZH if b.lang == "zh" else _WRAP_EN
                    w = rng.choice(wraps).replace("{ctx}", "\x00")
                    t = w.replace("{}", text).replace("\x00", rng.choice(ctx[b.lang]))
                elif kind == "leak_edited":
                    t = ed.light(text)
                else:
                    t = ed.rephrase(text)
                rows.append(Row(t, b.lang, kind, name, item_id))
    # clean real prompts, minus those that hold a whole item verbatim
    clean = clean_all if clean_limit is None else rng.sample(clean_all, min(clean_limit, len(clean_all)))
    texts = [t for t, _, _ in clean]
    leaks = [a or b for a, b in zip(contains_an_item(texts, all_items), shares_a_passage(texts, all_items))]
    rows += [Row(t, lang, "clean_real", src) for (t, lang, src), bad in zip(clean, leaks) if not bad]
    # look-alikes: a generic span of an item (8-12 words, at most 30% of it) spliced into an
    # instruction-style real prompt (sources with no benchmark siblings) of the same language
    hosts = {lang: [r.text for r in rows if r.kind == "clean_real" and r.lang == lang and r.source in HOSTS]
             for lang in ("en", "zh")}  # fmt: skip
    for name, (b, items) in by_bench.items():
        long_items = [ws for ws in (_wordseq(t).split() for _, t in items) if len(ws) >= 30]
        for _ in range(min(per_class, len(long_items))):
            ws = rng.choice(long_items)
            host = rng.choice(hosts[b.lang])
            size = rng.randint(8, min(12, int(len(ws) * 0.3)))
            k = rng.randrange(len(ws) - size + 1)
            if b.lang == "zh":
                span = "".join(ws[k : k + size])
                cut = rng.choice([m.end() for m in re.finditer("[，。？！]", host)] or [len(host)])
                t = host[:cut] + span + host[cut:]
            else:
                hs = host.split(" ")
                cut = rng.randrange(len(hs) + 1)
                t = " ".join(hs[:cut] + [" ".join(ws[k : k + size])] + hs[cut:])
            rows.append(Row(t, b.lang, "clean_lookalike", name))
    if "ifeval" in by_bench:
        boiler = boilerplate_sentences([t for _, t in by_bench["ifeval"][1]])
        for _ in range(per_class):
            host = rng.choice(hosts["en"])
            extra = " ".join(rng.sample(boiler, min(len(boiler), rng.randint(1, 2))))
            rows.append(
                Row(host + ("\n\n" if rng.random() < 0.5 else " ") + extra, "en", "clean_boilerplate", "ifeval")
            )
    look = [r for r in rows if r.kind in ("clean_lookalike", "clean_boilerplate")]
    bad = contains_an_item([r.text for r in look], all_items)
    dropped = {id(r) for r, x in zip(look, bad) if x}
    return [r for r in rows if id(r) not in dropped]


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
    while len(out) < n:
        roll = rng.random()
        if roll < 0.55:
            kind = rng.choice(FOLD_KINDS)
            pool = zh if kind == "fold_cjk_punct" else with_digits if kind == "fold_digits" else bases
            if kind == "fold_nfd":
                pool = [b for b in bases if re.search("[à-ÿ]", b[1])] or bases
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
