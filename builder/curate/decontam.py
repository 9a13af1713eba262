"""Decontamination: drop training prompts that overlap evaluation benchmarks.

Rules, tried in this order; each hit is reported with its evidence (benchmark, item, rule,
score, matched span) in curate/decontamination.parquet:
- ``ngram<N>`` (builder/curate/decontam_ngram.py): the prompt holds at least `min_coverage`
  of the item's words in shared word N-grams, at least `min_shared_ngrams` of them, and at
  least `min_number_share` of the item's numbers (a GSM8K template with new numbers is
  another problem).
  One generic phrase ("how many hours a week does he spend", "面积是多少平方米") is a small
  share of any item, so it no longer flags a prompt; an item embedded in a longer
  instruction, or lightly edited, still shows most of its words.
- ``fuzzy<T>`` (builder/curate/decontam_short.py): items under `fuzzy_item_words` words,
  aligned word by word with rapidfuzz inside prompts of any length (``embedded-fuzzy<T>``)
  or against whole short prompts (``fuzzy<T>``), numbers required to agree.
- ``mcq`` (builder/curate/decontam_mcq.py): for benchmarks with `choice_fields`, the item's
  whole stem and every one of its choices, in any order and under any labels (tried after
  the fuzzy rules).
- ``semantic`` (off by default, builder/curate/decontam_semantic.py): sentence embeddings
  for reworded leaks, confirmed by the item's content words.
Words come from builder/curate/decontam_tokens.py: folded text (NFKC + look-alikes),
casefolded; each CJK character is a word and is split from neighbouring digits and letters.
"""

from __future__ import annotations

import json
import pickle
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from builder.config.curate import BenchmarkFile, DecontamConfig
from builder.curate.decontam_mcq import ChoiceIndex
from builder.curate.decontam_ngram import GramIndex
from builder.curate.decontam_short import FuzzyIndex, key_of
from builder.curate.decontam_tokens import WordBatch, is_number, number_words, numbers_held, window_hashes, words
from builder.errors import UserError
from builder.progress import Progress, report
from builder.recipe import Recipe

__all__ = ["BenchmarkIndex", "Hit", "build_index", "load_benchmark_texts", "load_index", "save_index", "window_hashes", "words"]

_SPAN_CHARS = 300


def methods_run(cfg: DecontamConfig, checked: Iterable[str]) -> list[str]:
    """The rules above as the card names them, for the benchmarks `checked` (present files)."""
    out = [f"word {cfg.ngram}-gram overlap", f"fuzzy match at score {cfg.fuzzy_threshold:g}"]
    names = set(checked)
    if any(b.choice_fields and b.name in names for b in cfg.benchmarks):
        out.append("multiple-choice items with their choices in any order")
    if cfg.semantic.enabled:
        out.append(f"{cfg.semantic.model} sentence embeddings at cosine {cfg.semantic.threshold:g}, confirmed by shared words")
    return out

@dataclass(frozen=True, slots=True)
class Hit:
    benchmark: str
    item_id: str
    rule: str
    score: float  # coverage (ngram), ratio / 100 (fuzzy), 1 (mcq), cosine (semantic)
    span: str  # the matched words of the item (ngram) or of the prompt (fuzzy, semantic)
    detail: str = ""

    @property
    def clipped_span(self) -> str:
        return self.span[:_SPAN_CHARS]

    @property
    def evidence(self) -> str:
        """One JSON object: score, matched span (<= 300 chars), and the rule's own detail."""
        out: dict[str, Any] = {"score": round(float(self.score), 4), "span": self.clipped_span}
        if self.detail:
            out["detail"] = self.detail
        return json.dumps(out, ensure_ascii=False)


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


def _choices(row: dict, fields: list[str], where: str) -> list[str]:
    """An MCQ item's choices: each field a list of choices, a {label: choice} mapping, or one choice."""
    out: list[str] = []
    for f in fields:
        v = row.get(f)
        if v is None:
            raise UserError(f"{where}: benchmark field {f!r} is missing; fix `choice_fields` in the recipe")
        vals = v.values() if isinstance(v, dict) else v if isinstance(v, list) else [v]
        out.extend(str(x) for x in vals if x is not None)
    return out


def _numbers_of(tokens: list[str]) -> tuple[Counter[str], Counter[str]]:
    """A text's digit numbers and English number words, counted (for numbers_held)."""
    return Counter(w for w in tokens if is_number(w)), number_words(tokens)


