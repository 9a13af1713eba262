"""The release's per-shard work as datatrove tasks over the variants' shards, on the recipe's
executor (local, Slurm, Ray); the driver then merges their results and runs the gates.

Layout, under <work>/release-tasks/<key>/outputs/ (key: the release's fingerprint, so another
recipe or other variants start afresh; not under <work>/release, the default release folder):
  data/<variant>/train-0000k-of-0000n.parquet  the published shard of input shard k of n
                                               (final Hub names: n is the input shard count)
  parts/<variant>-0000k.pkl                    that shard's signals, partial statistics, content
                                               hashes, sha256 and (exact-answer variant) answer keys
Durability: both are written to a temporary name and renamed when whole; a shard's part is
renamed last, so it is the shard's completion mark. Reading rule: a task skips every shard
that has its part; a data file without its part (a task killed in between) is hashed again,
never rewritten. So no shard is written twice.

Shard units are numbered variant by variant in the published order; task `rank` of W owns
units rank, rank+W, … Summaries are checked against the exact answer's text, so the
exact-answer variant's shards run first (phase 1) and every other shard after (phase 2),
reading its answer keys from the phase-1 parts. The merge (collect) reads parts in shard order:
any number of tasks gives the same release as one.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep

from builder import tables
from builder.recipe import Recipe
from builder.release.staging import StagedVariant, answer_keys_for, contaminated_ids, fold, load_shard
from builder.tables import VariantInfo
from builder.workdir import WorkDir
from quality.answer_keys import AnswerKeys
from quality.gx_process import SignalFile
from quality.suites import CheckOutcome

# A fault-injection hook for the kill -9 test: "rank:shards" makes task `rank` SIGKILL itself
# after that many shards (tests/test_release_tasks.py). Never set in a real run.
KILL_ENV = "ANSWER_DISTILL_TEST_KILL_RELEASE_TASK"


def data_path(scratch: Path, variant: str, k: int, n: int) -> Path:
    return scratch / "data" / variant / f"train-{k:05d}-of-{n:05d}.parquet"


def part_path(scratch: Path, variant: str, k: int) -> Path:
    return scratch / "parts" / f"{variant}-{k:05d}.pkl"


def phases(specs: list[VariantInfo]) -> list[list[VariantInfo]]:
    """[exact-answer variants], [the others]: the second reads the first's answer keys."""
    first = [s for s in specs if s.exact_answer]
    rest = [s for s in specs if not s.exact_answer]
    return [p for p in (first, rest) if p]


def units(work: WorkDir, specs: list[VariantInfo]) -> list[tuple[VariantInfo, int, int, Path]]:
    """(spec, k, n, input shard) for every input shard of `specs`, in published order."""
    out = []
    for spec in specs:
        shards = work.shards(tables.variant(spec.name))
        out += [(spec, k, len(shards), p) for k, p in enumerate(shards)]
    return out


def read_part(scratch: Path, variant: str, k: int) -> Any:
    with part_path(scratch, variant, k).open("rb") as f:
        return pickle.load(f)  # our own scratch file, written by write_part below


