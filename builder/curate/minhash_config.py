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
from pydantic import BaseModel, Field

from builder.config.curate import NearDedupeSettings
from builder.curate.shingles import ShingleParams

# records per read in the buckets/cluster steps: datatrove's default of 5 makes those steps I/O-call bound
BUFFER = 10_000


class NearDedupeError(RuntimeError):
    """A near-dedupe step produced nothing or inconsistent output."""


class NearDedupeConfig(NearDedupeSettings):
    """The recipe's `curate.near_dedupe:` settings (same names), plus knobs only code and benchmarks set.

    Defaults chosen by measurement on real prompts with planted near duplicates
    (benchmarks/near_dedupe.py, 50k prompts): 5-grams, 20 bands x 5 hashes (LSH threshold
    ~ (1/20)^(1/5) = 0.55), candidates verified at >= 50% agreeing hashes: recall 0.997,
    precision 0.996. datatrove's 14x8 bands: recall 0.93; 3-grams: precision 0.993.
    """

    min_tokens: int = Field(0, ge=0, description="docs with fewer tokens (and always < n) match only exactly")
    hash_precision: Literal[32, 64] = Field(32, description="bits per MinHash value; 32 halves the bucket files")
    language: str = Field("eng", description="datatrove tokenizer language (tokenizer=datatrove only)")
    strip_diacritics: bool = Field(True, description="fold accents before shingling")
    text_key: str = Field("text", description="document text field in the input shards")
    id_key: str = Field("id", description="document id field in the input shards")
    vectorized: bool = Field(
        True, description="bulk-write signatures and match buckets with numpy (same files as the stock steps)"
    )
    write_kept: bool = Field(False, description="also run MinhashDedupFilter and write the kept docs (jsonl.gz)")

    def minhash_config(self) -> MinhashConfig:
        return MinhashConfig(
            n_grams=self.ngram,
            num_buckets=self.buckets,
            hashes_per_bucket=self.hashes_per_bucket,
            seed=self.seed,
            # only used by tokenizer=datatrove; numbers stay distinct either way
            norm_config=TextNormConfig(norm_numbers=not self.numbers_must_match),
            hash_config=HashConfig(precision=self.hash_precision, hash_fc="xxhash"),
        )

    def shingle_params(self) -> ShingleParams:
        return ShingleParams(
            ngram=self.ngram,
            char_ngram=self.char_ngram,
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
