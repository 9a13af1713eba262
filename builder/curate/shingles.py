"""Shingling for near-duplicate detection: canonical text -> hashed shingles.

Why our own shingler instead of datatrove's default: the default word tokenizer is spaCy
(slow, not installed by any datatrove extra), it maps every number to 0 (math prompts that
differ only in numbers would collide), CJK text has no spaces, and docs shorter than the
n-gram size get no shingles at all (datatrove then skips them silently).

Rules, in order:
- matching key: the text folded (``normalize.fold_text``: NFKC + look-alikes: full-width
  forms, NBSP and other spaces, curly quotes, dashes, non-ASCII digits); the stored text is
  never changed;
- canonical form: lowercase, punctuation -> space, whitespace collapsed, diacritics
  stripped; numbers are kept verbatim;
- tokens: Han/Kana characters are one token each, anything else splits on whitespace;
- n: ``char_ngram`` when at least half the tokens are CJK characters, else ``ngram``;
- a doc with fewer than max(n, min_tokens) tokens gets ONE shingle, the hash of its whole
  canonical form, so short prompts match only their exact-after-canonicalization twins;
- every shingle hash is XOR-ed with a hash of the doc's number sequence, so two docs whose
  numbers differ share no shingle at all and can never be merged. Numbers are read from the
  folded text ("３０" is 30, "40,000" is 40000) and Chinese numerals count where they are
  numbers: a run with a unit (十二, 一百零五, 两千) or of digits (二〇二四), a lone 二…九 or 两,
  a lone 一, 十 or 零 before a classifier or unit (一个, 十只) or after 第. Such numerals are written in Arabic digits
  in the matching key, so "两个" and "2个" give the same shingles and the same number.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import xxhash
from datatrove.utils.text import PUNCTUATION_TRANS

from builder.curate.normalize import fold_text

# Han (incl. ext. A and compatibility ideographs), Hiragana, Katakana: scripts without spaces.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
_COMBINING_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# ASCII fast path of canonical(): lowercase + datatrove's punctuation set mapped to spaces
_ASCII_TABLE = bytes(
    ord(" ") if chr(i) in PUNCTUATION_TRANS or i in PUNCTUATION_TRANS else ord(chr(i).lower()) for i in range(256)
)

# Non-ASCII path: the same punctuation set as a character class (a regex sub is ~3x faster than
# str.translate with datatrove's dict); kept only while that dict maps every character to a space.
_PUNCT_RE = (
    re.compile("[" + re.escape("".join(map(chr, sorted(PUNCTUATION_TRANS)))) + "]")
    if set(PUNCTUATION_TRANS.values()) == {ord(" ")}
    else None
)

MODE_WORD, MODE_CJK, MODE_EXACT = 0, 1, 2


@dataclass(frozen=True)
class ShingleParams:
    """Plain (picklable) parameters of the shingler."""

    ngram: int = 5
    char_ngram: int = 5
    min_tokens: int = 0
    numbers_must_match: bool = True
    strip_diacritics: bool = True


def _ascii_tokens(text: str) -> list[str]:
    """canonical(text).split() of an ASCII text: bytes.translate with a 256-byte table is ~20x faster
    than str.translate with a dict."""
    return text.encode("ascii").translate(_ASCII_TABLE).decode("ascii").split()


def canonical(text: str, strip_diacritics: bool = True) -> str:
    """Lowercase, punctuation to spaces, collapsed whitespace; numbers untouched."""
    if text.isascii():
        return " ".join(_ascii_tokens(text))
    text = _PUNCT_RE.sub(" ", text.lower()) if _PUNCT_RE is not None else text.lower().translate(PUNCTUATION_TRANS)
    if strip_diacritics and not text.isascii():
        nfd = unicodedata.normalize("NFD", text)
        if len(nfd) != len(text):  # only then can there be a combining mark to drop
            text = _COMBINING_RE.sub("", nfd)
    return " ".join(text.split())


def tokenize(canon: str) -> tuple[list[str], int]:
    """Tokens of a canonical text and how many of them are CJK characters."""
    if canon.isascii() or not _CJK_RE.search(canon):
        return canon.split(), 0
    return _TOKEN_RE.findall(canon), len(_CJK_RE.findall(canon))


_ZH_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_ZH_BIG = {"万": 10_000, "亿": 100_000_000}
_ZH_NUMERAL = "零〇一二两三四五六七八九十百千万亿"
_ZH_ANY = re.compile(f"[{_ZH_NUMERAL}]")
_ZH_NUMBER_RE = re.compile(f"\\d+(?:[.,]\\d+)*|[{_ZH_NUMERAL}]+")
# classifiers and units a counted numeral stands before (not 分 "十分" = very, not 点 "一点" =
# a little, not 角 "三角形" = triangle)
_ZH_COUNTED = set(
    "个只本元块毛米厘克斤吨升里岁天年月日周号时秒人名位辆张条支件次遍倍台页行层棵朵匹头双对套杯瓶碗盒包箱袋亩份道题种批组队班届根颗粒枚座间户篇首部场"
)
_ZH_WORDS = {"万一", "千万", "一一", "千千万万"}  # "in case", "must", "one by one", "countless"
_ZH_ALONE = set("二两三四五六七八九")


def _zh_value(run: str) -> int:
    if all(c in _ZH_DIGITS for c in run):  # 二〇二四: digit by digit
        return int("".join(str(_ZH_DIGITS[c]) for c in run))
    total = section = number = 0
    for c in run:
        if c in _ZH_DIGITS:
            number = _ZH_DIGITS[c]
        elif c in _ZH_UNITS:
            section += (number or (1 if c == "十" else 0)) * _ZH_UNITS[c]
            number = 0
        else:
            total += (section + number) * _ZH_BIG[c]
            section = number = 0
    return total + section + number


def zh_numerals_as_digits(text: str) -> str:
    """A (folded) text with the Chinese numerals that are numbers in Arabic digits ("三十九个" →
    "39个", "第三" → "第3", "3万" → "30000"), so both spellings give the same shingles and numbers."""
    if text.isascii() or not _ZH_ANY.search(text):
        return text
    edits: list[tuple[int, int, str]] = []
    digits: tuple[int, int] | None = None  # span of the last Arabic number
    for m in _ZH_NUMBER_RE.finditer(text):
        run = m.group()
        if run[0].isdigit():
            digits = m.span()
            continue
        start, nxt = m.start(), text[m.end() : m.end() + 1]
        if run[-1] == "千" and nxt in ("克", "米", "瓦"):  # 三千克 = 3 kg
            run, nxt = run[:-1], "千"
            if not run:
                continue
        end = start + len(run)
        if digits is not None and digits[1] == start and all(c in _ZH_UNITS or c in _ZH_BIG for c in run):
            # 3万 = 30000, 1.5亿 = 150000000
            v = float(text[digits[0] : digits[1]].replace(",", "")) * _zh_value("一" + run)
            edits.append((digits[0], end, (str(int(v)) if v.is_integer() else repr(v)) + _gap(text, end)))
            continue
        # a lone 二…九 or 两 is a number wherever it stands (三角形 reads 3角形 in both twins, and an
        # edit next to it cannot flip it); a lone 一, 十 or 零 only before a classifier or after 第
        counted = run in _ZH_ALONE or nxt in _ZH_COUNTED or nxt == "千" or text[start - 1 : start] == "第"
        if run in _ZH_WORDS or run in "百千万亿" or not (counted or len(run) > 1):
            continue
        edits.append((start, end, str(_zh_value(run)) + _gap(text, end)))
    if not edits:
        return text
    parts, last = [], 0
    for start, end, digits_text in edits:
        parts += [text[last:start], digits_text]
        last = end
    return "".join(parts) + text[last:]


def _gap(text: str, end: int) -> str:
    """A space after a converted numeral that digits follow: "15.41亿21年" is two numbers, as its twin
    "15.41亿，21年" is, not one "154100000021"."""
    return " " if text[end : end + 1].isdigit() else ""


# A "1" that is part of a number ("21个", "2.1个", "2,1个") is not the article; a clause comma before
# it is ("，一个" folds to ",1个" and must read as "一个" does without the comma).
_ONE_COUNTED = re.compile(f"(?<![\\d第])(?<!\\d[.,])1(?=[{''.join(sorted(_ZH_COUNTED))}])")
# A comma inside a run of digits is a thousands separator only before exactly three digits; else it
# separates two numbers ("1541000000,21" from "15.41亿，21"), as a space would.
_LIST_COMMA_RE = re.compile(r",(?!\d{3}(?!\d))")


def number_key(text: str) -> int:
    """Hash of the doc's number sequence (0 when it has none) in the folded text: "40,000", "40000"
    and "４０，０００" are the same number, and so are "两个" and "2个"."""
    return _number_key(zh_numerals_as_digits(fold_text(text)))


def _number_key(folded: str) -> int:
    """number_key of a folded text whose Chinese numerals are already digits. A count of one before a
    Chinese classifier ("一个", "1本") is the article "a", not a number: it reads the same either way
    and a one-character edit ("一个" → "这个") cannot flip the number check."""
    if not folded.isascii() and "1" in folded:
        folded = _ONE_COUNTED.sub("", folded)
    nums = _NUMBER_RE.findall(folded)
    if not nums:
        return 0
    if "," in folded:
        nums = [y for x in nums for y in (_LIST_COMMA_RE.split(_THOUSANDS_RE.sub("", x)) if "," in x else (x,))]
    return xxhash.xxh64_intdigest("\x1f".join(nums))


_ROLL = np.uint64(0x9E3779B97F4A7C15)
_H = xxhash.xxh64_intdigest


def _plan(text: str, params: ShingleParams) -> tuple[np.ndarray, int, int, int]:
    """(token hashes or the one exact hash, n (0 = exact), mode, number salt) of one doc."""
    folded = zh_numerals_as_digits(fold_text(text))
    if folded.isascii():  # canonical() then tokenize() split the same text twice
        tokens, n_cjk = _ascii_tokens(folded), 0
    else:
        tokens, n_cjk = tokenize(canonical(folded, params.strip_diacritics))
    cjk = n_cjk * 2 >= len(tokens) and n_cjk > 0
    n = params.char_ngram if cjk else params.ngram
    salt = _number_key(folded) if params.numbers_must_match else 0
    if len(tokens) < max(n, params.min_tokens):
        # too short for n-grams: exact match after canonicalization (raw text if nothing is left)
        return np.array([_H("\x00" + (" ".join(tokens) or text.strip()))], np.uint64), 0, MODE_EXACT, salt
    th = np.fromiter(map(_H, tokens), dtype=np.uint64, count=len(tokens))
    return th, n, MODE_CJK if cjk else MODE_WORD, salt


def _roll(th: np.ndarray, n: int) -> np.ndarray:
    """Hash of every n-gram: a polynomial of its token hashes, mod 2^64."""
    m = len(th) - n + 1
    arr = th[:m].copy()
    for k in range(1, n):
        arr *= _ROLL
        arr += th[k : k + m]
    return arr


def shingle_hashes(text: str, params: ShingleParams) -> tuple[np.ndarray, int]:
    """uint64 shingle hashes of shape (N, 1), as datatrove's signature step expects, and the mode used.

    Each token is hashed once (xxh64); an n-gram's hash is a polynomial of its token hashes
    (mod 2^64), which avoids joining and hashing every n-gram string.
    """
    th, n, mode, salt = _plan(text, params)
    arr = _roll(th, n) if n else th
    if salt:
        arr ^= np.uint64(salt)
    return arr.reshape((-1, 1)), mode


def batch_shingle_hashes(texts: list[str], params: ShingleParams) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Shingles of many docs at once: (flat uint64 hashes, start offset of each doc, modes).

    Same values as `shingle_hashes` doc by doc; the n-gram rolling runs once over the
    concatenated token hashes, so numpy's per-call overhead is paid per batch, not per doc.
    """
    plans = [_plan(t, params) for t in texts]
    modes = [p[2] for p in plans]
    lens = np.array([len(p[0]) for p in plans], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(plans) else np.zeros(0, np.int64)
    flat = np.concatenate([p[0] for p in plans]) if plans else np.zeros(0, np.uint64)
    ns = np.array([p[1] for p in plans], dtype=np.int64)
    salts = np.array([p[3] for p in plans], dtype=np.uint64)
    keep = np.ones(len(flat), dtype=bool)  # exact docs keep their one value; n-gram docs lose the last n-1
    out = flat.copy()
    for n in np.unique(ns[ns > 0]):
        docs = np.flatnonzero(ns == n)
        rolled = _roll(np.concatenate([flat, np.zeros(n - 1, np.uint64)]), int(n))
        member = np.repeat(ns == n, lens)
        out[member] = rolled[member]
        ends = starts[docs] + lens[docs]
        for k in range(1, int(n)):
            keep[ends - k] = False
    out_lens = np.where(ns > 0, lens - ns + 1, lens)
    doc_of = np.repeat(np.arange(len(plans)), lens)[keep]
    out = out[keep] ^ salts[doc_of]
    offsets = np.concatenate([[0], np.cumsum(out_lens)[:-1]]) if len(plans) else np.zeros(0, np.int64)
    return out, offsets, modes
