"""Near dedupe on folded matching keys: Unicode look-alikes merge, changed numbers never do.

The folding (NFKC + look-alikes) only feeds shingles and the number check; stored text stays
byte-exact. Families come from benchmarks/adversarial.py on real data in ../shared/corpus
when it is there, else on the repo's sample slices.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from builder.curate.minhash_config import NearDedupeConfig
from builder.curate.near_dedupe import run_near_dedupe
from builder.curate.normalize import fold_text
from builder.curate.shingles import ShingleParams, number_key, shingle_hashes
from builder.executors import ExecutorConfig
from tests.corpus import corpus_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import adversarial as adv  # noqa: E402

CORPUS = corpus_dir()
EX = ExecutorConfig(tasks=2, workers=1, skip_completed=False)
P = ShingleParams()


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _same(a: str, b: str) -> bool:
    return np.array_equal(shingle_hashes(a, P)[0], shingle_hashes(b, P)[0])


EN = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May? Don't guess - it's a \"simple\" one."
ZH = "小明有3个苹果，小红比小明多5个苹果。他们一共有多少个苹果？请用Python写出计算过程。"


@pytest.mark.parametrize("kind", adv.FOLD_KINDS)
def test_every_folding_gives_the_same_shingles_and_numbers(kind: str) -> None:
    ed = adv.Editor(random.Random(3), ["word"], ["字"])
    for text in (EN, ZH):
        variant = ed.fold(text, kind)
        if variant == text:
            continue
        assert _same(text, variant), (kind, variant)
        assert number_key(text) == number_key(variant)


def test_fold_text_cases() -> None:
    assert fold_text("Ｈｅｌｌｏ　３０％") == "Hello 30%"
    assert fold_text("“Don’t” — stop") == '"Don\'t" - stop'
    assert fold_text("a\u00a0b\u2009c\u202fd") == "a b c d"
    assert fold_text("٣٤ and ३४") == "34 and 34"
    assert fold_text("x² ﬁle") == "x2 file"
    assert fold_text("plain ascii stays") == "plain ascii stays"


def test_number_check_reads_full_width_digits_and_chinese_numerals() -> None:
    assert number_key("买了３０个") == number_key("买了30个")
    assert number_key("40,000元") == number_key("４０，０００元") == number_key("40000元")
    assert number_key("有两个苹果") == number_key("有2个苹果") != number_key("有三个苹果")
    assert number_key("十二只鸡") == number_key("12只鸡") != number_key("十三只鸡")
    assert number_key("一百零五个人") == number_key("105个人")
    assert number_key("3万元") == number_key("三万元") == number_key("30000元")
    assert number_key("三千克面粉") == number_key("3千克面粉")
    assert number_key("第三章") != number_key("第四章")
    # a count of one before a classifier is the article "a": 一个 = 1个 = no number, so "一个" → "这个"
    # (a one-character edit) cannot flip the check, while 两个 / 三个 still differ from it
    assert number_key("买了一个西瓜和3个梨") == number_key("买了1个西瓜和3个梨") == number_key("买了这个西瓜和3个梨")
    assert number_key("买了两个西瓜和3个梨") != number_key("买了一个西瓜和3个梨")
    # 十分 (very), 万一 (in case), 统一 (unify) hold no number; a lone 三 always reads 3 (三角形 in both
    # twins), so an edit next to it cannot flip the check
    assert number_key("这十分重要，万一下雨呢？统一") == 0
    assert number_key("三角形的面积") == number_key("3角形的面积") != number_key("四角形的面积")


def test_a_dropped_clause_comma_changes_no_number() -> None:
    # Found at 1M prompts: a Chinese near duplicate that drops or adds a "，" was kept. "，一个" folds
    # to ",1个", which read as the number 1 (a comma before a digit was taken for a separator inside
    # a number), and "15.41亿，21年" without its comma read as one number 154100000021.
    assert number_key("他有5个苹果，一个给了小红") == number_key("他有5个苹果一个给了小红")
    assert number_key("营收15.41亿，21年营收20.7亿") == number_key("营收15.41亿21年营收20.7亿")
    assert number_key("营收15.41亿，21年") != number_key("营收15.41亿，22年")
    assert number_key("共40,000元，2,5两组") == number_key("共40000元，2，5两组") != number_key("共40000元，25两组")
    a, b = ("描述一个场景，一个人的选择可能导致成功或失败。", "描述一个场景一个人的选择可能导致成功或失败!")
    sa, sb = (set(shingle_hashes(t, P)[0].ravel().tolist()) for t in (a, b))
    assert sa == sb


def test_changed_numbers_never_share_a_shingle() -> None:
    a = set(shingle_hashes(ZH, P)[0].ravel().tolist())
    for other in (ZH.replace("3个", "4个"), ZH.replace("3个", "三个").replace("5个", "六个"),
                  adv.to_fullwidth(ZH.replace("3", "8"), digits_only=True)):  # fmt: skip
        assert not a & set(shingle_hashes(other, P)[0].ravel().tolist())
    same = set(shingle_hashes(ZH.replace("3个", "三个"), P)[0].ravel().tolist())  # same number, in Chinese
    assert len(a & same) / len(a | same) >= 0.7


def _families(seed: int = 5) -> tuple[list[tuple[str, str]], list[int], list[str]]:
    """(text, lang) rows in winner order, with family and kind: bases, then their variants."""
    if CORPUS.exists():
        src = [(r["question"], "en") for r in _jsonl(CORPUS / "gsm8k" / "train.jsonl")[:600]]
        azh = json.loads((CORPUS / "llamafactory-demo-data" / "alpaca_zh_demo.json").read_text(encoding="utf-8"))
        src += [("\n".join(x for x in (r["instruction"], r["input"]) if x), "zh") for r in azh[:400]]
        src += [(r["question"], "zh") for r in _jsonl(CORPUS / "qwen25math-eval-zh" / "cmath.jsonl")[:300]]
        src += [(r["prompt"], "en") for r in _jsonl(CORPUS / "arena-hard" / "question_v2.0.jsonl")[:200]]
    else:
        src = [(r["question"], "en") for r in _jsonl(ROOT / "data/sample/gsm8k_train.jsonl")]
        src += [
            (r["instruction"] + "\n" + r.get("input", ""), "zh") for r in _jsonl(ROOT / "data/sample/alpaca_zh.jsonl")
        ]
        src += [(r["prompt"], "en") for r in _jsonl(ROOT / "data/sample/arena_hard_v2.jsonl")]
    src = list(dict.fromkeys((t.strip(), lang) for t, lang in src if t.strip()))
    bases = [(i, t, lang) for i, (t, lang) in enumerate(src)]
    zh_chars = [c for t, lang in src if lang == "zh" for c in t if "\u4e00" <= c <= "\u9fff"]
    vocab = [w for t, lang in src if lang == "en" for w in t.split() if w.isalpha()]
    rows, family, kind = list(src), list(range(len(src))), ["base"] * len(src)
    seen = {t for t, _ in src}
    new_families: dict[tuple, int] = {}
    for fam, text, lang, k in adv.dedupe_variants(bases, seed, len(src), zh_chars, vocab):
        if text in seen:
            continue
        seen.add(text)
        if isinstance(fam, tuple):  # a changed number: one family per (base, place, new value)
            fam = new_families.setdefault(fam, len(src) + len(new_families))
        rows.append((text, lang))
        family.append(fam)
        kind.append(k)
    return rows, family, kind


def test_near_dedupe_merges_look_alikes_and_keeps_number_changes(tmp_path: Path) -> None:
    rows, family, kind = _families()
    ids = [f"r{i:06d}" for i in range(len(rows))]
    removed = run_near_dedupe(ids, [t for t, _ in rows], [lang for _, lang in rows], tmp_path, NearDedupeConfig(), EX)
    index = {pid: i for i, pid in enumerate(ids)}
    report = {}
    for k in sorted(set(kind) - {"base"}):
        mine = [i for i, x in enumerate(kind) if x == k]
        gone = [i for i in mine if ids[i] in removed]
        right = [i for i in gone if family[index[removed[ids[i]]]] == family[i]]
        report[k] = (len(mine), len(right) / len(mine), len(right) / len(gone) if gone else 1.0)
    for k, (n, recall, precision) in report.items():
        if k in adv.KEEP_KINDS:  # a new problem: never merged into another problem's row
            kept = sum(1 for i, x in enumerate(kind) if x == k and (ids[i] not in removed or
                       family[index[removed[ids[i]]]] == family[i])) / n  # fmt: skip
            assert kept >= 0.99, (k, kept)
        else:
            min_recall = 0.99 if n >= 100 else 0.95
            assert recall >= min_recall and precision >= 0.99, (k, report[k])
    assert {"fold_fullwidth", "fold_digits", "zh_numeral_form", "number_zh", "number_fullwidth"} <= set(report)


def test_curate_keeps_the_stored_text_byte_exact(tmp_path: Path) -> None:
    from builder.curate.stage import run_curate
    from builder.recipe import load_recipe
    from builder.workdir import WorkDir

    base = "A bakery sells 36 muffins on Monday and twice as many on Tuesday. How many muffins were sold in total over the two days of the sale?"
    wide = adv.to_fullwidth(base)
    rows = [{"q": base}, {"q": wide}, {"q": adv.to_fullwidth(base.replace("36", "38"))}]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[::-1]))
    recipe = {"name": "t", "version": "0.0.1", "sources": [{"name": "s", "path": "s.jsonl", "fields": {"prompt": "q"}}],
              "curate": {"decontaminate": {"enabled": False}}}  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe, allow_unicode=True))
    run_curate(load_recipe(tmp_path / "r.yaml"), WorkDir(tmp_path / "w"))
    kept = [r["messages"][0]["content"] for r in pq.read_table(tmp_path / "w/curate/prompts").to_pylist()]
    # the full-width twin (read first) wins over the ASCII one; the changed number stays; text untouched
    assert sorted(kept) == sorted([wide, adv.to_fullwidth(base.replace("36", "38"))])
