"""Kill -9 every stage at random moments, re-run it, and check that nothing is lost or changed.

The hardening claim under test: a stage killed at any moment leaves either its previous
committed state or a whole new one (never a marker over partial outputs, never a half
release folder), and a re-run of the same command ends with the outputs an uninterrupted
run writes, its ledger balanced, and no teacher request sent twice except those in flight.

  1. Reference: each stage command (`answer-distill curate|generate|responses|variants|
     release`) run once, uninterrupted, in a subprocess on the recipe (recipes/sample.yaml)
     into a temp work dir; per stage: wall time, marker (`_COMPLETE.json`) digest and
     outputs, row counts, ledger steps; the release's data file hashes (manifest.json).
  2. Per stage, K trials: a fresh work dir holding the reference's committed earlier stages
     (their folders copied, markers included); the stage's command started in its own
     process group and SIGKILLed (group and every descendant) at a moment uniform over
     [0.05, 0.95] x the stage's reference wall time; the invariant checked right after the
     kill; the command re-run to completion; its outputs compared with the reference.
     A control run per stage (uninterrupted, from the same seeded state) says whether the
     stage reproduces the reference byte for byte at all: generate does not (every reply row
     has `created_at`, the wall clock of its import), so its outputs are also compared with
     the columns in VOLATILE masked ("identical_masked").
  3. generate with an openai teacher against the loopback server (tests/servers/
     openai_server.py) on --prompts curated prompts: killed at random moments, re-run; the
     server's per-prompt request counts give the requests sent twice beyond those in flight
     at the kill (sent before the kill, not stored), and how many were in flight.

--kill-mode parent SIGKILLs only the `answer-distill` process (what `kill -9 PID` does) and
leaves its workers to notice on their own, then re-runs at once; the default kills the whole
command (a crash, a container's OOM kill). A re-run that fails counts every reference row of
the stage as lost.

Every wait is bounded (a stage that runs past --timeout-factor x its reference time is
killed and reported as hung). Prints one progress line per trial, then one JSON object as
the last line. A violation names the stage, the kill delay and the command that replays it
(`--stages S --delays D`); with --keep DIR the trial work dirs stay there.

Usage: python benchmarks/killtest.py [--kills 20] [--seed 0] [--stages curate,variants]
                                     [--delays 1.5,3.0] [--openai-kills N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("curate", "generate", "responses", "variants", "release")
WORK_STAGES = STAGES[:-1]  # those committed with <work>/<stage>/_COMPLETE.json
SAMPLE = ROOT / "recipes" / "sample.yaml"
MARKER = "_COMPLETE.json"
VOLATILE = ("created_at", "latency_s")  # reply columns a fresh run fills from the clock
LOW, HIGH = 0.05, 0.95  # kill moments: this range of the stage's reference wall time
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- running a stage command: bounded, killable as a whole -----------------------------------


@dataclass
class Run:
    rc: int | None  # None: hung (killed after the timeout)
    seconds: float
    tail: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0


def command(stage: str, recipe: Path, work: Path) -> list[str]:
    """`answer-distill <stage> <recipe> --work <work>`, as the venv's console script runs it."""
    return [sys.executable, "-m", "builder.cli", stage, str(recipe), "--work", str(work)]


