"""Console rendering of every stage: step tables, live progress, quarantine reasons with their
fix, generation's cost table, and the `--quiet` / `--json` modes.

Stages never import this module: they call the `Progress` callback (builder/progress.py) and
return results; the CLI hands both to the functions here. Bars are transient and drawn only on
a terminal, so a log or a test sees one line per step and no bar debris.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.progress import Task

    from builder.curate.stage import CurateResult
    from builder.generate.stage import GenerateResult
    from builder.ledger import ReasonRow
    from builder.release.stage import ReleaseResult
    from builder.responses.stage import ResponsesResult
    from builder.variants.stage import VariantsResult

# soft_wrap by default: a message is one line, never a path or `file:line` folded at the terminal's
# width (copy-paste, grep, tests that read stderr); tables still fit the width
console = Console(stderr=False, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclasses.dataclass
class Mode:
    """How much the CLI says: `quiet` keeps errors, warnings and a final line; `json` prints one
    JSON summary line per stage on stdout and nothing else there (errors and warnings: stderr)."""

    quiet: bool = False
    json: bool = False


MODE = Mode()


def set_mode(quiet: bool = False, json_lines: bool = False) -> None:
    MODE.quiet, MODE.json = quiet or json_lines, json_lines
    console.quiet = MODE.quiet  # rich drops every print of a quiet console: tables, rules, bars


def final(line: str, always: bool = False) -> None:
    """The one line `--quiet` keeps (nothing in `--json` mode: stdout is JSON only); printed in
    the normal mode too when `always` (otherwise the tables already said it)."""
    if MODE.json:
        return
    if MODE.quiet:
        print(line, flush=True)
    elif always:
        console.print(line, highlight=False)


def emit_json(stage: str, result: Any = None, **extra: Any) -> None:
    """One JSON line for a stage in `--json` mode: status, the result's fields (paths as text)."""
    if not MODE.json:
        return
    payload: dict[str, Any] = {"stage": stage, "status": "ok"}
    if result is not None:
        payload.update(dataclasses.asdict(result) if dataclasses.is_dataclass(result) else dict(result))
    payload.update(extra)
    if isinstance(payload.get("steps"), list):  # (step, in, kept, {reason: n}) tuples → named fields
        payload["steps"] = [
            {"step": s[0], "in": s[1], "kept": s[2], "dropped": s[3]} if isinstance(s, (list, tuple)) else s
            for s in payload["steps"]
        ]
    sys.stdout.write(json.dumps(payload, default=_plain, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _plain(o: Any) -> Any:
    """JSON for what results hold besides plain data: pydantic models, dataclasses, paths."""
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    return str(o)


class RateColumn(ProgressColumn):
    """Items per second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f}/s", style="progress.data.speed")


class StepProgress:
    """The `Progress` a stage gets (builder/progress.py): a line per step start (with the time
    since the command began) and, on a terminal, a transient bar per step with done/total,
    rate, elapsed and ETA. Use as a context manager so the bar is gone before the tables.

    The bar leaves sys.stdout / sys.stderr alone (rich would swap in proxies that print through
    the console): datatrove's tasks log to `sys.stderr`, which must stay the real fd 2 that
    executors.py points at each logging dir's console.log while a step runs."""

    def __init__(self, label: str, out: Console | None = None) -> None:
        self.label = label
        self.out = out or console
        self.started = time.perf_counter()
        self.step: str | None = None
        self.bar: Progress | None = None
        self.task: Any = None

    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None:
        if step != self.step:
            self.step = step
            self.out.print(f"[dim]{time.perf_counter() - self.started:6.1f}s[/] {self.label}: {escape(step)}", highlight=False)
            if self.out.is_terminal and not self.out.quiet:
                if self.bar is None:
                    self.bar = Progress(
                        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=self.out, transient=True, redirect_stderr=False, redirect_stdout=False,
                    )  # fmt: skip
                    self.bar.start()
                if self.task is not None:
                    self.bar.remove_task(self.task)
                self.task = self.bar.add_task(f"{self.label}: {step}", total=total)
        if self.bar is not None and self.task is not None and done is not None:
            self.bar.update(self.task, completed=done, total=total, refresh=True)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ticker(label: str) -> StepProgress:
    """Kept for callers that only name steps (push): a StepProgress."""
    return StepProgress(label)


def steps_table(title: str, steps: list[tuple[str, int, int, dict[str, int]]]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("step", "in", "kept", "dropped", "reasons"):
        t.add_column(col, justify="right" if col in ("in", "kept", "dropped") else "left")
    for step, n_in, kept, dropped in steps:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1]))
        t.add_row(step, f"{n_in:,}", f"{kept:,}", f"{sum(dropped.values()):,}", reasons)
    return t


