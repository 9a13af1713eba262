"""The optional semantic rule: reworded leaks, by sentence embeddings confirmed by content words.

Off by default (`curate.decontaminate.semantic.enabled`). For prompts no lexical rule hit:
1. confirmation first (cheap, vectorized): the prompt must hold at least `min_shared_words`
   of the item's content units (words that are not stopwords, numbers included; CJK text
   as character bigrams), counting only units found in few items (at most 0.5% of them, at
   least 20), and at least 3 of them; and `min_number_share` of the item's numbers, as the
   n-gram rule asks (a GSM8K template with new numbers is another problem);
2. then the embedding: the prompt (in windows of `max_prompt_words` words when longer) and
   the item are embedded with the pinned model (builder/embeddings.py); cosine >= `threshold`
   is a hit. Only candidates are embedded, so the cost follows the candidates, not the corpus.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import regex

from builder.config.curate import SemanticConfig
from builder.curate.decontam_tokens import is_number
from builder.embeddings import load_embedder

_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
_RAW_WORD = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|[^\s\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]+"
)
_STOP_WORDS = """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves s t following given find let also many much one two use using"""
_STOP = frozenset(_STOP_WORDS.split())


def content_units(tokens: list[str]) -> set[str]:
    """Content words (numbers included) and, for CJK text, character bigrams."""
    out: set[str] = set()
    prev = ""
    for t in tokens:
        if len(t) == 1 and _CJK.match(t):
            if prev:
                out.add(prev + t)
            prev = t
            continue
        prev = ""
        if is_number(t) or (len(t) > 1 and t not in _STOP):
            out.add(t)
    return out


class SemanticPass:
    def __init__(
        self, item_tokens: list[list[str]], item_texts: list[str], cfg: SemanticConfig, number_share: float
    ) -> None:
        self.cfg = cfg
        self.number_share = number_share
        self.numbers = [Counter(w for w in t if is_number(w)) for t in item_tokens]
        self.embedder = load_embedder(cfg.model)  # EmbeddingModelError (one line) if not right
        self.item_texts = item_texts
        units = [content_units(t) for t in item_tokens]
        h = np.fromiter((hash(u) for us in units for u in us), dtype=np.int64)
        item = np.repeat(np.arange(len(units)), [len(u) for u in units])
        order = np.argsort(h, kind="stable")
        h, item = h[order], item[order]
        uniq, first, counts = np.unique(h, return_index=True, return_counts=True)
        common = max(20, int(0.005 * len(units)))
        rare = np.repeat(counts <= common, counts)
        self.u_hash, self.u_item = h[rare], item[rare]
        self.units = np.bincount(self.u_item, minlength=len(units))
        self._emb: dict[int, np.ndarray] = {}
        self.stats = {"candidate_prompts": 0, "embedded_items": 0, "embedded_windows": 0, "hits": 0}

    def _candidates(self, token_lists: list[list[str]]) -> dict[int, list[tuple[float, int]]]:
        """prompt -> [(share of the item's rare units it holds, item)], best first, share >= min."""
        per = [np.fromiter({hash(u) for u in content_units(t)}, dtype=np.int64) for t in token_lists]
        h = np.concatenate(per) if per else np.zeros(0, np.int64)
        prompt = np.repeat(np.arange(len(per)), [len(p) for p in per])
        lo = np.searchsorted(self.u_hash, h, "left")
        hi = np.searchsorted(self.u_hash, h, "right")
        counts = hi - lo
        if not counts.sum():
            return {}
        run_start = np.repeat(np.cumsum(counts) - counts, counts)
        idx = np.repeat(lo, counts) + (np.arange(int(counts.sum())) - run_start)
        key = np.repeat(prompt, counts).astype(np.int64) * (len(self.units) + 1) + self.u_item[idx]
        pairs, shared = np.unique(key, return_counts=True)
        p, it = np.divmod(pairs, len(self.units) + 1)
        share = shared / np.maximum(self.units[it], 1)
        ok = (share >= self.cfg.min_shared_words) & (shared >= 3)
        out: dict[int, list[tuple[float, int]]] = {}
        have: dict[int, Counter[str]] = {}
        for pi, ii, s in zip(p[ok].tolist(), it[ok].tolist(), share[ok].tolist()):
            want = self.numbers[ii]
            if want:  # same template, other numbers: another problem
                if pi not in have:
                    have[pi] = Counter(w for w in token_lists[pi] if is_number(w))
                if sum((want & have[pi]).values()) < self.number_share * sum(want.values()):
                    continue
            out.setdefault(pi, []).append((s, ii))
        return {k: sorted(v, reverse=True)[:3] for k, v in out.items()}

    def _windows(self, text: str) -> list[str]:
        spans = [m.span() for m in _RAW_WORD.finditer(text)]
        w = self.cfg.max_prompt_words
        if len(spans) <= w:
            return [text]
        step = max(1, w // 2)
        return [text[spans[s][0] : spans[min(s + w, len(spans)) - 1][1]] for s in range(0, len(spans) - step, step)]

    def match(self, texts: list[str], token_lists: list[list[str]]) -> dict[int, tuple[int, float, str]]:
        """index into texts -> (item, cosine, detail) for reworded leaks."""
        cands = self._candidates(token_lists)
        if not cands:
            return {}
        need = sorted({i for c in cands.values() for _, i in c} - set(self._emb))
        self.stats["candidate_prompts"] += len(cands)
        self.stats["embedded_items"] += len(need)
        if need:
            vecs = self.embedder.encode([self.item_texts[i] for i in need], self.cfg.batch_size)
            self._emb.update(zip(need, vecs))
        order = sorted(cands)
        wins = [(p, w) for p in order for w in self._windows(texts[p])]
        self.stats["embedded_windows"] += len(wins)
        vecs = self.embedder.encode([w for _, w in wins], self.cfg.batch_size)
        out: dict[int, tuple[int, float, str]] = {}
        per_prompt: dict[int, list[np.ndarray]] = {}
        for (p, _), v in zip(wins, vecs):
            per_prompt.setdefault(p, []).append(v)
        for p in order:
            pv = np.stack(per_prompt[p])
            for share, item in cands[p]:
                cos = float((pv @ self._emb[item]).max())
                if cos >= self.cfg.threshold and (p not in out or cos > out[p][1]):
                    out[p] = (item, cos, f"cosine {cos:.3f}, {share:.0%} of the item's content words")
        self.stats["hits"] += len(out)
        return out
