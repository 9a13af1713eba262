"""Benchmark: near_dedupe (our shingler, tuned bands) vs datatrove's default MinHash config.

Corpus: real prompts from ../shared/corpus (GSM8K train, Alpaca EN/ZH demo, BELLE eval,
MBPP, Arena-Hard v0.1/v2.0). Each synthetic base prompt is a real prompt with ~35% of its
words (or CJK characters) swapped for random corpus words, so bases do not near-duplicate
each other. Planted on top, with known truth:
- near duplicates: 1-3 edits (word substitute/delete/insert on prompts of >= 30 tokens;
  punctuation, casing, whitespace on any prompt) -> must merge with their base;
- number variants: one number changed -> must NOT merge;
- Chinese near duplicates (character edits, never of a Chinese numeral: those are numbers)
  -> must merge;
- short prompts (< 5 words) with surface edits -> must merge (exact after canonicalization).

Usage: python benchmarks/near_dedupe.py [--n 1000000] [--quick] [--seed 0]
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builder.curate.minhash_config import NearDedupeConfig, NearDedupeResult  # noqa: E402
from builder.curate.near_dedupe import near_dedupe  # noqa: E402
from builder.curate.shingles import ShingleParams, canonical, shingle_hashes  # noqa: E402
from builder.executors import ExecutorConfig  # noqa: E402
from tests.corpus import corpus_dir  # noqa: E402

CORPUS = corpus_dir()
_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")
_NUM = re.compile(r"\d+")
_HAS_DIGIT = re.compile(r"\d")
_NUMBERISH = re.compile(r"^[$€£(]?[\d.,:/%]+[)?.,!%]*$")
_ZH_NUMERALS = set("零〇一二两三四五六七八九十百千万亿")
_LIST_COMMA = re.compile(r"(?<!\d)[,，]|[,，](?!\d)")


def load_seed_prompts(corpus: Path = CORPUS) -> list[tuple[str, str]]:
    """(text, lang) of real prompts, user turns joined with a newline."""
    out: list[tuple[str, str]] = []

    def jl(p: Path) -> list[dict]:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    out += [(r["question"], "en") for r in jl(corpus / "gsm8k" / "train.jsonl")]
    for name, lang in (("alpaca_en_demo.json", "en"), ("alpaca_zh_demo.json", "zh")):
        rows = json.loads((corpus / "llamafactory-demo-data" / name).read_text(encoding="utf-8"))
        out += [("\n".join(x for x in (r["instruction"], r["input"]) if x), lang) for r in rows]
    out += [(r["question"], "zh") for r in jl(corpus / "belle-eval-zh" / "eval_set.jsonl")]
    out += [(r["text"], "en") for r in jl(corpus / "mbpp" / "mbpp.jsonl")]
    for name in ("question_v0.1.jsonl", "question_v2.0.jsonl"):
        for r in jl(corpus / "arena-hard" / name):
            text = r["prompt"]
            out.append((text, "zh" if len(_CJK_CHAR.findall(text)) > len(text) // 4 else "en"))
    return [(t, lang) for t, lang in out if t.strip()]


@dataclass
class Truth:
    """family[i]: rows of one family are near duplicates of each other; kind[i] says how the row was made."""

    family: list[int]
    kind: list[str]


class _Maker:
    def __init__(self, seeds: list[tuple[str, str]], rng: random.Random):
        self.rng = rng
        self.en = [t.split() for t, lang in seeds if lang == "en"]
        self.zh = [t for t, lang in seeds if lang == "zh"]
        self.vocab = [w for ws in self.en for w in ws if not _HAS_DIGIT.search(w)]
        self.zh_chars = [c for t in self.zh for c in _CJK_CHAR.findall(t)]
        self.zh_edit_chars = [c for c in self.zh_chars if c not in _ZH_NUMERALS]

    def base(self, zh: bool) -> str:
        r = self.rng
        if zh:  # swap CJK characters and, in mixed prompts, the latin words too
            chars = list(r.choice(self.zh))
            for i, c in enumerate(chars):
                if _CJK_CHAR.match(c) and r.random() < 0.35:
                    chars[i] = r.choice(self.zh_chars)
            return " ".join(
                r.choice(self.vocab) if not _CJK_CHAR.search(w) and not _NUMBERISH.match(w) and r.random() < 0.35 else w
                for w in "".join(chars).split()
            )
        words = list(r.choice(self.en))  # str.split(): NBSP-joined code counts as separate words too
        rate = 0.35 if len(words) >= 15 else 0.6  # short templates need more swaps to stay distinct
        for i, w in enumerate(words):
            if not _NUMBERISH.match(w) and r.random() < rate:
                words[i] = r.choice(self.vocab)
        return " ".join(words)

    def short(self) -> str:
        return " ".join(self.rng.choice(self.vocab) for _ in range(self.rng.randint(1, 4)))

    def surface_edit(self, text: str) -> str:
        r = self.rng
        op = r.randrange(4)
        if op == 0:
            return text.upper() if r.random() < 0.5 else text.lower()
        if op == 1:
            return text.rstrip("?.!。？") + r.choice(["?", "!", ".", "。", " ?"])
        if op == 2:
            return re.sub(" ", lambda _: r.choice([" ", "  ", "\n", "\t"]), text)
        # commas go, except between digits ("180，70" is two numbers, "18070" one)
        return r.choice(["", " ", "\n"]) + _LIST_COMMA.sub("", text) + r.choice(["", " ", "\n"])

    def word_edit(self, text: str) -> str:
        r = self.rng
        words = text.split(" ")
        slots = [i for i, w in enumerate(words) if w and not _HAS_DIGIT.search(w)]
        if not slots:
            return text
        i = r.choice(slots)
        op = r.randrange(3)
        if op == 0:
            words[i] = r.choice(self.vocab)
        elif op == 1:
            del words[i]
        else:
            words.insert(i, r.choice(self.vocab))
        return " ".join(words)

    def char_edit(self, text: str) -> str:
        """One CJK character substituted, deleted or inserted; Chinese numerals are numbers, so
        they are never edited, as digits are not."""
        r = self.rng
        chars = list(text)
        slots = [i for i, c in enumerate(chars) if _CJK_CHAR.match(c) and c not in _ZH_NUMERALS]
        if not slots:
            return text
        i = r.choice(slots)
        op = r.randrange(3)
        if op == 0:
            chars[i] = r.choice(self.zh_edit_chars)
        elif op == 1:
            del chars[i]
        else:
            chars.insert(i, r.choice(self.zh_edit_chars))
        return "".join(chars)

    def near_dup(self, text: str, zh: bool) -> str:
        """One content edit per started 30 words (60 CJK chars), plus 0-2 surface edits."""
        size = len(_CJK_CHAR.findall(text)) // 2 if zh else len(text.split())
        for _ in range(size // 30):
            text = self.char_edit(text) if zh else self.word_edit(text)
        for _ in range(self.rng.randint(0 if size >= 30 else 1, 2)):
            text = self.surface_edit(text)
        return text

    def number_variant(self, text: str) -> str | None:
        nums = list(_NUM.finditer(text))
        if not nums:
            return None
        m = self.rng.choice(nums)
        new = str(int(m.group()) + self.rng.randint(1, 9))
        return text[: m.start()] + new + text[m.end() :]


def make_corpus(n: int, seed: int = 0, corpus: Path = CORPUS) -> tuple[list[dict], Truth]:
    """n rows {id, text, lang} in winner-priority order (a base always precedes its variants)."""
    rng = random.Random(seed)
    mk = _Maker(load_seed_prompts(corpus), rng)
    rows: list[dict] = []
    family: list[int] = []
    kind: list[str] = []
    seen: set[str] = set()
    seen_canon: dict[str, int] = {}
    fam = 0

    def add(text: str, lang: str, f: int, k: str) -> None:
        # exact dupes are gone before near dedupe; a canonical form belongs to one family only
        key = canonical(text)
        if text in seen or seen_canon.setdefault(key, f) != f or len(rows) >= n:
            return
        seen.add(text)
        rows.append({"id": f"{len(rows):016x}", "text": text, "lang": lang})
        family.append(f)
        kind.append(k)

    while len(rows) < n:
        roll = rng.random()
        if roll < 0.03:
            text, lang = mk.short(), "en"
            add(text, lang, fam, "short")
            if rng.random() < 0.5:
                add(mk.surface_edit(text), lang, fam, "short_dup")
        else:
            zh = roll < 0.28
            lang = "zh" if zh else "en"
            text = mk.base(zh)
            add(text, lang, fam, "base")
            if rng.random() < 0.10:
                for _ in range(rng.randint(1, 2)):
                    add(mk.near_dup(text, zh), lang, fam, "zh_dup" if zh else "near_dup")
            if not zh and rng.random() < 0.05 and (var := mk.number_variant(text)) is not None:
                fam += 1
                add(var, lang, fam, "number_variant")
        fam += 1
    return rows, Truth(family, kind)


def write_shards(rows: list[dict], out_dir: Path, n_files: int = 8) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    per = -(-len(rows) // n_files)
    for i in range(n_files):
        chunk = rows[i * per : (i + 1) * per]
        if chunk:
            pq.write_table(pa.Table.from_pylist(chunk), out_dir / f"{i:05d}.parquet")


def score(result: NearDedupeResult, rows: list[dict], truth: Truth) -> dict[str, float]:
    """Recall: planted removals found; precision: removals whose kept doc is of the same family."""
    idx = {r["id"]: i for i, r in enumerate(rows)}
    t = pq.read_table(result.near_dups_path).to_pydict()
    sizes: dict[int, int] = {}
    for f in truth.family:
        sizes[f] = sizes.get(f, 0) + 1
    expected = sum(s - 1 for s in sizes.values())
    removed_per_family: dict[int, int] = {}
    correct = 0
    for pid, kid in zip(t["prompt_id"], t["kept_prompt_id"]):
        fa, fb = truth.family[idx[pid]], truth.family[idx[kid]]
        if fa == fb:
            correct += 1
            removed_per_family[fa] = removed_per_family.get(fa, 0) + 1
    removed = len(t["prompt_id"])
    # the generator can still make two bases that really are near duplicates (a template whose
    # long code block survived the word swaps): count those merges as right in the textual score
    textual_ok = sum(
        1
        for pid, kid in zip(t["prompt_id"], t["kept_prompt_id"])
        if truth.family[idx[pid]] != truth.family[idx[kid]]
        and _jaccard(rows[idx[pid]]["text"], rows[idx[kid]]["text"]) >= 0.5
    )
    return {
        "recall": correct / expected if expected else 1.0,
        "precision": correct / removed if removed else 1.0,
        "expected_removals": expected,
        "removed": removed,
        "false_merges": removed - correct,
        "precision_textual": (correct + textual_ok) / removed if removed else 1.0,
    }


def _jaccard(a: str, b: str) -> float:
    """Exact Jaccard similarity of the two prompts' shingle sets (our shingler)."""
    sa = set(shingle_hashes(a, ShingleParams())[0].ravel().tolist())
    sb = set(shingle_hashes(b, ShingleParams())[0].ravel().tolist())
    return len(sa & sb) / len(sa | sb)