class LiveProgress:
    """A `progress` callback for run_generate that drives one rich bar per teacher."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=True, redirect_stderr=False, redirect_stdout=False,
        )  # fmt: skip
        self.tasks: dict[str, Any] = {}
        self.live = console.is_terminal and not console.quiet  # no bar in a log: the table follows

    def __call__(self, ev: dict[str, Any]) -> None:
        name = ev["teacher"]
        if not self.live:
            return
        if ev["phase"] == "start":
            if not self.tasks:
                self.bar.start()
            self.tasks[name] = self.bar.add_task(name, total=ev["total"], rate="")
            return
        el = max(ev["elapsed_s"], 1e-6)
        rate = f"{ev['done'] / el:6.1f} req/s {ev['completion_tokens'] / el:8.0f} tok/s  failed {ev['failed']}"
        done = max(ev["done"], ev["total"]) if ev.get("settled") else ev["done"]  # imports: misses are rows too
        self.bar.update(self.tasks[name], completed=done, rate=rate)

    def stop(self) -> None:
        if self.tasks:
            self.bar.stop()


def print_generate(res: GenerateResult, console: Console) -> None:
    t = Table(title=f"generate ({res.seconds:.1f}s)", title_justify="left")
    for col in ("teacher", "model", "items", "stored before", "sent", "ok", "failed"):
        t.add_column(col, justify="left" if col in ("teacher", "model") else "right")
    for r in res.teachers:
        t.add_row(f"{r.name} ({r.role}, {r.kind})", r.model, f"{r.items:,}", f"{r.already_stored:,}", f"{r.sent:,}",
                  f"{r.ok:,}", f"{sum(r.failed.values()):,}")  # fmt: skip
    console.print(t)
    from builder.ledger import EXPECTED

    for r in res.teachers:
        ranked = sorted(r.failed.items(), key=lambda kv: -kv[1])
        failed = ", ".join(f"{k} {v:,}" for k, v in ranked if k not in EXPECTED)
        expected = ", ".join(f"{k} {v:,}" for k, v in ranked if k in EXPECTED)
        if failed:
            console.print(f"{r.name} failed: {failed}", highlight=False)
        if expected:
            console.print(f"[dim]{r.name} not answered, as expected: {expected}[/]", highlight=False)
    c = Table(title="tokens and cost (every stored attempt, all runs; by category in summary.json)", title_justify="left")
    for col in ("teacher / source", "requests", "retried", "prompt tok", "completion tok", "USD"):
        c.add_column(col, justify="left" if col == "teacher / source" else "right")
    for book in res.accounting:
        rows = [(book["teacher"], book["total"])] + [(f"  {k}", v) for k, v in book["by_source"].items()]
        for label, v in rows:
            cost = f"{v['cost_usd']:.4f}" if book["price"] else "-"
            c.add_row(label, f"{int(v['requests']):,}", f"{int(v['retried']):,}", f"{int(v['prompt_tokens']):,}",
                      f"{int(v['completion_tokens']):,}", cost)  # fmt: skip
    console.print(c)
    show_warnings(res.warnings)


def print_reasons(rows: list[ReasonRow], out: Console | None = None) -> None:
    """Per source, the top quarantine / failure reasons with one example and the fix; expected
    absences (an import that covers some prompts only) are labelled as such, in dim."""
    out = out or console
    problems = [r for r in rows if not r.expected]
    if problems:
        out.print("[bold]quarantined, by source[/] (top reasons, one example each; the ledger has every row):")
    for r in problems:
        where = f" ({escape(r.step)})" if r.step not in ("read", "parse_validate_verify") else ""
        example = f", e.g. {escape(r.example)}" if r.example else ""
        hint = f" [cyan]→ {escape(r.hint)}[/]" if r.hint else ""
        # soft_wrap: one line per reason, never a `file:line` split across lines (copy-paste, grep)
        out.print(f"  {escape(r.source or '-')}{where}: {r.count:,} of {r.of:,} rows {escape(r.reason)}{example}{hint}",
                  highlight=False, soft_wrap=True)  # fmt: skip
    expected: dict[str, list[ReasonRow]] = {}
    for r in rows:
        if r.expected:
            expected.setdefault(r.reason, []).append(r)
    for reason, group in expected.items():
        sources = sorted({r.source for r in group})
        out.print(f"[dim]expected, not a failure: {sum(r.count for r in group):,} rows {escape(reason)} from "
                  f"{len(sources)} source(s) ({escape(', '.join(sources[:6]))}{', …' if len(sources) > 6 else ''}); "
                  f"{escape(group[0].hint.removeprefix('expected: '))}[/]", highlight=False)  # fmt: skip


def print_ledger_reasons(ledger: Path, out: Console | None = None) -> None:
    """print_reasons for a stage's written ledger (nothing when it has no such rows)."""
    from builder.ledger import top_reasons

    if ledger.is_file():
        print_reasons(top_reasons(ledger), out)


