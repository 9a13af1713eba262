"""The work directory: where each stage reads the previous stage's tables and writes its own.

What lies where, with which schema and written by which stage, is declared once in
builder/tables.py; `WorkDir` resolves those declarations:

    work.path(tables.PROMPTS)          <work>/curate/prompts
    work.shards(tables.variant("answer"))   its part-*.parquet files, sorted ([] when absent)
    work.require(tables.REPLIES)       the same, or a UserError naming the command to run first
    work.writer(tables.PARSED, n)      a ShardWriter with the table's Features
    work.write_summary(CurateSummary(...)) / work.read_summary(CurateSummary)
                                       <work>/<stage>/summary.json, typed (None when absent)

`work.stage(name)` is a stage's own folder for what no other stage reads (scratch, logs).

Outputs appear whole or not at all. Inside `with work.stage_run(stage):` every declared table,
ledger and summary of that stage is written under `<work>/.staging/<stage>-<run>/`; when the
block ends without an exception they are moved into place and `<work>/<stage>/_COMPLETE.json`
is written last, holding the outputs' digest and the run's fingerprint (recipe section and
input digests). A failed or killed run leaves the previous outputs and marker untouched, and
its staging folder is removed by the next run. `require` refuses a table whose producer has no
marker, so a stage never reads another's half-written output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from builder import __version__ as TOOLKIT_VERSION
from builder.errors import UserError
from builder.files import atomic_write_bytes
from builder.ledger import Ledger
from builder.rows import arrow_table, stable_hash
from builder.schema import Features
from builder.tables import LEDGERS, Folder, StageSummary, Table

SHARD_ROWS = 50_000
MARKER = "_COMPLETE.json"
S = TypeVar("S", bound=StageSummary)


class WorkDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._open: dict[str, Path] = {}  # stage -> staging root of its open run

    def _at(self, rel: str) -> Path:
        """Where `rel` (stage/...) is written: the staging folder while that stage's run is open."""
        stage = rel.split("/", 1)[0]
        return self._open.get(stage, self.root) / rel

    # ---- stage runs: outputs appear whole or not at all -------------------------------------

    @contextlib.contextmanager
    def stage_run(self, stage: str, fingerprint: dict[str, Any] | None = None) -> Iterator[Path]:
        """Write `stage`'s declared outputs to a staging folder; commit them together on success."""
        staging_root = self.root / ".staging"
        for old in [*staging_root.glob(f"{stage}-*"), *(self.root / ".trash").glob(f"{stage}-*")]:
            shutil.rmtree(old, ignore_errors=True)  # left by a killed run (the work lock is ours)
        staging = staging_root / f"{stage}-{os.getpid()}-{time.time_ns():x}"
        (staging / stage).mkdir(parents=True)
        self._open[stage] = staging
        try:
            yield staging
        except BaseException:
            self._open.pop(stage, None)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._open.pop(stage, None)
        self._commit(stage, staging, fingerprint or {})

    def _commit(self, stage: str, staging: Path, fingerprint: dict[str, Any]) -> None:
        produced = sorted(f"{stage}/{p.name}" for p in (staging / stage).iterdir())
        marker = self.root / stage / MARKER
        old = self.marker(stage)
        marker.unlink(missing_ok=True)  # from here to the new marker the stage reads as unfinished
        trash = self.root / ".trash" / staging.name
        for rel in sorted(set(old.get("outputs", []) if old else []) | set(produced)):
            dest = self.root / rel
            if dest.exists():
                (trash / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(dest, trash / rel)
        (self.root / stage).mkdir(parents=True, exist_ok=True)
        for rel in produced:
            os.replace(staging / rel, self.root / rel)
        self._write_marker(stage, produced, fingerprint)
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):  # only when empty: a concurrent reader never loses a path
            trash.parent.rmdir()

    def digest(self, rels: list[str]) -> str:
        """sha256 over the bytes of every file under these outputs (summaries excluded: they hold
        timings), in path order: equal digests mean equal outputs."""
        h = hashlib.sha256()
        for rel in sorted(rels):
            base = self.root / rel
            files = sorted(base.rglob("*")) if base.is_dir() else [base]
            for f in files:
                if not f.is_file() or f.name in ("summary.json", MARKER):
                    continue
                h.update(f.relative_to(self.root).as_posix().encode() + b"\0")
                with open(f, "rb") as fh:
                    for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        h.update(chunk)
        return h.hexdigest()

    def _stats(self, rels: list[str]) -> dict[str, list[int]]:
        """Size and mtime of every parquet file under these outputs, so a reader can tell, with a
        stat and no re-read, that a committed shard was since changed, truncated or deleted."""
        out: dict[str, list[int]] = {}
        for rel in rels:
            base = self.root / rel
            for f in sorted(base.rglob("*.parquet")) if base.is_dir() else [base]:
                if f.is_file() and f.suffix == ".parquet":
                    st = f.stat()
                    out[f.relative_to(self.root).as_posix()] = [st.st_size, st.st_mtime_ns]
        return out

    def _check_unchanged(self, table: Table, files: list[Path]) -> None:
        """A committed table's shards are the ones its marker recorded, unchanged since."""
        if table.producer in self._open:
            return
        recorded = (self.marker(table.producer) or {}).get("files")
        if not isinstance(recorded, dict):
            return  # a marker from before stats were recorded
        base = self.path(table).relative_to(self.root).as_posix()
        here = {f.relative_to(self.root).as_posix(): f for f in files}
        for rel, (size, mtime) in recorded.items():
            if not (rel == base or rel.startswith(base + "/")):
                continue
            f = here.get(rel)
            why = "was deleted" if f is None else None
            if f is not None:
                st = f.stat()
                why = None if [st.st_size, st.st_mtime_ns] == [size, mtime] else "was changed"
            if why:
                raise UserError(f"{self.root / rel}: {why} after the {table.producer} stage committed it; "
                                f"re-run `answer-distill {table.producer}` (or delete {self.root / table.producer})")
        extra = sorted(set(here) - set(recorded))
        if extra:
            raise UserError(f"{self.root / extra[0]}: not written by the {table.producer} stage's last run; "
                            f"remove it or re-run `answer-distill {table.producer}`")

    def marker(self, stage: str) -> dict[str, Any] | None:
        """The completion marker of `stage`'s last committed run, or None."""
        path = self.root / stage / MARKER
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def fingerprint(self, sections: dict[str, Any], inputs: tuple[str, ...] = (), extra: Any = None) -> dict[str, Any]:
        """What a stage's outputs depend on: its recipe sections, the digests of the stages it
        reads, the toolkit version. Equal to the marker's fingerprint: the stage has nothing to do.
        Returned as plain JSON values, so it compares equal to itself read back from a marker."""
        def dump(v: Any) -> Any:
            if hasattr(v, "model_dump"):
                return v.model_dump(mode="json")
            return [dump(x) for x in v] if isinstance(v, (list, tuple)) else v

        dumped = {k: dump(v) for k, v in sections.items()}
        return json.loads(json.dumps({
            "recipe": stable_hash(dumped, 64),
            "inputs": {s: (self.marker(s) or {}).get("digest") for s in inputs},
            "extra": extra,
            "toolkit": TOOLKIT_VERSION,
        }, default=str))  # fmt: skip

    def up_to_date(self, stage: str, fingerprint: dict[str, Any]) -> bool:
        got = self.marker(stage)
        return got is not None and got.get("fingerprint") == fingerprint

    def mark_complete(self, stage: str, fingerprint: dict[str, Any] | None = None) -> None:
        """Mark outputs written outside a stage run (test fixtures, prepared data) as complete."""
        folder = self.root / stage
        outputs = sorted(f"{stage}/{p.name}" for p in folder.iterdir() if p.name != MARKER) if folder.is_dir() else []
        folder.mkdir(parents=True, exist_ok=True)
        self._write_marker(stage, outputs, fingerprint or {})

    def _write_marker(self, stage: str, outputs: list[str], fingerprint: dict[str, Any]) -> None:
        """The completion marker, written last and atomically: its presence means the outputs are whole."""
        body = {"stage": stage, "outputs": outputs, "digest": self.digest(outputs), "fingerprint": fingerprint,
                "files": self._stats(outputs),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        atomic_write_bytes(self.root / stage / MARKER, json.dumps(body, indent=2, sort_keys=True, default=str).encode())

    def require_complete(self, stage: str) -> dict[str, Any]:
        got = self.marker(stage)
        if got is None:
            raise UserError(f"{self.root / stage}: the {stage} stage has not finished here (no {MARKER}); "
                            f"run `answer-distill {stage}` first")  # fmt: skip
        return got

    def stage(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def path(self, table: Table | Folder) -> Path:
        if "{" in table.path:
            raise ValueError(f"{table.name}: a table family; pick one, e.g. tables.variant(name)")
        return self._at(table.path) if isinstance(table, Table) else self.root / table.path

    def members(self, family: Table) -> list[Table]:
        """The tables of a family like variants/{variant} whose folder exists (hidden scratch
        folders aside); a member may still hold no shards."""
        head = family.path.partition("{")[0]
        return [dataclasses.replace(family, name=f"{family.name} {d.name}", path=head + d.name)
                for d in sorted((self.root / head).glob("*")) if d.is_dir() and not d.name.startswith(".")]  # fmt: skip

    def store(self, folder: Folder, teacher: str) -> Path:
        """One teacher's reply store under `folder` (tables.GENERATE_STORE, SUMMARY_STORE)."""
        return self.path(folder) / teacher

    def shards(self, table: Table) -> list[Path]:
        path = self.path(table)
        files = sorted(path.glob("part-*.parquet")) if table.sharded else [p for p in [path] if p.is_file()]
        for f in files:
            check_footer(f, table.producer)
        self._check_unchanged(table, files)
        return files

    def require(self, table: Table) -> list[Path]:
        if table.producer not in self._open:
            self.require_complete(table.producer)
        files = self.shards(table)
        if not files:
            what = "no shards found" if table.sharded else "not found"
            raise UserError(f"{self.path(table)}: {what}; run `answer-distill {table.producer}` first")
        return files

    def writer(self, table: Table, shard_rows: int = SHARD_ROWS) -> ShardWriter:
        if not table.sharded:
            raise ValueError(f"{table.name}: one file, not shards; use write_columns")
        return ShardWriter(self.path(table), table.features, shard_rows)

    def write_columns(self, table: Table, cols: dict[str, list[Any]] | pa.Table, shard_rows: int = SHARD_ROWS) -> list[Path]:
        """Write a whole table from column lists (or an Arrow table holding at least its columns),
        with its declared schema (old shards go)."""
        if table.sharded:
            return write_shards(cols, table.features, self.path(table), shard_rows)
        path = self.path(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        pq.write_table(arrow_table(cols, table.features), tmp)
        os.replace(tmp, path)
        return [path]

    def write_ledger(self, ledger: Ledger) -> Path:
        """Check and write a stage's ledger where tables.LEDGERS declares it."""
        return ledger.close(self.path(LEDGERS[ledger.stage]).parent)

    def summary_path(self, summary: type[StageSummary] | StageSummary) -> Path:
        return self._at(f"{summary.STAGE}/summary.json")

    def write_summary(self, summary: StageSummary) -> Path:
        path = self.summary_path(summary)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, summary.model_dump_json(indent=2, by_alias=True).encode())
        return path

    def read_summary(self, model: type[S]) -> S | None:
        path = self.summary_path(model)
        if not path.is_file():
            return None
        try:
            return model.model_validate_json(path.read_bytes())
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise UserError(f"{path}: {where}: {err['msg']}; written by another toolkit version? "
                            f"re-run `answer-distill {model.STAGE}`") from None


def check_footer(path: Path, producer: str) -> None:
    """A shard cut short (full disk, killed copy, partial sync) has no parquet footer: one
    line naming it here, before a stage reads it, instead of an Arrow error mid-run. Reads
    only the footer, so checking every shard costs milliseconds."""
    try:
        pq.read_metadata(path)
    except (pa.ArrowInvalid, OSError) as e:
        if isinstance(e, OSError) and e.errno:
            raise  # EACCES, EIO…: the CLI names the path and errno
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable parquet file ({reason}); it was cut short or corrupted — "
                        f"re-run `answer-distill {producer}` to write it again") from None


def write_shards(rows: dict[str, list[Any]] | pa.Table, features: Features, out_dir: Path, shard_rows: int = SHARD_ROWS) -> list[Path]:
    """Write column lists (or an Arrow table) as parquet shards with the explicit schema (replacing old shards)."""
    writer = ShardWriter(out_dir, features, shard_rows)
    writer.write_table(arrow_table(rows, features))
    return writer.close()


def iter_rows(files: list[Path], columns: list[str] | None = None, batch_size: int = 8192) -> Iterator[dict[str, Any]]:
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=columns):
            yield from batch.to_pylist()


