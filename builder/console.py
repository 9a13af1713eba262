"""Console rendering of every stage: step tables, a ticker, generation's live bars and cost table."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from builder.generate.stage import GenerateResult

console = Console(stderr=False)
err = Console(stderr=True)


def ticker(label: str) -> Callable[[str], None]:
    """A `progress` callback printing elapsed seconds and the step it is told."""
    started = time.perf_counter()

    def tick(step: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {label}: {step}", highlight=False)

    return tick


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
            console=console, transient=False,
        )  # fmt: skip
        self.tasks: dict[str, Any] = {}

    def __call__(self, ev: dict[str, Any]) -> None:
        name = ev["teacher"]
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
    for r in res.teachers:
        if r.failed:
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(r.failed.items(), key=lambda kv: -kv[1]))
            console.print(f"{r.name} failed: {reasons}", highlight=False)
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
    for w in res.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
