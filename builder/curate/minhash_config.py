"""Settings, result and error types of MinHash near-dedupe.

Kept apart from the orchestrator (`near_dedupe.py`) so the stage modules (inputs, buckets,
winners) can share the error type and the read buffer size without importing it (no cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import TextNormConfig
from pydantic import BaseModel, ConfigDict, Field

from builder.curate.shingles import ShingleParams

# records per read in the buckets/cluster steps: datatrove's default of 5 makes those steps I/O-call bound
BUFFER = 10_000


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
