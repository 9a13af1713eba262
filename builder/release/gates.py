"""The quality gates: per variant (schema, rows), mix and verification rate, run with Great
Expectations on the signals staging computed; then the verdict — blocking failures stop the
release (the report is kept in <work>/quality/), advisory ones become warnings.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa

from builder import tables
from builder.errors import UserError
from builder.executors import release_freed_memory
from builder.progress import Progress, report
from builder.recipe import Recipe
from builder.release import content, verified
from builder.release.staging import answer_keys_for, contaminated_ids, stage_variant
from builder.release.tasks import collect_variant
from builder.rows import SCHEMA_VERSION
from builder.tables import CurateSummary, VariantInfo
from builder.workdir import WorkDir
from quality.gx_process import GxProcess, SignalFile, Suites
from quality.report import failures, one_line
from quality.stats import VariantStats
from quality.suites import CheckOutcome

Outcomes = dict[tuple[str, str, str], CheckOutcome]


class Gates:
    """The GX suites (per variant, mix, verification), run in a process of their own.

    GX work is pure Python (it holds the GIL); staging is mostly Arrow kernels, parquet and
    hashing (GIL released). So GX runs in a child process (`quality.gx_process`), started here:
    its import (~3 CPU-s) on the other core while the first shards are read, then each
    variant's validation while the next variant is staged. One worker thread here talks to it
    (requests answered in order, so pages keep their order); matplotlib is imported on a thread
    of its own meanwhile, for the figures."""

    def __init__(self, recipe: Recipe, variants: list[VariantInfo], qdir: Path, scratch: Path) -> None:
        self.qdir = qdir
        # The variants' signals on their way to the GX process (not in the release folder).
        self._signals = tempfile.TemporaryDirectory(prefix=".release-signals-", dir=scratch)
        self.pages: list[tuple[str, str, bool]] = []  # (label, html path, success), in validation order
        self._gx = GxProcess()
        self._worker = ThreadPoolExecutor(max_workers=1)  # FIFO: pages keep their order
        cfg = recipe.quality
        suites = Suites(tuple((s.name, s.think, s.needs_summary) for s in variants), recipe.student.max_tokens,
                        cfg.language_mostly, cfg.mix.tolerance, SCHEMA_VERSION)
        self._ready = self._worker.submit(self._gx.call, "setup", suites)
        self._figures = threading.Thread(target=_warm_figures, daemon=True)
        self._figures.start()

    def signal_file(self, variant: str) -> SignalFile:
        """Where a variant's signals are written as its shards are staged (see SignalFile)."""
        return SignalFile(Path(self._signals.name), variant)

    def submit(self, key: str, data: pd.DataFrame | list[pa.Table] | SignalFile, variant: str,
               label: str) -> Future[Outcomes]:
        """validate() on the worker thread; the future holds the outcomes. `data`: a frame, a
        variant's signal tables, or the file they were written to (made one frame in the GX
        process: a file is finished here and read there)."""
        if isinstance(data, SignalFile):
            data = tuple(data.close())
        def job() -> Outcomes:
            into: Outcomes = {}
            self._validate(key, data, variant, label, into)
            return into
        return self._worker.submit(job)

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self._gx.close()
        self._figures.join()
        self._signals.cleanup()

    def validate(self, key: str, frame: pd.DataFrame, variant: str, label: str, into: Outcomes) -> None:
        into.update(self.submit(key, frame, variant, label).result())

    def _validate(self, key: str, data: pd.DataFrame | list[pa.Table] | tuple[str, ...], variant: str, label: str,
                  into: Outcomes) -> None:
        self._ready.result()  # a failed setup re-raises here
        html = f"data_docs/{variant}/{label}.html"
        outcomes, success = self._gx.call("run", key, data, variant, str(self.qdir / "gx" / variant / f"{label}.json"),
                                          str(self.qdir / html))
        into.update(outcomes)
        self.pages.append((f"{variant} / {label}", html, success))

    def write_index(self) -> None:
        items = "\n".join(
            f'<li><a href="{h.removeprefix("data_docs/")}">{label}</a>: {"pass" if ok else "<b>FAIL</b>"}</li>'
            for label, h, ok in self.pages)
        (self.qdir / "data_docs").mkdir(parents=True, exist_ok=True)
        (self.qdir / "data_docs" / "index.html").write_text(
            f"<!doctype html><meta charset=utf-8><title>Validation results</title>"
            f"<h1>Great Expectations validation results</h1><ul>\n{items}\n</ul>\n")


