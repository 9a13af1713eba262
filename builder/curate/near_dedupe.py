"""Near-duplicate removal with datatrove's MinHash steps (signature -> buckets -> cluster).

Input: prompt shards (parquet or jsonl[.gz]) in winner-priority order, with `id` and `text`.
Output: `near_dups.parquet` (prompt_id, kept_prompt_id, cluster_id) for every removed doc.

What we change around datatrove, and why:
- the signature step uses `builder.curate.shingles` (fast, CJK-aware, number-preserving,
  short docs hashed whole) instead of the spaCy word tokenizer, and records each doc's id
  and (file, line) position in a sidecar so results can be mapped back without re-reading;
- datatrove's union-find roots clusters by union-by-size, not by input order, so the kept
  doc is recomputed here as the earliest (file, line) of each cluster, and the `.remove`
  files are rewritten to match (MinhashDedupFilter then agrees with near_dups.parquet);
- every step is checked: all ranks completed, the signature step read > 0 documents, the
  buckets step wrote one `.dups` file per bucket, cluster ids point at real docs.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader, ParquetReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import TextNormConfig
from datatrove.utils.typeshelper import StatHints
from datatrove.utils.word_tokenizers import WordTokenizer
from pydantic import BaseModel, ConfigDict, Field

from builder.curate.shingles import (
    MODE_CJK,
    MODE_EXACT,
    MODE_WORD,
    ShingleParams,
    batch_shingle_hashes,
    shingle_hashes,
)
from builder.executors import ExecutorConfig, make_executor, run_executor

NEAR_DUPS_FILE = "near_dups.parquet"
# records per read in the buckets/cluster steps: datatrove's default of 5 makes those steps I/O-call bound
_BUFFER = 10_000
_KEY_MULT = np.uint64(0x9E3779B97F4A7C15)
_SIG_BATCH = 4096  # docs per batched signature computation
_MINHASH_CELLS = 1 << 22  # shingles x hashes per numpy product (32 MiB of uint64)
_MODE_STATS = {MODE_WORD: "shingles_word", MODE_CJK: "shingles_cjk_chars", MODE_EXACT: "shingles_exact_short"}


class NearDedupeError(RuntimeError):
    """A near-dedupe step produced nothing or inconsistent output."""


class NearDedupeConfig(BaseModel):
    """MinHash near-dedupe settings (the recipe's `curate.near_dedupe:` block).

    Defaults chosen by measurement on real prompts with planted near duplicates
    (benchmarks/near_dedupe.py, 50k prompts): 5-grams, 20 bands x 5 hashes (LSH threshold
    ~ (1/20)^(1/5) = 0.55), candidates verified at >= 50% agreeing hashes: recall 0.997,
    precision 0.996. datatrove's 14x8 bands: recall 0.93; 3-grams: precision 0.993.
    """

    model_config = ConfigDict(extra="forbid")

    ngram_size: int = Field(5, ge=1, description="word n-gram size for space-separated text")
    cjk_ngram_size: int = Field(5, ge=1, description="character n-gram size for Chinese/Japanese text")
    min_tokens: int = Field(0, ge=0, description="docs with fewer tokens (and always < n) match only exactly")
    num_buckets: int = Field(20, ge=1, description="LSH bands")
    hashes_per_bucket: int = Field(5, ge=1, description="rows per band")
    seed: int = 1
    hash_precision: Literal[32, 64] = Field(32, description="bits per MinHash value; 32 halves the bucket files")
    tokenizer: Literal["fast", "datatrove"] = Field(
        "fast", description="fast: our regex shingler; datatrove: MinhashDedupSignature's own (spaCy for English)"
    )
    language: str = Field("eng", description="datatrove tokenizer language (tokenizer=datatrove only)")
    numbers_must_match: bool = Field(True, description="docs whose number sequences differ never merge")
    strip_diacritics: bool = True
    text_key: str = "text"
    id_key: str = "id"
    vectorized: bool = Field(
        True, description="bulk-write signatures and match buckets with numpy (same files as the stock steps)"
    )
    verify_threshold: float | None = Field(
        0.5,
        ge=0,
        le=1,
        description="drop candidate pairs whose full MinHash signatures agree on fewer hashes (None: datatrove's"
        " behaviour, any colliding band merges); needs vectorized=True",
    )
    write_kept: bool = Field(False, description="also run MinhashDedupFilter and write the kept docs (jsonl.gz)")

    def minhash_config(self) -> MinhashConfig:
        return MinhashConfig(
            n_grams=self.ngram_size,
            num_buckets=self.num_buckets,
            hashes_per_bucket=self.hashes_per_bucket,
            seed=self.seed,
            # only used by tokenizer=datatrove; numbers stay distinct either way
            norm_config=TextNormConfig(norm_numbers=not self.numbers_must_match),
            hash_config=HashConfig(precision=self.hash_precision, hash_fc="xxhash"),
        )

    def shingle_params(self) -> ShingleParams:
        return ShingleParams(
            ngram_size=self.ngram_size,
            cjk_ngram_size=self.cjk_ngram_size,
            min_tokens=self.min_tokens,
            numbers_must_match=self.numbers_must_match,
            strip_diacritics=self.strip_diacritics,
        )


class NearDedupeResult(BaseModel):
    docs_in: int
    removed: int
    kept: int
    clusters: int
    near_dups_path: Path
    kept_dir: Path | None = None
    step_seconds: dict[str, float]
    shingle_modes: dict[str, int]


def _position_adapter(self: Any, data: dict, path: str, id_in_file: int) -> dict:
    """Reader adapter: keep only text, id and the doc's (file, line) position (small docs, no abs paths)."""
    text = data.get(self.text_key)
    return {
        "text": text if isinstance(text, str) else "",
        "id": str(data.get(self.id_key, f"{path}/{id_in_file}")),
        "metadata": {"src": path, "line": id_in_file},
    }


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
            phv = flat[lo:hi, None] * a + b
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
                self.stat_update(_MODE_STATS[mode], value=count)
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
                order = np.lexsort([doc_idx] + [cols[:, i] for i in reversed(range(r))])
                rec = np.empty(len(sigs), rec_dtype)
                for i in range(r):
                    rec[f"field{i + 1}"] = cols[order, i]
                rec[f"field{r + 1}"] = doc_idx[order]
                with self.output_folder.open(f"bucket_{bi:03d}/{rank:05d}.minhash.sig", mode="wb") as f:
                    f.write(rec.tobytes())
            if self.fullsig_folder:  # every band of every doc, for candidate verification
                with self.fullsig_folder.open(f"{rank:05d}.npy", mode="wb") as f:
                    np.save(f, sigs)


class VectorizedMinhashBuckets(MinhashDedupBuckets):
    """datatrove's buckets step, vectorized for the plain case (one task per bucket, no index).

    Same input (.sig files) and output (`{bucket:05d}_00.dups`, records (file, doc, file, doc) of
    consecutive equal band signatures in (signature, file, doc) order). The stock step merges
    the files with a Python heap, ~8 us per record: 1M docs x 20 bands would take minutes.
    """

    def __init__(
        self,
        input_folder: DataFolderLike,
        output_folder: DataFolderLike,
        config: MinhashConfig,
        lines_to_buffer: int = _BUFFER,
        fullsig_folder: DataFolderLike | None = None,
        verify_threshold: float | None = None,
    ):
        super().__init__(input_folder, output_folder, config=config, lines_to_buffer=lines_to_buffer)
        self.fullsig_folder = get_datafolder(fullsig_folder) if fullsig_folder else None
        self.verify_threshold = verify_threshold

    def _verified(self, pairs: np.ndarray) -> np.ndarray:
        """Keep pairs whose full signatures agree on >= verify_threshold of all hashes (an estimate
        of their Jaccard similarity): one colliding band alone lets ~2% of J=0.25 pairs through."""
        if self.fullsig_folder is None or self.verify_threshold is None or not len(pairs):
            return pairs
        left = np.empty((len(pairs), self.config.num_buckets * self.config.hashes_per_bucket), np.uint64)
        right = np.empty_like(left)
        for f in np.unique(pairs[:, [0, 2]]):
            with self.fullsig_folder.open(f"{int(f):05d}.npy", "rb") as fh:
                sigs = np.load(fh)
            for side, col in ((left, 0), (right, 2)):
                sel = pairs[:, col] == f
                side[sel] = sigs[pairs[sel, col + 1]]
        agree = (left == right).mean(axis=1)
        keep = agree >= self.verify_threshold
        self.stat_update("rejected_matches", value=int((~keep).sum()))
        return pairs[keep]

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> None:
        if self.index_folder or self.create_index_name or world_size != self.config.num_buckets:
            return super().run(data, rank, world_size)
        r = self.config.hashes_per_bucket
        fmt = f"<{self.config.hash_config.struct_format}"
        rec_dtype = np.dtype([(f"h{i}", fmt) for i in range(r)] + [("doc", "<u4")])
        with self.track_time():
            parts, files = [], []
            for name in self.input_folder.list_files(subdirectory=f"bucket_{rank:03d}"):
                with self.input_folder.open(name, "rb") as f:
                    recs = np.frombuffer(f.read(), dtype=rec_dtype)
                parts.append(recs)
                files.append(np.full(len(recs), int(Path(name).name.split(".")[0]), dtype="<u4"))
            recs = np.concatenate(parts) if parts else np.zeros(0, rec_dtype)
            file_id = np.concatenate(files) if files else np.zeros(0, "<u4")
            key = np.zeros(len(recs), np.uint64)
            for i in range(r):  # one 64-bit key per band signature; equality re-checked on all fields below
                key = key * _KEY_MULT + recs[f"h{i}"].astype(np.uint64)
            order = np.lexsort((recs["doc"], file_id, key))
            same = key[order][1:] == key[order][:-1]
            for i in range(r):
                col = recs[f"h{i}"][order]
                same &= col[1:] == col[:-1]
            first, second = order[:-1][same], order[1:][same]
            pairs = np.stack([file_id[first], recs["doc"][first], file_id[second], recs["doc"][second]], axis=1)
            pairs = self._verified(pairs.astype(np.int64))
            with self.output_folder.open(f"{rank:05d}_00.dups", mode="wb") as out_f:
                out_f.write(pairs.astype("<u4").tobytes())
            self.stat_update("total_matches", value=int(len(pairs)))


class _NullTokenizer(WordTokenizer):
    """Stand-in word tokenizer (never used when our shingler is on)."""

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


def _input_spec(input_dir: Path) -> tuple[str, list[str]]:
    """(glob pattern, sorted relative files) of the shards; exactly one format per folder."""
    folder = get_datafolder(str(input_dir))
    parquet = folder.list_files(glob_pattern="**/*.parquet")
    jsonl = folder.list_files(glob_pattern="**/*.jsonl*")
    if parquet and jsonl:
        raise NearDedupeError(f"{input_dir}: mixes parquet and jsonl shards; give near_dedupe one format")
    if not parquet and not jsonl:
        raise NearDedupeError(f"{input_dir}: no *.parquet or *.jsonl[.gz] shards to near-dedupe")
    return ("**/*.parquet", parquet) if parquet else ("**/*.jsonl*", jsonl)


def _reader(input_dir: Path, glob: str, cfg: NearDedupeConfig, positions: bool) -> Any:
    kwargs: dict[str, Any] = {"text_key": cfg.text_key, "id_key": cfg.id_key, "glob_pattern": glob}
    if positions:
        kwargs["adapter"] = _position_adapter
    if glob.endswith(".parquet"):
        # signatures need only text and id: skip decoding the other columns
        reader = ParquetReader(str(input_dir), read_metadata=not positions, **kwargs)
    else:
        reader = JsonlReader(str(input_dir), compression="infer", **kwargs)
    reader.add_file_path = False  # else every doc carries the absolute input path (ParquetReader has no kwarg)
    return reader


def _read_sidecars(ids_dir: Path, tasks: int) -> list[pa.Table]:
    tables = []
    for rank in range(tasks):
        path = ids_dir / f"{rank:05d}.parquet"
        if not path.exists():
            raise NearDedupeError(f"signature rank {rank} wrote no id sidecar ({path}); re-run without resume")
        tables.append(pq.read_table(path))
    return tables


def _order_keys(tables: list[pa.Table], files: list[str]) -> np.ndarray:
    """Global input order of every doc: (index of its file in sorted order) << 32 | line."""
    file_index = {f: i for i, f in enumerate(files)}
    keys = []
    for t in tables:
        src = t.column("src").combine_chunks()
        if isinstance(src, pa.DictionaryArray):
            lut = np.array([file_index[s] for s in src.dictionary.to_pylist()], dtype=np.uint64)
            fidx = lut[src.indices.to_numpy(zero_copy_only=False)] if len(src) else np.zeros(0, np.uint64)
        else:
            fidx = np.array([file_index[s] for s in src.to_pylist()], dtype=np.uint64)
        keys.append((fidx << np.uint64(32)) | t.column("line").to_numpy().astype(np.uint64))
    return np.concatenate(keys) if keys else np.zeros(0, np.uint64)


def _resolve_winners(
    clusters_dir: Path, tables: list[pa.Table], keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(removed doc, its winner, cluster id) as global doc indices, winner = earliest doc of the cluster."""
    sizes = np.array([t.num_rows for t in tables], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    gs, cids = [], []
    for path in sorted(clusters_dir.glob("*.clusters")):
        rank = int(path.name.split(".")[0])
        pairs = np.frombuffer(path.read_bytes(), dtype="<u4").reshape(-1, 2).astype(np.int64)
        if rank >= len(tables) or (len(pairs) and pairs[:, 0].max() >= sizes[rank]):
            raise NearDedupeError(
                f"{path}: cluster refers to a doc the signature step never saw (rank {rank}); "
                "signature and cluster outputs are out of sync — re-run without resume"
            )
        gs.append(pairs[:, 0] + offsets[rank])
        cids.append(pairs[:, 1])
    if not gs:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    g = np.concatenate(gs)
    cid = np.concatenate(cids)
    order = np.lexsort((keys[g], cid))
    g, cid = g[order], cid[order]
    first = np.ones(len(cid), dtype=bool)
    first[1:] = cid[1:] != cid[:-1]
    winner_of_cluster = np.repeat(g[first], np.diff(np.flatnonzero(np.append(first, True))))
    removed = ~first
    return g[removed], winner_of_cluster[removed], cid[removed]


def _rewrite_remove_files(clusters_dir: Path, removed: np.ndarray, offsets: np.ndarray) -> None:
    """Make datatrove's `.remove` files agree with our winner choice (MinhashDedupFilter reads them)."""
    for old in clusters_dir.glob("*.remove"):
        old.unlink()
    ranks = np.searchsorted(offsets, removed, side="right") - 1
    for rank in np.unique(ranks):
        docs = np.sort(removed[ranks == rank] - offsets[rank]).astype("<u4")
        (clusters_dir / f"{int(rank):06d}.remove").write_bytes(docs.tobytes())


def _stat_total(logs: Path, key: str) -> int:
    """Sum a stat over the per-rank stats files datatrove writes (all executors write these)."""
    import json

    total = 0
    for f in (logs / "stats").glob("*.json"):
        for step in json.loads(f.read_text()):
            entry = step.get("stats", {}).get(key)
            if entry is not None:
                total += int(entry["total"] if isinstance(entry, dict) else entry)
    return total


def near_dedupe(
    input_dir: Path,
    work_dir: Path,
    cfg: NearDedupeConfig | None = None,
    executor: ExecutorConfig | None = None,
    resume: bool = False,
) -> NearDedupeResult:
    """Find near-duplicate prompts in `input_dir` and write `work_dir/near_dups.parquet`.

    Without `resume`, earlier outputs in `work_dir` are cleared first (datatrove would
    otherwise skip "completed" ranks and reuse stale signatures).
    """
    cfg = cfg or NearDedupeConfig()
    executor = executor or ExecutorConfig()
    input_dir, work_dir = Path(input_dir), Path(work_dir)
    glob, files = _input_spec(input_dir)
    mh = cfg.minhash_config()
    base = work_dir / "minhash"
    logs = work_dir / "logs"
    if not resume:
        for d in (base, logs, work_dir / "kept"):
            shutil.rmtree(d, ignore_errors=True)
        (work_dir / NEAR_DUPS_FILE).unlink(missing_ok=True)
    sig_dir, ids_dir, dups_dir, clusters_dir, full_dir = (
        base / x for x in ("signatures", "ids", "buckets", "clusters", "fullsigs")
    )
    sig_tasks = max(1, min(executor.tasks, len(files)))  # a rank without files would only add empty outputs
    shingles = cfg.shingle_params() if cfg.tokenizer == "fast" else None
    # full signatures (for candidate verification) come from our vectorized signature path only
    full = str(full_dir) if shingles and cfg.vectorized else None

    sig = make_executor(
        [
            _reader(input_dir, glob, cfg, positions=True),
            PositionedMinhashSignature(str(sig_dir), str(ids_dir), mh, shingles, cfg.language, cfg.vectorized, full),
        ],
        executor,
        logs / "signature",
        "near_dedupe_signature",
        tasks=sig_tasks,
    )
    buckets = make_executor(
        [
            VectorizedMinhashBuckets(str(sig_dir), str(dups_dir), mh, _BUFFER, full, cfg.verify_threshold)
            if cfg.vectorized
            else MinhashDedupBuckets(str(sig_dir), str(dups_dir), config=mh, lines_to_buffer=_BUFFER)
        ],
        executor,
        logs / "buckets",
        "near_dedupe_buckets",
        depends=_dep(sig, executor),
        tasks=mh.num_buckets,
    )
    cluster = make_executor(
        [
            MinhashDedupCluster(
                str(dups_dir), str(clusters_dir), config=mh, save_cluster_id=True, lines_to_buffer=_BUFFER
            )
        ],
        executor,
        logs / "cluster",
        "near_dedupe_cluster",
        depends=_dep(buckets, executor),
        tasks=1,
    )

    seconds: dict[str, float] = {}
    if executor.kind == "slurm":
        # one chained submission; wait on the last job, then check every step's ranks
        t0 = time.perf_counter()
        run_executor(cluster, executor)
        for ex in (sig, buckets):
            run_executor_check(ex)
        seconds["all_steps"] = time.perf_counter() - t0
    else:
        for name, ex in (("signature", sig), ("buckets", buckets), ("cluster", cluster)):
            t0 = time.perf_counter()
            run_executor(ex, executor)
            seconds[name] = time.perf_counter() - t0
            if name == "signature":
                _check_signature(logs / "signature", input_dir, files)
            elif name == "buckets":
                _check_buckets(dups_dir, mh.num_buckets)
    if executor.kind == "slurm":
        _check_signature(logs / "signature", input_dir, files)
        _check_buckets(dups_dir, mh.num_buckets)

    t0 = time.perf_counter()
    tables = _read_sidecars(ids_dir, sig_tasks)
    docs_in = sum(t.num_rows for t in tables)
    if docs_in == 0:
        raise NearDedupeError(f"near_dedupe: the signature step read 0 documents from {input_dir}")
    keys = _order_keys(tables, files)
    removed, winners, cids = _resolve_winners(clusters_dir, tables, keys)
    ids = pa.concat_arrays([t.column("id").combine_chunks() for t in tables])
    out_order = np.argsort(keys[removed], kind="stable")
    removed, winners, cids = removed[out_order], winners[out_order], cids[out_order]
    out = pa.table(
        {
            "prompt_id": ids.take(pa.array(removed)),
            "kept_prompt_id": ids.take(pa.array(winners)),
            "cluster_id": pa.array(cids, pa.int64()),
        }
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(out, work_dir / NEAR_DUPS_FILE)
    offsets = np.concatenate([[0], np.cumsum([t.num_rows for t in tables])])
    _rewrite_remove_files(clusters_dir, removed, offsets)
    seconds["resolve"] = time.perf_counter() - t0

    kept_dir = None
    if cfg.write_kept:
        kept_dir = work_dir / "kept"
        t0 = time.perf_counter()
        filt = make_executor(
            [
                # same reader, same files, same task count as the signature step: doc indices must line up
                _reader(input_dir, glob, cfg, positions=False),
                MinhashDedupFilter(str(clusters_dir)),
                JsonlWriter(str(kept_dir)),
            ],
            executor,
            logs / "filter",
            "near_dedupe_filter",
            tasks=sig_tasks,
        )
        run_executor(filt, executor)
        seconds["filter"] = time.perf_counter() - t0

    modes = {v: _stat_total(logs / "signature", v) for v in _MODE_STATS.values()}
    return NearDedupeResult(
        docs_in=docs_in,
        removed=len(removed),
        kept=docs_in - len(removed),
        clusters=int(len(np.unique(cids))),
        near_dups_path=work_dir / NEAR_DUPS_FILE,
        kept_dir=kept_dir,
        step_seconds=seconds,
        shingle_modes=modes,
    )


def _dep(ex: Any, executor: ExecutorConfig) -> Any:
    # Slurm chains jobs by dependency; local and Ray run the steps one after another here
    return ex if executor.kind == "slurm" else None


def run_executor_check(ex: Any) -> None:
    missing = ex.get_incomplete_ranks(skip_completed=True)
    if missing:
        raise NearDedupeError(f"{len(missing)} ranks of {ex.logging_dir.path} did not complete")


def _check_signature(logs: Path, input_dir: Path, files: list[str]) -> None:
    read = _stat_total(logs, "documents")
    if read == 0:
        raise NearDedupeError(
            f"near_dedupe: the MinHash signature step read 0 documents from {input_dir} "
            f"({len(files)} shard files); check that the shards hold a non-empty text column"
        )


def _check_buckets(dups_dir: Path, num_buckets: int) -> None:
    found = len(list(dups_dir.glob("*.dups")))
    if found < num_buckets:
        raise NearDedupeError(f"{dups_dir}: {found} .dups files for {num_buckets} buckets; the buckets step failed")


def run_near_dedupe(
    prompt_ids: list[str],
    texts: list[str],
    languages: list[str] | None,
    work_dir: Path,
    settings: Any = None,
    executor: Any = None,
) -> dict[str, str]:
    """In-memory entry for the curate stage: {removed prompt_id: kept prompt_id}.

    Rows must be in winner-priority order. `settings` / `executor` may be our configs or the
    recipe's NearDedupeSettings (mapped field by field) / ExecutorConfig.
    """
    work_dir = Path(work_dir)
    shards = work_dir / "input"
    shutil.rmtree(shards, ignore_errors=True)
    shards.mkdir(parents=True)
    cols: dict[str, Any] = {"id": pa.array(prompt_ids, pa.string()), "text": pa.array(texts, pa.string())}
    if languages is not None:
        cols["lang"] = pa.array(languages, pa.string())
    table = pa.table(cols)
    ex = executor_config(executor)
    n_files = max(1, min(ex.tasks, len(prompt_ids) // 10_000 or 1))  # one shard per task, but not tiny ones
    per = -(-len(prompt_ids) // n_files) or 1
    for i in range(n_files):
        pq.write_table(table.slice(i * per, per), shards / f"{i:05d}.parquet")
    res = near_dedupe(shards, work_dir, near_dedupe_config(settings), ex)
    out = pq.read_table(res.near_dups_path, columns=["prompt_id", "kept_prompt_id"]).to_pydict()
    return dict(zip(out["prompt_id"], out["kept_prompt_id"]))


def near_dedupe_config(settings: Any) -> NearDedupeConfig:
    """NearDedupeConfig from ours, a dict, or the recipe's NearDedupeSettings (ngram/buckets/char_ngram)."""
    if settings is None or isinstance(settings, NearDedupeConfig):
        return settings or NearDedupeConfig()
    raw = settings if isinstance(settings, dict) else settings.model_dump()
    renames = {"ngram": "ngram_size", "buckets": "num_buckets", "char_ngram": "cjk_ngram_size"}
    known = NearDedupeConfig.model_fields
    return NearDedupeConfig(**{renames.get(k, k): v for k, v in raw.items() if renames.get(k, k) in known})


def executor_config(settings: Any) -> ExecutorConfig:
    """ExecutorConfig from ours (the recipe's), a dict, or None (the default)."""
    if settings is None or isinstance(settings, ExecutorConfig):
        return settings or ExecutorConfig()
    raw = settings if isinstance(settings, dict) else settings.model_dump()
    return ExecutorConfig(**{k: v for k, v in raw.items() if v is not None})
