"""The decontamination rule before the precision work (commit b7a5538), kept as the baseline
that benchmarks/curate.py measures in the same run: any one shared word 8-gram flags a prompt
(minus n-grams in more than 3 items), a fuzzy ratio for short prompts; words are \\w+ runs, so
"201斤等于多少千克" is one word. Unchanged apart from the constructor taking plain numbers.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np
import regex
from rapidfuzz import fuzz, process

# The old rule's hashing is unchanged: it is the project's own (the tokenizer is what changed).
from builder.curate.decontam_tokens import window_hashes, word_hashes

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


class LegacyIndex:
    """N-gram hashes and short-item length buckets of every benchmark item."""

    def __init__(
        self, ngram: int = 8, fuzzy_threshold: float = 90.0, fuzzy_max_words: int = 12, common_ngram_items: int = 3
    ) -> None:
        self.n = ngram
        self.threshold = fuzzy_threshold
        self.short_words = ngram + fuzzy_max_words
        self.max_items = common_ngram_items
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
        h = np.unique(window_hashes(word_hashes(toks), self.n))
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
        flat = word_hashes([w for t in token_lists for w in t])
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
            scores = process.cdist(
                [q[1] for q in part],
                self._short_texts[lo:hi],
                scorer=fuzz.ratio,
                score_cutoff=self.threshold,
                dtype=np.uint8,
                workers=-1,
            )
            best = scores.argmax(axis=1)
            for row, (i, _) in enumerate(part):
                score = int(scores[row, best[row]])
                if score >= self.threshold:
                    item = self._short[lo + int(best[row])]
                    found.append((i, Hit(item[2], item[3], f"fuzzy{int(self.threshold)}", f"ratio={score}")))
        return found