def _warm_figures() -> None:
    """Import matplotlib's figure and Agg canvas (~1-2 s of Python) while shards are staged."""
    from matplotlib import figure  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401


def _curated_mix(curate: CurateSummary | None, key: str) -> dict[str, float]:
    counts: dict[str, int] = {}
    for row in curate.balance if curate else []:
        k = getattr(row, key)
        counts[k] = counts.get(k, 0) + row.after
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def _mix_frame(observed: dict[str, int], targets: dict[str, float]) -> pd.DataFrame:
    total = sum(observed.values()) or 1
    norm = sum(targets.values()) or 1
    keys = sorted(set(observed) | set(targets))
    share = [observed.get(k, 0) / total for k in keys]
    target = [targets.get(k, 0.0) / norm for k in keys]
    return pd.DataFrame({"key": keys, "share": share, "target": target,
                         "deviation": [abs(a - b) for a, b in zip(share, target)]})


def _checked_variants(named: list[str] | None, stats: dict[str, VariantStats], reasoning: list[str]) -> list[str]:
    """The variants a mix or verification check reads: those named, else `answer`, or when it is
    not published the first published variant built from the reasoning reply."""
    if named is not None:
        return named
    return ["answer"] if "answer" in stats else [v for v in stats if v in reasoning][:1]


def _mix_gates(recipe: Recipe, gates: Gates, stats: dict[str, VariantStats],
               curate: CurateSummary | None, reasoning: list[str]) -> list[CheckOutcome]:
    """Category and source shares vs the recipe's targets (default: the curated mix)."""
    cfg = recipe.quality
    outcomes: list[CheckOutcome] = []
    named = cfg.mix.variants if "variants" in cfg.mix.model_fields_set else None
    for v in _checked_variants(named, stats, reasoning):
        if v not in stats:
            continue
        for check, key, targets in (("category_mix", "category", cfg.mix.category_targets),
                                    ("source_mix", "source", cfg.mix.source_targets)):
            targets = targets or _curated_mix(curate, key)
            if targets:
                per: Outcomes = {}
                frame = _mix_frame(getattr(stats[v], f"by_{key}"), targets)
                gates.validate(check, frame, v, check, per)
                off = frame[frame["deviation"] > cfg.mix.tolerance]
                for o in per.values():  # name the keys, not just their deviations
                    o.examples = [f"{r.key} {r.share:.2f} vs {r.target:.2f}" for r in off.itertuples()][:5]
                outcomes += per.values()
    return outcomes


def _verification_gates(recipe: Recipe, gates: Gates, stats: dict[str, VariantStats],
                        left_out: dict[str, Counter[str]]) -> list[CheckOutcome]:
    """Per category, the verified pass rate against its floor: among the verifiable prompts, the
    failures left out of the release (`left_out`, per variant built from the reasoning reply) too.
    `quality.verification_variants` unset: `answer`, else the first published reasoning variant."""
    cfg = recipe.quality
    outcomes: list[CheckOutcome] = []
    for v in _checked_variants(cfg.verification_variants, stats, list(left_out)):
        if v not in stats:
            continue
        rows = []
        for cat, r in verified.rates(stats[v].verify, left_out.get(v, Counter())).items():
            if r["pass_rate"] is not None:
                floor = cfg.verification_floor.get(cat, cfg.verification_floor.get("*", 0.0))
                rows.append({"category": cat, "pass_rate": r["pass_rate"], "floor": floor})
        per: Outcomes = {}
        gates.validate("verification", pd.DataFrame(rows, columns=["category", "pass_rate", "floor"]),
                       v, "verification", per)
        outcomes += per.values()
    return outcomes


