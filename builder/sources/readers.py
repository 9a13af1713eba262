"""Raw row readers: local JSONL / JSON / parquet / CSV files and globs, and Hub datasets.

A reader yields ``RawRow`` items: the row dict and where it came from, or a ``BadRow`` for
input that cannot be parsed (bad JSON, bad bytes), so the stage can quarantine it with its
file:line instead of skipping it silently. Whole-source problems (missing file, unreachable
Hub id) are ``UserError``s: one line, what to do.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from builder.config.sources import SourceConfig
from builder.errors import UserError
from builder.recipe import Recipe
from builder.sources.paths import format_of, named_files


@dataclass(slots=True)
class RawRow:
    location: str  # file:line, file#row or hub-id#row
    row_id: str
    data: dict[str, Any]


@dataclass(slots=True)
class BadRow:
    location: str
    row_id: str
    reason: str  # machine-readable code
    detail: str


def _open_bytes(path: Path) -> io.BufferedIOBase:
    if path.name.endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


# A UTF-8 byte order mark (Windows editors, Excel exports): not part of the first row.
BOM = b"\xef\xbb\xbf"
# A cut or damaged .gz raises these mid-iteration (EOFError would reach click as "Aborted.").
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _jsonl_item(path: Path, lineno: int, line: bytes) -> RawRow | BadRow | None:
    """Line `lineno` of a JSONL file as a row, a BadRow, or None (a blank line)."""
    if lineno == 1 and line.startswith(BOM):
        line = line[len(BOM):]
    if not line.strip():
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        # orjson refuses bytes that are not UTF-8 too; which failure it was is asked only here
        # (decoding every line first cost a pass over each row's bytes)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as u:
            return BadRow(f"{path}:{lineno}", str(lineno), "bad_utf8", f"byte {u.start} is not UTF-8; re-encode the file as UTF-8")
        return BadRow(f"{path}:{lineno}", str(lineno), "bad_json", f"{e}; fix or remove the line")
    if not isinstance(obj, dict):
        return BadRow(f"{path}:{lineno}", str(lineno), "not_an_object",
                      f"line is a JSON {type(obj).__name__}, expected an object")
    return RawRow(f"{path}:{lineno}", str(lineno), obj)


def _gzip_failure(path: Path, lines: int, e: BaseException) -> BadRow:
    cut = isinstance(e, EOFError)
    return BadRow(
        f"{path}:{lines + 1}", str(lines + 1), "truncated_file" if cut else "corrupt_file",
        f"{'the file ends mid-stream' if cut else 'bad gzip data'} ({e}) after {lines} lines; "
        "the rows before it are kept; re-download or re-compress the file",
    )


def _read_jsonl(path: Path) -> Iterator[RawRow | BadRow]:
    lineno = 0
    try:
        with _open_bytes(path) as fh:
            for lineno, line in enumerate(fh, 1):
                item = _jsonl_item(path, lineno, line)
                if item is not None:
                    yield item
    except _GZIP_ERRORS as e:
        # Around the loop, not each read: no cost per line. Only the file read raises these.
        yield _gzip_failure(path, lineno, e)


def jsonl_blocks(path: Path, block_bytes: int) -> Iterator[tuple[int, bytes] | BadRow]:
    """A JSONL file's lines in blocks of about `block_bytes` (cut after a newline), each with the
    number of its first line, so a block can be read apart from the others (read_jsonl_block) and
    the blocks' items, in order, are what the whole file's reader yields. A cut or damaged .gz
    ends with that reader's BadRow."""
    if path.name.endswith(".gz"):
        yield from _gzip_blocks(path, block_bytes)
        return
    first, rest = 1, b""
    with path.open("rb") as fh:
        while chunk := fh.read(block_bytes):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1  # a line longer than a block waits for its end
            if cut:
                yield first, data[:cut]
                first += data.count(b"\n", 0, cut)
            rest = data[cut:]
    if rest:
        yield first, rest  # the last line has no newline