def _write_part(path: Path, shard: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(shard, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)  # whole or absent


def answer_keys(scratch: Path, work: WorkDir, specs: list[VariantInfo]) -> AnswerKeys:
    """The exact-answer variant's keys, from its parts (phase 1), in shard order."""
    keys = AnswerKeys()
    for spec, k, _, _ in units(work, [s for s in specs if s.exact_answer]):
        keys.add(read_part(scratch, spec.name, k).answer_keys)
    return keys


def task_body(work_root: str, scratch_dir: str, specs: list[VariantInfo], phase: int, rank: int, world: int) -> int:
    """One task: its shards of `phases(specs)[phase]` that have no part yet; returns how many."""
    work, scratch = WorkDir(work_root), Path(scratch_dir)
    todo = [u for i, u in enumerate(units(work, phases(specs)[phase]))
            if i % world == rank and not part_path(scratch, u[0].name, u[1]).exists()]
    if not todo:
        return 0
    contaminated = contaminated_ids(work)
    answers = answer_keys(scratch, work, specs) if phase and any(s.exact_answer for s in specs) \
        else answer_keys_for(work, specs)
    for done, (spec, k, n, path) in enumerate(todo, 1):
        final = data_path(scratch, spec.name, k, n)
        final.parent.mkdir(parents=True, exist_ok=True)
        write = not final.exists()
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        shard = load_shard(k, path, spec, contaminated, answers, tmp if write else final, write)
        if write and tmp.exists():
            os.replace(tmp, final)
        shard.dest = final
        _write_part(part_path(scratch, spec.name, k), shard)
        if os.environ.get(KILL_ENV, "") == f"{rank}:{done}":
            (scratch / f"killed-{rank}").touch()  # so the test knows the kill happened
            os.kill(os.getpid(), signal.SIGKILL)
    return len(todo)


class ReleaseTask(PipelineStep):
    """A datatrove step running task_body for one phase; the variants' specs travel as data."""

    name = "release"
    type = "📦 - STAGE"

    def __init__(self, work: str, scratch: str, specs: list[VariantInfo], phase: int) -> None:
        super().__init__()
        self.work, self.scratch, self.specs, self.phase = work, scratch, specs, phase

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Any:
        wrote = task_body(self.work, self.scratch, self.specs, self.phase, rank, world_size)
        self.stat_update("shards", value=wrote)
        return iter(())


def scratch_root(work: WorkDir) -> Path:
    return work.root / "release-tasks"


def task_count(recipe: Recipe, n_units: int) -> int:
    """release.tasks, else executor.tasks on Slurm / Ray and 1 (this process) on local."""
    n = recipe.release.tasks or (recipe.executor.tasks if recipe.executor.kind != "local" else 1)
    return max(1, min(n, n_units))


def run_tasks(recipe: Recipe, work: WorkDir, specs: list[VariantInfo], n_tasks: int, key: str) -> Path:
    """Run both phases' tasks (resumable: completed ranks and shards with a part are skipped);
    returns the scratch folder. Another key's scratch (another recipe or input) is removed."""
    from builder.executors import make_executor, run_executor

    root = scratch_root(work)
    for old in root.glob("*"):
        if old.name != key:
            shutil.rmtree(old, ignore_errors=True)
    scratch = root / key / "outputs"
    for i, group in enumerate(phases(specs)):
        cfg = recipe.executor.model_copy(update={"tasks": max(1, min(n_tasks, len(units(work, group))))})
        step = ReleaseTask(str(work.root.resolve()), str(scratch.resolve()), specs, i)
        run_executor(make_executor([step], cfg, root / key / f"logs-{i}", f"release-{i}"), cfg)
    return scratch


def collect_variant(scratch: Path, work: WorkDir, spec: VariantInfo, tmp: Path, answers: AnswerKeys,
                    schema: CheckOutcome, known: dict[str, str], signals: SignalFile) -> StagedVariant:
    """The merge for one variant: its parts in shard order, folded as the in-process staging
    folds them; each data file linked (or copied) into tmp/data/<v>/ under its final name, so
    the scratch stays whole until the release is committed."""
    out = StagedVariant(signals)
    dest = tmp / "data" / spec.name
    dest.mkdir(parents=True, exist_ok=True)
    for _, k, n, path in units(work, [spec]):
        out.bytes_in += path.stat().st_size
        part = part_path(scratch, spec.name, k)
        if not part.is_file():
            raise RuntimeError(f"{part}: missing after every release task completed; re-run the release")
        shard = read_part(scratch, spec.name, k)
        if fold(out, shard, schema, answers):
            src, target = data_path(scratch, spec.name, k, n), dest / data_path(scratch, spec.name, k, n).name
            try:
                os.link(src, target)
            except OSError:  # another filesystem
                shutil.copyfile(src, target)
            known[target.relative_to(tmp).as_posix()] = shard.sha256
    return out
