"""Which of a fixed set of substrings a text holds, found in one pass.

The detector's rules are gated by substrings of the lower-cased prompt (detect.py): ~200 of them,
and on the curate benchmark's corpus one `in` test per substring cost ~40 µs a prompt, while an
Aho–Corasick automaton (pyahocorasick, C) finds them all in one scan for ~7 µs
(benchmarks/detect_speed.py `literal_pass`). `find(text)` is exactly `{w for w in words if w in text}`
(tests/test_detect_literals.py checks it on random strings).
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


def anchored_finditer(pat: re.Pattern[str], starts: re.Pattern[str] | tuple[str, ...], text: str,
                      where: str | None = None) -> Iterator[re.Match[str]]:
    """`pat.finditer(text)` for a pattern that never matches empty and every match of which starts
    where `starts` matches in `where` (default `text`; else a string of the same length whose
    position i stands for text's: the lower-cased text under an exact case gate).

    A pattern that begins with a nested group or `re.I` letters gets no first-character skip in
    `re`'s engine and is tried at every position; `starts` (a pattern of lower-case literals: it
    gets that skip; or the literals themselves, found with str.find) finds the places it can begin,
    and `pat` is tried there only. Same matches, same order: finditer takes the leftmost match at
    or after the previous match's end, and that is at a start.
    """
    where = text if where is None else where
    pos, n = 0, len(text)
    nxt = {w: where.find(w) for w in starts} if isinstance(starts, tuple) else {}
    while pos <= n:
        if isinstance(starts, tuple):
            for w, at in nxt.items():
                if 0 <= at < pos:
                    nxt[w] = where.find(w, pos)
            at = min((a for a in nxt.values() if a >= 0), default=-1)
        else:
            a = starts.search(where, pos)
            at = -1 if a is None else a.start()
        if at < 0:
            return
        m = pat.match(text, at)
        if m is None:
            pos = at + 1
            continue
        yield m
        pos = max(m.end(), at + 1)


class Keyed:
    """An alternation of branches, each led by a literal, split by that literal: `search` tries only
    the branches whose literal the text holds (from the one pass), and each then gets re's
    literal-prefix search instead of being tried at every position. True iff the alternation matches."""

    def __init__(self, branches: dict[str, str], rest: str = "") -> None:
        for k, b in branches.items():
            if not re.fullmatch(re.escape(k) + r".*", b.replace("\\", ""), re.S):
                raise ValueError(f"branch {b!r} does not start with its literal {k!r}")
        self.keys = frozenset(branches)
        self._pats = {k: re.compile(b + rest) for k, b in branches.items()}

    def search(self, text: str, found: set[str] | frozenset[str]) -> bool:
        return any(self._pats[k].search(text) for k in self.keys.intersection(found))
