"""Rich rendering for the generate stage: live progress with throughput, and the cost table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from builder.teachers.stage import GenerateResult


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
        self.bar.update(self.tasks[name], completed=ev["done"], rate=rate)

    def stop(self) -> None:
        if self.tasks:
            self.bar.stop()


def print_result(res: GenerateResult, console: Console) -> None:
    t = Table(title=f"generate ({res.seconds:.1f}s)", title_justify="left")
    for col in ("teacher", "role", "kind", "model", "items", "stored before", "sent", "ok", "failed"):
        t.add_column(col, justify="right" if col in ("items", "stored before", "sent", "ok") else "left")
    for r in res.teachers:
        failed = ", ".join(f"{k} {v:,}" for k, v in sorted(r.failed.items(), key=lambda kv: -kv[1])) or "0"
        t.add_row(r.name, r.role, r.kind, r.model, f"{r.items:,}", f"{r.already_stored:,}", f"{r.sent:,}", f"{r.ok:,}", failed)
    console.print(t)
    c = Table(title="tokens and cost (every stored attempt, all runs)", title_justify="left")
    for col in ("teacher", "group", "requests", "retried", "prompt tok", "completion tok", "reasoning tok", "cost USD"):
        c.add_column(col, justify="left" if col in ("teacher", "group") else "right")
    for book in res.accounting:
        rows = [("total", book["total"])] + [(f"source {k}", v) for k, v in book["by_source"].items()]
        rows += [(f"category {k}", v) for k, v in book["by_category"].items()]
        for label, v in rows:
            cost = f"{v['cost_usd']:.4f}" if book["price"] else "no price"
            c.add_row(book["teacher"], label, f"{int(v['requests']):,}", f"{int(v['retried']):,}",
                      f"{int(v['prompt_tokens']):,}", f"{int(v['completion_tokens']):,}",
                      f"{int(v['reasoning_tokens']):,}", cost)  # fmt: skip
    console.print(c)
    for w in res.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
