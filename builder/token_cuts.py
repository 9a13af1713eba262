"""Exact tiktoken counts with a pre-tokenizer regex free of look-around, cutting texts where it would split otherwise.

tiktoken hands a pattern with look-around to fancy_regex's backtracking VM, one without it to the
regex crate's DFAs whole: ~30 % less CPU per count (benchmarks/token_count_speed.py). Both proven
patterns (builder/tokens.py) hold one look-ahead that common text reaches, L = `\\s+(?!X)`, right
after `\\s*[\\r\\n]+` and before `\\s+`; X is `\\S` for Qwen, DeepSeek's is `[^\\s\\p{N}CJK]`.
Dropping L gives the FAST pattern. Why counts stay exact:

1. L is tried only at a whitespace character whose run up to the next other character holds no
   line break (`\\s*[\\r\\n]+`, tried first, matches any run that holds one). There L takes the whole
   run unless a character c matching X follows it; then the run less its last character, or fails
   when the run is one character (and `\\s+` takes it). `\\s+` takes the whole run: the two differ
   only at a TRIGGER, two whitespace characters other than line breaks followed by such a c.
2. At a trigger, with W the run's part after its last line break (both trigger characters are in
   it): W starts a piece (no alternative holds whitespace after its first character unless it ends
   in a line break or is all whitespace, and W follows a line break or another character), L makes
   W less its last character one piece, so a piece ends before that character, at the CUT. Every
   alternative decides its match from the characters up to one past its end (a greedy class's stop,
   L's look-ahead), except `\\s*[\\r\\n]+`, which scans a run to its end and backs off to its last line
   break, never in W. So the pieces of text[:cut] are the whole text's before the cut (W's rest
   now ends the text: L takes it all, as `\\s+` does) and those of text[cut:] the ones after it
   (nothing looks behind). Counts add over pieces: count(text) = the parts' counts summed.
3. Cut at every trigger, a part has none left (W's rest ends its part), so FAST splits it alike.
4. DeepSeek's last alternative takes the GAP characters no other one matches (outside \\p{N},
   \\p{L}, \\p{M}, \\p{P}, \\p{S}, \\s and the CJK ranges); in a text without them it never runs and
   FAST omits it. A text holding one is counted by the proven pattern.

Whether a text holds a trigger or a gap character is asked of the regex crate itself (a tiktoken
Encoding of the trigger pattern over single bytes: any match gives tokens), so its Unicode tables
are the ones that split. Finding the cuts is Python's `re` with the White_Space class spelled out
(the regex crate's `\\s`; tests/test_token_cuts.py compares them on every code point).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import tiktoken

# Unicode White_Space, the regex crate's `\s` (Python's `\s` adds \x1c-\x1f), and less \r \n.
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_INLINE_SPACE = WHITE_SPACE.replace("\n", "").replace("\r", "")
# A trigger's two whitespace characters (the cut falls before the second) and the next one; the
# same where spaces are a text's only whitespace but line breaks (a literal start: ~3x faster in `re`).
_CUT = re.compile(f"[{_INLINE_SPACE}]{{2}}(?=[^{WHITE_SPACE}])")
_CUT_SPACES = re.compile(f"  (?=[^{WHITE_SPACE}])")
_OTHER_SPACE = _INLINE_SPACE.replace(" ", "")  # as raw characters, which the regex crate's classes take too

CJK = r"\x{4e00}-\x{9fa5}\x{3040}-\x{309f}\x{30a0}-\x{30ff}"
# (the proven pattern's look-ahead alternative L, what the trigger's c matches, gap characters or None)
_LOOKAHEAD: dict[str, tuple[str, str, str | None]] = {
    "qwen2.5": (r"\s+(?!\S)|", r"\S", None),
    "deepseek-r1": (
        rf"\s+(?![^\s\p{{N}}{CJK}])|",
        rf"[^\s\p{{N}}{CJK}]",
        rf"[^\p{{N}}\p{{L}}\p{{M}}\p{{P}}\p{{S}}\s{CJK}]",
    ),
}
# DeepSeek's gap alternative, as builder/tokens.py appends it to the rest: "|(?:(?!ANY)[\s\S])+".
_GAP_TAIL = "|(?:(?!"


def fast_pattern(name: str, pat: str) -> str:
    """`pat` (name's proven pattern) without L and, for DeepSeek, without the gap alternative."""
    look, _, gap = _LOOKAHEAD[name]
    if gap is not None:
        head, sep, tail = pat.partition(_GAP_TAIL)
        if not sep or tail != head + r")[\s\S])+":
            raise ValueError(f"{name}: the gap alternative is not where token_cuts expects it")
        pat = head
    if pat.count(look) != 1 or "(?" in (fast := pat.replace(look, "")).replace("(?i:", "").replace("(?:", ""):
        raise ValueError(f"{name}: cannot drop the look-ahead from {pat!r:.80}")
    return fast


def _matcher(name: str, pat: str) -> Callable[[str], bool]:
    """Whether the regex crate finds `pat` in a text (an Encoding over single bytes: a match gives tokens)."""
    enc = tiktoken.Encoding(name=f"answer-distill-{name}-probe", pat_str=pat,
                            mergeable_ranks={bytes([b]): b for b in range(256)}, special_tokens={})  # fmt: skip
    core = getattr(enc, "_core_bpe", None)
    return (lambda t: bool(core.encode_ordinary(t))) if hasattr(core, "encode_ordinary") else (
        lambda t: bool(enc.encode_ordinary(t)))  # fmt: skip


def _counter(enc: tiktoken.Encoding) -> Callable[[str], int]:
    """Tokens of a text without added tokens: read off tiktoken's id buffer (private API), else its public one."""
    core = getattr(enc, "_core_bpe", None)
    if hasattr(core, "encode_to_tiktoken_buffer"):
        return lambda t: memoryview(core.encode_to_tiktoken_buffer(t, set())).nbytes >> 2
    return lambda t: len(enc.encode_ordinary(t))


def ordinary_counter(
    name: str, fast_enc: tiktoken.Encoding, proven: Callable[[], tiktoken.Encoding]
) -> Callable[[str], int]:
    """Token count of a normalized text holding no added token, equal to that of `proven()` (name's
    proven pattern; asked for only for a text holding a gap character), by `fast_enc` (its FAST
    pattern, same ranks and added tokens) wherever the rules above allow."""
    _, after, gap = _LOOKAHEAD[name]
    fast = _counter(fast_enc)
    trigger = _matcher(f"{name}-trigger", rf"[^\S\r\n]{{2}}{after}" + (f"|{gap}" if gap else ""))
    has_gap = _matcher(f"{name}-gap", gap) if gap else None
    follows = _matcher(f"{name}-follows", after)  # for DeepSeek: L takes a run before a digit or CJK
    other_space = _matcher(f"{name}-other-space", f"[{_OTHER_SPACE}]")

    def count(text: str) -> int:
        if not trigger(text):
            return fast(text)
        if has_gap is not None and has_gap(text):
            return _counter(proven())(text)
        n = lo = 0
        for m in (_CUT if other_space(text) else _CUT_SPACES).finditer(text):
            cut = m.end() - 1
            c = text[cut + 1]
            if gap is not None and (c in "0123456789" if c.isascii() else not follows(c)):
                continue
            n += fast(text[lo:cut])
            lo = cut
        return n + fast(text[lo:])

    return count


def added_token_finder(added: set[str]) -> Callable[[str], tuple[str, ...]]:
    """The added tokens a text holds (DeepSeek has 818: testing each cost a fifth of the counting),
    searching a group of them only in texts that hold the group's first two characters."""
    groups: dict[str, list[str]] = {}
    for sp in added:
        groups.setdefault(sp[:2], []).append(sp)
    pairs = [(prefix, tuple(sorted(group))) for prefix, group in sorted(groups.items())]
    firsts = sorted({prefix[0] for prefix in groups})  # "<" for both: one memchr for most texts
    return lambda t: tuple(sp for prefix, group in pairs if prefix in t for sp in group if sp in t) if any(
        c in t for c in firsts) else ()  # fmt: skip


@cache
def _added_tokens(present: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, present)))


def count_around(ordinary: Callable[[str], int], present: tuple[str, ...], text: str) -> int:
    """Tokens of a text holding the added tokens `present`: one each, plus the text between them
    counted as ordinary, as tiktoken's encode with every added token allowed does. No added
    token of either tokenizer is a prefix of another or overlaps one (tests/test_token_cuts.py),
    so where they are found does not depend on the order tiktoken tries them in."""
    parts = _added_tokens(present).split(text)
    return sum(map(ordinary, parts)) + len(parts) - 1
