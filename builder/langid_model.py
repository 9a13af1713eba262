"""py3langid's model, its arrays kept uncompressed on disk after the first load.

The wheel ships the model LZMA-packed: unpacking it costs ~0.5 CPU-s in every process that
identifies a language (the responses stage's forkserver before any task starts, the variants
driver), against ~0.1 s to read the same arrays unpacked. The copy is an uncompressed .npz
(loaded with allow_pickle=False: plain arrays only) named after the package's version, the
packed file's size and the copy's own xxh3 digest, which is checked on every read: a damaged
or partial copy is unpacked and written again, never used.
"""

from __future__ import annotations

import array
import contextlib
import importlib.metadata
import io
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from builder.files import atomic_write_bytes

_KEYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")


def _packed() -> Path:
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    return Path(MODEL_DIR) / MODEL_FILE


def _unpack(path: Path) -> dict[str, np.ndarray]:
    import lzma

    with lzma.open(path) as src, np.load(io.BytesIO(src.read()), allow_pickle=False) as data:
        return {k: data[k] for k in _KEYS}


def _read(folder: Path, stem: str) -> dict[str, np.ndarray] | None:
    for path in folder.glob(f"{stem}-*.npz"):
        blob = path.read_bytes()
        if xxhash.xxh3_64_hexdigest(blob) != path.stem.rsplit("-", 1)[1]:
            continue
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            return {k: data[k] for k in _KEYS}
    return None


def _write(folder: Path, stem: str, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{stem}-*.npz"):  # a damaged copy
        old.unlink()
    atomic_write_bytes(folder / f"{stem}-{xxhash.xxh3_64_hexdigest(blob)}.npz", blob)


def arrays(folder: Path) -> dict[str, np.ndarray]:
    """The model's arrays: from the unpacked copy in `folder`, else unpacked (and copied there)."""
    packed = _packed()
    stem = f"py3langid-{importlib.metadata.version('py3langid')}-{packed.stat().st_size}"
    with contextlib.suppress(OSError, ValueError, KeyError):
        got = _read(folder, stem)
        if got is not None:
            return got
    out = _unpack(packed)
    with contextlib.suppress(OSError):  # a read-only cache: unpack every time, as before
        _write(folder, stem, out)
    return out


def identifier(folder: Path, **kwargs: Any) -> Any:
    """A py3langid LanguageIdentifier over the model's arrays (as the package builds it: the
    automaton's tables as `array.array`, read by its Python tokenizer loop)."""
    from py3langid.langid import LanguageIdentifier

    a = arrays(folder)
    return LanguageIdentifier(a["ptc"], a["pc"], a["classes"].tolist(), _stdlib(a["nextmove"]), a["out_feat"].tolist(),
                              tk_row=_stdlib(a["nextmove_row"]), **kwargs)  # fmt: skip


def _stdlib(a: np.ndarray) -> array.array:
    """An unsigned numpy array as the stdlib array of the same item size."""
    code = next(c for c in "BHILQ" if array.array(c).itemsize == a.dtype.itemsize)
    out = array.array(code)
    out.frombytes(np.ascontiguousarray(a).tobytes())
    return out
