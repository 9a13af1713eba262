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

import regex
from rapidfuzz import fuzz, process

from builder.errors import UserError
from builder.recipe import BenchmarkFile, DecontamConfig, Recipe

_WORD = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def ngram_hashes(tokens: list[str], n: int) -> set[int]:
    if len(tokens) < n:
        return set()
    # Python's str hash is randomized per process but stable within it: all we need here.
    return {hash("\x1f".join(tokens[i : i + n])) for i in range(len(tokens) - n + 1)}


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


class BenchmarkIndex:
    """N-gram hashes and short-item length buckets of every benchmark item."""

    def __init__(self, cfg: DecontamConfig) -> None:
        self.n = cfg.ngram
        self.threshold = cfg.fuzzy_threshold
        self.short_words = cfg.ngram + cfg.fuzzy_max_words
        self.grams: dict[int, tuple[str, str]] = {}
        self.gram_items: dict[int, int] = {}
        self.max_items = cfg.common_ngram_items
        self.items: dict[tuple[str, str], str] = {}
        self.benchmarks: list[str] = []
        self.skipped: list[str] = []
        # Short items sorted by length, for the fuzzy pass's length window.
        self._short: list[tuple[int, str, str, str]] = []

    def add(self, name: str, item_id: str, text: str) -> None:
        toks = words(text)
        key = (name, item_id)
        self.items[key] = text
        for h in ngram_hashes(toks, self.n):
            self.grams.setdefault(h, key)
            self.gram_items[h] = self.gram_items.get(h, 0) + 1
        canon = " ".join(toks)
        if len(toks) <= self.short_words * 2:
            self._short.append((len(canon), canon, name, item_id))

    def finish(self) -> None:
        # Boilerplate shared by many items ("which one of the following statements is true")
        # says nothing about a specific item; matching it would drop innocent prompts.
        common = [h for h, c in self.gram_items.items() if c > self.max_items]
        for h in common:
            del self.grams[h]
        self.common_ngrams = len(common)
        self.gram_items = {}
        self._short.sort()
        self._short_lens = [s[0] for s in self._short]

    def match(self, text: str) -> Hit | None:
        toks = words(text)
        if len(toks) >= self.n:
            for i in range(len(toks) - self.n + 1):
                key = self.grams.get(hash("\x1f".join(toks[i : i + self.n])))
                if key is not None:
                    return Hit(key[0], key[1], f"ngram{self.n}", " ".join(toks[i : i + self.n]))
        if len(toks) < self.short_words and self._short:
            canon = " ".join(toks)
            # ratio ≥ T needs min/max length ≥ T/(200-T): only items in that window can match.
            f = self.threshold / (200.0 - self.threshold)
            lo, hi = bisect_left(self._short_lens, int(len(canon) * f)), bisect_right(self._short_lens, int(len(canon) / f) + 1)
            if lo < hi:
                window = [s[1] for s in self._short[lo:hi]]
                best = process.extractOne(canon, window, scorer=fuzz.ratio, score_cutoff=self.threshold)
                if best is not None:
                    _, score, idx = best
                    item = self._short[lo + idx]
                    return Hit(item[2], item[3], f"fuzzy{int(self.threshold)}", f"ratio={score:.1f}")
        return None


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
