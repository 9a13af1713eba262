"""Imported once in the forkserver that starts the responses stage's processes, so they start warm.

Each worker process of the stage (the `responses.workers` pool, or a datatrove task on the local
executor) otherwise imports the stage and builds the same things before its first batch: the two
tiktoken encodings (~0.5 CPU-s each from the tokenizer files, ~0.25 from builder/token_ranks.py's
disk cache), py3langid's models (~0.5 CPU-s from its lzma-packed file, ~0.1 from
builder/langid_model.py's unpacked copy) and
the stage's imports (~1.3 CPU-s). Built here, in the server, they are paid once and every
worker forked from it shares them. Only the default tokenizers are built; a recipe naming others
builds them in each worker, as before. A failure here is left to the workers to report.
Importing this module has no other effect.
"""

from __future__ import annotations

import contextlib

import pyarrow as pa

import builder.responses.stage  # noqa: F401
import builder.responses.verify  # noqa: F401
from builder import language, tokens
from builder.config.responses import ResponsesConfig
from builder.config.student import StudentConfig

with contextlib.suppress(Exception):  # e.g. a tokenizer package missing: each worker says so itself
    for _name in {ResponsesConfig.model_fields["teacher_tokenizer"].default, StudentConfig.model_fields["tokenizer"].default}:
        tokens.count_tokens(_name, ["warm"])
    language.preload_models()
# pyarrow imports pandas (~0.2 CPU-s) at the first array it builds from Python values, as every
# worker does: done here, once.
pa.array([])
