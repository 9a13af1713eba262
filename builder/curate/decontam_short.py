"""The fuzzy rules: short and medium benchmark items, lightly edited, alone or embedded.

An item of fewer than ~40 words has too few n-grams for the coverage rule to survive two
edits, and "What is the capital of France?" has no 8-gram at all. Items under
`fuzzy_item_words` words get a word-level alignment instead:
- ``embedded-fuzzy<T>`` (items of >= 6 words): a prompt that shares at least a quarter of an item's distinctive
  `anchor`-word windows (windows in at most `common_ngram_items` items) is aligned with
  the item by rapidfuzz's partial_ratio over *words* (each word one symbol): score >= T
  over the whole item, inside a prompt of any length. At T = 90 that allows about one
  changed word in ten, never a changed word in a six-word item.
- ``fuzzy<T>``: a short prompt against items of similar length (ratio over words >= T),
  for items under two anchors long (one edit can break all their anchors) or without a
  distinctive anchor.
Both confirm with the numbers: the aligned words must hold `min_number_share` of the
item's numbers ("Compute C(8, 4)" is not "Compute C(8, 5)").
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import regex
from rapidfuzz import fuzz, process

from builder.curate.decontam_tokens import HashIndex, WordBatch, is_number, is_number_word, number_words, numbers_held

_CJK_CHAR = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
_OOV = "\x01"  # a prompt word no fuzzy item has: matches nothing
# A shorter item inside a longer prompt is a phrase ("basal metabolic rate"), not evidence:
# such items only match a whole prompt of their own size.
MIN_EMBEDDED_WORDS = 6


def key_of(tokens: list[str]) -> str:
    """Words joined for display: CJK characters with nothing between them, other words with a space."""
    out: list[str] = []
    prev_cjk = False
    for t in tokens:
        cjk = len(t) == 1 and _CJK_CHAR.match(t) is not None
        if out and not (cjk and prev_cjk):
            out.append(" ")
        out.append(t)
        prev_cjk = cjk
    return "".join(out)


def _symbol(i: int) -> str:
    cp = 0x100 + i
    return chr(cp + 0x800 if cp >= 0xD800 else cp)  # skip the surrogate block


class FuzzyIndex:
    def __init__(
        self,
        items: WordBatch,
        max_words: int,
        short_words: int,
        anchor: int,
        max_items: int,
        threshold: float,
        number_share: float,
    ) -> None:
        self.threshold = threshold
        self.anchor = anchor
        self.number_share = number_share
        item_tokens = items.tokens
        n_items = len(item_tokens)
        lens = items.lens
        fuzzy = (lens < max_words) & (lens > 0)
        embeddable = fuzzy & (lens >= MIN_EMBEDDED_WORDS)
        self.vocab: dict[str, str] = {}
        for i in np.flatnonzero(fuzzy).tolist():
            for t in item_tokens[i]:
                if t not in self.vocab:
                    self.vocab[t] = _symbol(len(self.vocab))
        self.codes: dict[int, str] = {i: self.encode(item_tokens[i]) for i in np.flatnonzero(fuzzy).tolist()}
        # an item's numbers are read from its code when a prompt aligns with it (few items), not for all
        self.number_of = {sym: t for t, sym in self.vocab.items() if is_number(t)}
        self.word_of = {sym: t for t, sym in self.vocab.items() if is_number_word(t)}
        self.numbers: dict[int, Counter[str]] = {}
        self.item_number_words: dict[int, Counter[str]] = {}
        # anchors: windows of fuzzy items found in at most max_items items of all benchmarks
        h, item, _ = items.windows(anchor)
        order = np.lexsort((item, h))
        h, item = h[order], item[order]
        pair = np.ones(len(h), dtype=bool)
        pair[1:] = (h[1:] != h[:-1]) | (item[1:] != item[:-1])
        h, item = h[pair], item[pair]
        first = np.ones(len(h), dtype=bool)
        first[1:] = h[1:] != h[:-1]
        hid = np.cumsum(first) - 1
        per_hash = np.bincount(hid) if len(h) else np.zeros(0, np.int64)
        keep = (per_hash[hid] <= max_items) & embeddable[item]
        self.a_hash, self.a_item = h[keep], item[keep]
        self.a_lookup = HashIndex(np.unique(self.a_hash))
        self.anchors = np.bincount(self.a_item, minlength=n_items)
        # whole-prompt pass: items an edit can keep from the embedded pass (under 2 anchors long, or
        # without a distinctive anchor); a whole prompt at ratio >= T shares an anchor with any other
        whole = sorted(
            (len(item_tokens[i]), self.codes[i], i)
            for i in self.codes
            if lens[i] < short_words and (lens[i] < 2 * anchor or self.anchors[i] == 0)
        )
        self._lens = np.array([w[0] for w in whole], dtype=np.int64)
        self._codes = [w[1] for w in whole]
        self._ids = [w[2] for w in whole]

    def encode(self, tokens: list[str]) -> str:
        v = self.vocab
        return "".join([v.get(t, _OOV) for t in tokens])

    def _numbers_agree(self, item: int, tokens: list[str]) -> bool:
        want = self.numbers.get(item)
        if want is None:
            num = self.number_of
            want = self.numbers[item] = Counter(num[c] for c in self.codes[item] if c in num)
            self.item_number_words[item] = number_words([self.word_of[c] for c in self.codes[item] if c in self.word_of])
        if not want:
            return True
        have = Counter(w for w in tokens if is_number(w))
        held = numbers_held(want, have, number_words(tokens), self.item_number_words[item])
        return held >= self.number_share * sum(want.values())

    def embedded(self, batch: WordBatch, todo: list[int]) -> dict[int, tuple[int, float, list[str]]]:
        """prompt index -> (item, score, aligned prompt words) for the prompts in `todo`."""
        if not len(self.a_hash) or not todo:
            return {}
        sub = [batch.tokens[i] for i in todo]
        h, prompt, _ = batch.windows(self.anchor, todo)
        hit, _ = self.a_lookup.find(h)
        if not len(hit):
            return {}
        h, prompt = h[hit], prompt[hit]
        lo = np.searchsorted(self.a_hash, h, "left")
        counts = np.searchsorted(self.a_hash, h, "right") - lo
        run_start = np.repeat(np.cumsum(counts) - counts, counts)
        idx = np.repeat(lo, counts) + (np.arange(int(counts.sum())) - run_start)
        # distinct (prompt, item, anchor) triples, then anchors shared per (prompt, item)
        trip = np.unique(np.stack([np.repeat(prompt, counts), self.a_item[idx], np.repeat(h, counts).view(np.int64)],
                                  axis=1), axis=0)  # fmt: skip
        pairs, shared = np.unique(trip[:, :2], axis=0, return_counts=True)
        need = np.maximum(1, np.ceil(0.25 * self.anchors[pairs[:, 1]]))
        pairs = pairs[shared >= need]
        out: dict[int, tuple[int, float, list[str]]] = {}
        codes: dict[int, str] = {}
        for p, item in pairs.tolist():
            if todo[p] in out:
                continue
            pc = codes.get(p)
            if pc is None:
                pc = codes[p] = self.encode(sub[p])
            ic = self.codes[item]
            if len(pc) > len(ic):
                al = fuzz.partial_ratio_alignment(ic, pc, score_cutoff=self.threshold)
                if al is None:
                    continue
                score, start, end = al.score, al.dest_start, al.dest_end
                if end - start < len(ic):
                    # partial_ratio also scores a part of the item hanging over the prompt's edge:
                    # score the item against as many prompt words as it has instead
                    start = max(0, min(start, end - len(ic)))
                    end = start + len(ic)
                    score = fuzz.ratio(ic, pc[start:end])
            else:
                score, start, end = fuzz.ratio(ic, pc, score_cutoff=self.threshold), 0, len(pc)
            words = sub[p][start:end]
            if score >= self.threshold and self._numbers_agree(item, words):
                out[todo[p]] = (item, score, words)
        return out

    def whole(self, queries: list[tuple[int, list[str]]], chunk: int = 256) -> dict[int, tuple[int, float, list[str]]]:
        """Short prompts against short items of similar length: prompt index -> (item, score, words).

        Queries sorted by length, compared in chunks with rapidfuzz's cdist (C) against the items
        in their length window: ratio >= T needs min/max length >= T/(200-T)."""
        if not self._codes or not queries:
            return {}
        f = self.threshold / (200.0 - self.threshold)
        qs = sorted(((i, t, self.encode(t)) for i, t in queries), key=lambda q: len(q[2]))
        found: dict[int, tuple[int, float, list[str]]] = {}
        for start in range(0, len(qs), chunk):
            part = qs[start : start + chunk]
            lo = int(np.searchsorted(self._lens, int(len(part[0][2]) * f), "left"))
            hi = int(np.searchsorted(self._lens, int(len(part[-1][2]) / f) + 1, "right"))
            if lo >= hi:
                continue
            scores = process.cdist([q[2] for q in part], self._codes[lo:hi], scorer=fuzz.ratio,
                                   score_cutoff=self.threshold, dtype=np.uint8, workers=1)  # fmt: skip
            for row, col in zip(*np.nonzero(scores)):
                i, toks, _ = part[row]
                item = self._ids[lo + int(col)]
                score = float(scores[row, col])
                if (i not in found or score > found[i][1]) and self._numbers_agree(item, toks):
                    found[i] = (item, score, toks)
        return found