def peak_rss_mb() -> tuple[float, float]:
    """(this process, largest worker): this process also holds the generated corpus."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024, kids / 1024


def run(cfg: NearDedupeConfig, shards: Path, work: Path, executor: ExecutorConfig) -> tuple[NearDedupeResult, float]:
    t0 = time.perf_counter()
    res = near_dedupe(shards, work, cfg, executor)
    return res, time.perf_counter() - t0


def datatrove_defaults() -> NearDedupeConfig:
    """datatrove's MinhashConfig() + MinhashDedupSignature defaults: 5-grams, 14x8, norm_numbers, spaCy."""
    return NearDedupeConfig(tokenizer="datatrove", buckets=14, hashes_per_bucket=8, numbers_must_match=False)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 prompts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument(
        "--baseline-n",
        type=int,
        default=10_000,
        help="prompts for the datatrove-defaults comparison (spaCy runs ~500/s); ours is re-timed on the same rows",
    )
    args = ap.parse_args(argv)
    n = 100_000 if args.quick else args.n
    executor = ExecutorConfig(tasks=args.tasks, workers=args.workers, skip_completed=False)

    t0 = time.perf_counter()
    rows, truth = make_corpus(n, args.seed)
    kinds = {k: truth.kind.count(k) for k in sorted(set(truth.kind))}
    print(f"corpus: {len(rows):,} prompts in {time.perf_counter() - t0:.1f}s; {kinds}")
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "shards"
        write_shards(rows, shards)
        res, secs = run(NearDedupeConfig(), shards, Path(tmp) / "ours", executor)
        ours = score(res, rows, truth)
        own_rss, worker_rss = peak_rss_mb()
        print(f"peak RSS: this process {own_rss:,.0f} MB (includes the corpus), largest worker {worker_rss:,.0f} MB")
        print(f"ours: {len(rows) / secs:,.0f} prompts/s ({secs:.1f}s) steps={_fmt(res, len(rows))}")
        print(f"ours: recall={ours['recall']:.4f} precision={ours['precision']:.4f} {ours} modes={res.shingle_modes}")
        speedup = None
        if not args.no_baseline:
            m = min(args.baseline_n, len(rows))
            sub = Path(tmp) / "sub"
            write_shards(rows[:m], sub)
            sub_truth = Truth(truth.family[:m], truth.kind[:m])
            sres, ssecs = run(NearDedupeConfig(), sub, Path(tmp) / "ours_sub", executor)
            try:
                bres, bsecs = run(datatrove_defaults(), sub, Path(tmp) / "base", executor)
            except ImportError as e:
                print(f"datatrove defaults could not run: {e}")
            else:
                base = score(bres, rows[:m], sub_truth)
                mine = score(sres, rows[:m], sub_truth)
                speedup = bsecs / ssecs
                print(f"same {m:,} prompts, ours: {m / ssecs:,.0f} prompts/s ({ssecs:.1f}s) {mine}")
                print(
                    f"same {m:,} prompts, datatrove defaults: {m / bsecs:,.0f} prompts/s ({bsecs:.1f}s) "
                    f"steps={_fmt(bres, m)} {base}"
                )
    out = {
        "prompts": len(rows),
        "prompts_per_s": round(len(rows) / secs, 1),
        "peak_rss_mb": round(max(own_rss, worker_rss), 1),
        "workers_peak_rss_mb": round(worker_rss, 1),
        "near_dup_recall": round(ours["recall"], 5),
        "near_dup_precision": round(ours["precision"], 5),
        "near_dup_precision_textual": round(ours["precision_textual"], 5),
        "speedup_vs_datatrove_defaults": round(speedup, 2) if speedup else None,
    }
    print(json.dumps(out))
    return out


def _fmt(res: NearDedupeResult, n: int) -> str:
    return ", ".join(f"{k} {v:.1f}s ({n / v:,.0f}/s)" for k, v in res.step_seconds.items() if v > 0)


if __name__ == "__main__":
    main()