def start(stage: str, recipe: Path, work: Path, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(command(stage, recipe, work), cwd=ROOT, env=ENV, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def _tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_bytes()[-n:].decode(errors="replace")
    except OSError:
        return ""


def kill_all(proc: subprocess.Popen[bytes], wait_s: float = 30.0) -> list[int]:
    """SIGKILL the command's process group and every descendant (also one that left the
    group), reap it, and wait (bounded) until none is left. Returns the pids still alive."""
    import psutil

    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: its pgid is its pid
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(wait_s)
    _, alive = psutil.wait_procs([p for p in family if p.pid != proc.pid], timeout=wait_s)
    still = []
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            if p.status() != psutil.STATUS_ZOMBIE:
                still.append(p.pid)
    return still


def run_stage(stage: str, recipe: Path, work: Path, timeout_s: float, log_path: Path) -> Run:
    """Run a stage command to completion, killing it (and reporting it hung) after timeout_s."""
    t0 = time.monotonic()
    proc = start(stage, recipe, work, log_path)
    try:
        rc: int | None = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        kill_all(proc)
        rc = None
    return Run(rc, time.monotonic() - t0, _tail(log_path))


def _alive(procs: list[Any]) -> list[Any]:
    import psutil

    out = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


def run_and_kill(stage: str, recipe: Path, work: Path, delay_s: float, log_path: Path,
                 mode: str = "group") -> dict[str, Any]:  # fmt: skip
    """Start the stage command and SIGKILL it `delay_s` after the start (if still running).
    mode "group": the whole command (its process group and every descendant), as a crash or
    the OOM killer of a container would; "parent": only the `answer-distill` process, as
    `kill -9 PID` does: its workers are left to notice on their own ("orphans": those alive
    right after the kill; `reap_orphans` ends them after the re-run)."""
    import psutil

    t0 = time.monotonic()
    proc = start(stage, recipe, work, log_path)
    try:
        proc.wait(delay_s)
        finished = True  # it ended before the kill moment
    except subprocess.TimeoutExpired:
        finished = False
    survivors: list[int] = []
    orphans: list[Any] = []
    if not finished and mode == "group":
        survivors = kill_all(proc)
    elif not finished:
        try:
            family = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        proc.kill()
        proc.wait(30)
        orphans = _alive(family)
    return {"finished_before_kill": finished, "rc": proc.returncode, "at_s": round(time.monotonic() - t0, 3),
            "survivors": survivors, "orphans": orphans}  # fmt: skip


def reap_orphans(orphans: list[Any], wait_s: float = 30.0) -> int:
    """Kill what a parent-only kill left running; returns how many were still alive."""
    import psutil

    alive = _alive(orphans)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=wait_s)
    return len(alive)


# ---- what a work dir holds --------------------------------------------------------------------


def _files(work: Path, rels: list[str]) -> Iterator[tuple[str, Path]]:
    for rel in sorted(rels):
        base = work / rel
        for f in sorted(base.rglob("*")) if base.is_dir() else [base]:
            if f.is_file() and f.name not in ("summary.json", MARKER):
                yield f.relative_to(work).as_posix(), f


def content_digest(work: Path, rels: list[str]) -> str:
    """Like WorkDir.digest, but a parquet file counts by its rows with the VOLATILE columns
    dropped: equal for two runs that differ only in wall-clock fields."""
    import pyarrow.parquet as pq

    h = hashlib.sha256()
    for rel, f in _files(work, rels):
        h.update(rel.encode() + b"\0")
        if f.suffix == ".parquet":
            t = pq.read_table(f)
            t = t.drop_columns([c for c in VOLATILE if c in t.column_names])
            h.update(json.dumps(t.to_pylist(), sort_keys=True, default=str).encode())
        else:
            h.update(f.read_bytes())
    return h.hexdigest()


def row_counts(work: Path, rels: list[str]) -> dict[str, int]:
    """Rows per output (a table folder or one parquet file)."""
    import pyarrow.parquet as pq

    out: dict[str, int] = {}
    for rel in rels:
        base = work / rel
        files = sorted(base.rglob("*.parquet")) if base.is_dir() else [base] if base.suffix == ".parquet" else []
        if files:
            out[rel] = sum(pq.ParquetFile(f).metadata.num_rows for f in files if f.is_file())
    return out


def ledger_steps(work: Path, stage: str) -> dict[str, list[int]] | None:
    from builder.ledger import verify_ledger_file

    path = work / stage / "ledger.parquet"
    return {k: list(v) for k, v in verify_ledger_file(path).items()} if path.is_file() else None


def unbalanced_steps(work: Path, stage: str) -> list[str]:
    """Steps of <stage>/summary.json whose rows in != kept + dropped."""
    try:
        steps = json.loads((work / stage / "summary.json").read_text()).get("steps") or []
    except (OSError, ValueError):
        return [f"{stage}/summary.json unreadable"]
    return [f"{s['step']}: {s['in']} in != {s['kept']} kept + {sum(s['dropped'].values())} dropped"
            for s in steps if s["in"] != s["kept"] + sum(s["dropped"].values())]  # fmt: skip


def release_state(folder: Path) -> dict[str, Any]:
    """The release's data files: sha256 (from the manifest) and rows."""
    import pyarrow.parquet as pq

    manifest = json.loads((folder / "manifest.json").read_text())
    data = {k: v["sha256"] for k, v in manifest["files"].items() if k.startswith("data/")}
    rows = {k: pq.ParquetFile(folder / k).metadata.num_rows for k in data if k.endswith(".parquet")}
    return {"data": data, "rows": rows}


def describe(work: Path, stage: str) -> dict[str, Any]:
    """A committed stage as the checks compare it."""
    from builder.workdir import WorkDir

    if stage == "release":
        return release_state(work / "release")
    m = WorkDir(work).marker(stage)
    if m is None:
        raise RuntimeError(f"{work / stage}: no {MARKER}")
    outs = list(m["outputs"])
    return {"digest": m["digest"], "outputs": outs, "content": content_digest(work, outs),
            "rows": row_counts(work, outs), "ledger": ledger_steps(work, stage)}  # fmt: skip


def leftovers(work: Path) -> list[str]:
    """Scratch a finished run should not leave behind: staging and trash folders, temp files."""
    out = [p.relative_to(work).as_posix() for d in (".staging", ".trash") if (work / d).is_dir()
           for p in sorted((work / d).iterdir())]  # fmt: skip
    for p in sorted(work.rglob("*")):
        rel = p.relative_to(work).as_posix()
        if (".tmp" in p.name) and not rel.startswith((".staging/", ".trash/")):
            out.append(rel + ("/" if p.is_dir() else ""))
    return out


# ---- the reference build ----------------------------------------------------------------------


def build_reference(
    recipe: Path, work: Path, stages: tuple[str, ...] = STAGES, timeout_s: float = 900
) -> dict[str, Any]:
    """Run each stage command once, uninterrupted, in order; what each committed and how long
    it took (the kill moments are drawn from that wall time)."""
    ref: dict[str, Any] = {"recipe": str(recipe), "work": str(work), "stages": {}}
    for stage in stages:
        run = run_stage(stage, recipe, work, timeout_s, work.parent / f"{work.name}-logs" / f"{stage}.log")
        if not run.ok:
            raise RuntimeError(f"reference {stage} failed (rc {run.rc}):\n{run.tail}")
        ref["stages"][stage] = {"seconds": round(run.seconds, 3), **describe(work, stage)}
        log(f"reference {stage}: {run.seconds:.1f}s")
    return ref


def reference_from(work: Path, recipe: Path, stages: tuple[str, ...]) -> dict[str, Any]:
    """A reference from a work dir already built uninterrupted (e.g. by `answer-distill build`):
    each stage's wall time estimated as its summary.json `seconds` plus a measured start-up
    (interpreter, CLI and stage imports)."""
    mods = ", ".join(f"builder.{s}.stage" for s in stages)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", f"import builder.cli, {mods}"], cwd=ROOT, env=ENV, check=True, timeout=120)
    startup = time.monotonic() - t0
    ref: dict[str, Any] = {"recipe": str(recipe), "work": str(work), "stages": {}}
    for stage in stages:
        seconds = json.loads((work / stage / "summary.json").read_text())["seconds"]
        ref["stages"][stage] = {"seconds": round(startup + seconds, 3), **describe(work, stage)}
    return ref


def seed_work(ref: dict[str, Any], work: Path, stage: str) -> None:
    """A fresh work dir holding the reference's committed stages before `stage`."""
    src = Path(ref["work"])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for s in STAGES[: STAGES.index(stage)]:
        if s != "release":
            shutil.copytree(src / s, work / s, symlinks=True)


def draw_delay(rng: random.Random, ref: dict[str, Any], stage: str) -> float:
    return rng.uniform(LOW, HIGH) * ref["stages"][stage]["seconds"]


# ---- the checks -------------------------------------------------------------------------------


def _same_outputs(got: dict[str, Any], want: dict[str, Any], exact: bool) -> bool:
    return got["outputs"] == want["outputs"] and (got["digest"] == want["digest"] if exact
                                                   else got["content"] == want["content"])  # fmt: skip


def marker_problems(work: Path, stage: str, want: dict[str, Any], exact: bool) -> list[str]:
    """A marker of `stage` is either absent or whole: every output it names on disk, with its
    digest, and those outputs are the reference's (byte for byte, or masked when not exact)."""
    from builder.workdir import WorkDir

    wd = WorkDir(work)
    path = work / stage / MARKER
    m = wd.marker(stage)
    if m is None:
        return [f"{path}: present but unreadable"] if path.exists() else []
    outs = list(m.get("outputs", []))
    missing = [o for o in outs if not (work / o).exists()]
    if missing:
        return [f"{stage}: marker names missing outputs {missing}"]
    problems = []
    if wd.digest(outs) != m.get("digest"):
        problems.append(f"{stage}: marker digest {str(m.get('digest'))[:12]} != its outputs on disk "
                        f"{wd.digest(outs)[:12]} (a marker over partial outputs)")  # fmt: skip
    elif not _same_outputs(
        {"outputs": outs, "digest": m["digest"], "content": content_digest(work, outs)}, want, exact
    ):
        problems.append(f"{stage}: committed outputs differ from the reference's")
    return problems


def release_problems(work: Path, want: dict[str, Any]) -> list[str]:
    """No release folder, or a whole one (every file the manifest lists, hashes and counts
    right, nothing else) holding the reference's data files."""
    from builder.release.manifest import verify_release

    folder = work / "release"
    if not folder.exists():
        return []
    if not (folder / "manifest.json").is_file():
        return [f"{folder}: a release folder without manifest.json (incomplete)"]
    problems = [f"{folder}: {p}" for p in verify_release(folder)]
    if not problems and release_state(folder)["data"] != want["data"]:
        problems.append(f"{folder}: data files differ from the reference's")
    return problems


def check_after_kill(ref: dict[str, Any], work: Path, stage: str, exact: bool) -> list[str]:
    """Right after the kill: the stages before are untouched, this one is absent or whole,
    and nothing after it claims to be done."""
    problems: list[str] = []
    for s in STAGES[: STAGES.index(stage)]:
        if s != "release":
            problems += [f"(earlier) {p}" for p in marker_problems(work, s, ref["stages"][s], exact=True)]
            if (work / s / MARKER).read_bytes() != (Path(ref["work"]) / s / MARKER).read_bytes():
                problems.append(f"(earlier) {s}: its marker was rewritten")
    if stage == "release":
        problems += release_problems(work, ref["stages"]["release"])
    else:
        problems += marker_problems(work, stage, ref["stages"][stage], exact)
    problems += [f"{s}: a marker appeared" for s in STAGES[STAGES.index(stage) + 1 :] if (work / s / MARKER).exists()]
    return problems


def check_after_rerun(ref: dict[str, Any], work: Path, stage: str) -> dict[str, Any]:
    want = ref["stages"][stage]
    if stage == "release":
        problems = release_problems(work, want)
        got = (
            release_state(work / "release")
            if (work / "release" / "manifest.json").is_file()
            else {"data": {}, "rows": {}}
        )
        same = got["data"] == want["data"]
        lost = sum(max(0, n - got["rows"].get(k, 0)) for k, n in want["rows"].items())
        return {"identical": same, "identical_masked": same, "rows_lost": lost, "ledger_ok": True, "problems": problems}
    got = describe(work, stage)
    problems = marker_problems(work, stage, want, exact=False)
    unbalanced = unbalanced_steps(work, stage)
    ledger_ok = got["ledger"] == want["ledger"] and not unbalanced
    if not ledger_ok:
        problems.append(f"{stage}: ledger {got['ledger']} != reference {want['ledger']}; unbalanced {unbalanced}")
    lost = sum(max(0, n - got["rows"].get(k, 0)) for k, n in want["rows"].items())
    return {"identical": _same_outputs(got, want, exact=True), "identical_masked": _same_outputs(got, want, exact=False),
            "rows_lost": lost, "ledger_ok": ledger_ok, "problems": problems}  # fmt: skip


def _timeout(ref: dict[str, Any], stage: str, factor: float) -> float:
    return max(120.0, factor * ref["stages"][stage]["seconds"])


def control_run(ref: dict[str, Any], stage: str, work: Path, factor: float = 8.0) -> dict[str, Any]:
    """One uninterrupted run from the seeded state: does the stage reproduce the reference?"""
    seed_work(ref, work, stage)
    run = run_stage(stage, Path(ref["recipe"]), work, _timeout(ref, stage, factor), work.parent / f"{work.name}.log")
    if not run.ok:
        return {"rc": run.rc, "identical": False, "identical_masked": False, "tail": run.tail[-600:]}
    got = check_after_rerun(ref, work, stage)
    return {"rc": 0, "identical": got["identical"], "identical_masked": got["identical_masked"]}


def kill_trial(ref: dict[str, Any], stage: str, delay_s: float, work: Path, exact: bool = True,
               factor: float = 8.0, mode: str = "group") -> dict[str, Any]:  # fmt: skip
    """Seed, start, SIGKILL after delay_s, check, re-run, check. `exact`: whether the stage's
    committed outputs must equal the reference byte for byte (else with VOLATILE masked)."""
    recipe = Path(ref["recipe"])
    seed_work(ref, work, stage)
    logs = work.parent / f"{work.name}-logs"
    killed = run_and_kill(stage, recipe, work, delay_s, logs / "killed.log", mode)
    orphans = killed.pop("orphans")
    killed["orphans"] = len(orphans)
    invariant = check_after_kill(ref, work, stage, exact)
    if killed["survivors"]:
        invariant.append(f"processes alive 30 s after SIGKILL: {killed['survivors']}")
    state = ("release folder" if (work / "release").exists() else "no release folder") if stage == "release" else \
        ("marker" if (work / stage / MARKER).exists() else "no marker")  # fmt: skip
    rerun = run_stage(stage, recipe, work, _timeout(ref, stage, factor), logs / "rerun.log")
    killed["orphans_after_rerun"] = reap_orphans(orphans)
    res: dict[str, Any] = {"stage": stage, "delay_s": round(delay_s, 3), "fraction": round(delay_s / ref["stages"][stage]["seconds"], 3),
                           **killed, "after_kill": state, "invariant": invariant, "rerun_rc": rerun.rc,
                           "rerun_s": round(rerun.seconds, 2), "hung": rerun.rc is None}  # fmt: skip
    if not rerun.ok:
        res.update(identical=False, identical_masked=False, rows_lost=sum(ref["stages"][stage]["rows"].values()),
                   ledger_ok=False, problems=[f"re-run failed (rc {rerun.rc}): {rerun.tail[-600:]}"], leftovers=[])  # fmt: skip
        return res
    res.update(check_after_rerun(ref, work, stage))
    res["leftovers"] = leftovers(work)
    return res


# ---- generate against an openai teacher (the loopback server) ----------------------------------


def _hashes(recipe: Path, work: Path) -> dict[str, str]:
    """generation_id → the server's hash of the messages sent for it."""
    from builder.generate.todo import config_of, load_prompts, teacher_items
    from builder.recipe import load_recipe
    from builder.workdir import WorkDir
    from tests.servers.openai_server import prompt_hash

    r = load_recipe(recipe)
    cfg = config_of(r)
    items = teacher_items(r, cfg, cfg.teachers[0], load_prompts(WorkDir(work)))
    return {it.generation_id: prompt_hash(it.messages) for it in items}


def _stored_ok(work: Path, teacher: str) -> set[str]:
    from builder.teachers.store import latest

    return {g for g, e in latest(work / "generate" / "store" / teacher).items() if e.entry.status == "ok"}


def openai_trials(delays: list[float] | None, kills: int, rng: random.Random, root: Path, prompts: int = 200,
                  concurrency: int = 8, latency: float = 0.1, factor: float = 8.0) -> dict[str, Any]:  # fmt: skip
    """Kill `generate` (openai teacher, loopback server) at random moments and re-run it;
    count the requests sent again beyond those in flight at the kill."""
    from tests.generate_helpers import openai_teacher, write_prompts, write_recipe
    from tests.servers.openai_server import run_server

    texts = [{"text": f"Kill test question {i}: how many apples are in basket {i}?"} for i in range(prompts)]
    out: dict[str, Any] = {"kills": 0, "duplicate_requests": 0, "max_in_flight": 0, "concurrency": concurrency,
                           "identical_masked": 0, "invariant_ok": 0, "rows_lost": 0, "problems": []}  # fmt: skip
    with run_server(latency=latency, tokens_per_reply=300) as srv:
        recipe = write_recipe(root, {"teachers": [openai_teacher(srv.base_url, limits={"concurrency": concurrency})]})
        ref_work = root / "ref"
        write_prompts(ref_work, texts)
        srv.reset()
        run = run_stage("generate", recipe, ref_work, 600, root / "ref.log")
        st = srv.stats()
        if not run.ok or st["requests_total"] != prompts or st["duplicate_prompts"]:
            raise RuntimeError(f"openai reference run: rc {run.rc}, {st['requests_total']} requests, "
                               f"{st['duplicate_prompts']} duplicates\n{run.tail}")  # fmt: skip
        want = describe(ref_work, "generate")
        ref = {
            "recipe": str(recipe),
            "work": str(ref_work),
            "stages": {"curate": describe(ref_work, "curate"), "generate": {"seconds": run.seconds, **want}},
        }
        hashes = _hashes(recipe, ref_work)
        log(f"reference generate (openai, {prompts} prompts, concurrency {concurrency}): {run.seconds:.1f}s")
        todo = delays if delays else [draw_delay(rng, ref, "generate") for _ in range(kills)]
        for k, delay in enumerate(todo):
            work = root / f"kill-{k}"
            shutil.copytree(ref_work / "curate", work / "curate")
            srv.reset()
            killed = run_and_kill("generate", recipe, work, delay, root / f"kill-{k}.log")
            killed.pop("orphans")
            time.sleep(0.5)  # let the server count the requests whose connections the kill cut
            sent_before = srv.stats()["by_prompt"]
            stored = _stored_ok(work, "r1")
            invariant = check_after_kill(ref, work, "generate", exact=False)
            rerun = run_stage("generate", recipe, work, _timeout(ref, "generate", factor), root / f"rerun-{k}.log")
            after = srv.stats()["by_prompt"]
            in_flight = {g for g, h in hashes.items() if g not in stored and sent_before.get(h, 0) > 0}
            # Each prompt goes once, plus once more if it was in flight at the kill.
            dup = sum(max(0, after.get(h, 0) - 1 - (g in in_flight)) for g, h in hashes.items())
            never = [g for g, h in hashes.items() if after.get(h, 0) == 0]
            got = check_after_rerun(ref, work, "generate") if rerun.ok else \
                {"identical_masked": False, "rows_lost": prompts, "problems": [f"re-run rc {rerun.rc}: {rerun.tail[-600:]}"]}  # fmt: skip
            out["kills"] += 1
            out["duplicate_requests"] += dup
            out["max_in_flight"] = max(out["max_in_flight"], len(in_flight))
            out["identical_masked"] += bool(got["identical_masked"])
            out["invariant_ok"] += not invariant
            out["rows_lost"] += got["rows_lost"]
            problems = invariant + got["problems"]
            if len(in_flight) > concurrency:
                problems.append(f"{len(in_flight)} requests in flight at the kill > concurrency {concurrency}")
            if dup:
                problems.append(f"{dup} requests sent again beyond those in flight")
            if never and rerun.ok:
                problems.append(f"{len(never)} prompts never sent")
            if problems:
                out["problems"].append({"kill": k, "delay_s": round(delay, 3), "problems": problems})
            log(f"[generate/openai {k + 1}/{len(todo)}] kill at {delay:.2f}s "
                f"({'finished first' if killed['finished_before_kill'] else f'{len(stored)} stored'}, "
                f"{len(in_flight)} in flight) → re-run {rerun.seconds:.1f}s: {dup} sent twice beyond in flight, "
                f"rows lost {got['rows_lost']}, same replies {'yes' if got['identical_masked'] else 'NO'}"
                + (f"  VIOLATION {problems}" if problems else ""))  # fmt: skip
    return out


# ---- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", type=Path, default=SAMPLE)
    p.add_argument("--kills", type=int, default=20, help="kills per stage (and for generate/openai)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated; 'none' for the openai part only")
    p.add_argument("--delays", default="", help="replay: comma-separated kill delays (s) instead of random ones")
    p.add_argument("--openai-kills", type=int, default=None, help="kills of generate/openai (default --kills; 0: skip)")
    p.add_argument("--prompts", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--latency", type=float, default=0.3, help="loopback server seconds per reply")
    p.add_argument("--no-control", action="store_true", help="skip the uninterrupted control run per stage")
    p.add_argument("--timeout-factor", type=float, default=8.0, help="a run past this x reference time is hung")
    p.add_argument(
        "--kill-mode",
        choices=("group", "parent"),
        default="group",
        help="SIGKILL the whole command (default) or only its main process",
    )
    p.add_argument("--keep", type=Path, default=None, help="keep the work dirs under this folder")
    a = p.parse_args(argv)
    stages = tuple(s for s in a.stages.split(",") if s and s != "none")
    if bad := [s for s in stages if s not in STAGES]:
        p.error(f"unknown stages {bad}; known: {STAGES}")
    delays = [float(x) for x in a.delays.split(",") if x]
    openai_kills = a.kills if a.openai_kills is None else a.openai_kills
    t0 = time.monotonic()
    root = a.keep or Path(tempfile.mkdtemp(prefix="killtest-"))
    root.mkdir(parents=True, exist_ok=True)
    violations: list[dict[str, Any]] = []
    per_stage: dict[str, dict[str, Any]] = {}
    result: dict[str, Any] = {"seed": a.seed}
    try:
        if stages:
            upto = STAGES[: max(STAGES.index(s) for s in stages) + 1]
            ref = build_reference(a.recipe.resolve(), root / "reference", upto)
        for stage in stages:
            rng = random.Random(f"{a.seed}:{stage}")  # a stage's kill moments do not depend on --stages
            control = None if a.no_control else control_run(ref, stage, root / f"{stage}-control", a.timeout_factor)
            # A stage that differs run to run (generate: created_at) is compared with VOLATILE masked.
            exact = control["identical"] if control is not None else stage != "generate"
            if control is not None:
                log(f"control {stage}: {'byte-identical' if control['identical'] else 'NOT byte-identical'} to the "
                    f"reference; masked {'identical' if control['identical_masked'] else 'DIFFERENT'}")  # fmt: skip
            todo = delays if delays else [draw_delay(rng, ref, stage) for _ in range(a.kills)]
            agg = {"kills": 0, "identical": 0, "identical_masked": 0, "invariant_ok": 0, "rows_lost": 0,
                   "ledger_ok": 0, "finished_before_kill": 0, "hung": 0, "orphans": 0, "leftovers": 0, "leftover_examples": [],
                   "control_identical": None if control is None else control["identical"]}  # fmt: skip
            for k, delay in enumerate(todo):
                work = root / f"{stage}-{k}"
                r = kill_trial(ref, stage, delay, work, exact, a.timeout_factor, a.kill_mode)
                agg["kills"] += 1
                agg["identical"] += bool(r["identical"])
                agg["identical_masked"] += bool(r["identical_masked"])
                agg["invariant_ok"] += not r["invariant"]
                agg["rows_lost"] += r["rows_lost"]
                agg["ledger_ok"] += bool(r["ledger_ok"])
                agg["finished_before_kill"] += r["finished_before_kill"]
                agg["hung"] += r["hung"]
                agg["orphans"] += r["orphans"]
                agg["leftovers"] += bool(r["leftovers"])
                if r["leftovers"] and len(agg["leftover_examples"]) < 3:
                    agg["leftover_examples"].append(r["leftovers"][:3])
                same = r["identical"] if exact else r["identical_masked"]
                bad = r["invariant"] + r["problems"] + ([] if same else ["outputs differ from the reference"])
                if bad:
                    violations.append({"stage": stage, "kill": k, "delay_s": r["delay_s"], "after_kill": r["after_kill"],
                                       "problems": bad, "work": str(work),
                                       "replay": f"python benchmarks/killtest.py --stages {stage} --delays {r['delay_s']} "
                                                 f"--kill-mode {a.kill_mode} --openai-kills 0 --keep DIR"})  # fmt: skip
                log(f"[{stage} {k + 1}/{len(todo)}] kill at {r['delay_s']:.2f}s ({r['fraction']:.2f}x"
                    f"{', finished first' if r['finished_before_kill'] else ''}) → {r['after_kill']}; "
                    f"re-run {r['rerun_s']:.1f}s rc {r['rerun_rc']}: identical {'yes' if r['identical'] else 'no'}"
                    f"{'' if r['identical'] else ' (masked ' + ('yes' if r['identical_masked'] else 'NO') + ')'}, "
                    f"rows lost {r['rows_lost']}, ledger {'ok' if r['ledger_ok'] else 'BAD'}"
                    + (f", leftovers {r['leftovers']}" if r["leftovers"] else "")
                    + (f"  VIOLATION {bad}" if bad else ""))  # fmt: skip
                if not a.keep and not bad:
                    shutil.rmtree(work, ignore_errors=True)
            per_stage[stage] = agg
        if openai_kills:
            result["generate_openai"] = openai_trials(delays, openai_kills, random.Random(f"{a.seed}:openai"),
                                                      root / "openai", a.prompts, a.concurrency, a.latency,
                                                      factor=a.timeout_factor)  # fmt: skip
    finally:
        if not a.keep and not violations:
            shutil.rmtree(root, ignore_errors=True)
    oa = result.get("generate_openai")
    ok = (
        not violations
        and all(s["hung"] == 0 for s in per_stage.values())
        and (
            oa is None
            or (not oa["problems"] and oa["duplicate_requests"] == 0 and oa["max_in_flight"] <= oa["concurrency"])
        )
    )
    for v in violations:
        log(f"VIOLATION {json.dumps(v)}")
    if violations and not a.keep:
        log(f"work dirs of the failed trials kept under {root}")
    result = {"kills": sum(s["kills"] for s in per_stage.values()) + (oa["kills"] if oa else 0),
              "per_stage": per_stage, **result, "violations": len(violations),
              "seconds": round(time.monotonic() - t0, 1), "ok": ok}  # fmt: skip
    print(json.dumps(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