def check_variants(recipe: Recipe, work: WorkDir, variants: list[VariantInfo], tmp: Path, progress: Progress | None,
                   known: dict[str, str], curate: CurateSummary | None, failed: Counter[str],
                   taken: dict[str, content.Taken] | None = None,
                   scratch: Path | None = None, keep_hashes: bool = False,
                   ) -> tuple[dict[str, VariantStats], list[CheckOutcome], int]:
    """Gate every variant; shards are copied into `tmp` (staged here, or from the release tasks'
    `scratch`), their sha256 put in `known` and each variant's content in `taken` (with its
    per-row hashes when `keep_hashes`); `failed`: verified.failed_left_out(work). Returns (stats per
    variant, every check's outcome, bytes read)."""
    gates = Gates(recipe, variants, tmp / "quality", work.root)
    contaminated = contaminated_ids(work)
    answers = answer_keys_for(work, variants)
    stats: dict[str, VariantStats] = {}
    outcomes: list[CheckOutcome] = []
    bytes_in = 0
    step = "quality checks per variant (Great Expectations)"
    report(progress, step, 0, len(variants))
    pending: list[tuple[Outcomes, Future[Outcomes] | None]] = []
    try:
        for i, spec in enumerate(variants):
            v = spec.name
            per: Outcomes = {}
            schema = per.setdefault(("schema", "arrow_schema_matches_features", ""),
                                    CheckOutcome("schema", v, "arrow_schema_matches_features", ""))
            signals = gates.signal_file(v)
            staged = (collect_variant(scratch, work, spec, tmp, answers, schema, known, signals) if scratch is not None
                      else stage_variant(work, spec, tmp, contaminated, answers, schema, known, signals))
            stats[v], bytes_in = staged.stats, bytes_in + staged.bytes_in
            if taken is not None:
                taken[v] = content.Taken.of(staged.hashes, keep_hashes)
            staged.hashes = []
            # The shards' buffers Arrow's pool kept (~500 MB after `full`'s) go back to the OS
            # before the GX process builds this variant's frame.
            release_freed_memory()
            # One GX run per variant on the narrow signals (no text), across all shards, on
            # the GX thread while the next variant is staged.
            pending.append((per, gates.submit(v, staged.signals, v, "rows") if staged.signals else None))
            del staged
            report(progress, step, i + 1, len(variants))
        for per, job in pending:
            if job is not None:
                per.update(job.result())
            outcomes += per.values()
        reasoning = [s.name for s in variants if s.reply == "reasoning"]
        outcomes += _mix_gates(recipe, gates, stats, curate, reasoning)
        outcomes += _verification_gates(recipe, gates, stats, dict.fromkeys(reasoning, failed))
    finally:
        gates.close()
    gates.write_index()
    return stats, outcomes, bytes_in


def verdict(outcomes: list[CheckOutcome], blocking: list[str], tmp: Path, work: WorkDir, out_dir: Path,
            ) -> list[CheckOutcome]:
    """The advisory failures (warnings); on any blocking failure the report moves to
    <work>/quality/ and the release stops with one line."""
    block, warn = failures(outcomes, blocking)
    if block:
        report = work.path(tables.QUALITY_REPORT)
        shutil.rmtree(report, ignore_errors=True)
        shutil.move(tmp / "quality", report)
        shutil.move(tmp / "quality.json", report / "quality.json")
        more = f" (+{len(block) - 1} more)" if len(block) > 1 else ""
        raise UserError(f"release blocked: {one_line(block[0])}{more}; nothing was written to {out_dir}; "
                        f"see {report / 'quality.json'} and {report / 'data_docs/index.html'}")
    return warn
