"""Decontamination: drop training prompts that overlap evaluation benchmarks.

Two rules, both reported per hit (benchmark, item, prompt, rule):
- ``ngram<N>``: the prompt shares any word N-gram (default 8, as open-r1; 13 as an option)
  with a benchmark item. Words are Unicode ``\\w+`` runs, casefolded; each CJK character is
  its own word, so Chinese text gets character N-grams.
- ``fuzzy<T>``: prompts too short to hold N-grams worth trusting (fewer than N + a margin of
  words) are compared with rapidfuzz's ratio against benchmark items of similar length.
  Ratio ≥ T means the same question reworded by a few characters.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import regex
from rapidfuzz import fuzz, process

from builder.config.curate import BenchmarkFile, DecontamConfig
from builder.errors import UserError
from builder.recipe import Recipe

_WORD = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|\w+")


# ASCII text: every non-word character becomes a space, then split — the same tokens as
# _WORD (\w+ runs) at C speed; the regex handles the rest (CJK characters, other scripts).
_ASCII_NONWORD = {c: " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")}


def words(text: str) -> list[str]:
    if text.isascii():
        return text.lower().translate(_ASCII_NONWORD).split()
    return _WORD.findall(text.casefold())


@dataclass(frozen=True, slots=True)
class Hit:
    benchmark: str
    item_id: str
    rule: str
    evidence: str


def _item_text(row: dict, fields: list[str], where: str) -> str:
    parts: list[str] = []
    for f in fields:
        v = row.get(f)
        if v is None:
            raise UserError(f"{where}: benchmark field {f!r} is missing; fix `text_fields` in the recipe")
        if isinstance(v, list):
            parts.extend(str(x) for x in v)
        else:
            parts.append(str(v))
    return "\n".join(parts)


_P = np.uint64(0x100000001B3)  # odd multiplier: window hashes wrap mod 2**64 by design


def _word_hashes(tokens: list[str]) -> np.ndarray:
    # Python's str hash is randomized per process but stable within it: index and prompts
    # are hashed in the same process, which is all the comparison needs.
    return np.fromiter((hash(w) for w in tokens), dtype=np.int64, count=len(tokens)).view(np.uint64)


def window_hashes(flat: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash of every n-word window of a word-hash array (vectorized)."""
    m = len(flat) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _P + flat[k : k + m]
    return h


class BenchmarkIndex:
    """N-gram hashes and short-item length buckets of every benchmark item."""

    def __init__(self, cfg: DecontamConfig) -> None:
        self.n = cfg.ngram
        self.threshold = cfg.fuzzy_threshold
        self.short_words = cfg.ngram + cfg.fuzzy_max_words
        self.max_items = cfg.common_ngram_items
        self.items: dict[tuple[str, str], str] = {}
        self.keys: list[tuple[str, str]] = []
        self.benchmarks: list[str] = []
        self.skipped: list[str] = []
        self.common_ngrams = 0
        self._hashes: list[np.ndarray] = []
        self._owners: list[np.ndarray] = []
        # Short items sorted by length, for the fuzzy pass's length window.
        self._short: list[tuple[int, str, str, str]] = []

    def add(self, name: str, item_id: str, text: str) -> None:
        toks = words(text)
        key = (name, item_id)
        self.items[key] = text
        h = np.unique(window_hashes(_word_hashes(toks), self.n))
        self._hashes.append(h)
        self._owners.append(np.full(len(h), len(self.keys), dtype=np.int64))
        self.keys.append(key)
        canon = " ".join(toks)
        if len(toks) <= self.short_words * 2:
            self._short.append((len(canon), canon, name, item_id))

    def finish(self) -> None:
        hashes = np.concatenate(self._hashes) if self._hashes else np.empty(0, np.uint64)
        owners = np.concatenate(self._owners) if self._owners else np.empty(0, np.int64)
        order = np.argsort(hashes, kind="stable")
        hashes, owners = hashes[order], owners[order]
        uniq, first, counts = np.unique(hashes, return_index=True, return_counts=True)
        # Boilerplate shared by many items ("which one of the following statements is true")
        # says nothing about a specific item; matching it would drop innocent prompts.
        keep = counts <= self.max_items
        self.common_ngrams = int((~keep).sum())
        self.gram_hashes = uniq[keep]
        self.gram_owner = owners[first[keep]]
        self._hashes, self._owners = [], []
        self._short.sort()
        self._short_lens = [s[0] for s in self._short]
        self._short_texts = [s[1] for s in self._short]

    def _ngram_hits(self, token_lists: list[list[str]]) -> dict[int, tuple[int, int]]:
        """prompt index → (owner item index, word offset) of its first n-gram hit."""
        n = self.n
        lens = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        flat = _word_hashes([w for t in token_lists for w in t])
        starts = np.concatenate(([0], np.cumsum(lens)))
        h = window_hashes(flat, n)
        if not len(h) or not len(self.gram_hashes):
            return {}
        pos = np.searchsorted(self.gram_hashes, h)
        pos[pos == len(self.gram_hashes)] = 0
        hit = np.nonzero(self.gram_hashes[pos] == h)[0]
        prompt = np.searchsorted(starts, hit, side="right") - 1
        inside = hit + n <= starts[prompt + 1]  # windows spanning two prompts are not n-grams
        out: dict[int, tuple[int, int]] = {}
        for w, p in zip(hit[inside].tolist(), prompt[inside].tolist()):
            if p not in out:
                out[p] = (int(self.gram_owner[pos[w]]), w - int(starts[p]))
        return out

    def match_many(self, texts: list[str]) -> list[Hit | None]:
        token_lists = [words(t) for t in texts]
        hits = self._ngram_hits(token_lists)
        out: list[Hit | None] = [None] * len(texts)
        short: list[tuple[int, str]] = []
        for i, toks in enumerate(token_lists):
            if i in hits:
                owner, off = hits[i]
                key = self.keys[owner]
                out[i] = Hit(key[0], key[1], f"ngram{self.n}", " ".join(toks[off : off + self.n]))
            elif len(toks) < self.short_words and self._short:
                short.append((i, " ".join(toks)))
        for i, hit in self._fuzzy_many(short):
            out[i] = hit
        return out

    def match(self, text: str) -> Hit | None:
        return self.match_many([text])[0]

    def _fuzzy_many(self, queries: list[tuple[int, str]], chunk: int = 256) -> list[tuple[int, Hit]]:
        """Fuzzy pass for short prompts: queries sorted by length, compared in chunks with
        rapidfuzz's cdist (C, multi-threaded) against the benchmark items in their length window."""
        # ratio ≥ T needs min/max length ≥ T/(200-T): only items in that window can match.
        f = self.threshold / (200.0 - self.threshold)
        queries = sorted(queries, key=lambda q: len(q[1]))
        found: list[tuple[int, Hit]] = []
        for start in range(0, len(queries), chunk):
            part = queries[start : start + chunk]
            lo = bisect_left(self._short_lens, int(len(part[0][1]) * f))
            hi = bisect_right(self._short_lens, int(len(part[-1][1]) / f) + 1)
            if lo >= hi:
                continue
            scores = process.cdist([q[1] for q in part], self._short_texts[lo:hi], scorer=fuzz.ratio,
                                   score_cutoff=self.threshold, dtype=np.uint8, workers=-1)
            best = scores.argmax(axis=1)
            for row, (i, _) in enumerate(part):
                score = int(scores[row, best[row]])
                if score >= self.threshold:
                    item = self._short[lo + int(best[row])]
                    found.append((i, Hit(item[2], item[3], f"fuzzy{int(self.threshold)}", f"ratio={score}")))
        return found


