"""The multiple-choice rule: a benchmark question with its choices, in any order, under any labels.

A copy of an MCQ item often reorders and relabels its choices ("A. Venus" becomes "C) Venus").
The other rules see the item's text fields only: a short or generic question ("Food allergies:",
"Which of the following statements is true?") is no evidence alone, and choices joined into the
item text make n-grams that span two choices, which a reordering breaks. A benchmark that names
its `choice_fields` gets this rule (``mcq``): a prompt holds the item when it holds the whole
stem (the text fields that are not choices), word for word, and every choice, word for word,
in the words that follow the stem (as many as the choices have, plus room for labels and a
line such as "Options:"). Words are decontamination words, so labels ("A. ", "(B)"), case,
punctuation and look-alikes do not matter; the choices' numbers are held by construction.
Items with fewer than MIN_WORDS words in stem and choices together ("4 + 3 =" with 7 / 1 / 12 / 6)
are left to the other rules: such words are found together in many a clean prompt.

Candidates: one window of each stem (its rarest among the stems, of `n` words or the whole stem
when shorter), found among the prompt's windows of that size; then the exact check above.
"""

from __future__ import annotations

import numpy as np

from builder.curate.decontam_short import key_of
from builder.curate.decontam_tokens import _P, HashIndex, WordBatch

MIN_WORDS = 8
# words allowed between the stem and its choices beyond the choices' own: a label word per
# choice ("A:", "Option B") and a line like "Choose one of the following options:"
SLACK_PER_CHOICE = 2
SLACK = 8
_SEP = "\x00"  # never inside a word: joined word lists compare as word sequences


class _SmallHashIndex(HashIndex):
    BITS = 20  # ~15k anchors (MMLU): a 1 MB bitmap, not 16 MB in every matching worker


def _group_ids(h: np.ndarray) -> np.ndarray:
    """The same id for equal values, 0.. (a sort: numpy's hashed unique is slower on uint64)."""
    order = np.argsort(h, kind="stable")
    ids = np.empty(len(h), dtype=np.int64)
    ids[order] = np.cumsum(np.append(True, h[order][1:] != h[order][:-1])) - 1
    return ids


def _gather(batch: WordBatch, rows: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The word hashes of `rows`, end to end, with each word's prompt (0.. in `rows` order),
    its offset in that prompt, and the words from it to the prompt's end."""
    flat, lens = batch.of_rows(rows)
    prompt = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    offset = np.arange(len(flat), dtype=np.int64) - (np.cumsum(lens) - lens)[prompt]
    return flat, prompt, offset, lens[prompt] - offset


def _joined(tokens: list[str]) -> str:
    return _SEP + _SEP.join(tokens) + _SEP


class ChoiceIndex:
    """MCQ items (index into the benchmark's items, stem words, choices' words), by one stem window each."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.item: list[int] = []
        self.stem: list[list[str]] = []
        self.choices: list[list[str]] = []  # joined words of each distinct non-empty choice
        self.budget: list[int] = []  # words after the stem that must hold the choices
        self.size: list[int] = []  # words in the anchor window: n, or the whole stem when shorter
        self.anchor_at: list[int] = []  # offset of the anchor window in the stem
        self.rows = self.ptr = np.zeros(0, np.int64)  # CSR: rows[ptr[g]:ptr[g + 1]] have anchor g
        self.lookup = _SmallHashIndex(np.zeros(0, np.uint64))
        self.sizes: set[int] = set()

    def __len__(self) -> int:
        return len(self.item)

    def add(self, item: int, stem: list[str], choices: list[list[str]]) -> None:
        distinct = list(dict.fromkeys(tuple(c) for c in choices if c))
        if not stem or len(distinct) < 2 or len(stem) + sum(map(len, distinct)) < MIN_WORDS:
            return
        self.item.append(item)
        self.stem.append(stem)
        self.choices.append([_joined(list(c)) for c in distinct])
        self.budget.append(sum(map(len, choices)) + SLACK_PER_CHOICE * len(choices) + SLACK)

    def finish(self) -> None:
        self.size = [min(len(s), self.n) for s in self.stem]
        size = np.array(self.size, dtype=np.int64)
        stems = WordBatch(self.stem)
        anchor_at = np.zeros(len(size), dtype=np.int64)
        anchor = np.zeros(len(size), dtype=np.uint64)
        for k in np.unique(size).tolist():
            rows = np.flatnonzero(size == k)
            h, stem, offset = stems.windows(k, rows.tolist())
            stem = rows[stem]
            # stems holding each window (a window twice in one stem counts once); the rarest is the anchor
            inverse = _group_ids(h)
            pairs = np.sort(inverse * len(size) + stem)
            pairs = pairs[np.append(True, pairs[1:] != pairs[:-1])]  # distinct (window, stem)
            stems_with = np.bincount(pairs // len(size), minlength=int(inverse.max()) + 1)[inverse]
            order = np.lexsort((offset, stems_with, stem))
            first = order[np.append(True, stem[order][1:] != stem[order][:-1])]
            anchor_at[stem[first]] = offset[first]
            anchor[stem[first]] = h[first]
        self.anchor_at = anchor_at.tolist()
        self.rows = np.argsort(anchor, kind="stable")
        h = anchor[self.rows]
        first = np.flatnonzero(np.append(True, h[1:] != h[:-1])) if len(h) else np.zeros(0, np.int64)
        self.ptr = np.append(first, len(h))
        self.lookup = _SmallHashIndex(h[first])  # one for every size: the stem check tells sizes apart
        self.sizes = set(self.size)

    def match(self, batch: WordBatch, todo: list[int]) -> dict[int, tuple[int, int]]:
        """prompt index -> (item, MCQ row) for the prompts in `todo` that hold an item whole."""
        found: dict[int, tuple[int, int]] = {}
        if not todo or not self.item:
            return found
        flat, prompt, offset, room = _gather(batch, todo)
        h = np.zeros(0, dtype=np.uint64)
        for k in range(1, max(self.size) + 1):
            # windows of k words from those of k - 1 (one pass a size, not k)
            with np.errstate(over="ignore"):
                h = flat.copy() if k == 1 else h[:-1] * _P + flat[k - 1 :]
            if k not in self.sizes:
                continue
            hit, g = self.lookup.find(h)
            inside = room[hit] >= k  # a window that runs into the next prompt is no window
            for j, gi in zip(hit[inside].tolist(), g[inside].tolist()):
                p = todo[int(prompt[j])]
                for r in self.rows[self.ptr[gi] : self.ptr[gi + 1]].tolist():
                    best = found.get(p)
                    if self.size[r] != k or (best is not None and self._words(best[1]) >= self._words(r)):
                        continue
                    if self._holds(batch.tokens[p], int(offset[j]) - self.anchor_at[r], r):
                        found[p] = (self.item[r], r)
        return found

    def _words(self, r: int) -> int:
        return len(self.stem[r]) + sum(c.count(_SEP) - 1 for c in self.choices[r])

    def _holds(self, tokens: list[str], start: int, r: int) -> bool:
        stem = self.stem[r]
        end = start + len(stem)
        if start < 0 or tokens[start:end] != stem:
            return False
        after = _joined(tokens[end : end + self.budget[r]])
        return all(c in after for c in self.choices[r])

    def span(self, r: int) -> str:
        """The stem's words, then the choices' (for the evidence)."""
        return " | ".join([key_of(self.stem[r])] + [key_of(c.strip(_SEP).split(_SEP)) for c in self.choices[r]])

    def detail(self, r: int) -> str:
        return f"stem of {len(self.stem[r])} words and all {len(self.choices[r])} choices, in any order"
