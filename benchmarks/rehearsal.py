"""Rehearsal: the paper's whole build, offline, at full size on this machine.

    python benchmarks/rehearsal.py --quick            # 50,000 rows
    python benchmarks/rehearsal.py --rows 1300000     # the paper's size

Inputs (benchmarks/rehearsal_data.py, written under a temp dir): N prompts made from real ones
in ../shared/corpus in roughly the paper's category mix, with seeded exact / near duplicates and
benchmark leaks; N real-shaped DeepSeek-R1 replies (real traces, damaged shapes at a seeded
rate) in AM-DeepSeek-R1-Distilled's layout, plus o3-mini control answers for chat prompts.

Each stage runs as `answer-distill <stage> RECIPE -w W` in its own process, one after the
other, exactly as a user runs them: curate (exact + MinHash near dedupe + decontamination +
balance), generate (the import backend), responses (parse, validate, verify: MCQ by letter,
code in the sandbox), variants (all default variants, extractive summarizer), release (every
config, quality gates). Per stage: wall time, CPU time of the stage's whole process tree (each
process's exact total from a cpuacct cgroup made for the stage where the machine allows one,
`cpu_source: cgroup`; else each process's own time, sampled, or RUSAGE_CHILDREN, what the stage
reaped, when larger, `cpu_source: sampled`, which misses short-lived sandboxes), peak RSS of the whole process
tree (sampled every 0.2 s with benchmarks/memtree.py's tree_memory, which leaves out children
caught between fork and exec, phantom copies of their parent; the driver is not counted) and
peak PSS (shared pages split among the processes that share them: what the tree holds), and rows in / kept / dropped read from the
stage's ledger, each checked against the tables it wrote (`accounting_ok`).

The last line printed is one JSON object: rows, total_s, peak_rss_mb, accounting_ok, stages
{stage: {wall_s, cpu_s, peak_rss_mb, rows_in, kept, dropped, ...}}, load_avg {start, end},
inputs (what was planted). A stage that fails records `error` (exit code, last stderr line)
and the build stops there. Each stage records the commit it ran on; `--keep DIR --resume` goes
on with a kept build (its inputs and every stage measured without error are kept, the rest run
afresh), `--stop-after STAGE` stops early, so a build can span sessions stage by stage. The machine is shared: compare runs only with their load_avg.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from memtree import TreePeak, reaped_cpu_s  # noqa: E402
from rehearsal_data import BENCH, Generated, write_inputs  # noqa: E402

STAGES = ("curate", "generate", "responses", "variants", "release")
STAGE_KEYS = ("wall_s", "cpu_s", "peak_rss_mb", "rows_in", "kept", "dropped", "ok", "error", "max_processes", "cpu_reaped_s",
              "commit", "cpu_source", "cpu_sampled_s", "peak_pss_mb")
LICENSES = {"chat": "cc-by-nc-4.0", "mcq": "undeclared", "math": "mit", "code": "cc-by-4.0",
            "tool_use": "apache-2.0", "multi_turn": "apache-2.0", "instruction_following": "cc-by-nc-4.0"}  # fmt: skip


def recipe(gen: Generated, folder: Path) -> Path:
    """The rehearsal recipe: one source per generated file, an AM-layout import per source."""
    fields = {
        "chat": {"prompt": "prompt", "response": "response", "id": "id", "language": "lang"},
        "mcq": {"prompt": "prompt", "reference": "answer", "id": "id", "category": "cat"},
        "math": {"prompt": "prompt", "response": "response", "id": "id", "language": "lang"},
        "code": {"prompt": "prompt", "response": "response", "tests": "tests", "id": "id"},
        "tool_use": {"messages": "messages", "tools": "tools", "id": "id"},
        "multi_turn": {"messages": "messages", "response": "response", "id": "id"},
        "instruction_following": {"prompt": "prompt", "id": "id", "language": "lang"},
    }
    extra: dict[str, dict[str, Any]] = {
        "mcq": {"verifier": "mcq"},
        "code": {"verifier": "code", "tests_format": "mbpp"},
    }
    sources = []
    for name, (prompts, _) in gen.sources.items():
        src = {"name": name, "path": str(prompts), "fields": fields[name], "license": LICENSES[name],
               "attribution": "rehearsal: built from real prompts in shared/corpus"}  # fmt: skip
        if name != "mcq":
            src["category"] = name
        src.update(extra.get(name, {"verifier": "none"}))
        sources.append(src)
    imports = [{"source": name, "path": str(replies), "id_field": "id", "layout": "am", "finish_reason": "finish_reason"}
               for name, (_, replies) in gen.sources.items()]  # fmt: skip
    benchmarks = [
        {"name": n, "path": str(BENCH / f), "text_fields": [k], "id_field": "id"}
        for n, f, k in (("gsm8k", "gsm8k_test.jsonl", "question"), ("math500", "math500.jsonl", "problem"),
                        ("humaneval", "humaneval.jsonl", "prompt"), ("ifeval", "ifeval.jsonl", "prompt"),
                        ("mt_bench", "mt_bench.jsonl", "turns"), ("mmlu", "mmlu_test.jsonl", "question"))
    ]  # fmt: skip
    data = {
        "name": "rehearsal",
        "version": "0.1.0",
        "sources": sources,
        "curate": {"decontaminate": {"ngram": 8, "benchmarks": benchmarks}, "balance": {"seed": 0}},
        "generate": {"prompts_dir": str(ROOT / "recipes" / "prompts"), "teachers": [
            {"name": "r1", "role": "reasoning", "kind": "import", "model": "deepseek-ai/DeepSeek-R1", "imports": imports},
            {"name": "control", "role": "control", "kind": "import", "model": "o3-mini-2025-01-31",
             "sources": {"include": ["chat"]},
             "imports": [{"source": "chat", "path": str(gen.sources["chat"][1]), "id_field": "id", "answer": "control"}]},
        ]},
        "quality": {"blocking": ["schema", "not_null", "unique_row_id", "tag_grammar", "summary_ends_with_answer",
                                 "student_tokens_within_max", "not_contaminated", "verification_rate"],
                    "verification_floor": {"*": 0.5}},
        "variants": {"tasks": 2},  # both cores: on local, one task is the default
        "release": {"pretty_name": "answer-distill rehearsal", "tasks": 2},
        "executor": {"kind": "local", "tasks": 2, "workers": 2},
    }  # fmt: skip
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _log(line: str) -> None:
    print(line, flush=True)  # progress shows while stdout is a file


CPUACCT = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1: counts every process of the group, however short-lived


class _CpuGroup:
    """Exact CPU of a stage's whole tree where this machine lets us make a cgroup (v1 cpuacct):
    the code sandboxes are processes of ~30 ms that the 0.2 s sampler misses and that the stage
    never reaps itself. `seconds` is None where no group could be made (then sampling is used)."""

    def __init__(self, name: str) -> None:
        self.path: Path | None = CPUACCT / name
        try:
            self.path.mkdir()
        except OSError:
            self.path = None

    def join(self) -> None:  # in the child, before exec: every descendant is in the group
        if self.path is not None:
            (self.path / "tasks").write_text(str(os.getpid()))

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        try:
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):  # a lingering process keeps it; harmless
                self.path.rmdir()


def run_stage(stage: str, recipe_path: Path, work: Path, logs: Path) -> dict[str, Any]:
    """One CLI stage in its own process: wall, CPU (children included), peak tree RSS, exit."""
    cmd = [sys.executable, "-m", "builder.cli", stage, str(recipe_path), "--work", str(work)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    group = _CpuGroup(f"answer-distill-rehearsal-{os.getpid()}-{stage}")
    cpu0, t0 = reaped_cpu_s(), time.perf_counter()
    try:
        with (logs / f"{stage}.out").open("w") as out, (logs / f"{stage}.err").open("w") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, preexec_fn=group.join)
            with TreePeak(0.2, pid=proc.pid, pss=True) as tree:
                rc = proc.wait()
        exact = group.seconds()
    finally:
        group.close()
    reaped, sampled = reaped_cpu_s() - cpu0, tree.cpu_s()
    res = {"wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(exact if exact is not None else max(reaped, sampled), 1),
           "cpu_source": "cgroup" if exact is not None else "sampled", "cpu_sampled_s": round(sampled, 1),
           "cpu_reaped_s": round(reaped, 1), "peak_rss_mb": round(tree.mb, 1), "peak_pss_mb": round(tree.pss_mb, 1),
           "max_processes": tree.procs}  # fmt: skip
    if rc != 0:
        lines = [ln for ln in (logs / f"{stage}.err").read_text(errors="replace").splitlines() if ln.strip()]
        res["error"] = f"exit {rc}: {lines[-1] if lines else '(no stderr)'}"
    return res


def _rows(folder: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(folder.rglob("*.parquet")))


def _ledger(work: Path, stage: str) -> list[tuple[str, int, int, Counter]]:
    """(step, in, kept, dropped by reason) per ledger step, in first-seen order."""
    t = pq.read_table(work / stage / "ledger.parquet", columns=["step", "reason"])
    steps: dict[str, list] = {}
    counts = t.group_by(["step", "reason"]).aggregate([([], "count_all")]).to_pylist()
    order = pc.unique(t["step"]).to_pylist()
    for step in order:
        steps[step] = [0, 0, Counter()]
    for r in counts:
        s = steps[r["step"]]
        s[0] += r["count_all"]
        if r["reason"]:
            s[2][r["reason"]] += r["count_all"]
        else:
            s[1] += r["count_all"]
    return [(k, v[0], v[1], v[2]) for k, v in steps.items()]


def accounting(work: Path, stage: str, release_dir: Path) -> dict[str, Any]:
    """rows_in / kept / dropped of a stage from its ledger, each identity checked (`ok`)."""
    if stage == "release":
        variants = {p.name: _rows(p) for p in sorted((work / "variants").iterdir()) if p.is_dir()}
        written = {p.name: _rows(p) for p in sorted((release_dir / "data").iterdir()) if p.is_dir()}
        manifest = json.loads((release_dir / "manifest.json").read_text())["configs"]
        rows_in, kept = sum(variants.values()), sum(written.values())
        ok = variants == written and all(manifest[k]["num_examples"] == v for k, v in written.items())
        return {"rows_in": rows_in, "kept": kept, "dropped": rows_in - kept, "ok": ok, "configs": written}
    steps = _ledger(work, stage)
    ok = all(n == k + sum(d.values()) for _, n, k, d in steps)
    by_step = {s: {"in": n, "kept": k, "dropped": dict(d)} for s, n, k, d in steps}
    reasons = sum((d for *_, d in steps), Counter())
    if stage == "curate":  # steps in sequence: each step reads what the previous kept
        ok &= all(steps[i][1] == steps[i - 1][2] for i in range(1, len(steps)))
        rows_in, kept = steps[0][1], steps[-1][2]
        ok &= kept == _rows(work / "curate/prompts") and rows_in == kept + sum(reasons.values())
    elif stage == "generate":  # one step per teacher; every reply (failed ones too) is a row
        rows_in, kept = sum(s[1] for s in steps), sum(s[2] for s in steps)
        ok &= rows_in == _rows(work / "generate/replies") and steps[0][1] == _rows(work / "curate/prompts")
    elif stage == "responses":
        rows_in, kept = sum(s[1] for s in steps), sum(s[2] for s in steps)
        ok &= rows_in == _rows(work / "generate/replies") and kept == _rows(work / "responses/parsed")
        ok &= rows_in - kept == _rows(work / "responses/quarantine")
    else:  # variants: one step per variant, each over every curated prompt
        rows_in, kept = sum(s[1] for s in steps), sum(s[2] for s in steps)
        prompts = _rows(work / "curate/prompts")
        ok &= all(s[1] == prompts and s[2] == _rows(work / "variants" / s[0]) for s in steps)
    dropped = sum(reasons.values())
    ok &= rows_in == kept + dropped
    return {"rows_in": rows_in, "kept": kept, "dropped": dropped, "ok": bool(ok), "steps": by_step}


def _commit() -> str:
    """The code a stage ran: ROOT's commit, "+dirty" when its tracked files differ from it."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


