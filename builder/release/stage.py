"""The release stage: quality gates on every variant, then a Hub-ready dataset folder.

Reads  <work>/variants/<variant>/part-*.parquet (VARIANT_FEATURES), <work>/curate/summary.json,
       <work>/curate/decontamination.parquet, ledgers and stage summaries for statistics.
Writes <out>/data/<variant>/train-0000k-of-0000n.parquet, README.md (the dataset card),
       quality.json, quality/ (GX results and Data Docs pages), figures/, CHANGELOG.md,
       recipe.yaml and manifest.json — only when every blocking check passes. A blocked
       release leaves its report in <work>/quality/ and no release folder.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from builder import __version__ as TOOLKIT_VERSION
from builder.config.curate import PAPER_MIX
from builder.errors import UserError, secret_values
from builder.recipe import Recipe
from builder.release import card, changelog, licenses
from builder.release.folder import SCHEMA, copy_hashed, is_published_schema, name_shards, secrets_in, staging
from builder.release.manifest import sha256_file, write_manifest
from builder.release.versions import find_previous, read_manifest, refuse_existing, tag_for
from builder.rows import SCHEMA_VERSION, VARIANTS
from builder.workdir import WorkDir
from quality.derive import answer_keys, signal_table, to_frame
from quality.report import checks_table, failures, one_line, write_quality_json
from quality.stats import VariantStats, costs, rejections
from quality.suites import CheckOutcome, GxRunner, outcomes_of, variant_expectations, write_result

WORKERS = 2  # shards processed at once; the benchmark target is 2 cores
BATCH_ROWS = 2_048  # rows per record batch: ~28 MB of `full` text

# `answer` first: think_summary rows are checked against its assistant text.
ORDER = ("answer", *[v for v in VARIANTS if v != "answer"])
BLURBS = {
    "original": "the community dataset's own response (R_orig; the paper's baseline)",
    "answer": "the teacher's final answer only, thinking removed (A_reason; the paper's best)",
    "think_summary": "a short summary of the teacher's thinking, then the exact answer (S_think ⊕ A_reason)",
    "full": "the teacher's thinking in `<think>…</think>`, then the answer (reasoning-style SFT)",
    "control": "a non-reasoning teacher's reply (the control)",
}
DEFAULT_CITATION = """@article{answer_distill_2025,
  title   = {Leveraging Reasoning Model Answers to Enhance Non-Reasoning Model Capability},
  journal = {arXiv preprint arXiv:2504.09639},
  year    = {2025}
}"""


@dataclass
class ReleaseResult:
    out_dir: Path
    version: str
    counts: dict[str, int]
    warnings: list[str]
    license: str | list[str]
    seconds: float
    bytes_in: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)


def _tick(progress: Any, msg: str) -> None:
    if progress is not None:
        progress(msg)


def _contaminated(work: WorkDir) -> pa.Array:
    path = work.root / "curate" / "decontamination.parquet"
    if not path.is_file():
        return pa.array([], pa.string())
    return pq.read_table(path, columns=["prompt_id"]).column("prompt_id").combine_chunks()


def _max_tokens(recipe: Recipe) -> int:
    return recipe.student.max_tokens


def _curated_mix(curate: dict[str, Any] | None, key: str) -> dict[str, float]:
    counts: dict[str, int] = {}
    for row in (curate or {}).get("balance", []):
        counts[row[key]] = counts.get(row[key], 0) + int(row.get("after", 0))
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


class _Gates:
    """The GX runner and its suites: per variant, mix, verification.

    GX's import (~2-5 s, pure Python) runs in a background thread while the first shards are
    read and scanned (Arrow kernels, GIL released), so it costs little wall time."""

    def __init__(self, recipe: Recipe, variants: list[str], qdir: Path) -> None:
        self.cfg = recipe.quality
        self.qdir = qdir
        self.pages: list[tuple[str, str, bool]] = []  # (label, html path, success)
        self._runner: GxRunner | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._setup, args=(variants, _max_tokens(recipe)), daemon=True)
        self._thread.start()

    def _setup(self, variants: list[str], max_tokens: int) -> None:
        try:
            runner = GxRunner()
            E = runner.gx.expectations
            for v in variants:
                runner.define(v, variant_expectations(runner.gx, v, max_tokens, self.cfg.language_mostly))
            for check in ("category_mix", "source_mix"):
                runner.define(check, [E.ExpectColumnValuesToBeBetween(
                    column="deviation", max_value=self.cfg.mix.tolerance, meta={"check": check})])
            runner.define("verification", [E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="pass_rate", column_B="floor", or_equal=True, meta={"check": "verification_rate"})])
            self._runner = runner
        except BaseException as e:  # re-raised in the caller's thread by `runner`
            self._error = e

    @property
    def runner(self) -> GxRunner:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._runner is not None
        return self._runner

    def validate(self, key: str, frame: pd.DataFrame, variant: str, label: str,
                 into: dict[tuple[str, str, str], CheckOutcome]) -> None:
        result = self.runner.run(key, frame, "prompt_id" if "prompt_id" in frame.columns else None)
        outcomes_of(result, variant, into)
        html = f"data_docs/{variant}/{label}.html"
        write_result(result, self.qdir / "gx" / variant / f"{label}.json", self.qdir / html)
        self.pages.append((f"{variant} / {label}", html, bool(result.success)))

    def write_index(self) -> None:
        items = "\n".join(
            f'<li><a href="{h.removeprefix("data_docs/")}">{label}</a>: {"pass" if ok else "<b>FAIL</b>"}</li>'
            for label, h, ok in self.pages)
        (self.qdir / "data_docs").mkdir(parents=True, exist_ok=True)
        (self.qdir / "data_docs" / "index.html").write_text(
            f"<!doctype html><meta charset=utf-8><title>Validation results</title>"
            f"<h1>Great Expectations validation results</h1><ul>\n{items}\n</ul>\n")


@dataclass
class _Shard:
    """One work shard after its pass: signals, partial stats, copied (and hashed) to staging."""

    k: int
    path: Path
    rows: int = 0
    signals: list[pa.Table] = field(default_factory=list)
    stats: VariantStats = field(default_factory=VariantStats)
    answer_keys: list[tuple[str, tuple[int, bytes]]] = field(default_factory=list)
    dest: Path | None = None
    sha256: str = ""
    error: str = ""


def _load_shard(k: int, path: Path, v: str, contaminated: pa.Array, answers: dict[str, tuple[int, bytes]],
                staging_dir: Path) -> _Shard:
    """The per-shard work, streamed in record batches: memory stays near one batch whatever
    the shard size (read_table on a 676 MB shard peaked at 1.9 GB RSS, batches at 0.7 GB).
    Arrow kernels release the GIL, so two shards run on two cores."""
    s = _Shard(k, path)
    pf = pq.ParquetFile(path)
    s.rows = pf.metadata.num_rows
    s.dest = staging_dir / f".part-{k:05d}.parquet"
    published = is_published_schema(pf.schema_arrow, check_metadata=True)
    if not published and not is_published_schema(pf.schema_arrow, check_metadata=False):
        try:  # fails on missing or mistyped columns: a schema failure, not a crash
            pa.Table.from_batches([], schema=pf.schema_arrow).cast(SCHEMA)
        except (ValueError, pa.ArrowInvalid, KeyError) as e:
            s.error = f"{path}: {str(e)[:160]}"
            return s
    writer = None if published else pq.ParquetWriter(s.dest, SCHEMA, compression="zstd")
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            table = pa.Table.from_batches([batch])
            if not published:
                table = table.cast(SCHEMA)
                writer.write_table(table)  # type: ignore[union-attr]
            if v == "answer":
                s.answer_keys += answer_keys(table)
            s.signals.append(signal_table(table, v, contaminated, answers))
            s.stats.add(table)
    finally:
        if writer is not None:
            writer.close()
    s.sha256 = copy_hashed(path, s.dest) if published else sha256_file(s.dest)
    return s


def _check_variants(recipe: Recipe, work: WorkDir, variants: list[str], tmp: Path, progress: Any,
                    known: dict[str, str], curate: dict[str, Any] | None,
                    ) -> tuple[dict[str, VariantStats], list[CheckOutcome], int]:
    """Gate every variant; shards are copied into `tmp` and their sha256 put in `known`."""
    gates = _Gates(recipe, variants, tmp / "quality")
    contaminated = _contaminated(work)
    answers: dict[str, tuple[int, bytes]] = {}
    stats: dict[str, VariantStats] = {}
    outcomes: list[CheckOutcome] = []
    bytes_in = 0
    for v in variants:
        per: dict[tuple[str, str, str], CheckOutcome] = {}
        schema = per.setdefault(("schema", "arrow_schema_matches_features", ""),
                                CheckOutcome("schema", v, "arrow_schema_matches_features", ""))
        st = stats[v] = VariantStats()
        signals: list[pa.Table] = []
        staged: list[Path] = []
        hashes: list[str] = []
        (tmp / "data" / v).mkdir(parents=True, exist_ok=True)
        shards = work.shards("variants", v)
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            pending: deque[Future[_Shard]] = deque()
            for k, path in enumerate(shards):
                bytes_in += path.stat().st_size
                pending.append(pool.submit(_load_shard, k, path, v, contaminated, answers, tmp / "data" / v))
                # At most WORKERS + 1 shards in memory at once.
                while len(pending) > WORKERS or (k == len(shards) - 1 and pending):
                    done = pending.popleft().result()
                    if done.error:
                        schema.merge(False, done.rows, done.rows, [done.path.name])
                        schema.detail = done.error
                        continue
                    assert done.dest is not None
                    schema.merge(True, done.rows, 0, [])
                    answers.update(done.answer_keys)
                    signals += done.signals
                    st.merge(done.stats)
                    staged.append(done.dest)
                    hashes.append(done.sha256)
        if signals:  # one GX run per variant on the narrow signals (no text), across all shards
            gates.validate(v, to_frame(signals), v, "rows", per)
        del signals
        for final, sha in zip(name_shards(tmp / "data" / v, staged), hashes):
            known[final.relative_to(tmp).as_posix()] = sha
        outcomes += per.values()
        _tick(progress, f"{v}: {st.rows:,} rows checked")

    cfg = recipe.quality
    for v in cfg.mix.variants:
        if v not in stats:
            continue
        for check, key, targets in (("category_mix", "category", cfg.mix.category_targets),
                                    ("source_mix", "source", cfg.mix.source_targets)):
            targets = targets or _curated_mix(curate, key)
            if targets:
                per = {}
                frame = _mix_frame(getattr(stats[v], f"by_{key}"), targets)
                gates.validate(check, frame, v, check, per)
                off = frame[frame["deviation"] > cfg.mix.tolerance]
                for o in per.values():  # name the keys, not just their deviations
                    o.examples = [f"{r.key} {r.share:.2f} vs {r.target:.2f}" for r in off.itertuples()][:5]
                outcomes += per.values()
    for v in cfg.verification_variants:
        if v not in stats:
            continue
        rows = []
        for cat, c in stats[v].verify.items():
            checked = c.get("pass", 0) + c.get("fail", 0)
            if checked:
                floor = cfg.verification_floor.get(cat, cfg.verification_floor.get("*", 0.0))
                rows.append({"category": cat, "pass_rate": c.get("pass", 0) / checked, "floor": floor})
        per = {}
        gates.validate("verification", pd.DataFrame(rows, columns=["category", "pass_rate", "floor"]),
                       v, "verification", per)
        outcomes += per.values()
    gates.write_index()
    return stats, outcomes, bytes_in


def _card_context(recipe: Recipe, stats: dict[str, VariantStats], summaries: dict[str, Any], quality: dict[str, Any],
                  decision: licenses.LicenseDecision, figures: dict[str, str], built_at: str) -> dict[str, Any]:
    mix_variant = "answer" if "answer" in stats else next(iter(stats))
    ms = stats[mix_variant]
    curate = summaries.get("curate") or {}
    decon = curate.get("decontamination") or {}
    by_name = {s.name: s for s in recipe.sources}
    total = sum(s.rows for s in stats.values())
    source_names = sorted({src for s in stats.values() for src in s.by_source})
    size_note = ""
    if total < 100_000:
        size_note = (f"This is a small release ({total:,} rows across configs, from {len(source_names)} sources); "
                     "it demonstrates the method and the toolkit, not the paper's 1.3M-row scale.")
    teachers = sorted({t.replace("|", " via ") for s in stats.values() for t in s.teachers})
    return {
        "pretty_name": recipe.release.pretty_name or recipe.name, "version": recipe.version, "tag": tag_for(recipe.version),
        "description": (recipe.description or "").strip(), "repo_id": recipe.release.repo_id or f"<org>/{recipe.name}",
        "total_rows": total, "toolkit_version": TOOLKIT_VERSION, "schema_version": SCHEMA_VERSION,
        "built_at": built_at[:10], "size_note": size_note, "max_student_tokens": _max_tokens(recipe),
        "variants": [{"name": v, "description": BLURBS.get(v, v), "rows": s.rows, "num_bytes": s.num_bytes}
                     for v, s in stats.items()],
        "mix_variant": mix_variant,
        "mix": [{"category": c, "paper": n, "ours": ms.by_category.get(c, 0)} for c, n in PAPER_MIX.items()]
        + [{"category": c, "paper": None, "ours": n} for c, n in sorted(ms.by_category.items()) if c not in PAPER_MIX],
        "paper_total": sum(PAPER_MIX.values()), "mix_total": ms.rows,
        "curate": {"rows_in": curate.get("rows_in", 0), "rows_out": curate.get("rows_out", 0),
                   "steps": [{**s, "dropped_total": sum((s.get("dropped") or {}).values())}
                             for s in curate.get("steps", [])]} if curate else None,
        "teachers": teachers, "summarizers": sorted({x for s in stats.values() for x in s.summarizers}),
        "benchmarks": list(dict.fromkeys(decon.get("benchmarks", []))), "decontam_hits": decon.get("hits_per_benchmark", {}),
        "sources": [{"name": n, "license": next((lic for name, lic, _ in decision.attributions if name == n), ""),
                     "attribution": by_name[n].attribution if n in by_name else "",
                     "rows": [stats[v].by_source.get(n, 0) for v in stats]}
                    for n in source_names],
        "tokens": quality["variants"][mix_variant]["tokens"], "verification": quality["variants"][mix_variant]["verification"],
        "rejections": quality["rejections"]["ledgers"], "costs": quality["cost_per_kept_row"],
        "checks": quality["checks"], "figures": figures,
        "license_label": decision.license if isinstance(decision.license, str) else ", ".join(decision.license),
        "license_statement": decision.statement, "attributions": decision.attributions,
        "limitations": [size_note] if size_note else [],
        "citation": recipe.release.citation or DEFAULT_CITATION,
        "recipe_name": recipe.name, "recipe_sha256": recipe.sha256,
    }


def _seeds(node: Any, path: str = "") -> dict[str, Any]:
    """Every `seed` key in the recipe, by its key path."""
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if k == "seed" and not isinstance(v, (dict, list)):
                out[p] = v
            else:
                out |= _seeds(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out |= _seeds(v, f"{path}[{i}]")
    return out


def _stage_dates(work: WorkDir) -> dict[str, str]:
    """When each earlier stage last finished (its summary.json's write time, UTC)."""
    out = {}
    for stage in ("curate", "generate", "responses", "variants"):
        path = work.root / stage / "summary.json"
        if path.is_file():
            ts = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            out[f"{stage}_finished_at"] = ts.isoformat(timespec="seconds").replace("+00:00", "Z")
    return out


def run_release(recipe: Recipe, work: WorkDir | Path, out_dir: Path, progress: Any = None,
                previous: Path | None = None) -> ReleaseResult:
    t0 = time.perf_counter()
    work = work if isinstance(work, WorkDir) else WorkDir(work)
    out_dir = Path(out_dir)
    refuse_existing(out_dir, recipe.version)
    # A variant with no rows (e.g. no prompt had a community response) is not published.
    variants = [v for v in ORDER if sum(pq.ParquetFile(f).metadata.num_rows for f in work.shards("variants", v))]
    if not variants:
        raise UserError(f"{work.root / 'variants'}: no variant shards found; run `answer-distill variants` first")
    recipe_bytes = recipe.path.read_bytes() if recipe.path is not None else b""
    if any(v.encode() in recipe_bytes for v in secret_values()):
        raise UserError(f"{recipe.path}: contains the value of a secret environment variable; keep tokens "
                        "in the environment only (the recipe is published with the release)")
    prev = find_previous(out_dir, recipe.name, recipe.version, previous)
    built_at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    _tick(progress, f"checking {', '.join(variants)} (loading Great Expectations)")
    summaries = {k: work.read_summary(k) for k in ("curate", "generate", "responses", "variants")}
    with staging(out_dir) as tmp:
        known: dict[str, str] = {}
        stats, outcomes, bytes_in = _check_variants(recipe, work, variants, tmp, progress, known,
                                                    summaries["curate"])
        blocking = recipe.quality.blocking
        counts = {v: s.rows for v, s in stats.items()}
        quality = {
            "version": recipe.version, "built_at": built_at,
            "variants": {v: s.summary() for v, s in stats.items()},
            "rejections": rejections(work.root, summaries["responses"]),
            "cost_per_kept_row": costs(summaries["generate"], counts),
        }
        write_quality_json(tmp / "quality.json", quality, outcomes, blocking)
        block, warn = failures(outcomes, blocking)
        if block:
            report = work.root / "quality"
            shutil.rmtree(report, ignore_errors=True)
            shutil.move(tmp / "quality", report)
            shutil.move(tmp / "quality.json", report / "quality.json")
            more = f" (+{len(block) - 1} more)" if len(block) > 1 else ""
            raise UserError(f"release blocked: {one_line(block[0])}{more}; nothing was written to {out_dir}; "
                            f"see {report / 'quality.json'} and {report / 'data_docs/index.html'}")
        quality["checks"] = checks_table(outcomes, blocking)
        _tick(progress, "statistics, figures and the dataset card")
        from quality.plots import all_figures  # matplotlib only once the gates passed

        figures = all_figures(stats, tmp / "figures")
        row_licenses: dict[str, set[str]] = {}
        for s in stats.values():  # per source, the licenses its released rows carry
            for src, lics in s.licenses_by_source.items():
                row_licenses.setdefault(src, set()).update(lics)
        decision = licenses.decide(recipe, row_licenses)
        configs = {}
        for v in variants:
            files = sorted((tmp / "data" / v).glob("*.parquet"))
            configs[v] = {"num_examples": stats[v].rows, "num_bytes": stats[v].num_bytes,
                          "download_size": sum(f.stat().st_size for f in files)}
        languages = recipe.release.language or sorted(
            {lang for s in stats.values() for lang in s.by_language if lang and len(lang) <= 3})
        ctx = _card_context(recipe, stats, summaries, quality, decision, figures, built_at)
        ctx["front_matter"] = card.front_matter(configs, decision.license, languages, recipe.release.task_categories,
                                                recipe.release.tags, ctx["pretty_name"])
        (tmp / "README.md").write_text(card.render(ctx))
        (tmp / "CHANGELOG.md").write_text(changelog.render(recipe.version, built_at[:10],
                                                           quality, prev))
        if recipe.path is not None:
            shutil.copyfile(recipe.path, tmp / "recipe.yaml")
        curate = summaries.get("curate") or {}
        teachers = sorted({t for s in stats.values() for t in s.teachers})
        write_manifest(tmp, {
            "recipe_name": recipe.name, "version": recipe.version, "tag": tag_for(recipe.version),
            "built_at": built_at, "toolkit_version": TOOLKIT_VERSION, "schema_version": SCHEMA_VERSION,
            "recipe": {"file": "recipe.yaml", "sha256": recipe.sha256},
            "configs": {v: {"num_examples": c["num_examples"], "num_bytes": c["num_bytes"]} for v, c in configs.items()},
            "teachers": [{"model": t.split("|")[0], "endpoint_kind": t.split("|")[1]} for t in teachers],
            "summarizers": sorted({x for s in stats.values() for x in s.summarizers}),
            "prompt_templates": sorted({f"{i}:{h}" for s in stats.values() for i, h in s.templates}),
            "summary_templates": sorted({f"{i}:{h}" for s in stats.values() for i, h in s.summary_templates}),
            "seeds": _seeds(recipe.model_dump(mode="json")),
            "dates": {"built_at": built_at, **_stage_dates(work)},
            "decontamination": {"benchmarks": (curate.get("decontamination") or {}).get("benchmarks", []),
                                "skipped_absent": (curate.get("decontamination") or {}).get("skipped_absent", [])},
            "license": decision.license,
            "previous_version": (read_manifest(prev) or {}).get("version") if prev else None,
        }, known)
        leaked = secrets_in(tmp)
        if leaked:  # a secret from the environment made it into a file: refuse to publish it
            raise UserError(f"release refused: a secret from the environment appears in {leaked[0]}; "
                            "remove it from the recipe or data and re-run")
    return ReleaseResult(out_dir, recipe.version, counts, [one_line(o) for o in warn], decision.license,
                         time.perf_counter() - t0, bytes_in, quality["checks"])

