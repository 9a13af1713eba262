"""The responses stage: stored replies → (think, answer), grammar codes, verification.

READS / WRITES below (builder/tables.py). Kept replies go to `parsed`, where `selected` marks
the one sample per (prompt, teacher role) the variants use; rejected ones go to `quarantine`
with their reject codes. With n samples per prompt, the selected sample is the first kept one
that passed verification, else the first kept one (rejection sampling); with several teachers
of one role, `generate.precedence` decides (merge.rank_keys, merge.select) and `selected_by` says why.

Memory: replies stream through in batches (parsed in worker processes when
`responses.workers` > 1) and are written as they come; the driver keeps no Python object per
row (builder/responses/merge.py): duplicate ids come from a sort of the id column before the
run, the ledger's rows spill to a parquet file, and `selected` is computed column-wise over the
kept rows' narrow rank columns at the end, then set in a second pass, one shard at a time. The
prompts' columns the workers need stay in one Arrow table, looked up through a sorted id array.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from builder import tables, task_claims
from builder.config.responses import ResponsesConfig
from builder.config.student import StudentConfig
from builder.landing import run_and_merge
from builder.language import names_target_language, prompt_languages
from builder.ledger import Ledger
from builder.progress import Progress
from builder.reasoning_format import resolve_delimiters
from builder.recipe import Recipe
from builder.responses import consistency
from builder.responses.grammar import REJECT_CODES, validate
from builder.responses.merge import DEFAULT_PRECEDENCE, Merged, duplicate_positions, merge, read_outputs
from builder.responses.prompt_index import PromptIndex
from builder.responses.shapes import normalize
from builder.responses.tasks import (
    ResponsesTask,
    after_unit,
    min_unit_rows,
    output_path,
    output_table,
    output_written,
    unit_batches,
    units_of,
    write_output,
)
from builder.responses.token_counts import teacher_counts
from builder.rows import provenance_defaults, stable_hash
from builder.tables import ResponsesSummary
from builder.teachers.reply_shape import SECRET_MARKER
from builder.workdir import WorkDir

STAGE = "responses"
READS = (tables.PROMPTS, tables.REPLIES)
WRITES = (tables.PARSED, tables.QUARANTINE, tables.RESPONSES_LEDGER, ResponsesSummary)
STEP = "parse_validate_verify"
# A non-reasoning (control) teacher has no thinking by design.
CONTROL_IGNORED = frozenset({"missing_think", "answer_tags_absent"})
# Stage-level reject codes (beyond grammar.REJECT_CODES); generation failures are
# "generation_failed:<error_code>" and verification outcomes not kept "verify_<status>".
STAGE_CODES = frozenset({"unknown_prompt", "duplicate_generation", "unknown_reasoning_format", "unknown_teacher_role"})
ROLES = frozenset({"reasoning", "control"})  # the roles the variants read
INLINE_SLICE = 512  # rows per process_batch call when batches run in this process
PRELOAD = "builder.responses.worker_preload"  # what the forkserver of the stage's processes imports


@dataclass
class ResponsesResult:
    rows_in: int
    kept: int
    quarantined: int
    reasons: dict[str, int]
    verify: dict[str, int]
    seconds: float
    steps: list[tuple[str, int, int, dict[str, int]]] = field(default_factory=list)


def _verify_all(todo: list[tuple[int, str, dict[str, Any]]], cfg: ResponsesConfig) -> dict[int, tuple[str, str, str]]:
    """Verdicts for (row index, answer, prompt info); code answers run in parallel sandboxes."""
    from builder.responses.verify import choose_verifier, verify, verify_code_batch

    out: dict[int, tuple[str, str, str]] = {}
    code: list[tuple[int, str, str | None]] = []
    for i, answer, pinfo in todo:
        verifier = pinfo.get("verifier") or "auto"
        if verifier == "auto":
            verifier = choose_verifier(
                pinfo.get("category") or "", pinfo.get("reference_answer"), pinfo.get("tests_json")
            )
        if verifier == "code":
            if cfg.verify_code:
                code.append((i, answer, pinfo.get("tests_json")))
                continue
            verifier = "none"
        try:
            v = verify(
                answer, pinfo.get("category") or "", pinfo.get("reference_answer"), pinfo.get("tests_json"), verifier
            )
            out[i] = (v.status, v.method, v.reason)
        except Exception as e:  # a verifier bug must not sink the stage; record it
            out[i] = ("error", "error", f"verifier_error:{type(e).__name__}")
    if code:
        try:
            verdicts = verify_code_batch([(a, t) for _, a, t in code], workers=cfg.code_workers)
            for (i, _, _), v in zip(code, verdicts):
                if v.method == "code_inproc" and v.status == "pass" and cfg.code_inproc_pass == "unverifiable":
                    # The answer ran in the tests' own interpreter, where it can forge a pass.
                    out[i] = ("unverifiable", v.method, "inproc_pass_untrusted")
                else:
                    out[i] = (v.status, v.method, v.reason)
        except Exception as e:  # verify_code_batch does not raise; a bug here is each item's error
            for i, _, _ in code:
                out[i] = ("error", "error", f"verifier_error:{type(e).__name__}")
    return out


def process_batch(
    replies: list[dict[str, Any]],
    prompts: dict[str, dict[str, Any]],
    cfg: ResponsesConfig,
    student_cfg: StudentConfig | None = None,
) -> list[dict[str, Any]]:
    """Parse, validate and verify a batch of replies; pure, so it can run in a worker.

    `prompts` maps prompt_id to the prompt's columns (see PromptIndex: category,
    reference_answer, tests_json, verifier, source, prompt_text); a reply whose prompt is
    absent is rejected with "unknown_prompt".
    """
    from builder.language import prompt_scripts
    from builder.tokens import count_tokens

    student_cfg = student_cfg or StudentConfig()
    parsed_all = []
    bad_format: list[bool] = []
    for r in replies:
        try:
            delims = resolve_delimiters(r.get("reasoning_format") or "r1")
            bad_format.append(False)
        except ValueError:  # an unknown preset name: parse as R1 so the row is inspectable, and reject it
            delims = resolve_delimiters("r1")
            bad_format.append(True)
        parsed_all.append(
            normalize(r.get("content"), r.get("reasoning_content"), r.get("reasoning"), r.get("finish_reason"), delims)
        )
    answers = [p.answer if isinstance(p.answer, str) else "" for p in parsed_all]
    thinks = [p.think if isinstance(p.think, str) else "" for p in parsed_all]
    student = count_tokens(student_cfg.tokenizer, answers)
    t_think, t_ans = teacher_counts(replies, parsed_all, thinks, answers, cfg.teacher_tokenizer)
    prov = provenance_defaults()
    kw = {} if cfg.repetition_threshold is None else {"repetition_threshold": cfg.repetition_threshold}

    all_codes: list[list[str]] = []
    all_info: list[list[str]] = []
    vals, cons = [], {}  # cons: row → its consistency_json (consistency.row_check)
    to_verify: list[tuple[int, str, dict[str, Any]]] = []
    for i, (r, p) in enumerate(zip(replies, parsed_all)):
        pinfo = prompts.get(r.get("prompt_id") or "")
        val = None
        if r.get("status") != "ok":
            codes, info = [f"generation_failed:{r.get('error_code') or 'unknown'}"], []
        elif pinfo is None:
            codes, info = ["unknown_prompt"], list(p.codes)
        elif r.get("teacher_role") not in ROLES:
            codes, info = ["unknown_teacher_role"], list(p.codes)
        else:
            text = pinfo.get("prompt_text") or ""
            val = validate(
                p,
                r.get("finish_reason"),
                prompt_languages(text),
                None,
                student_cfg.max_tokens,
                language_switch_ok=names_target_language(text),
                # Imports carry no finish reason: judge truncation from token counts and text.
                completion_tokens=r.get("completion_tokens"),
                max_tokens=r.get("max_tokens"),
                infer_truncation=True,
                prompt_scripts=prompt_scripts(text),
                prompt=text,
                expects_thinking=r.get("teacher_role") != "control",
                **kw,
            )
            codes, info = list(val.codes), list(val.info)
            if r.get("teacher_role") == "control":
                codes = [c for c in codes if c not in CONTROL_IGNORED]
                info = [c for c in info if c not in CONTROL_IGNORED]
            if bad_format[i]:
                codes.append("unknown_reasoning_format")
            if any(SECRET_MARKER in (r.get(k) or "") for k in ("content", "reasoning_content", "reasoning")):
                codes.append("secret_in_reply")  # the teacher echoed a key: never a training row
            if (r.get("tool_calls_json") or "[]") not in ("[]", "null"):
                # The variants build text turns: a row would keep the words and silently lose the
                # calls that were the reply's point. Quarantined with a reason, whole in the store.
                codes.append("teacher_tool_calls")
            cons[i] = consistency.row_check(p, text, pinfo, r.get("teacher_role"), info)
            codes += [c for c in info if c in cfg.reject_info]
            if not codes and answers[i]:
                to_verify.append((i, answers[i], pinfo))
        all_codes.append(codes)
        all_info.append(info)
        vals.append(val)

    verdicts = _verify_all(to_verify, cfg)
    out: list[dict[str, Any]] = []
    for i, (r, p) in enumerate(zip(replies, parsed_all)):
        codes, val = all_codes[i], vals[i]
        if i in verdicts:
            v_status, v_method, v_reason = verdicts[i]
            if v_status not in cfg.keep_verify:
                codes.append(f"verify_{v_status}")
        elif r.get("status") != "ok":
            v_status, v_method, v_reason = "unverifiable", "none", "no_reply"
        else:
            v_status, v_method, v_reason = "unverifiable", "none", "rejected"
        out.append(
            {
                "generation_id": r["generation_id"],
                "prompt_id": r["prompt_id"],
                "teacher_role": r["teacher_role"],
                "sample_index": r["sample_index"],
                "teacher": r.get("teacher"),
                "teacher_model": r["teacher_model"],
                "served_model": r.get("served_model"),
                "endpoint_kind": r["endpoint_kind"],
                "prompt_template_id": r.get("prompt_template_id"),
                "prompt_template_hash": r.get("prompt_template_hash"),
                "finish_reason": r.get("finish_reason"),
                "think": p.think if isinstance(p.think, str) else None,
                "answer": p.answer if isinstance(p.answer, str) else None,
                "shape": p.shape,
                "reject_codes": codes,
                "info_codes": all_info[i],
                "verify_status": v_status,
                "verify_method": v_method,
                "verify_reason": v_reason,
                "consistency_json": cons.get(i),
                "repetition_score": float(val.repetition_score) if val else 0.0,
                "think_language": val.think_language if val else "unknown",
                "answer_language": val.answer_language if val else "unknown",
                "teacher_think_tokens": t_think[i],
                "teacher_answer_tokens": t_ans[i],
                "student_answer_tokens": student[i],
                "selected": False,
                "selected_by": None,
                **prov,
            }
        )
    return out


def process_table(
    replies: list[dict[str, Any]], prompts: dict[str, dict[str, Any]], cfg: ResponsesConfig, student: StudentConfig
) -> pa.Table:
    """`process_batch` as one OUTPUT_SCHEMA table (each row's prompt source added, for the ledger)."""
    rows = process_batch(replies, prompts, cfg, student)
    return output_table(rows, [(prompts.get(r["prompt_id"]) or {}).get("source") or "" for r in rows])


def _reply_batches(files: list[Path], batch_rows: int) -> Iterator[list[dict[str, Any]]]:
    for f in files:
        for b in pq.ParquetFile(f).iter_batches(batch_size=batch_rows):
            yield b.to_pylist()


def _results(
    batches: Iterator[list[dict[str, Any]]], prompts: PromptIndex, cfg: ResponsesConfig, student: StudentConfig, workers: int
) -> Iterator[pa.Table]:
    """Processed batches (`process_table`), in input order, with a bounded number in flight."""
    if workers <= 1:
        for b in batches:
            sub = prompts.subset([r.get("prompt_id") or "" for r in b])
            for lo in range(0, len(b), INLINE_SLICE):  # in slices, so progress moves within a batch
                yield process_table(b[lo : lo + INLINE_SLICE], sub, cfg, student)
        return
    # forkserver: this process holds Arrow's thread pools, which a plain fork can deadlock.
    # Preloading builds the imports, tokenizers and language models once in the server, not
    # once per worker (worker_preload.py; no-op if the server is already running).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([PRELOAD])
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending: deque[Future[pa.Table]] = deque()
        for b in batches:
            # Each task carries only its own prompts, never the whole index.
            sub = prompts.subset([r.get("prompt_id") or "" for r in b])
            pending.append(pool.submit(process_table, b, sub, cfg, student))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def task_units(recipe: Recipe, work: WorkDir, scratch: Path, rank: int, world: int, workers: int,
               claims: Path) -> int:  # fmt: skip
    """One datatrove task's body (builder/responses/tasks.py): the units it claims that have no
    output yet (its own first, then others' not yet taken: builder/task_claims.py), each
    processed and written whole; returns how many it wrote."""
    files = work.require(tables.REPLIES)
    units = units_of(files, _unit_rows(recipe))
    scratch.mkdir(parents=True, exist_ok=True)
    cfg, prompts, n = recipe.responses, None, 0
    for i in task_claims.units(len(units), rank, world, claims, lambda i: output_written(scratch, i)):
        if prompts is None:  # built once, and only by a task that has a unit to do
            prompts = PromptIndex(work)
        batches = unit_batches(files[units[i].shard], units[i], cfg.batch_rows)
        write_output(output_path(scratch, i), _results(batches, prompts, cfg, recipe.student, workers))
        n += 1
        after_unit(scratch, rank, n)
    return n


def _task_workers(recipe: Recipe) -> int:
    return min(recipe.responses.workers, recipe.executor.cpus_per_task)


def _unit_rows(recipe: Recipe) -> int:
    return min_unit_rows(_task_workers(recipe), recipe.responses.batch_rows)


def _tasks(recipe: Recipe, n_units: int) -> int:
    n = recipe.responses.tasks or (recipe.executor.tasks if recipe.executor.kind != "local" else 1)
    return max(1, min(n, n_units))


def _scratch(recipe: Recipe, work: WorkDir, key: str) -> Path:
    """The task outputs' folder, named after the unit layout too: an output is unit i of that layout
    (a run resumed with other task workers, or by an older toolkit's shard outputs, starts afresh)."""
    return work.stage(STAGE) / "tasks" / key / f"units-{_unit_rows(recipe)}"


def _run_tasks(recipe: Recipe, work: WorkDir, n_tasks: int, key: str) -> Path:
    """Run the datatrove tasks (resumable: completed ranks and written units are skipped); their
    outputs' folder (`_scratch`). Keyed by the stage's fingerprint: another recipe or other replies
    start afresh."""
    from builder.executors import make_executor, preload_forkserver, run_executor

    root = work.stage(STAGE) / "tasks"
    for old in root.glob("*"):
        if old.name != key:
            shutil.rmtree(old, ignore_errors=True)
    scratch = _scratch(recipe, work, key)
    ex_cfg = recipe.executor.model_copy(update={"tasks": n_tasks})
    preload_forkserver(ex_cfg, ["__main__", PRELOAD])  # local tasks start warm (worker_preload.py)
    workers = _task_workers(recipe)
    claims = task_claims.new_run(root / key)
    step = ResponsesTask(task_units, recipe, str(work.root.resolve()), str(scratch.resolve()), workers,
                         str(claims.resolve()))  # fmt: skip
    run_executor(make_executor([step], ex_cfg, root / key / "logs", "responses"), ex_cfg)
    return scratch


def _responses(recipe: Recipe, work: WorkDir, key: str, progress: Progress | None = None) -> ResponsesResult:
    t0 = time.perf_counter()
    cfg = recipe.responses
    work.require(tables.PROMPTS)  # checked first, as the readers of prompts do: a damaged shard is named
    files = work.require(tables.REPLIES)
    n_in = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    units = units_of(files, _unit_rows(recipe))
    n_tasks = _tasks(recipe, len(units))
    dups = duplicate_positions(files)  # before any worker starts: the id column is freed by then
    out = work.stage(STAGE)
    ledger = Ledger(STAGE, spill=out / ".ledger-spill.parquet")
    ledger.enter(STEP, n_in)
    gen = recipe.generate
    choice = (gen.precedence, [t.name for t in gen.teachers]) if gen else (DEFAULT_PRECEDENCE, [])

    def merged(batches: Iterator[pa.Table]) -> Merged:
        return merge(batches, work, ledger, STEP, cfg.shard_rows, out, choice, dups, progress, n_in)

    if n_tasks == 1 and recipe.executor.kind == "local":
        # One task: process in this process (a pool of `workers`), straight into the merge.
        prompts = PromptIndex(work)
        n_batches = sum(-(-pq.ParquetFile(f).metadata.num_rows // cfg.batch_rows) for f in files)
        workers = cfg.workers if n_batches > 1 else 1  # a pool only pays off with work to share
        m = merged(_results(_reply_batches(files, cfg.batch_rows), prompts, cfg, recipe.student, workers))
    else:  # the tasks' outputs merged in unit order as they land (builder/landing.py)
        scratch = _scratch(recipe, work, key)

        def run() -> None:
            _run_tasks(recipe, work, n_tasks, key)

        m = run_and_merge(run, lambda order: merged(read_outputs(scratch, order, cfg.batch_rows)), len(units),
                          lambda i: output_written(scratch, i))  # fmt: skip
    work.write_ledger(ledger)
    res = ResponsesResult(n_in, m.kept, m.quarantined, dict(m.reasons), dict(m.verify), time.perf_counter() - t0,
                          ledger.summary())  # fmt: skip
    work.write_summary(ResponsesSummary(
        rows_in=n_in, kept=m.kept, quarantined=m.quarantined, selected=m.selected, reasons=dict(m.reasons),
        verify=dict(m.verify), shapes=dict(m.shapes), seconds=res.seconds, consistency=consistency.summarize(m.agree),
        student_tokenizer=recipe.student.tokenizer,
    ))  # fmt: skip
    return res


__all__ = ["run_responses", "process_batch", "REJECT_CODES", "STAGE_CODES", "PromptIndex"]


def fingerprint(recipe: Recipe, work: WorkDir) -> dict[str, Any]:
    """What this stage's outputs depend on (see WorkDir.fingerprint)."""
    gen = recipe.generate
    choice = {"precedence": gen.precedence, "teachers": [t.name for t in gen.teachers]} if gen else None
    return work.fingerprint({"responses": recipe.responses, "student": recipe.student, "selection": choice},
                            ("generate",), None)  # fmt: skip


def run_responses(recipe: Recipe, work: WorkDir, progress: Progress | None = None) -> ResponsesResult:
    """Parse, validate and verify every stored reply. Outputs are committed together at the end (WorkDir.stage_run)."""
    fp = fingerprint(recipe, work)
    key = stable_hash(fp, 16)
    with work.stage_run(STAGE, fp):
        res = _responses(recipe, work, key, progress)
    shutil.rmtree(work.stage(STAGE) / "tasks" / key, ignore_errors=True)  # committed: the task outputs are spent
    return res
