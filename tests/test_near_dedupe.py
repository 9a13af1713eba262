"""Near-dedupe on real prompts (../shared/corpus) with planted near duplicates."""

from __future__ import annotations

import filecmp
import gzip
import json
import random
import re
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash

from builder.curate.minhash_config import NearDedupeConfig, NearDedupeError
from builder.curate.minhash_winners import resolve_winners as _resolve_winners
from builder.curate.near_dedupe import near_dedupe, run_near_dedupe
from builder.curate.shingles import (
    MODE_CJK,
    MODE_EXACT,
    MODE_WORD,
    ShingleParams,
    batch_shingle_hashes,
    number_key,
    shingle_hashes,
)
from builder.executors import ExecutorConfig
from tests.corpus import corpus_dir

CORPUS = corpus_dir()
EX = ExecutorConfig(tasks=2, workers=1, skip_completed=False)  # workers=1: no process pool, fast tests


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _real_prompts() -> tuple[list[str], list[str]]:
    if not CORPUS.exists():
        pytest.skip("../shared/corpus is not available")
    en = [r["question"] for r in _jsonl(CORPUS / "gsm8k" / "train.jsonl")[:400]]
    en += [r["text"] for r in _jsonl(CORPUS / "mbpp" / "mbpp.jsonl")[:150]]
    alp = json.loads((CORPUS / "llamafactory-demo-data" / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    en += ["\n".join(x for x in (r["instruction"], r["input"]) if x) for r in alp[:200]]
    zh = [r["question"] for r in _jsonl(CORPUS / "belle-eval-zh" / "eval_set.jsonl")[:200]]
    azh = json.loads((CORPUS / "llamafactory-demo-data" / "alpaca_zh_demo.json").read_text(encoding="utf-8"))
    zh += ["\n".join(x for x in (r["instruction"], r["input"]) if x) for r in azh[:150]]
    return list(dict.fromkeys(en)), list(dict.fromkeys(zh))


def _edit_word(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    slots = [i for i, w in enumerate(words) if w.isalpha()]
    words[rng.choice(slots)] = "meanwhile"
    return " ".join(words)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Rows in input order plus which rows must go (with the row that must be kept)."""
    rng = random.Random(7)
    en, zh = _real_prompts()
    rows: list[tuple[str, str, str]] = []  # (id, text, lang)
    expect: dict[str, str] = {}  # removed id -> kept id
    must_keep: set[str] = set()

    def add(text: str, lang: str) -> str:
        rid = f"{len(rows):08x}"
        rows.append((rid, text, lang))
        return rid

    long_en = [t for t in en if len(t.split()) >= 40]
    num_en = [t for t in en if re.search(r"\d", t) and t not in long_en[:25]]
    zh_long = [t for t in zh if len(t) >= 40]
    # a near duplicate placed BEFORE its original in input order: the earlier row wins
    first = add(_edit_word(long_en[40], rng), "en")
    base_ids = {t: add(t, "zh" if t in zh else "en") for t in en + zh}
    expect[base_ids[long_en[40]]] = first
    must_keep.update(base_ids.values())
    for t in long_en[:25]:  # one word changed + casing / whitespace: must merge into the original
        expect[add(_edit_word(t, rng).upper().replace(" ", "  "), "en")] = base_ids[t]
    for t in long_en[25:35]:  # surface-only edits: identical after canonicalization, always caught
        expect[add("\n" + t.replace(",", " ,").lower() + " ", "en")] = base_ids[t]
    for t in num_en[:30]:  # one number changed: a different math problem, must NOT merge
        m = re.search(r"\d+", t)
        assert m is not None
        must_keep.add(add(t[: m.start()] + str(int(m.group()) + 7) + t[m.end() :], "en"))
    for t in zh_long[:20]:  # Chinese: one character changed + full-width punctuation -> must merge
        i = next(j for j, c in enumerate(t) if "\u4e00" <= c <= "\u9fff")
        expect[add(t[:i] + "很" + t[i + 1 :] + "。", "zh")] = base_ids[t]
    # short prompts: exact after canonicalization merges, anything else stays
    hi = add("Hi!", "en")
    expect[add("hi", "en")] = hi
    expect[add("  HI ?", "en")] = hi
    must_keep.update({hi, add("What is 2+2?", "en"), add("What is 3+3?", "en"), add("Tell me a joke", "en")})
    must_keep.update({add("Tell me a poem", "en"), add("你好", "zh"), add("你好吗", "zh")})
    expect[add("你好！", "zh")] = next(r[0] for r in rows if r[1] == "你好")
    must_keep.add(first)

    src = tmp_path_factory.mktemp("shards")
    per = -(-len(rows) // 3)
    for i in range(3):  # 3 files over 2 tasks: rank 0 reads files 0 and 2, so order != rank order
        chunk = rows[i * per : (i + 1) * per]
        pq.write_table(
            pa.table({"id": [r[0] for r in chunk], "text": [r[1] for r in chunk], "lang": [r[2] for r in chunk]}),
            src / f"{i:05d}.parquet",
        )
    return {"rows": rows, "expect": expect, "keep": must_keep - set(expect), "dir": src}


@pytest.fixture(scope="module")
def result(planted: dict, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("work")
    res = near_dedupe(planted["dir"], work, NearDedupeConfig(write_kept=True), EX)
    return res, pq.read_table(res.near_dups_path).to_pydict()


def test_planted_near_duplicates_merge_into_the_earliest_row(planted: dict, result) -> None:
    res, out = result
    got = dict(zip(out["prompt_id"], out["kept_prompt_id"]))
    found = {k for k in planted["expect"] if got.get(k) == planted["expect"][k]}
    missed = set(planted["expect"]) - found
    assert len(missed) <= 1, f"missed planted near duplicates: {sorted(missed)}"
    wrong = {k: v for k, v in got.items() if k in planted["expect"] and v != planted["expect"][k]}
    assert not wrong, f"kept the wrong row (not the earliest): {wrong}"


def _jaccard(a: str, b: str) -> float:
    sa = set(shingle_hashes(a, ShingleParams())[0].ravel().tolist())
    sb = set(shingle_hashes(b, ShingleParams())[0].ravel().tolist())
    return len(sa & sb) / len(sa | sb)


def test_nothing_else_is_removed(planted: dict, result) -> None:
    """Originals, number variants and short look-alikes stay; a real corpus row may only go when it
    truly near-duplicates another real row (MBPP has "... with an underscore." and "... using regex.")."""
    _, out = result
    texts = {r[0]: r[1] for r in planted["rows"]}
    wrongly = {
        (texts[p][:80], texts[k][:80], round(_jaccard(texts[p], texts[k]), 2))
        for p, k in zip(out["prompt_id"], out["kept_prompt_id"])
        if p in planted["keep"] and _jaccard(texts[p], texts[k]) < 0.7
    }
    assert not wrongly
    assert len(set(out["prompt_id"]) & planted["keep"]) <= 3  # natural near duplicates in the sample


def test_counts_ledger_and_filter_agree(planted: dict, result) -> None:
    res, out = result
    assert res.docs_in == len(planted["rows"])
    assert res.kept + res.removed == res.docs_in
    assert res.removed == len(out["prompt_id"])
    assert res.shingle_modes["shingles_exact_short"] >= 9
    assert res.shingle_modes["shingles_cjk_chars"] >= 300
    # MinhashDedupFilter read our rewritten .remove files: its output is exactly the kept rows
    kept_ids = set()
    for f in sorted(res.kept_dir.glob("*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            kept_ids.update(json.loads(line)["id"] for line in fh)
    assert kept_ids == {r[0] for r in planted["rows"]} - set(out["prompt_id"])
    for f in res.kept_dir.glob("*.jsonl.gz"):
        with gzip.open(f, "rt") as fh:
            assert str(planted["dir"]) not in fh.read()  # no absolute input paths leak into outputs


def test_vectorized_steps_match_datatrove_stock_steps(planted: dict, result, tmp_path: Path) -> None:
    res, out = result
    stock = near_dedupe(planted["dir"], tmp_path, NearDedupeConfig(vectorized=False), EX)
    unverified = near_dedupe(planted["dir"], tmp_path / "v", NearDedupeConfig(verify_threshold=None), EX)
    assert pq.read_table(stock.near_dups_path).to_pydict() == pq.read_table(unverified.near_dups_path).to_pydict()
    ours = res.near_dups_path.parent / "minhash" / "signatures"
    theirs = tmp_path / "minhash" / "signatures"
    sigs = sorted(p.relative_to(ours) for p in ours.rglob("*.sig"))
    assert len(sigs) == 2 * 20 and all(filecmp.cmp(ours / p, theirs / p, shallow=False) for p in sigs)


def test_jsonl_gz_input_gives_the_same_result(planted: dict, result, tmp_path: Path) -> None:
    _, out = result
    src = tmp_path / "jsonl"
    src.mkdir()
    for f in sorted(planted["dir"].glob("*.parquet")):
        with gzip.open(src / (f.stem + ".jsonl.gz"), "wt") as fh:
            for r in pq.read_table(f).to_pylist():
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    res = near_dedupe(src, tmp_path / "w", NearDedupeConfig(), EX)
    assert pq.read_table(res.near_dups_path).to_pydict() == out


def test_run_near_dedupe_in_memory_entry(planted: dict, result, tmp_path: Path) -> None:
    _, out = result
    rows = planted["rows"]
    got = run_near_dedupe([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], tmp_path, None, EX)
    assert got == dict(zip(out["prompt_id"], out["kept_prompt_id"]))


def test_zero_documents_fail_loudly(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["", ""]}), empty / "00000.parquet")
    with pytest.raises(NearDedupeError, match="read 0 documents"):
        near_dedupe(empty, tmp_path / "w", NearDedupeConfig(), EX)
    wrong_key = tmp_path / "wrong_key"
    wrong_key.mkdir()
    pq.write_table(pa.table({"id": ["a"], "prompt": ["hello there"]}), wrong_key / "00000.parquet")
    with pytest.raises(NearDedupeError, match="read 0 documents"):
        near_dedupe(wrong_key, tmp_path / "w2", NearDedupeConfig(), EX)
    with pytest.raises(NearDedupeError, match="no \\*.parquet"):
        near_dedupe(tmp_path / "nothing", tmp_path / "w3", NearDedupeConfig(), EX)


def test_datatrove_union_by_size_root_is_not_the_earliest_doc(tmp_path: Path) -> None:
    """datatrove makes the bigger set's root the parent: {1,2} then (0,1) keeps doc 1, removes doc 0."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupCluster

    dups, out = tmp_path / "dups", tmp_path / "clusters"
    dups.mkdir()
    (dups / "00000_00.dups").write_bytes(struct.pack("<4I", 0, 1, 0, 2) + struct.pack("<4I", 0, 0, 0, 1))
    MinhashDedupCluster(str(dups), str(out), config=MinhashConfig(num_buckets=1), save_cluster_id=True).run()
    assert np.frombuffer((out / "000000.remove").read_bytes(), "<u4").tolist() == [0, 2]  # datatrove drops doc 0
    table = pa.table({"id": ["a", "b", "c"], "src": ["f"] * 3, "line": [0, 1, 2]})
    removed, winners, _ = _resolve_winners(out, [table], np.array([0, 1, 2], np.uint64))
    assert removed.tolist() == [1, 2] and winners.tolist() == [0, 0]  # we keep the earliest


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("spacy") is None, reason="datatrove's default tokenizer needs spaCy"
)
def test_datatrove_defaults_merge_number_variants(tmp_path: Path) -> None:
    """The trap we avoid: norm_numbers maps every number to 0, so different math problems collide."""
    q = _jsonl(CORPUS / "gsm8k" / "train.jsonl")[0]["question"] if CORPUS.exists() else pytest.skip("no corpus")
    texts = [q, q.replace("48", "50"), q.replace("48", "60")]
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": texts}), src / "00000.parquet")
    defaults = NearDedupeConfig(tokenizer="datatrove", buckets=14, hashes_per_bucket=8, numbers_must_match=False)
    assert near_dedupe(src, tmp_path / "d", defaults, EX).removed == 2
    assert near_dedupe(src, tmp_path / "o", NearDedupeConfig(), EX).removed == 0


def test_shingle_modes_and_batch_equivalence() -> None:
    p = ShingleParams()
    arr, mode = shingle_hashes("Hi there!", p)
    assert mode == MODE_EXACT and arr.shape == (1, 1)
    assert np.array_equal(shingle_hashes("  HI, THERE ", p)[0], arr)  # exact after canonicalization
    assert shingle_hashes("请你写出一个可以生成五个不同随机数的程序", p)[1] == MODE_CJK
    words = "natalia sold clips to 48 of her friends in april and then she sold half as many in may"
    assert shingle_hashes(words, p)[1] == MODE_WORD and len(shingle_hashes(words, p)[0]) == len(words.split()) - 4
    a = set(shingle_hashes(words, p)[0].ravel().tolist())
    assert not a & set(shingle_hashes(words.replace("48", "49"), p)[0].ravel().tolist())  # numbers must match
    assert number_key("It costs $40,000.") == number_key("It costs $40000.") != number_key("It costs $4000.")
    texts = [words, "Hi", "", "请你写出一个程序", "café  CAFE", words.upper()]
    flat, offsets, modes = batch_shingle_hashes(texts, p)
    for t, part, m in zip(texts, np.split(flat, offsets[1:]), modes):
        one, m1 = shingle_hashes(t, p)
        assert np.array_equal(part, one.ravel()) and m == m1


def test_recipe_settings_map_onto_every_config_default() -> None:
    """The recipe's `curate.near_dedupe` block and NearDedupeConfig must not drift apart."""
    from builder.config.curate import NearDedupeSettings
    from builder.curate.near_dedupe import near_dedupe_config

    assert near_dedupe_config(NearDedupeSettings()) == NearDedupeConfig()
    changed = near_dedupe_config(
        NearDedupeSettings(
            ngram=3,
            buckets=14,
            hashes_per_bucket=8,
            char_ngram=2,
            seed=7,
            numbers_must_match=False,
            verify_threshold=None,
        )
    )
    assert (changed.ngram, changed.buckets, changed.hashes_per_bucket, changed.char_ngram) == (3, 14, 8, 2)
    assert (changed.seed, changed.numbers_must_match, changed.verify_threshold) == (7, False, None)


def test_forkserver_workers_start_warm() -> None:
    """The local executor's forkserver imports the MinHash steps once (worker_preload), and the
    preload module imports cleanly on its own (a failed preload would be silently skipped)."""
    import subprocess
    import sys

    import multiprocess
    from multiprocess import forkserver

    from builder.curate.near_dedupe import FORKSERVER_PRELOAD
    from builder.executors import ExecutorConfig, preload_forkserver

    before = list(forkserver._forkserver._preload_modules)
    try:
        preload_forkserver(ExecutorConfig(kind="local", start_method="forkserver"), FORKSERVER_PRELOAD)
        assert forkserver._forkserver._preload_modules == [*FORKSERVER_PRELOAD, "builder.forkserver_guard"]
    finally:
        multiprocess.get_context("forkserver").set_forkserver_preload(before)
    code = "import builder.curate.worker_preload, sys; sys.exit('datatrove.pipeline.readers' not in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_band_order_equals_the_full_lexsort() -> None:
    """The signature step's band order sorts only the rows tied on the first value; it must give what
    sorting every row on every key gives (ties on the first value, whole bands equal). The buckets
    step's pairing, which also sorts only repeated keys, is held to datatrove's stock step by
    test_vectorized_steps_match_datatrove_stock_steps."""
    from builder.curate.minhash_signatures import _band_order

    rng = np.random.default_rng(3)
    n, r = 20_000, 5
    cols = rng.integers(0, 2**32 - 1, (n, r), dtype=np.uint64).astype(np.uint32)
    cols[rng.integers(0, n, 2_000)] = cols[rng.integers(0, n, 2_000)]  # whole bands shared
    cols[rng.integers(0, n, 300), 0] = 7  # ties on the first value only
    want = np.lexsort([np.arange(n)] + [cols[:, i] for i in reversed(range(r))])
    assert np.array_equal(_band_order(cols), want)
    assert np.array_equal(_band_order(cols[:0]), np.zeros(0, np.int64))


def test_canonical_non_ascii_path_equals_the_punctuation_table() -> None:
    """canonical()'s regex for datatrove's punctuation set gives what str.translate with the set does,
    on random text mixing every punctuation character with CJK, accents and ASCII."""
    import random
    import unicodedata

    from datatrove.utils.text import PUNCTUATION_TRANS

    from builder.curate.shingles import _COMBINING_RE, canonical

    def by_table(text: str) -> str:
        text = text.lower().translate(PUNCTUATION_TRANS)
        nfd = unicodedata.normalize("NFD", text)
        return " ".join((_COMBINING_RE.sub("", nfd) if len(nfd) != len(text) else text).split())

    rng = random.Random(11)
    alphabet = [*map(chr, PUNCTUATION_TRANS), *"abcXYZ 019é中文ДжÅ\u3000\n-\\^[]"]
    for _ in range(2_000):
        text = "é" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        assert canonical(text) == by_table(text), text


def test_vectorized_cluster_step_writes_the_stock_cluster_files(tmp_path: Path) -> None:
    """Random duplicate pairs over three files: the numpy cluster step's `.clusters` files are byte for
    byte the stock union-find's (cluster numbers do not depend on its roots), and its `.remove` files
    drop every doc but one per cluster."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupCluster

    from builder.curate.minhash_cluster import VectorizedMinhashCluster, components

    rng = np.random.default_rng(5)
    cfg = MinhashConfig(num_buckets=2, hashes_per_bucket=2)
    dups = tmp_path / "dups"
    dups.mkdir()
    for b in range(2):
        a = rng.integers(0, [3, 40], size=(300, 2))
        c = rng.integers(0, [3, 40], size=(300, 2))
        (dups / f"{b:05d}_00.dups").write_bytes(np.concatenate([a, c], axis=1).astype("<u4").tobytes())
    MinhashDedupCluster(str(dups), str(tmp_path / "stock"), config=cfg, save_cluster_id=True).run()
    VectorizedMinhashCluster(str(dups), str(tmp_path / "ours"), config=cfg, save_cluster_id=True).run()
    stock = sorted(p.name for p in (tmp_path / "stock").glob("*.clusters"))
    assert stock and stock == sorted(p.name for p in (tmp_path / "ours").glob("*.clusters"))
    for name in stock:
        assert (tmp_path / "stock" / name).read_bytes() == (tmp_path / "ours" / name).read_bytes()
    count = {d: sum(len(p.read_bytes()) for p in (tmp_path / d).glob("*.remove")) for d in ("stock", "ours")}
    assert count["stock"] > 0 and count["stock"] == count["ours"]  # the same number of docs removed, whichever each keeps
    # a chain longer than one propagation round, and an isolated node
    assert components(np.array([4, 3, 2, 1]), np.array([5, 4, 3, 2]), 7).tolist() == [0, 1, 1, 1, 1, 1, 6]


def test_plan_ascii_tokens_are_canonical_then_tokenize() -> None:
    """_plan's ASCII path splits the translated text once; the tokens must be canonical() + tokenize()'s."""
    from builder.curate.shingles import ShingleParams, _plan, canonical, tokenize

    rng = random.Random(2)
    params = ShingleParams()
    for _ in range(500):
        text = "".join(rng.choice("ab Z9,.;:!?'\"()[]{}\t\n-_/\\@#$%^&*+=<>|~`") for _ in range(rng.randrange(1, 60)))
        tokens, _ = tokenize(canonical(text))
        th, n, mode, _ = _plan(text, params)
        if n:
            assert th.tolist() == [xxhash.xxh64_intdigest(t) for t in tokens]
        else:
            assert th.tolist() == [xxhash.xxh64_intdigest("\x00" + (" ".join(tokens) or text.strip()))]