class BenchmarkIndex:
    """Every benchmark item, indexed for the n-gram, fuzzy and (optional) semantic rules."""

    def __init__(self, cfg: DecontamConfig) -> None:
        self.cfg = cfg
        self.n = cfg.ngram
        self.threshold = cfg.fuzzy_threshold
        self.short_words = cfg.ngram + cfg.fuzzy_max_words
        self.items: dict[tuple[str, str], str] = {}
        self.keys: list[tuple[str, str]] = []
        self.benchmarks: list[str] = []
        self.skipped: list[str] = []
        self.common_ngrams = 0
        self.item_tokens: list[list[str]] = []
        self.mcq = ChoiceIndex(cfg.ngram)
        self.semantic: Any = None  # a decontam_semantic.SemanticPass when enabled

    def add(self, name: str, item_id: str, text: str, choices: list[str] | None = None, stem: str | None = None) -> None:
        """Add one item (before finish()); an MCQ item with its `choices` and its `stem` (the text
        fields that are not choices; `text` when None) for the mcq rule."""
        key = (name, item_id)
        self.items[key] = text
        self.keys.append(key)
        self.item_tokens.append(tokens := words(text))
        if choices:
            self.mcq.add(len(self.keys) - 1, tokens if stem in (None, text) else words(stem), [words(c) for c in choices])

    def finish(self) -> None:
        cfg = self.cfg
        batch = WordBatch(self.item_tokens)
        self.grams = GramIndex.build(batch, self.n, cfg.common_ngram_items)
        self.mcq.finish()
        self.common_ngrams = self.grams.common
        # (digits, number words) of the items a prompt hits, filled by _numbers_held
        self._item_numbers: dict[int, tuple[Counter[str], Counter[str]]] = {}
        if cfg.semantic.enabled:
            from builder.curate.decontam_semantic import SemanticPass  # loads the model: only when asked

            texts = [self.items[k] for k in self.keys]
            self.semantic = SemanticPass(self.item_tokens, texts, cfg.semantic, cfg.min_number_share)
        self.fuzzy = FuzzyIndex(batch, cfg.fuzzy_item_words, self.short_words, cfg.anchor_words,
                                cfg.common_ngram_items, self.threshold, cfg.min_number_share)  # fmt: skip
        self.item_tokens = []  # ~100 MB at the paper recipe's size; spans re-tokenize the few items hit

    def _item_words(self, item: int) -> list[str]:
        return words(self.items[self.keys[item]])

    def _hit(self, item: int, rule: str, score: float, span: str, detail: str = "") -> Hit:
        name, item_id = self.keys[item]
        return Hit(name, item_id, rule, score, span, detail)

    def _ngram_hits(self, batch: WordBatch, out: list[Hit | None]) -> None:
        g = self.grams
        token_lists = batch.tokens
        pr = g.pairs(batch)
        if not len(pr["prompt"]):
            return
        item = pr["item"]
        ok = (pr["coverage"] >= self.cfg.min_coverage) & (
            pr["shared"] >= np.minimum(self.cfg.min_shared_ngrams, g.windows[item])
        )
        sel = np.flatnonzero(ok)
        # best item per prompt: highest coverage, then most shared windows
        sel = sel[np.lexsort((-pr["shared"][sel], -pr["coverage"][sel], pr["prompt"][sel]))]
        seen: set[int] = set()
        numbers: dict[int, tuple[Counter[str], Counter[str]]] = {}
        for j in sel.tolist():
            p = int(pr["prompt"][j])
            if p in seen:
                continue
            it = int(item[j])
            if not self._numbers_held(it, p, token_lists, numbers):
                continue  # same template, other numbers: another problem
            seen.add(p)
            toks = self._item_words(it)[int(pr["first"][j]) : int(pr["last"][j]) + self.n]
            detail = f"{int(pr['shared'][j])} of {int(g.windows[it])} {self.n}-grams, {int(pr['covered'][j])} of {int(g.coverable[it])} words"
            out[p] = self._hit(it, f"ngram{self.n}", float(pr["coverage"][j]), key_of(toks), detail)

    def _numbers_held(
        self, item: int, p: int, token_lists: list[list[str]], cache: dict[int, tuple[Counter[str], Counter[str]]]
    ) -> bool:
        if item not in self._item_numbers:
            self._item_numbers[item] = _numbers_of(self._item_words(item))
        want, item_words = self._item_numbers[item]
        if not want:
            return True
        if p not in cache:
            cache[p] = _numbers_of(token_lists[p])
        have, have_words = cache[p]
        held = numbers_held(want, have, have_words, item_words)
        return held >= self.cfg.min_number_share * sum(want.values())

    def match_many(self, texts: list[str]) -> list[Hit | None]:
        token_lists = [words(t) for t in texts]
        batch = WordBatch(token_lists)
        out: list[Hit | None] = [None] * len(texts)
        self._ngram_hits(batch, out)
        t = int(self.threshold)
        todo = [i for i, h in enumerate(out) if h is None]
        for i, (item, score, span) in self.fuzzy.embedded(batch, todo).items():
            out[i] = self._hit(item, f"embedded-fuzzy{t}", score / 100, key_of(span))
        short = [(i, token_lists[i]) for i in todo if out[i] is None and len(token_lists[i]) < self.short_words]
        for i, (item, score, span) in self.fuzzy.whole(short).items():
            out[i] = self._hit(item, f"fuzzy{t}", score / 100, key_of(span))
        rest = [i for i, h in enumerate(out) if h is None]  # after the older rules: their hits keep their evidence
        for i, (item, r) in self.mcq.match(batch, rest).items():
            out[i] = self._hit(item, "mcq", 1.0, self.mcq.span(r), self.mcq.detail(r))
        if self.semantic is not None:
            rest = [i for i, h in enumerate(out) if h is None]
            found = self.semantic.match([texts[i] for i in rest], [token_lists[i] for i in rest])
            for j, (item, score, detail) in found.items():
                out[rest[j]] = self._hit(item, "semantic", score, texts[rest[j]], detail)
        return out

    def match(self, text: str) -> Hit | None:
        return self.match_many([text])[0]