def _gzip_blocks(path: Path, block_bytes: int) -> Iterator[tuple[int, bytes] | BadRow]:
    # Line by line, as _read_jsonl reads: a cut stream then ends after the same line.
    lines: list[bytes] = []
    first, size, lineno = 1, 0, 0
    try:
        with _open_bytes(path) as fh:
            for lineno, line in enumerate(fh, 1):
                lines.append(line)
                size += len(line)
                if size >= block_bytes:
                    yield first, b"".join(lines)
                    first, size = lineno + 1, 0
                    lines.clear()
    except _GZIP_ERRORS as e:
        if lines:
            yield first, b"".join(lines)
        yield _gzip_failure(path, lineno, e)
        return
    if lines:
        yield first, b"".join(lines)


def read_jsonl_block(path: Path, first: int, data: bytes) -> Iterator[RawRow | BadRow]:
    """The items of one of jsonl_blocks' blocks: lines `first`, `first` + 1, … of `path`."""
    for lineno, line in enumerate(io.BytesIO(data), first):
        item = _jsonl_item(path, lineno, line)
        if item is not None:
            yield item


def _read_json(path: Path) -> Iterator[RawRow | BadRow]:
    try:
        data = json.loads(path.read_bytes())  # bytes: a UTF-8 BOM is detected and skipped
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: byte {e.start} is not UTF-8; re-encode the file as UTF-8") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e}); for one object per line use a .jsonl file") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply to parse; rows must be shallow objects, "
                        "fix the file or convert it to .jsonl") from None
    if isinstance(data, dict):  # {"data": [...]} and similar single-key wrappers
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise UserError(f"{path}: expected a JSON array of objects (or one key holding one)")
        data = lists[0]
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON array of objects")
    for i, obj in enumerate(data):
        loc = f"{path}#{i}"
        if not isinstance(obj, dict):
            yield BadRow(loc, str(i), "not_an_object", f"item is a {type(obj).__name__}, expected an object")
            continue
        problem = _unstorable(obj)
        if problem is not None:
            yield BadRow(loc, str(i), *problem)
            continue
        yield RawRow(loc, str(i), obj)


def _unstorable(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, detail) when a parsed item holds what no later step can store: Python's json
    accepts lone surrogate escapes ("\ud800"), which the .jsonl reader's orjson refuses."""
    try:
        orjson.dumps(obj)  # the fast check; it also refuses ints past 64 bits and deep nesting
        return None
    except orjson.JSONEncodeError:
        pass
    try:  # which one: only a surrogate is this item's fault whatever fields are mapped
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        return "bad_unicode", f"a lone surrogate escape (\\u{ord(e.object[e.start]):04x}) is not text; fix the escapes"
    except RecursionError:
        return "too_deep", "the item is nested too deeply to store; flatten it"
    return None


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise UserError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from None


def _read_parquet(path: Path, first: int = 0, row_groups: list[int] | None = None) -> Iterator[RawRow | BadRow]:
    """The file's rows (or those of `row_groups`, whose first row is row `first` of the file)."""
    i = first
    for batch in _parquet_file(path).iter_batches(batch_size=8192, row_groups=row_groups):
        for obj in batch.to_pylist():
            yield RawRow(f"{path}#{i}", str(i), obj)
            i += 1


def parquet_blocks(path: Path, block_rows: int) -> Iterator[tuple[int, list[int]]]:
    """A parquet file's row groups in runs of at least `block_rows` rows, each with the number of
    its first row: read_parquet_block of every run, in order, yields what the whole file's reader yields."""
    meta = _parquet_file(path).metadata
    first, rows, groups = 0, 0, []
    for g in range(meta.num_row_groups):
        groups.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= block_rows:
            yield first, groups
            first, rows, groups = first + rows, 0, []
    if groups:
        yield first, groups


def read_parquet_block(path: Path, first: int, row_groups: list[int]) -> Iterator[RawRow | BadRow]:
    """The items of one of parquet_blocks' runs."""
    return _read_parquet(path, first, row_groups)


def _read_csv(path: Path) -> Iterator[RawRow | BadRow]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: byte {e.start} is not UTF-8; re-encode the CSV as UTF-8") from None
    # The csv module refuses a cell over 128 KiB (a long prompt) with an error; no cell is
    # longer than the file, and a row too long for the build is quarantined downstream.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.DictReader(io.StringIO(text))
    try:
        for i, obj in enumerate(reader):
            # DictReader puts surplus cells under the None key: a ragged line.
            if None in obj:
                yield BadRow(f"{path}:{reader.line_num}", str(i), "bad_csv", "more cells than header columns")
                continue
            yield RawRow(f"{path}:{reader.line_num}", str(i), dict(obj))
    except csv.Error as e:
        raise UserError(f"{path}:{reader.line_num}: not valid CSV ({e}); fix the file or convert it to JSONL") from None