# Set in the parent just before forking, so workers share the index copy-on-write; str
# hashes stay comparable because forked children inherit the parent's hash seed.
_SHARED: tuple[BenchmarkIndex, list[str]] | None = None


def _match_range(bounds: tuple[int, int]) -> list[Hit | None]:
    assert _SHARED is not None
    index, texts = _SHARED
    return index.match_many(texts[bounds[0] : bounds[1]])


def match_all(index: BenchmarkIndex, texts: list[str], workers: int = 1, chunk: int = 50_000) -> list[Hit | None]:
    """match_many over batches (bounded window-hash arrays), on `workers` forked processes."""
    global _SHARED
    bounds = [(s, min(s + chunk, len(texts))) for s in range(0, len(texts), chunk)]
    if workers <= 1 or len(bounds) < 2:
        return [h for b in bounds for h in index.match_many(texts[b[0] : b[1]])]
    import multiprocessing

    _SHARED = (index, texts)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_match_range, bounds)
    finally:
        _SHARED = None
    return [h for part in parts for h in part]


def _read_items(recipe: Recipe, b: BenchmarkFile) -> Iterable[tuple[str, str]] | None:
    from builder.sources.readers import READERS, BadRow, _format_of

    path = recipe.resolve(b.path)
    if not path.is_file():
        if b.optional:
            return None
        raise UserError(f"decontaminate: benchmark {b.name}: file not found: {path}; fix `path` or set optional: true")
    out: list[tuple[str, str]] = []
    for i, item in enumerate(READERS[_format_of(path, b.format)](path)):
        if isinstance(item, BadRow):
            raise UserError(f"decontaminate: benchmark {b.name}: {item.location}: {item.reason}: {item.detail}")
        item_id = str(item.data.get(b.id_field, i)) if b.id_field else str(i)
        out.append((item_id, _item_text(item.data, b.text_fields, item.location)))
    return out


def build_index(recipe: Recipe, cfg: DecontamConfig) -> BenchmarkIndex:
    index = BenchmarkIndex(cfg)
    for b in cfg.benchmarks:
        items = _read_items(recipe, b)
        if items is None:
            index.skipped.append(b.name)
            continue
        index.benchmarks.append(b.name)
        for item_id, text in items:
            index.add(b.name, item_id, text)
    index.finish()
    return index


def load_benchmark_texts(path: Path, fields: list[str]) -> list[str]:
    """Plain texts of a benchmark file (used by benchmarks/ to plant leaks)."""
    from builder.sources.readers import READERS, RawRow, _format_of

    return [
        _item_text(r.data, fields, r.location)
        for r in READERS[_format_of(path, "auto")](path)
        if isinstance(r, RawRow)
    ]