def save_index(index: BenchmarkIndex, path: Path) -> None:
    """Pickle a finished index (word hashes are xxh3: it matches alike in any process)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(index, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)  # a reader never sees half a file


def load_index(path: Path) -> BenchmarkIndex:
    with Path(path).open("rb") as fh:
        index = pickle.load(fh)
    assert isinstance(index, BenchmarkIndex)
    return index


MATCH_STEP = "decontaminate: matching prompts"


def _read_items(recipe: Recipe, b: BenchmarkFile, index: int) -> Iterable[tuple[str, str, list[str], str]] | None:
    """(item id, text, choices, stem) of each item of a benchmark file; None when an optional file is absent."""
    from builder.sources.paths import benchmark_file
    from builder.sources.readers import READERS, BadRow

    found = benchmark_file(recipe, b, index)  # check asks it too
    if found is None:
        return None
    path, fmt = found
    out: list[tuple[str, str, list[str], str]] = []
    stem_fields = [f for f in b.text_fields if f not in b.choice_fields]
    for i, item in enumerate(READERS[fmt](path)):
        if isinstance(item, BadRow):
            raise UserError(f"decontaminate: benchmark {b.name}: {item.location}: {item.reason}: {item.detail}")
        item_id = str(item.data.get(b.id_field, i)) if b.id_field else str(i)
        text = _item_text(item.data, b.text_fields, item.location)
        choices = _choices(item.data, b.choice_fields, item.location)
        stem = text if stem_fields == b.text_fields else _item_text(item.data, stem_fields, item.location)
        out.append((item_id, text, choices, stem))
    if not any(words(text) for _, text, _, _ in out):
        raise UserError(
            f"decontaminate: benchmark {b.name}: {path}: no usable text in {len(out)} item(s) "
            f"(text_fields {b.text_fields} hold no words); fix `text_fields` or the file"
        )
    if b.choice_fields and not any(len(c) > 1 for _, _, c, _ in out):
        raise UserError(
            f"{recipe.path}: curate.decontaminate.benchmarks[{index}={b.name}].choice_fields: {b.choice_fields} "
            "give no item two choices; name a list field "
            "(choices: [..]) or one field per choice (A, B, C, D)"
        )
    return out


def build_index(recipe: Recipe, cfg: DecontamConfig, progress: Progress | None = None) -> BenchmarkIndex:
    index = BenchmarkIndex(cfg)
    for i, b in enumerate(cfg.benchmarks):
        report(progress, "decontaminate: indexing benchmark files", i, len(cfg.benchmarks))
        items = _read_items(recipe, b, i)
        # A benchmark given as several files (aime25: parts I and II) is named once in each list.
        names = index.skipped if items is None else index.benchmarks
        if b.name not in names:
            names.append(b.name)
        if items is None:
            continue
        for item_id, text, choices, stem in items:
            index.add(b.name, item_id, text, choices, stem)
    report(progress, "decontaminate: indexing benchmark files", len(cfg.benchmarks), len(cfg.benchmarks))
    index.finish()
    return index


def load_benchmark_texts(path: Path, fields: list[str]) -> list[str]:
    """Plain texts of a benchmark file (used by benchmarks/ to plant leaks)."""
    from builder.sources.paths import format_of
    from builder.sources.readers import READERS, RawRow

    return [
        _item_text(r.data, fields, r.location)
        for r in READERS[format_of(path, "auto", "the benchmark file")](path)
        if isinstance(r, RawRow)
    ]