READERS = {"jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet, "csv": _read_csv}


def id_head(name: str, fmt: str) -> str:
    """What a glob source's row ids in file `name` start with: "sub/a.jsonl:" before a line number
    (as in `file:line` locations), "b.parquet#" before a row number; "" for a single-file source."""
    return name and name + (":" if fmt == "jsonl" else "#")


def file_ids(items: Iterator[RawRow | BadRow], name: str, fmt: str) -> Iterator[RawRow | BadRow]:
    """`items` of file `name` (named_files) with their ids as the source's rows carry them (id_head)."""
    head = id_head(name, fmt)
    if not head:
        yield from items
        return
    for item in items:
        item.row_id = head + item.row_id
        yield item


def file_format(src: SourceConfig, path: Path, where: str | None = None) -> str:
    """The reader's name for `path` (READERS' keys); UserError (naming `where`, else the source)
    when the name does not tell it."""
    return format_of(path, src.format, where or f"source {src.name}")


def file_warning(src: SourceConfig, item: RawRow | BadRow, warn: list[str], where: str | None = None) -> None:
    """Said loudly, not only quarantined: a cut or damaged file loses every row after the damage."""
    if isinstance(item, BadRow) and item.reason in ("truncated_file", "corrupt_file"):
        warn.append(f"{where or f'source {src.name}'}: {item.location}: {item.detail}")


def read_file(src: SourceConfig, path: Path, warn: list[str], where: str | None = None,
              name: str = "") -> Iterator[RawRow | BadRow]:
    """One of a local source's files (named_files: `name` its rows' ids start with), in order."""
    if path.stat().st_size == 0:
        warn.append(f"{where or f'source {src.name}'}: {path} is empty; it contributes no rows")
        return
    fmt = file_format(src, path, where)
    for item in file_ids(READERS[fmt](path), name, fmt):
        file_warning(src, item, warn, where)
        yield item


def read_local(recipe: Recipe, src: SourceConfig, warn: list[str], where: str | None = None) -> Iterator[RawRow | BadRow]:
    for path, name in named_files(recipe, src, where):
        yield from read_file(src, path, warn, where, name)


def read_hf(src: SourceConfig) -> Iterator[RawRow | BadRow]:
    """`datasets.load_dataset` by Hub id; a local folder or file path works the same way."""
    import datasets

    try:
        ds = datasets.load_dataset(
            src.dataset, src.config, split=src.split, revision=src.revision, streaming=True
        )
    except Exception as e:  # datasets raises many types (ConnectionError, FileNotFound, …)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"source {src.name}: cannot load Hub dataset {src.dataset!r} "
            f"(config={src.config}, split={src.split}, revision={src.revision}): {first[:300]}; "
            "check the id and your network, or point `dataset` at a local copy"
        ) from None
    for i, obj in enumerate(ds):
        yield RawRow(f"{src.dataset}#{i}", str(i), dict(obj))


def read_source(recipe: Recipe, src: SourceConfig, warn: list[str], where: str | None = None) -> Iterator[RawRow | BadRow]:
    """`where`: the recipe key errors and warnings name, when it is not the source (an import's own file)."""
    it = read_local(recipe, src, warn, where) if src.kind == "local" else read_hf(src)
    if src.limit is None:
        yield from it
        return
    for n, item in enumerate(it):
        if n >= src.limit:
            return
        yield item


def mapped_rows(recipe: Recipe, src: SourceConfig) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(row id as curate takes it, map_row's record, location) for each row of the source that
    reads and maps (read again, warnings dropped; a row curate quarantines there is skipped)."""
    from builder.sources.mapping import RowProblem, map_row

    for item in read_source(recipe, src, []):
        if isinstance(item, BadRow):
            continue
        try:
            rec = map_row(src, item.data, None)
        except RowProblem:
            continue  # quarantined: not a prompt
        yield rec["row_id"] or item.row_id, rec, item.location
