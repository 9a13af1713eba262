"""MinHash signature step: datatrove's MinhashDedupSignature with our shingler and a position sidecar.

Why not the stock step: its spaCy word tokenizer is slow and blind to CJK and numbers, so
`builder.curate.shingles` shingles instead, and signatures are computed and written in bulk
(same `.sig` files). Each rank also writes `ids/{rank:05d}.parquet` (id, src file, line, in
stream order) so the winner step maps doc indices back to prompts without re-reading inputs,
and, for verification in the buckets step, every doc's full signature (`fullsigs/{rank}.npy`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.typeshelper import StatHints
from datatrove.utils.word_tokenizers import WordTokenizer

from builder.curate.shingles import (
    MODE_CJK,
    MODE_EXACT,
    MODE_WORD,
    ShingleParams,
    batch_shingle_hashes,
    shingle_hashes,
)

_SIG_BATCH = 4096  # docs per batched signature computation
# shingles x hashes per numpy product: 512 KiB of uint64 stays in a core's L2 cache, so the multiply, add
# and min passes run from cache, not memory (40k real prompts: 2.0 -> 0.25 CPU-s; 32 MiB chunks before)
_MINHASH_CELLS = 1 << 16
# stat name per shingle mode, summed by the orchestrator from datatrove's per-rank stats files
MODE_STATS = {MODE_WORD: "shingles_word", MODE_CJK: "shingles_cjk_chars", MODE_EXACT: "shingles_exact_short"}


class PositionedMinhashSignature(MinhashDedupSignature):
    """datatrove's signature step with a pluggable shingler and an id/position sidecar per rank."""

    name = "🎯 MinHash stage 1 (positions)"

    def __init__(
        self,
        output_folder: DataFolderLike,
        ids_folder: DataFolderLike,
        config: MinhashConfig,
        shingles: ShingleParams | None,
        language: str = "eng",
        vectorized: bool = True,
        fullsig_folder: DataFolderLike | None = None,
    ):
        # a fast shingler needs no word tokenizer: skip loading spaCy
        super().__init__(output_folder, config, language=_NullTokenizer() if shingles else language)
        self.ids_folder = get_datafolder(ids_folder)
        self.shingles = shingles
        self.vectorized = vectorized
        self.fullsig_folder = get_datafolder(fullsig_folder) if fullsig_folder else None
        self._modes = [0, 0, 0]

    @property
    def parameters(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = super().parameters
        return (a | np.uint64(1), b) if self.shingles else (a, b)  # multiply-shift needs an odd multiplier

    def _minhash(self, shingles: np.ndarray) -> np.ndarray:
        """MinHash row of one doc with multiply-shift permutations ((a*x + b) mod 2^64, high bits) instead
        of datatrove's mod-Mersenne ones: same LSH behaviour without a 64-bit modulo (~5x faster)."""
        a, b = self.parameters
        mins = (shingles * a + b).min(axis=0)
        mins >>= self._shift
        return mins.astype(self.config.hash_config.np_dtype)

    @property
    def _shift(self) -> np.uint64:
        # keep the high (good) bits of the multiply-shift hash, below datatrove's reader cut-off:
        # read_sigs stops at the first value >= 2**61-1 (64-bit) or 2**32-1 (32-bit)
        return np.uint64(33 if self.config.hash_config.precision == 32 else 4)

    def _minhash_batch(self, texts: list[str]) -> np.ndarray:
        """`_minhash` of many docs: one (shingles x hashes) product per chunk, min per doc by reduceat."""
        flat, offsets, modes = batch_shingle_hashes(texts, self.shingles)
        for m in modes:
            self._modes[m] += 1
        a, b = self.parameters
        ends = np.append(offsets[1:], len(flat))
        out = np.empty((len(texts), self.num_hashes), self.config.hash_config.np_dtype)
        lo_doc = 0
        while lo_doc < len(texts):  # chunks of whole docs, ~_MINHASH_CELLS cells each (bounded memory)
            hi_doc = int(np.searchsorted(ends, offsets[lo_doc] + _MINHASH_CELLS // self.num_hashes, "right"))
            hi_doc = max(hi_doc, lo_doc + 1)
            lo, hi = offsets[lo_doc], ends[hi_doc - 1]
            phv = flat[lo:hi, None] * a
            phv += b
            mins = np.minimum.reduceat(phv, offsets[lo_doc:hi_doc] - lo, axis=0)
            mins >>= self._shift
            out[lo_doc:hi_doc] = mins
            lo_doc = hi_doc
        return out

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        if self.shingles is None:
            return super().get_signature(shingles)
        return self._minhash(shingles).reshape(self.config.num_buckets, -1).tolist()

    def get_shingles(self, text: str) -> np.ndarray:
        if self.shingles is None:
            return super().get_shingles(text)
        arr, mode = shingle_hashes(text, self.shingles)
        self._modes[mode] += 1
        return arr

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> None:
        ids: list[str] = []
        srcs: list[str] = []
        lines: list[int] = []

        def tap() -> DocumentsPipeline:
            # doc_idx in the .sig files is the position in this stream, so the lists line up with it
            for doc in data:
                ids.append(doc.id)
                srcs.append(doc.metadata["src"])
                lines.append(doc.metadata["line"])
                yield doc

        if self.shingles is None or not self.vectorized:
            super().run(tap(), rank, world_size)
        else:
            self._run_vectorized(tap(), rank)
        for mode, count in enumerate(self._modes):
            if count:
                self.stat_update(MODE_STATS[mode], value=count)
        table = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "src": pa.array(srcs, pa.string()).dictionary_encode(),
                "line": pa.array(lines, pa.int64()),
            }
        )
        with self.ids_folder.open(f"{rank:05d}.parquet", "wb") as f:
            pq.write_table(table, f)

    def _run_vectorized(self, data: DocumentsPipeline, rank: int) -> None:
        """Same files as datatrove's run() (per-bucket records sorted by (hashes, doc_idx)), but written
        in bulk: the stock loop packs and writes one record per doc per bucket, then re-sorts
        structured arrays, which costs more than computing the signatures."""
        blocks: list[np.ndarray] = []
        texts: list[str] = []
        with self.track_time():
            for doc in data:
                texts.append(doc.text)
                if len(texts) == _SIG_BATCH:
                    blocks.append(self._minhash_batch(texts))
                    texts = []
            if texts:
                blocks.append(self._minhash_batch(texts))
            dtype = self.config.hash_config.np_dtype
            sigs = np.concatenate(blocks) if blocks else np.zeros((0, self.num_hashes), dtype)
            self.stat_update(StatHints.total, value=len(sigs))  # once, not per doc
            doc_idx = np.arange(len(sigs), dtype="<u4")  # every doc gets a signature with our shingler
            r = self.config.hashes_per_bucket
            fmt = f"<{self.config.hash_config.struct_format}"
            rec_dtype = np.dtype([(f"field{i + 1}", fmt) for i in range(r)] + [(f"field{r + 1}", "<u4")])
            for bi in range(self.config.num_buckets):
                cols = sigs[:, bi * r : (bi + 1) * r]
                order = _band_order(cols)
                rec = np.empty(len(sigs), rec_dtype)
                for i in range(r):
                    rec[f"field{i + 1}"] = cols[order, i]
                rec[f"field{r + 1}"] = doc_idx[order]
                with self.output_folder.open(f"bucket_{bi:03d}/{rank:05d}.minhash.sig", mode="wb") as f:
                    f.write(rec.tobytes())
            if self.fullsig_folder:  # every band of every doc, for candidate verification
                with self.fullsig_folder.open(f"{rank:05d}.npy", mode="wb") as f:
                    np.save(f, sigs)


def _band_order(cols: np.ndarray) -> np.ndarray:
    """Row order by (band values, row): np.lexsort over every column and the row number, which costs
    six times more. Rows are ordered by the first value alone, then only the rows that tie on it
    (the same band in near-duplicate docs, rare collisions) are re-sorted on every key in place:
    a tie group holds consecutive positions of the first-value order."""
    first = cols[:, 0]
    order = np.argsort(first)
    ranked = first[order]
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] = ranked[1:] == ranked[:-1]
    tied[:-1] |= tied[1:]
    if tied.any():
        sub = order[tied]
        order[tied] = sub[np.lexsort([sub] + [cols[sub, i] for i in reversed(range(cols.shape[1]))])]
    return order


class _NullTokenizer(WordTokenizer):
    """Stand-in word tokenizer (never used when our shingler is on)."""

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]
