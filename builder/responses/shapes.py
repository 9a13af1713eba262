"""Normalize one stored teacher reply into (think, answer, shape).

Teachers hand back their thinking in several shapes: a separate field
(`reasoning_content` from the DeepSeek API and vLLM before its rename; `reasoning` from
OpenRouter and vLLM since #27752, sole field since #33402 (early 2026, RFC #27755); both
during the transition), inline tags in `content`, inline tags whose opening tag was
prefilled by the chat template (R1: the reply starts mid-thought and only has
`</think>`; vLLM 0.7.2 then returned `reasoning_content: null` with everything in
`content`), or no thinking at all. `normalize` reads either field or both (a blank one
counts as absent) and maps every shape onto one `Parsed` record, listing what it could not
do cleanly as codes (see `grammar.py` for the table).

vLLM parser bugs land in two shapes that look alike: an answer the model wrote without
`</think>` is filed whole as reasoning with empty content (vllm#48645), and a reply cut
mid-think by the budget comes back as `content: null` (vllm#52640). `normalize` gives both
the thinking and no answer (`null_content` / `reasoning_field` with answer ""); telling
them apart needs the finish reason and the text, which `truncation.find_cut` judges
(`answer_in_reasoning` vs `truncated_in_think`). Fixtures in vLLM's own response layout:
tests/fixtures/replies/vllm/.

Speed matters (1.3M replies): splitting uses `str.find` / `str.count` only. Lazy
`[\\s\\S]*?` regexes measured ~6x slower on real traces. The think and answer texts are
slices of the input with one leading and one trailing whitespace run removed; inner bytes
are never touched, because the `think_summary` variant needs the answer byte-identical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from builder.reasoning_format import R1, Delimiters

# Shapes (where the thinking came from, and whether answer tags were used).
REASONING_FIELD = "reasoning_field"
THINK_ANSWER_TAGS = "think_answer_tags"  # the paper's format; R1-0528 follows it
INLINE_TAGS = "inline_tags"  # <think>..</think> then a bare answer
INLINE_NO_OPEN = "inline_no_open"  # template prefilled <think>: only </think> present
UNCLOSED_THINK = "unclosed_think"  # <think> never closed: no answer
ANSWER_TAGS_ONLY = "answer_tags_only"  # <answer>..</answer> without any thinking
ANSWER_ONLY = "answer_only"  # plain text, no delimiters at all
EMPTY = "empty"  # content is blank and there is no reasoning field
NULL_CONTENT = "null_content"  # content is None (a `length` finish can do this)
NOT_A_STRING = "not_a_string"
TOO_LARGE = "too_large"
BINARY = "binary_garbage"
SHAPES = (
    REASONING_FIELD, THINK_ANSWER_TAGS, INLINE_TAGS, INLINE_NO_OPEN, UNCLOSED_THINK,
    ANSWER_TAGS_ONLY, ANSWER_ONLY, EMPTY, NULL_CONTENT, NOT_A_STRING, TOO_LARGE, BINARY,
)  # fmt: skip

# Replies above this many characters are rejected before any scanning: a 5 MB reply is a
# runaway generation, and looking at it would only cost time (len() is O(1)).
MAX_REPLY_CHARS = 1_000_000

# All Unicode whitespace plus zero-width characters that render as nothing, so an
# answer of only U+3000 / U+200B / BOM counts as empty.
# (str.isspace() over all code points; a test checks the list stays complete.)
_STRIP = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u200b\u200c\u200d\u2060\ufeff"
)

# C0/C1 controls other than tab / newline / carriage return.
_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_GARBAGE_SAMPLE = 2048  # chars at each end; garbage is garbage throughout
_GARBAGE_SHARE = 0.3


@dataclass(slots=True)
class Parsed:
    think: str | None
    answer: str | None
    shape: str
    codes: list[str] = field(default_factory=list)
    delimiters: Delimiters = R1


def _strip(text: str) -> str:
    return text.strip(_STRIP)


def _blank(text: str) -> bool:
    return not text.strip(_STRIP)


def _is_garbage(text: str) -> bool:
    """NULs anywhere, or mostly U+FFFD / control characters (judged on both ends)."""
    if "\x00" in text:
        return True
    n = len(text)
    if n == 0:
        return False
    # Fast exit for the common case: no U+FFFD at all and clean ends (mostly-garbage text
    # cannot have both ends clean).
    if "\ufffd" not in text and not _CONTROL.search(text, 0, 256) and not _CONTROL.search(text, max(0, n - 256)):
        return False
    if n > 2 * _GARBAGE_SAMPLE:
        text = text[:_GARBAGE_SAMPLE] + text[-_GARBAGE_SAMPLE:]
        n = len(text)
    bad = text.count("\ufffd") + len(_CONTROL.findall(text))
    return bad > _GARBAGE_SHARE * n


def _pick_reasoning(reasoning_content: str | None, reasoning: str | None, codes: list[str]) -> str | None:
    """The reasoning field to use: `reasoning_content` first; blank counts as absent."""
    rc = reasoning_content if reasoning_content is not None and not _blank(reasoning_content) else None
    r = reasoning if reasoning is not None and not _blank(reasoning) else None
    if rc is not None and r is not None and _strip(rc) != _strip(r):
        codes.append("two_reasoning_fields")
    return rc if rc is not None else r


def _split_answer(body: str, d: Delimiters, codes: list[str]) -> tuple[str, bool]:
    """The answer inside answer tags if they open, else the whole body."""
    start = body.find(d.answer_open)
    if start == -1:
        codes.append("answer_tags_absent")
        return _strip(body), False
    inner = start + len(d.answer_open)
    end = body.find(d.answer_close, inner)
    if end == -1:
        codes.append("unclosed_answer")
        if not _blank(body[:start]):
            codes.append("text_outside_answer")
        return _strip(body[inner:]), True
    if not (_blank(body[:start]) and _blank(body[end + len(d.answer_close) :])):
        codes.append("text_outside_answer")
    return _strip(body[inner:end]), True


def _split_inline(content: str, d: Delimiters, codes: list[str]) -> Parsed:
    opened = content.find(d.think_open)
    closed = content.find(d.think_close)
    if content.count(d.think_open) > 1:
        codes.append("duplicate_think")  # a second or nested think block
    if closed == -1:
        if opened == -1:
            if _blank(content):
                return Parsed(None, "", EMPTY, codes, d)
            answer, tagged = _split_answer(content, d, codes)
            return Parsed(None, answer, ANSWER_TAGS_ONLY if tagged else ANSWER_ONLY, codes, d)
        if not _blank(content[:opened]):
            codes.append("text_before_think")
        codes.append("unclosed_think")
        return Parsed(_strip(content[opened + len(d.think_open) :]), None, UNCLOSED_THINK, codes, d)
    if opened == -1 or opened > closed:
        # R1's chat template ends with "<think>\n", so the reply starts mid-thought.
        think, shape = content[:closed], INLINE_NO_OPEN
    else:
        if not _blank(content[:opened]):
            codes.append("text_before_think")
        think, shape = content[opened + len(d.think_open) : closed], INLINE_TAGS
    answer, tagged = _split_answer(content[closed + len(d.think_close) :], d, codes)
    if tagged and shape == INLINE_TAGS:
        shape = THINK_ANSWER_TAGS
    return Parsed(_strip(think), answer, shape, codes, d)


def normalize(
    content: object,
    reasoning_content: object = None,
    reasoning: object = None,
    finish_reason: object = None,
    delimiters: Delimiters = R1,
) -> Parsed:
    """Split one reply into (think, answer, shape, codes). Never raises on bad input.

    `finish_reason` is accepted so callers can pass a stored row as is; truncation is
    judged in `grammar.validate`, which knows where the reply stopped.
    """
    del finish_reason
    d = delimiters
    fields = (content, reasoning_content, reasoning)
    if any(v is not None and not isinstance(v, str) for v in fields):
        return Parsed(None, None, NOT_A_STRING, ["not_a_string"], d)
    texts: list[str] = [v for v in fields if v is not None]  # type: ignore[misc]
    if sum(map(len, texts)) > MAX_REPLY_CHARS:
        return Parsed(None, None, TOO_LARGE, ["reply_too_large"], d)
    if any(_is_garbage(t) for t in texts):
        return Parsed(None, None, BINARY, ["binary_garbage"], d)
    codes: list[str] = []
    if any("\ufffd" in t for t in texts):
        codes.append("replacement_chars")  # info: broken multi-byte characters upstream
    field_think = _pick_reasoning(reasoning_content, reasoning, codes)  # type: ignore[arg-type]
    if content is None:
        codes.append("content_null")
        think = _strip(field_think) if field_think is not None else None
        return Parsed(think, None, NULL_CONTENT, codes, d)
    assert isinstance(content, str)
    if field_think is None:
        return _split_inline(content, d, codes)
    # A reasoning field wins. Inline think tags as well mean two traces (e.g. a server
    # whose parser was off for part of a run): parse content to find where its answer is.
    if d.think_open in content or d.think_close in content:
        codes.append("duplicate_think")
        inline = _split_inline(content, d, codes)
        codes = list(dict.fromkeys(codes))
        return Parsed(_strip(field_think), inline.answer, REASONING_FIELD, codes, d)
    answer, _ = _split_answer(content, d, codes)
    return Parsed(_strip(field_think), answer, REASONING_FIELD, codes, d)
