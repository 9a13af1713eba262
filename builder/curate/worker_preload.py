"""Imported once in datatrove's forkserver, so its workers start warm.

datatrove's LocalPipelineExecutor runs each MinHash step in a `multiprocess` Pool started with
the forkserver method; the server preloads only `__main__`, so every worker process imported
the step modules (numpy, pyarrow, datatrove, our shingles) and, unpickling each step, ran
datatrove's dependency check, which scans every installed distribution's metadata for
"pyarrow" / "orjson": about 1.1 CPU-seconds per worker, several workers per curate run.
Imported in the server (`executors.preload_forkserver`, from near_dedupe), all of it is paid once and shared
by every worker forked from it. Importing this module has no other effect.
"""

from __future__ import annotations

import contextlib

import datatrove.pipeline.dedup  # noqa: F401
import datatrove.pipeline.readers  # noqa: F401
import datatrove.pipeline.writers  # noqa: F401

import builder.curate.minhash_buckets  # noqa: F401
import builder.curate.minhash_inputs  # noqa: F401
import builder.curate.minhash_signatures  # noqa: F401
import builder.curate.shingles  # noqa: F401

# Reading a parquet file makes pyarrow import pandas (~1 CPU-s): once here, not once per signature worker.
with contextlib.suppress(ImportError):
    import pandas  # noqa: F401

# datatrove's check is lru_cached per process: fill the cache here, for every worker forked later.
with contextlib.suppress(Exception):  # a private helper; if it moves, workers just check for themselves
    from datatrove.utils._import_utils import _is_distribution_available

    for _name in ("pyarrow", "orjson"):
        _is_distribution_available(_name)
