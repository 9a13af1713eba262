"""Great Expectations in a process of its own, started when the release starts.

Why: GX's import (~3 CPU-s) and its validations are pure Python. In the release's own process
they hold the GIL that shard staging needs between its Arrow kernels; in a child process they
run on the other core, GX importing while the first shards are read and hashed.

Protocol: the parent (`GxProcess`) writes requests to the child's stdin, the child
(`python -m quality.gx_process`) answers each on its stdout, one at a time and in order. A
message is an 8-byte little-endian length, then a pickle:
  ("setup", Suites)                                   → None: import GX, define every suite
  ("run", key, data, variant, json_path, html_path)   → (outcomes, success): validate `data`
      (a pandas frame; a variant's signal tables; or the paths of the Arrow IPC stream files a
      `SignalFile` wrote them to, read here memory-mapped: tables and paths are made one frame
      in the child), keep GX's result JSON at json_path and render its Data Docs page at html_path
A request that raised is answered ("error", its last traceback line) and the parent raises it.
EOF on stdin (the parent closed it, or died) ends the child. Only the protocol uses the child's
fd 1 (its `print`s go to stderr); the pickles come from our own parent over a private pipe.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HEADER = struct.Struct("<Q")


class SignalFile:
    """One variant's signal tables, appended shard by shard to Arrow IPC stream files that the GX
    process reads itself: the release never holds a whole variant's signals, nor pickles them
    (at 1.3M rows a variant that was ~100 MB held, then copied into a pickle, then read, then
    unpickled in the child). A table whose schema differs from the file's starts a new file
    (the child concatenates them as `to_frame` does: permissive promotion)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name
        self.paths: list[str] = []
        self.rows = 0
        self._writer: Any = None
        self._sink: Any = None
        self._schema: Any = None

    def write(self, tables: list[Any]) -> None:
        import pyarrow as pa

        for t in tables:
            if self._writer is None or not t.schema.equals(self._schema):
                self._close_part()
                path = self.folder / f"{self.name}-{len(self.paths):03d}.arrows"
                self.folder.mkdir(parents=True, exist_ok=True)
                self._sink = pa.OSFile(str(path), "wb")
                self._writer, self._schema = pa.ipc.new_stream(self._sink, t.schema), t.schema
                self.paths.append(str(path))
            self._writer.write_table(t)
            self.rows += t.num_rows

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
        self._writer = self._sink = None

    def close(self) -> list[str]:
        """Finish the files; their paths (what the "run" request takes)."""
        self._close_part()
        return self.paths

    def __bool__(self) -> bool:
        return self.rows > 0


def read_signals(paths: list[str]) -> list[Any]:
    """The tables a SignalFile wrote, memory-mapped (no copy until the frame is made)."""
    import pyarrow as pa

    return [pa.ipc.open_stream(pa.memory_map(p)).read_all() for p in paths]


@dataclass(frozen=True)
class Suites:
    """What the child defines: per variant (name, think, summary), then the mix and verification suites."""

    variants: tuple[tuple[str, bool, bool], ...]
    max_tokens: int
    language_mostly: float
    mix_tolerance: float
    schema_version: str


def _send(f: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(HEADER.pack(len(data)))
    f.write(data)
    f.flush()


def _recv(f: IO[bytes]) -> Any:
    head = f.read(HEADER.size)
    if len(head) < HEADER.size:
        raise EOFError
    n = HEADER.unpack(head)[0]
    data = f.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)  # from our own parent / child, over a private pipe


class GxProcess:
    """The parent's handle: `call()` sends one request and waits for its answer (not thread-safe:
    one caller thread at a time, as the release's GX worker thread does)."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[1])  # where `quality` is importable from
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        env.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage telemetry from a data build
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close(); read when the child fails)
        self._proc = subprocess.Popen([sys.executable, "-m", "quality.gx_process"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, env=env)

    def call(self, *request: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            _send(self._proc.stdin, request)
            reply = _recv(self._proc.stdout)
        except (EOFError, BrokenPipeError, OSError):
            raise RuntimeError(f"the Great Expectations process exited (code {self._proc.wait()}): "
                               f"{self._stderr_tail()}") from None
        if isinstance(reply, tuple) and reply and reply[0] == "error":
            what = request[1] if request[0] == "run" else request[0]
            raise RuntimeError(f"Great Expectations failed on {what}: {reply[1]}")
        return reply

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def close(self) -> None:
        """Close its stdin (the child exits at EOF) and reap it; kill it if it does not end."""
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()


def _setup(s: Suites) -> Any:
    from quality.suites import GxRunner, variant_expectations

    runner = GxRunner()
    E = runner.gx.expectations
    for name, think, summary in s.variants:  # which checks apply follows the variant's spec flags
        runner.define(name, variant_expectations(runner.gx, name, s.max_tokens, s.language_mostly,
                                                 think=think, summary=summary, schema_version=s.schema_version))
    for check in ("category_mix", "source_mix"):
        runner.define(check, [E.ExpectColumnValuesToBeBetween(
            column="deviation", max_value=s.mix_tolerance, meta={"check": check})])
    runner.define("verification", [E.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="pass_rate", column_B="floor", or_equal=True, meta={"check": "verification_rate"})])
    return runner


def _run(runner: Any, key: str, data: Any, variant: str, json_path: str, html_path: str) -> tuple[dict, bool]:
    from quality.derive import to_frame
    from quality.suites import outcomes_of, write_result

    if isinstance(data, tuple):  # the paths of a SignalFile
        data = read_signals(list(data))
    frame = to_frame(data) if isinstance(data, list) else data
    del data  # the frame holds what it needs: the mapped tables go with this name
    result = runner.run(key, frame, "prompt_id" if "prompt_id" in frame.columns else None)
    into: dict = {}
    outcomes_of(result, variant, into)
    write_result(result, Path(json_path), Path(html_path))
    return into, bool(result.success)


def main() -> None:
    from builder.executors import release_freed_memory

    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library's print must not corrupt the protocol
    sys.stdout = sys.stderr
    runner = None
    while True:
        try:
            request = _recv(proto_in)
        except EOFError:
            return
        try:
            if request[0] == "setup":
                runner = _setup(request[1])
                reply: Any = None
            else:
                reply = _run(runner, *request[1:])
        except Exception as e:  # answered, so the parent raises it with the request named
            traceback.print_exc()
            reply = ("error", f"{type(e).__name__}: {e}"[:500])
        _send(proto_out, reply)
        del request, reply
        # A variant's frame and GX's copies of it are gone: hand their pages back, so this
        # process holds ~its base while the release stages the next variant (at 1.3M rows it
        # otherwise kept ~500 MB of freed heap until the next validation reused it).
        release_freed_memory()


if __name__ == "__main__":
    main()
