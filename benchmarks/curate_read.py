"""Benchmark: curate's read step, serial vs parallel, on the same file in the same process.

The file is benchmarks/curate.py's corpus (real prompts, planted duplicates, leaks, look-alikes;
one JSONL source), 200k prompts by default. Each mode runs `read_all` (builder/curate/read.py)
alone: `serial` is one process (workers=1), `parallel` the driver plus a lean pool reading blocks
of the file side by side (workers = read_workers(recipe) unless --workers; the file is read in
parallel whatever its size, below read.PARALLEL_FROM_BYTES too). Both runs are
checked to give the same table, ledger and warnings. A small read first warms the driver's
one-off caches, so neither mode pays them, and the lean forkserver is started first with what
curate's side index build preloads (the read worker imports the read step itself, as in curate).

Figures per mode: wall seconds, CPU seconds of the whole process tree (benchmarks/memtree.py:
load-independent, unlike wall on a shared machine), peak tree RSS, prompts per second and per
CPU-second. `speedup_wall` = serial wall / parallel wall; `cpu_ratio` = parallel CPU / serial CPU
(what the workers' start and the block hand-off cost). `--repeat` alternates the modes and keeps
each one's fastest run. `cores_free_before_after`: how many of `workers` cores the machine gave
spinning processes just before and after (this project's VM shares its 2 vCPUs with its host:
two spinning processes have got from 1.0 to 1.5 cores in all), the ceiling of `speedup_wall`.

Usage: python benchmarks/curate_read.py [--n 200000] [--workers N] [--repeat 1] [--dir DIR]
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from curate import build, recipe_for  # noqa: E402
from memtree import TreePeak, cores_free  # noqa: E402

from builder.curate import read  # noqa: E402
from builder.curate.read import read_all, read_workers  # noqa: E402
from builder.executors import lean_executor, release_freed_memory  # noqa: E402
from builder.ledger import Ledger  # noqa: E402
from builder.recipe import load_recipe  # noqa: E402


def _run(recipe: Any, workers: int, out: Path) -> tuple[dict[str, float], tuple[Path, Path, list[str]]]:
    """One read, measured; its table and ledger go to files under `out` (the driver does not hold
    one mode's table while the other runs: its memory would count in the other's peak)."""
    ledger, warnings = Ledger("curate"), []
    release_freed_memory()
    t0 = time.perf_counter()
    with TreePeak() as peak:
        cpu0 = peak.cpu_s()
        table = read_all(recipe, ledger, warnings, workers=workers)
        cpu = peak.cpu_s() - cpu0
    wall = time.perf_counter() - t0
    import pyarrow.parquet as pq

    led = ledger.close(out)
    quarantined = pq.read_table(led, columns=["status"])["status"].to_pylist().count("quarantined")
    n = table.num_rows + quarantined
    fig = {"rows_kept": table.num_rows, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak.mb, 1), "processes": peak.procs,
           "prompts_per_s": round(n / wall, 1), "prompts_per_cpu_s": round(n / cpu, 1) if cpu else None}  # fmt: skip
    with pa.ipc.new_file(out / "table.arrow", table.schema) as w:
        w.write_table(table)
    return fig, (out / "table.arrow", led, warnings)


def _same(a: tuple[Path, Path, list[str]], b: tuple[Path, Path, list[str]]) -> bool:
    import pyarrow.parquet as pq

    def table(p: Path) -> pa.Table:
        with pa.memory_map(str(p)) as f:
            return pa.ipc.open_file(f).read_all()

    return table(a[0]).equals(table(b[0])) and pq.read_table(a[1]).equals(pq.read_table(b[1])) and a[2] == b[2]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None, help="parallel mode's processes, the driver included")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None, help="keep (and reuse) the corpus here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / f"prompts-{args.n}-{args.seed}.jsonl"
        if not src.is_file():
            t0 = time.perf_counter()
            build(args.n, args.seed, src)
            print(f"corpus: {args.n:,} prompts in {time.perf_counter() - t0:.1f}s")
        warm = Path(tmp) / "warm.jsonl"
        with src.open("rb") as fh:
            warm.write_bytes(b"".join(line for _, line in zip(range(2000), fh)))
        read_all(load_recipe(recipe_for(warm, Path(tmp))), Ledger("curate"), [], workers=1)
        # The lean forkserver runs before either mode, as in curate (its benchmark index build starts
        # it): both modes count its memory, and the parallel mode's worker is forked from it.
        with lean_executor(preload=["builder.curate.prompt_work"]) as side:
            side.submit(os.getpid).result()
        recipe = load_recipe(recipe_for(src, Path(tmp)))
        workers = args.workers or read_workers(recipe)
        read.PARALLEL_FROM_BYTES = 0  # the parallel mode reads this file in parallel whatever its size
        free = [cores_free(workers)]
        best: dict[str, dict[str, float]] = {}
        outputs: dict[str, tuple[Path, Path, list[str]]] = {}
        for k in range(args.repeat):
            for mode, w in (("serial", 1), ("parallel", workers)):
                fig, outputs[mode] = _run(recipe, w, Path(tmp) / f"ledger-{mode}-{k}")
                print(f"{mode} (workers {w}): {json.dumps(fig)}")
                if mode not in best or fig["wall_s"] < best[mode]["wall_s"]:
                    best[mode] = fig
        free.append(cores_free(workers))
        same = _same(outputs["serial"], outputs["parallel"])
        out = {
            "prompts": args.n,
            "file_mb": round(src.stat().st_size / 2**20, 1),
            "rows_kept": best["serial"]["rows_kept"],
            "workers": workers,
            "cores": os.cpu_count(),
            "serial": best["serial"],
            "parallel": best["parallel"],
            "speedup_wall": round(best["serial"]["wall_s"] / best["parallel"]["wall_s"], 2),
            "cpu_ratio": round(best["parallel"]["cpu_s"] / best["serial"]["cpu_s"], 2),
            "identical": same,
            "cores_free_before_after": free,
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    sys.exit(0 if main()["identical"] else 1)
