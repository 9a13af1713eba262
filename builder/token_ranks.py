"""What a tiktoken encoding is built from in a tokenizer.json, cached on disk: the BPE ranks as
bytes, the added tokens, and the file's pre-tokenizer and normalizer sections.

Building them from a tokenizer.json costs ~0.5 CPU-s an encoding (parsing 7-11 MB of JSON, then
mapping ~150k vocabulary pieces back to bytes), in every process that counts tokens: the
responses stage's forkserver pays it before any task starts, so a multi-task run waits for it.
Read back from this cache it costs ~0.03 s. The file is plain data, never unpickled: a header
line of JSON, the pieces' lengths and ranks as arrays, the pieces' bytes, and a sha256 of all of
that; a file that fails the check (a crash mid-write, a disk error) is built again. Its name
holds the pinned tokenizer file's digest and derivation, so another tokenizer never reads it.
Only what the file says is cached: the pattern tiktoken gets is derived from these sections by
the code of the day (builder/tokens.py), never read back.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from builder.files import atomic_write_bytes

FORMAT = b"answer-distill tiktoken ranks 1\n"


class Inputs(NamedTuple):
    ranks: dict[bytes, int]  # piece bytes → rank
    specials: dict[str, int]  # added token → id
    sections: dict[str, Any]  # the file's "pre_tokenizer" and "normalizer"


def byte_decoder() -> dict[str, int]:
    """GPT-2 byte-level alphabet: printable stand-in character -> the byte it encodes."""
    keep = [
        *range(ord("!"), ord("~") + 1),
        *range(0xA1, 0xAC + 1),
        *range(0xAE, 0xFF + 1),
    ]
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars, strict=True)}


def byte_ranks(vocab: dict[str, int]) -> dict[bytes, int]:
    """A byte-level BPE vocabulary (pieces in the stand-in characters) with its pieces as bytes:
    each character mapped in C (str.translate), not by a Python loop per piece."""
    to_byte = str.maketrans({ch: chr(b) for ch, b in byte_decoder().items()})
    return {piece.translate(to_byte).encode("latin-1"): rank for piece, rank in vocab.items()}


def _encode(inp: Inputs) -> bytes:
    pieces = list(inp.ranks)
    lengths = array.array("I", map(len, pieces))
    ranks = array.array("I", inp.ranks.values())
    head = json.dumps({"specials": inp.specials, "sections": inp.sections, "n": len(pieces)})
    if sys.byteorder != "little":
        lengths.byteswap()
        ranks.byteswap()
    body = FORMAT + head.encode() + b"\n" + lengths.tobytes() + ranks.tobytes() + b"".join(pieces)
    return body + hashlib.sha256(body).digest()


def _decode(blob: bytes) -> Inputs | None:
    """The inputs in `blob`, or None if it is not a whole file of this format."""
    body, digest = blob[:-32], blob[-32:]
    if not body.startswith(FORMAT) or hashlib.sha256(body).digest() != digest:
        return None
    end = body.index(b"\n", len(FORMAT))
    head = json.loads(body[len(FORMAT) : end])
    n, at = head["n"], end + 1
    lengths, ranks = array.array("I"), array.array("I")
    lengths.frombytes(body[at : at + 4 * n])
    ranks.frombytes(body[at + 4 * n : at + 8 * n])
    if sys.byteorder != "little":
        lengths.byteswap()
        ranks.byteswap()
    pieces = body[at + 8 * n :]
    ends = list(itertools.accumulate(lengths))
    if len(lengths) != n or len(ranks) != n or (ends[-1] if ends else 0) != len(pieces):
        return None
    starts = [0, *ends[:-1]]
    return Inputs(dict(zip(map(pieces.__getitem__, map(slice, starts, ends)), ranks)), head["specials"],
                  head["sections"])  # fmt: skip


def cached(folder: Path, key: str, build: Callable[[], Inputs]) -> Inputs:
    """The inputs under `key` in `folder`, or `build()` written there (where it can be) for next time."""
    path = folder / f"{key}.ranks"
    with contextlib.suppress(OSError):
        got = _decode(path.read_bytes())
        if got is not None:
            return got
    inp = build()
    with contextlib.suppress(OSError):  # a read-only cache: build every time, as before
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, _encode(inp))  # a concurrent writer's copy is the same
    return inp