def where(work: Path, *declared: Any) -> None:
    """Where a stage's tables lie, from their declarations (builder/tables.py)."""
    console.print("   ".join(f"{t.name}: {work / t.label}" for t in declared), highlight=False)


def show_warnings(lines: list[str]) -> None:
    for w in lines:  # stderr: `--quiet` keeps warnings
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)


# One function per stage: what the CLI shows after it ran (tables, reasons, paths, JSON line).
def show_curate(res: CurateResult, work: Path) -> None:
    from builder import tables  # here: it pulls in `datasets`, which a recipe typo must not wait for

    show_warnings(res.warnings)
    console.print(steps_table(f"curate: {res.rows_in:,} rows in → {res.rows_out:,} prompts ({res.seconds:.1f}s)", res.steps))
    mix = ", ".join(f"{k} {v:,}" for k, v in sorted(res.by_category.items()))
    console.print(f"categories: {mix}", highlight=False)
    print_ledger_reasons(work / tables.CURATE_LEDGER.label)
    where(work, tables.PROMPTS, tables.CURATE_LEDGER)
    emit_json("curate", res)


def show_generate(res: GenerateResult, work: Path) -> None:
    from builder import tables

    print_generate(res, console)
    print_ledger_reasons(work / tables.GENERATE_LEDGER.label)
    where(work, tables.REPLIES, tables.GENERATE_LEDGER)
    emit_json("generate", res)


def show_responses(res: ResponsesResult, work: Path) -> None:
    from builder import tables

    console.print(steps_table(
        f"responses: {res.rows_in:,} replies → {res.kept:,} kept, {res.quarantined:,} quarantined ({res.seconds:.1f}s)", res.steps))  # fmt: skip
    if res.verify:
        console.print("verification: " + ", ".join(f"{k} {v:,}" for k, v in sorted(res.verify.items())), highlight=False)
    print_ledger_reasons(work / tables.RESPONSES_LEDGER.label)
    where(work, tables.PARSED, tables.QUARANTINE)
    emit_json("responses", res)


def show_variants(res: VariantsResult, work: Path) -> None:
    from builder import tables

    console.print(steps_table(f"variants ({res.seconds:.1f}s): rows per variant; absent prompts by reason", res.steps))
    where(work, tables.VARIANT, tables.VARIANTS_LEDGER)
    emit_json("variants", res)


def show_release(res: ReleaseResult) -> None:
    show_warnings(res.warnings)
    rows = ", ".join(f"{k} {v:,}" for k, v in res.counts.items())
    lic = res.license if isinstance(res.license, str) else ", ".join(res.license)
    console.print(f"release v{res.version} ({res.seconds:.1f}s): {rows}; license {lic}", highlight=False)
    console.print(f"folder: {res.out_dir}   card: {res.out_dir / 'README.md'}", highlight=False)
    emit_json("release", res)
