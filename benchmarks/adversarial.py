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

The edits live in benchmarks/adversarial_edits.py. Used by benchmarks/curate.py,
tests/test_decontam_precision.py and tests/test_unicode_dedupe.py; GPQA rows are only read
from ../shared at run time, never copied.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from adversarial_edits import (  # noqa: E402  (re-exported: tests and benchmarks use adv.<name>)
    _WRAP_EN,
    _WRAP_ZH,
    FOLD_KINDS,
    KEEP_KINDS,
    MERGE_KINDS,
    Editor,
    dedupe_variants,
    digit_change,
    to_fullwidth,
    zh_number_change,
    zh_numeral,
    zh_numeral_form,
)

__all__ = ["FOLD_KINDS", "KEEP_KINDS", "MERGE_KINDS", "Editor", "dedupe_variants", "digit_change", "to_fullwidth",
           "zh_number_change", "zh_numeral", "zh_numeral_form"]  # fmt: skip

sys.path.insert(0, str(ROOT))  # tests.corpus
from tests.corpus import corpus_dir  # noqa: E402

CORPUS = corpus_dir()
REPO_BENCH = ROOT / "data" / "benchmarks"

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


@dataclass(frozen=True)
class Bench:
    name: str
    path: Path
    fields: tuple[str, ...]
    id_field: str
    lang: str
    choice_fields: tuple[str, ...] = ()  # an MCQ item's choices (the recipe's `choice_fields`)


def benchmark_specs(corpus: Path = CORPUS) -> list[Bench]:
    """The benchmarks recipes/paper.yaml names, those whose file is present."""
    specs = [
        Bench("gsm8k", REPO_BENCH / "gsm8k_test.jsonl", ("question",), "id", "en"),
        Bench("math500", REPO_BENCH / "math500.jsonl", ("problem",), "id", "en"),
        Bench("humaneval", REPO_BENCH / "humaneval.jsonl", ("prompt",), "id", "en"),
        Bench("ifeval", REPO_BENCH / "ifeval.jsonl", ("prompt",), "id", "en"),
        Bench("mt_bench", REPO_BENCH / "mt_bench.jsonl", ("turns",), "id", "en"),
        Bench("mmlu", REPO_BENCH / "mmlu_test.jsonl", ("question",), "id", "en", ("choices",)),
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


def add_items(index: Any, specs: list[Bench], choices: bool = True) -> None:
    """Every item of `specs` into a decontamination index, an MCQ item with its choices (`choices`)."""
    for b in specs:
        rows = {str(r.get(b.id_field, i)): r for i, r in enumerate(_jsonl(b.path))} if b.choice_fields else {}
        for item_id, text in load_items(b):
            if choices and item_id in rows:
                index.add(b.name, item_id, text, [str(c) for f in b.choice_fields for c in rows[item_id][f]])
            else:
                index.add(b.name, item_id, text)


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