def read_table(files: list[Path], columns: list[str] | None = None) -> pa.Table:
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


class ShardWriter:
    """Append row batches to part-*.parquet shards of at most `shard_rows` rows (old shards go)."""

    def __init__(self, out_dir: Path, features: Features, shard_rows: int = SHARD_ROWS) -> None:
        self.out_dir, self.schema, self.shard_rows = out_dir, features.arrow_schema, shard_rows
        self.features = features
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("part-*.parquet"):
            old.unlink()
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._in_shard = 0
        self.paths: list[Path] = []
        self.rows = 0

    def _roll(self) -> None:
        self._finish()
        path = self.out_dir / f"part-{len(self.paths):05d}.parquet"
        self._tmp = path.with_suffix(".tmp")
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")
        self.paths.append(path)
        self._in_shard = 0

    def _finish(self) -> None:
        if self._writer is not None and self._tmp is not None:
            self._writer.close()
            os.replace(self._tmp, self.paths[-1])
            self._writer = None

    def write_table(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            if self._writer is None or self._in_shard >= self.shard_rows:
                self._roll()
            n = min(self.shard_rows - self._in_shard, table.num_rows - start)
            assert self._writer is not None
            self._writer.write_table(table.slice(start, n))
            self._in_shard += n
            self.rows += n
            start += n

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.write_table(arrow_table(rows, self.features))

    def close(self) -> list[Path]:
        if not self.paths:  # an empty table still gets one shard, like write_shards
            self._roll()
            assert self._writer is not None
            self._writer.write_table(arrow_table({k: [] for k in self.features}, self.features))
        self._finish()
        return self.paths
