"""Shard discovery and datatrove readers for near-dedupe.

The signature step and the optional filter step must read the same files in the same
order with the same task count (datatrove's `.remove` files name docs by their index in a
rank's stream), so both build their reader here. The signature step's reader also tags each
doc with its (file, line) position, which the winner step uses to restore input order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datatrove.io import get_datafolder
from datatrove.pipeline.readers import JsonlReader, ParquetReader

from builder.curate.minhash_config import NearDedupeConfig, NearDedupeError


def position_adapter(self: Any, data: dict, path: str, id_in_file: int) -> dict:
    """Reader adapter: keep only text, id and the doc's (file, line) position (small docs, no abs paths)."""
    text = data.get(self.text_key)
    return {
        "text": text if isinstance(text, str) else "",
        "id": str(data.get(self.id_key, f"{path}/{id_in_file}")),
        "metadata": {"src": path, "line": id_in_file},
    }


def input_spec(input_dir: Path) -> tuple[str, list[str]]:
    """(glob pattern, sorted relative files) of the shards; exactly one format per folder."""
    folder = get_datafolder(str(input_dir))
    parquet = folder.list_files(glob_pattern="**/*.parquet")
    jsonl = folder.list_files(glob_pattern="**/*.jsonl*")
    if parquet and jsonl:
        raise NearDedupeError(f"{input_dir}: mixes parquet and jsonl shards; give near_dedupe one format")
    if not parquet and not jsonl:
        raise NearDedupeError(f"{input_dir}: no *.parquet or *.jsonl[.gz] shards to near-dedupe")
    return ("**/*.parquet", parquet) if parquet else ("**/*.jsonl*", jsonl)


def shard_reader(input_dir: Path, glob: str, cfg: NearDedupeConfig, positions: bool) -> Any:
    """datatrove reader over the shards; `positions` adds the (file, line) tags the signature step records."""
    kwargs: dict[str, Any] = {"text_key": cfg.text_key, "id_key": cfg.id_key, "glob_pattern": glob}
    if positions:
        kwargs["adapter"] = position_adapter
    if glob.endswith(".parquet"):
        # signatures need only text and id: skip decoding the other columns
        reader = ParquetReader(str(input_dir), read_metadata=not positions, **kwargs)
    else:
        reader = JsonlReader(str(input_dir), compression="infer", **kwargs)
    reader.add_file_path = False  # else every doc carries the absolute input path (ParquetReader has no kwarg)
    return reader
