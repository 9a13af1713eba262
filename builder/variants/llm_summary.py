"""The `kind: llm` summarizer: S_think from an LLM, through the teachers' backends and store.

Each selected reasoning reply becomes one teacher work item whose messages are our versioned
summarization prompt (recipes/prompts/<template>.yaml: `system`, and `user` with {question}
and {thinking} filled in). Its generation_id hashes (the reasoning reply's generation_id, a
digest of the thinking, the summarizer model, its sampling, the template id and hash), so a
re-generated thinking or an edited prompt is summarized anew and nothing stale is reused.

Items then go through the teachers service (builder/teachers/send.py), like generate's: `schedule`
(skip what the store holds), `send` (openai: concurrency, rate limits, counted retries,
Retry-After, fail-fast; or vLLM), and the append-only reply store under
<work>/variants/summaries/<teacher name>/. So a re-run requests no stored summary, a kill
loses only requests in flight, transient failures are retried on the next run and permanent
ones are not. Every summary must then pass `check_summary`; a failure (or a failed request)
leaves the prompt out of think_summary with the reason in the variants ledger.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from builder import tables
from builder.config.generate import TeacherConfig
from builder.config.variants import SummarizerConfig
from builder.constraints.describe import describe
from builder.errors import UserError
from builder.progress import Progress, report
from builder.recipe import Recipe
from builder.rows import generation_id_for
from builder.tables import SummarizerAccounting
from builder.teachers.accounting import accounting
from builder.teachers.budget import is_stop, stop_message
from builder.teachers.items import WorkItem
from builder.teachers.monitor import StoreMonitor
from builder.teachers.prompting import Template, template_version
from builder.teachers.send import schedule, send
from builder.teachers.store import Latest, RecordReader, StoreIndex, latest
from builder.variants.registry import Candidate
from builder.variants.summarizer import SummaryGate, check_summary
from builder.workdir import WorkDir

FIELDS = ("question", "thinking")
_KEYS = {"id", "version", "system", "user"}
_FIELD = re.compile(r"\{(question|thinking|constraints)\}")  # {constraints}: optional (template version ≥ 2)


@dataclass(frozen=True, slots=True)
class SummaryTemplate:
    id: str
    version: int
    system: str | None
    user: str  # holds {question} and {thinking}
    hash: str

    def messages(self, question: str, thinking: str, constraints: str = "(none)") -> list[dict[str, str]]:
        # One pass, not str.format or chained replace: the prompt and the fields may hold braces
        # (\boxed{}, a question quoting "{thinking}") that must come through as they are.
        fields = {"question": question, "thinking": thinking, "constraints": constraints}
        user = _FIELD.sub(lambda m: fields[m.group(1)], self.user)
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, {"role": "user", "content": user}]


def load_summary_template(path: Path) -> SummaryTemplate:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path}: summary prompt template not found; add it or fix variants.summarizer.template"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"{path}: cannot read summary prompt template ({e})") from None
    if not isinstance(data, dict) or set(data) - _KEYS or not isinstance(data.get("user"), str):
        raise UserError(f"{path}: a summary prompt template is a mapping with exactly {sorted(_KEYS)}")
    if data.get("id") != path.stem:
        raise UserError(f"{path}: id {data.get('id')!r} must equal the file name {path.stem!r}")
    missing = [f for f in FIELDS if "{" + f + "}" not in data["user"]]
    if missing:
        raise UserError(f"{path}: `user` must contain {', '.join('{' + f + '}' for f in missing)}")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise UserError(f"{path}: `system` must be text")
    version = template_version(data, path)
    body = {"id": data["id"], "version": version, "system": system, "user": data["user"]}
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return SummaryTemplate(data["id"], version, system, data["user"], digest)


@dataclass(slots=True)
class _Job:
    cand: Candidate
    question: str
    think: str
    answer: str


class LlmSummarizer:
    """One per variants run: holds the teacher, the template and the store's index."""

    def __init__(self, recipe: Recipe, work: WorkDir, cfg: SummarizerConfig) -> None:
        if cfg.teacher is None:
            raise UserError(f"{recipe.path}: variants.summarizer.teacher is required when kind is 'llm'")
        # Stored rows say who wrote them: teacher_role "summarizer" (a role generate never sends).
        self.teacher: TeacherConfig = cfg.teacher.model_copy(update={"role": "summarizer"})
        self.cfg = cfg
        self.recipe = recipe
        folder = cfg.prompts_dir or (recipe.generate.prompts_dir if recipe.generate else "prompts")
        self.template = load_summary_template(recipe.resolve(folder) / f"{cfg.template}.yaml")
        # WorkItem and reply_row want a generate Template; it carries our id and hash as provenance.
        self._tpl = Template(self.template.id, self.template.version, self.template.system, "", self.template.hash)
        self.folder = work.store(tables.SUMMARY_STORE, self.teacher.name)
        self.stored: StoreIndex = latest(self.folder)
        self.run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
        self.requested = 0  # items sent this run (retries inside run_requests not counted)

    @property
    def label(self) -> str:
        return self.teacher.model

    def generation_id(self, reasoning_generation_id: str, think: str) -> str:
        # A truncation-ladder retry keeps the reply's id but changes its thinking: hash both.
        digest = hashlib.sha256(think.encode()).hexdigest()[:16]
        t = self.teacher
        return generation_id_for(f"{reasoning_generation_id}:{digest}", t.model, t.sampling.identity(),
                                 self._tpl.id, self._tpl.hash, 0)  # fmt: skip

    def summarize(self, cands: list[Candidate], questions: list[str], progress: Progress | None = None) -> None:
        """Fill `summary` or `summary_failure` on every candidate that has a reasoning reply."""
        jobs: dict[str, _Job] = {}
        items: list[WorkItem] = []
        for c, question in zip(cands, questions):
            if c.reasoning is None:
                continue
            think, answer = c.reasoning["think"] or "", c.reasoning["answer"] or ""
            if not think.strip():
                c.summary_failure = "empty_think"  # nothing to summarize; no request
                continue
            gid = self.generation_id(c.reasoning["generation_id"], think)
            if gid in jobs:
                continue
            jobs[gid] = _Job(c, question, think, answer)
            p = c.prompt
            # Messages are built only for what is sent (see _with_messages): no second copy of
            # every thinking in memory.
            items.append(WorkItem(gid, p["prompt_id"], 0, [], None, self._tpl, p["source"] or "",
                                  p["source_row_id"] or "", p["category"] or ""))  # fmt: skip
        todo = schedule(self.teacher, items, self.stored)
        if todo:
            self._send(self._with_messages(todo, jobs), len(todo), progress)
            self.stored = latest(self.folder)
        reader = RecordReader()
        try:
            for gid, job in jobs.items():
                failure, text = self._outcome(self.stored.get(gid), reader)
                if failure is None:
                    failure = check_summary(text, job.think, job.answer, job.question, self.cfg.max_ratio, SummaryGate.of(self.cfg))
                if failure:
                    job.cand.summary_failure = failure
                else:
                    job.cand.summary = text
        finally:
            reader.close()

    def _with_messages(self, todo: list[WorkItem], jobs: dict[str, _Job]) -> Iterator[WorkItem]:
        for it in todo:
            job = jobs[it.generation_id]
            rules = describe(job.cand.constraints)  # the prompt's constraints the summary must obey
            yield dataclasses.replace(it, messages=self.template.messages(job.question, job.think, rules))

    def _send(self, todo: Iterator[WorkItem], n: int, progress: Progress | None = None) -> None:
        self.requested += n

        def heard(ev: dict[str, Any]) -> None:  # the store monitor's events, as (step, done, total)
            report(progress, f"summarizing thinking ({self.teacher.model})", ev["done"], ev["total"])

        top = self.teacher.sampling.steps()[-1]
        with StoreMonitor(self.folder, self.run_id, "summarizer", n, top, heard if progress else None):
            prices = self.recipe.generate.prices if self.recipe.generate else {}
            state = send(todo, self.teacher, self.folder, self.run_id, segment="summarize",
                         price=prices.get(self.teacher.model))  # fmt: skip
        if is_stop(state.abort, self.teacher):  # the cap's key here, and the spend as the cost report counts it
            spent = accounting(self.folder, self.teacher, prices.get(self.teacher.model))["total"]["cost_usd"]
            state.abort = stop_message(self.teacher, spent, "variants.summarizer.teacher.limits.max_cost_usd")
        if state.abort:  # nothing worked (bad key, unknown model, unreachable): one line, stop the stage
            raise UserError(f"{self.recipe.path}: variants.summarizer: {state.abort}")

    @staticmethod
    def _outcome(got: Latest | None, reader: RecordReader) -> tuple[str | None, str]:
        """(failure code or None, the summary text) from the stored record."""
        if got is None:
            return "summary_not_attempted", ""
        e = got.entry
        if e.status != "ok":
            return f"summary_failed:{e.error_code or 'unknown'}", ""
        if e.finish_reason == "length":
            return "summary_truncated", ""
        rec = reader.try_read(e)
        if rec is None:  # its bytes are damaged (a crash, disk damage): a failure with its reason, not a crash
            return "summary_failed:store_damaged", ""
        content = rec.get("content")
        return None, (content or "").strip() if isinstance(content, str) else ""

    def accounting(self) -> SummarizerAccounting:
        """Tokens and requests over every stored record, priced from generate.prices when given:
        the release adds this spend to the cost of each think_summary row."""
        prices = self.recipe.generate.prices if self.recipe.generate else {}
        book = accounting(self.folder, self.teacher, prices.get(self.teacher.model))
        return SummarizerAccounting.model_validate({**book, "sent_this_run": self.requested})
