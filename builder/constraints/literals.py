"""Which of a fixed set of substrings a text holds, found in one pass.

The detector's rules are gated by substrings of the lower-cased prompt (detect.py): ~270 of them.
On the curate benchmark's corpus one `in` test per substring costs ~5x the CPU of an Aho–Corasick
automaton (pyahocorasick, C) that finds them all in one scan (benchmarks/detect_speed.py
`literal_pass`: 73.1 vs 12.6 µs a prompt, load ~2). `find(text)` is exactly
`{w for w in words if w in text}` (tests/test_detect_literals.py checks it on random strings).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import ahocorasick


class Literals:
    """A fixed set of non-empty substrings; `find` returns the ones a text holds."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(words)
        if not self.words or "" in self.words:
            raise ValueError("Literals needs non-empty substrings")
        self._ac = ahocorasick.Automaton()
        for w in self.words:
            self._ac.add_word(w, w)
        self._ac.make_automaton()

    def find(self, text: str) -> set[str]:
        return {w for _, w in self._ac.iter(text)}

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, w: object) -> bool:
        return w in self.words


def anchored_finditer(pat: re.Pattern[str], starts: tuple[str, ...], text: str, where: str | None = None,
                      digits: bool = False) -> Iterator[re.Match[str]]:
    """`pat.finditer(text)` for a pattern that never matches empty and every match of which begins
    with one of the literals `starts` in `where` (default `text`; else a string of the same length
    whose position i stands for text's: the lower-cased text under an exact case gate).

    A pattern that begins with a nested group or `re.I` letters gets no first-character skip in
    `re`'s engine and is tried at every position; here it is tried only where a start literal is
    (str.find). Same matches, same order: finditer takes the leftmost match at or after the
    previous match's end, and that is at a start. `digits`: a match may also begin at any `\\d`.
    """
    return matches_at(pat, text, _positions(text if where is None else where, starts, digits))


def matches_at(pat: re.Pattern[str], text: str, starts: list[int]) -> Iterator[re.Match[str]]:
    """`pat.finditer(text)` when every match of `pat` begins at one of `starts` (sorted positions)."""
    pos = 0
    for at in starts:
        if at < pos:
            continue
        m = pat.match(text, at)
        if m is not None:
            yield m
            pos = max(m.end(), at + 1)


_DIGIT = re.compile(r"\d")


def _positions(text: str, words: tuple[str, ...], digits: bool = False) -> list[int]:
    """Every position where one of `words` (or, with `digits`, a \\d character) starts, in order."""
    out = [m.start() for m in _DIGIT.finditer(text)] if digits else []
    for w in words:
        i = text.find(w)
        while i >= 0:
            out.append(i)
            i = text.find(w, i + 1)
    return sorted(set(out))


class Keyed:
    """An alternation of branches, each led by a literal, split by that literal: `search` tries only
    the branches whose literal the text holds (from the one pass), and each then gets re's
    literal-prefix search instead of being tried at every position. True iff the alternation matches."""

    def __init__(self, branches: dict[str, str], rest: str = "", needs: tuple[frozenset[str], ...] = ()) -> None:
        """`needs`: sets of literals of which every match of `rest` holds one each (checked first)."""
        for k, b in branches.items():
            if not b.startswith(k) or re.escape(k) != k:
                raise ValueError(f"branch {b!r} does not start with its literal {k!r}")
        self.keys, self.needs = frozenset(branches), needs
        self._pats = {k: re.compile(b + rest) for k, b in branches.items()}

    def search(self, text: str, found: set[str] | frozenset[str]) -> bool:
        if any(n.isdisjoint(found) for n in self.needs):
            return False
        return any(self._pats[k].search(text) for k in self.keys.intersection(found))