def _save_state(root: Path, state: dict[str, Any]) -> None:
    tmp = root / "rehearsal.json.tmp"
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    tmp.replace(root / "rehearsal.json")  # whole or not at all


def _load_state(root: Path, rows: int, seed: int) -> dict[str, Any] | None:
    """A kept build's state (inputs written, stages measured) when it is the same rows and seed."""
    path = root / "rehearsal.json"
    if not path.is_file():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    return state if (state.get("rows_asked"), state.get("seed")) == (rows, seed) else None


def _generated(state: dict[str, Any]) -> Generated:
    g = state["generated"]
    return Generated({k: (Path(a), Path(b)) for k, (a, b) in g["sources"].items()}, g["rows"],
                     Counter(g["kinds"]), Counter(g["shapes"]))  # fmt: skip


def rehearse(rows: int, seed: int, root: Path, log: Callable[[str], None] = _log, resume: bool = False,
             stop_after: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Build (or, with `resume`, go on with) a rehearsal in `root`. Resuming keeps the inputs and
    every stage measured without error, and runs the rest from the first one missing, each stage
    output (and those after it) removed first; each stage records the commit it ran on."""
    load_start = [round(x, 2) for x in os.getloadavg()]
    work, logs = root / "work", root / "logs"
    state = _load_state(root, rows, seed) if resume else None
    if state is None:
        t0 = time.perf_counter()
        gen = write_inputs(rows, root / "inputs", seed)
        inputs_s = time.perf_counter() - t0
        log(f"inputs: {gen.rows:,} rows in {inputs_s:.1f}s; kinds {dict(gen.kinds)}; shapes {dict(gen.shapes)}")
        state = {"rows_asked": rows, "seed": seed, "inputs_s": round(inputs_s, 1), "stages": {},
                 "generated": {"sources": {k: [str(a), str(b)] for k, (a, b) in gen.sources.items()},
                               "rows": gen.rows, "kinds": dict(gen.kinds), "shapes": dict(gen.shapes)}}  # fmt: skip
        _save_state(root, state)
    gen = _generated(state)
    recipe_path = recipe(gen, root)
    logs.mkdir(exist_ok=True)
    stages: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        done = state["stages"].get(stage)
        if done is not None and "error" not in done and len(stages) == STAGES.index(stage):
            stages[stage] = done
            log(f"{stage}: kept from the earlier run (commit {done.get('commit')})")
            continue
        for later in STAGES[STAGES.index(stage):]:  # this stage and every later one start afresh
            shutil.rmtree(work / later, ignore_errors=True)
            state["stages"].pop(later, None)
        res = {**run_stage(stage, recipe_path, work, logs), "commit": _commit()}
        if "error" not in res:
            try:
                res.update(accounting(work, stage, work / "release"))
            except Exception as e:  # a missing table is a finding, not a crash of the benchmark
                res["error"] = f"accounting: {type(e).__name__}: {e}"
        stages[stage] = state["stages"][stage] = res
        _save_state(root, state)
        log(f"{stage}: {json.dumps({k: v for k, v in res.items() if k != 'steps'})}")
        if "steps" in res:
            log(f"  steps: {json.dumps(res['steps'])}")
        if "error" in res:
            log(f"  stderr tail:\n{(logs / f'{stage}.err').read_text(errors='replace')[-3000:]}")
            break
        if stage == stop_after:
            break
    return summary(gen, stages, state["inputs_s"], load_start)


def summary(gen: Generated, stages: dict[str, dict[str, Any]], inputs_s: float, load_start: list[float]) -> dict[str, Any]:
    """The JSON line: whole-build figures over the stages that ran (accounting_ok needs all five)."""
    complete = len(stages) == len(STAGES) and all("error" not in s for s in stages.values())
    return {
        "rows": gen.rows,
        "total_s": round(sum(s["wall_s"] for s in stages.values()), 1),
        "cpu_s": round(sum(s["cpu_s"] for s in stages.values()), 1),
        "peak_rss_mb": round(max(s["peak_rss_mb"] for s in stages.values()), 1),
        "peak_pss_mb": round(max(s.get("peak_pss_mb", 0.0) for s in stages.values()), 1),
        "accounting_ok": complete and all(s.get("ok") for s in stages.values()),
        "complete": complete,
        "stages": {k: {x: v[x] for x in STAGE_KEYS if x in v} for k, v in stages.items()},
        "inputs_s": round(inputs_s, 1),
        "inputs": {"kinds": dict(gen.kinds), "shapes": dict(gen.shapes)},
        "load_avg": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_300_000, help="prompts (and replies) to build")
    ap.add_argument("--quick", action="store_true", help="50,000 rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it (default: a temp dir)")
    ap.add_argument("--resume", action="store_true",
                    help="with --keep: go on with the build kept there (same rows and seed), from its first stage "
                    "not measured")  # fmt: skip
    ap.add_argument("--stop-after", choices=STAGES, default=None, help="stop after this stage (resume later)")
    args = ap.parse_args(argv)
    rows = 50_000 if args.quick else args.rows
    if args.resume and args.keep is None:
        ap.error("--resume needs --keep DIR")
    if args.keep is not None:
        if args.keep.exists() and not args.resume:
            shutil.rmtree(args.keep)
        args.keep.mkdir(parents=True, exist_ok=True)
        out = rehearse(rows, args.seed, args.keep, resume=args.resume, stop_after=args.stop_after)
    else:
        with tempfile.TemporaryDirectory(prefix="rehearsal-") as tmp:
            out = rehearse(rows, args.seed, Path(tmp), stop_after=args.stop_after)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
