"""A loopback OpenAI-compatible chat server for tests and benchmarks.

THIS IS TEST CODE, NOT A MODEL. Every reply is synthetic text assembled from a built-in
sentence pool, seeded by a hash of the prompt, so runs are deterministic and cheap. It
speaks enough of the real HTTP/JSON protocol that the real ``openai.AsyncOpenAI`` client
(``base_url="http://127.0.0.1:PORT/v1"``) works against it. It binds 127.0.0.1 only.

Endpoints
---------
``POST /v1/chat/completions``  non-streaming, and streaming SSE (``stream: true``).
``GET  /v1/models``            the accepted model names.
``GET  /_stats``               counters: requests_total, by_status (HTTP code, or "drop"
                               when no response was sent), by_fault, by_scenario,
                               by_prompt (``prompt_hash(messages)`` -> requests, so
                               duplicates show), duplicate_prompts, by_path, in_flight,
                               in_flight_max, prompt_tokens, completion_tokens,
                               process_cpu_s, pid.
``POST /_control``             JSON body; any of these keys, applied in this order:
    ``{"reset": true}``            zero the counters, per-prompt attempt numbers, scripts;
    ``{"config": {...}}``          update ``ServerConfig`` fields (partial);
    ``{"script": [{"match": "substring", "steps": [STEP, ...]}, ...]}``
        queue STEPs, consumed in order by the next requests whose messages contain
        ``match`` ("" matches all). A STEP is a dict of directive keys (below) and/or
        literal fields: ``content``, ``reasoning_content``, ``reasoning``, ``tool_calls``,
        ``finish_reason`` (the message is then exactly these), or ``status`` (+ optional
        ``body``: str or JSON, ``headers``: dict) for a raw response.

Per-request directives
----------------------
Lines of the LAST user message matching ``^@@KEY: VALUE$`` are parsed and stripped before
the reply is derived (an unknown KEY is a 400, so typos fail loudly). Keys:

    @@scenario: NAME          reply shape, one of SCENARIOS (below)
    @@fault: NAME [xK]        inject fault NAME (one of FAULTS) on the first K attempts of
                              this prompt (default: every attempt), then answer normally
    @@answer: TEXT            math reply ends with ``\\boxed{TEXT}`` (also marks it math)
    @@rating: N               judge reply says ``Rating: [[N]]``
    @@tokens: N               reply length in tokens (thinking + answer)
    @@latency: SECONDS        latency for this request
    @@retry_after: SECONDS    Retry-After of a 429

Scenarios (reasoning shapes; T = thinking, A = answer, both derived from the prompt)
    reasoning_content   message.reasoning_content = T, content = A   (DeepSeek API)
    reasoning           message.reasoning = T, content = A           (OpenRouter)
    inline_think        content = "<think>\\nT\\n</think>\\n\\nA"
    inline_no_open      content = "T\\n</think>\\n\\nA"   (R1 template prefills <think>)
    think_and_answer_tags  content = "<think>T</think> <answer>A</answer>"
    plain               content = A, no thinking (non-reasoning teacher)
    length_null         finish "length", content null, reasoning_content = truncated T
    length_partial      finish "length", reasoning_content = T, content = A cut mid-way
A is a judge verdict (``Rating: [[N]]``) when the system/user text asks for a rating,
a one-sentence summary of the input when it asks for a summary, ends in ``\\boxed{N}``
for math prompts and holds a ```python block for code prompts.

Lengths: a reply has about ``tokens_per_reply`` tokens (4 chars a token,
``think_fraction`` of them thinking). If that exceeds the request's ``max_tokens`` (or
``max_completion_tokens``) the text is cut at the budget and finish_reason is "length".

Faults (``@@fault`` or seeded ``fault_rates``): ``429`` (with Retry-After), ``500``,
``503``, ``timeout`` (holds the request ``timeout_hold`` s without blocking the loop),
``drop`` (closes the socket, no response), ``malformed`` (200 with a cut JSON body),
``context_length`` (400 ``context_length_exceeded``; also automatic when the prompt is
over ``max_context_tokens``), ``content_filter`` (finish_reason "content_filter", content
null). Rate faults are decided by hash(seed, prompt hash, attempt number), the attempt
number counting that prompt's requests, so a retry of a faulted request can succeed.

Client side: ``reasoning_content`` / ``reasoning`` are not declared fields of the
openai 3.x ``ChatCompletionMessage``; it allows extra fields, so read them as
``msg.model_extra["reasoning_content"]`` or ``getattr(msg, "reasoning_content", None)``.
The same holds for stream deltas. A ``malformed`` reply surfaces from openai 3.x as a bare
``json.JSONDecodeError`` (not an ``openai.APIError``); ``drop`` as ``APIConnectionError``.

Running: ``with run_server(latency=0.1) as srv:`` (a thread in this process) or
``with run_server_process(...) as srv:`` (a child process, for CPU accounting apart from
the client); both give ``srv.base_url``, ``srv.stats()``, ``srv.control(...)``. CLI:
``python -m tests.servers.openai_server --port 0 --latency 2`` prints
``LISTENING http://127.0.0.1:PORT/v1`` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import random
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

try:  # orjson is ~10x faster for the 16 KB replies of the benchmark
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _dumps_sorted(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)

    _loads = orjson.loads
except ImportError:  # pragma: no cover - fallback keeps the server usable without it

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    def _dumps_sorted(obj: Any) -> bytes:
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

    _loads = json.loads


SCENARIOS = (
    "reasoning_content",
    "reasoning",
    "inline_think",
    "inline_no_open",
    "think_and_answer_tags",
    "plain",
    "length_null",
    "length_partial",
)
FAULTS = (
    "429",
    "500",
    "503",
    "timeout",
    "drop",
    "malformed",
    "context_length",
    "content_filter",
)
DIRECTIVES = (
    "scenario",
    "fault",
    "answer",
    "rating",
    "tokens",
    "latency",
    "retry_after",
)
HOST = "127.0.0.1"
CHARS_PER_TOKEN = 4


@dataclasses.dataclass
class ServerConfig:
    """Server-level behaviour; every field can be changed at run time via /_control."""

    models: list[str] = dataclasses.field(
        default_factory=lambda: ["deepseek-reasoner", "deepseek-chat"]
    )  # accepted request models; empty list accepts any
    served_model: str | None = None  # reported `model`; None echoes the requested one
    api_key: str | None = None  # required Bearer key; None accepts any or none
    scenario: str = "reasoning_content"
    latency: float = 0.0  # seconds before the reply
    latency_jitter: float = 0.0  # +- seconds, seeded per request
    tokens_per_reply: int = 1000
    think_fraction: float = 0.75
    max_context_tokens: int = 65536
    max_output_tokens: int | None = None  # a larger max_tokens is a 400, as DeepSeek's API answers
    seed: int = 0
    fault_rates: dict[str, float] = dataclasses.field(default_factory=dict)
    timeout_hold: float = 30.0  # how long a `timeout` fault holds the request
    retry_after: float = 1.0
    stream_chunks: int = 16  # content pieces per streamed reply part

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown config field {key!r}")
            setattr(self, key, value)
        self.validate()

    def validate(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; one of {SCENARIOS}")
        bad = set(self.fault_rates) - set(FAULTS)
        if bad:
            raise ValueError(f"unknown faults {sorted(bad)}; one of {FAULTS}")
        if sum(self.fault_rates.values()) > 1.0:
            raise ValueError("fault_rates must sum to at most 1")


# --------------------------------------------------------------------------- text


_WORDS = [
    "value",
    "equation",
    "function",
    "boundary",
    "term",
    "sequence",
    "limit",
    "variable",
    "constraint",
    "parameter",
    "method",
    "result",
    "assumption",
    "condition",
    "example",
    "case",
    "argument",
    "proof",
    "step",
    "factor",
    "ratio",
    "pattern",
    "structure",
    "input",
    "output",
    "order",
    "sum",
    "product",
    "difference",
    "rule",
    "definition",
    "claim",
    "model",
    "estimate",
    "error",
    "measure",
    "sample",
    "answer",
    "question",
    "approach",
    "detail",
    "property",
    "graph",
    "number",
    "interval",
    "solution",
    "expression",
    "loop",
    "array",
    "string",
    "index",
    "request",
    "context",
    "system",
    "user",
    "policy",
    "threshold",
    "signal",
    "process",
    "region",
    "reason",
    "effect",
    "source",
    "target",
    "option",
]
_THINK_TEMPLATES = (
    "Let me think about the {a} and how it relates to the {b}.",
    "First, I should check whether the {a} actually depends on the {b}.",
    "Wait, that does not look right; the {a} changes when the {b} is fixed.",
    "So if we consider the {a}, the {b} should follow from it directly.",
    "Hmm, maybe I need to reconsider the {a} before going any further.",
    "Alternatively, the {a} could be worked out from the {b} step by step.",
    "Let me verify this again: the {a} gives {n}, and the {b} gives {m}.",
    "That seems consistent with what the question asks about the {a}.",
    "But what if the {b} is zero? Then the {a} would not be defined.",
    "Okay, so the {a} is {n} here, which means the {b} must be at least {m}.",
    "I recall that a {a} of this kind usually comes with a {b} attached.",
    "Let me try a small case: with {n} as the {a}, the {b} becomes {m}.",
)
_ANSWER_TEMPLATES = (
    "The {a} is determined by the {b}, as shown above.",
    "In short, the {a} equals {n} once the {b} is taken into account.",
    "This approach keeps the {a} consistent with the {b}.",
    "Note that the {b} only matters when the {a} exceeds {m}.",
    "Putting it together, the {a} and the {b} lead to the same conclusion.",
    "A practical way to see this is to compare the {a} with the {b}.",
)


def _build_pool(templates: tuple[str, ...], size: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        rng.choice(templates).format(
            a=rng.choice(_WORDS),
            b=rng.choice(_WORDS),
            n=rng.randint(2, 99),
            m=rng.randint(2, 99),
        )
        for _ in range(size)
    ]


_THINK_POOL = _build_pool(_THINK_TEMPLATES, 512, 1)
_ANSWER_POOL = _build_pool(_ANSWER_TEMPLATES, 256, 2)
_AVG_THINK = sum(map(len, _THINK_POOL)) / len(_THINK_POOL) + 1
_AVG_ANSWER = sum(map(len, _ANSWER_POOL)) / len(_ANSWER_POOL) + 1

_MATH_RE = re.compile(
    r"\\boxed|\b(how many|how much|compute|calculate|solve|evaluate|find the value)\b",
    re.IGNORECASE,
)
_CODE_RE = re.compile(r"```python|\bpython (function|code|program)\b|\bwrite a function\b", re.IGNORECASE)
_JUDGE_RE = re.compile(
    r"\[\[rating\]\]|rating: \[\[|\brate the (response|answer|quality)\b|impartial judge",
    re.IGNORECASE,
)
_SUMMARY_RE = re.compile(r"\bsummar(y|ies|ize|ise|izing|ising)\b", re.IGNORECASE)
_DIRECTIVE_RE = re.compile(r"^@@(\w+):[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_DIRECTIVE_LINE_RE = re.compile(r"^@@\w+:[^\n]*(?:\n|$)", re.MULTILINE)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z-]{4,}")


def _h(*parts: object) -> int:
    """Stable 64-bit hash (Python's hash() is salted per process)."""
    data = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _text(pool: list[str], avg: float, rng: random.Random, n_chars: int) -> str:
    # Paragraphs of 5 sentences; pick a few more than needed, then cut to length.
    k = max(1, int(n_chars / avg) + 2)
    picks = rng.choices(pool, k=k)
    paras = [" ".join(picks[i : i + 5]) for i in range(0, k, 5)]
    text = "\n\n".join(paras)[:n_chars]
    cut = text.rfind(" ", 0, n_chars)  # end on a word boundary, like a real reply
    return (text[:cut] if cut > n_chars // 2 else text).rstrip()


def _topic(text: str, rng: random.Random, k: int = 3) -> list[str]:
    words = list(dict.fromkeys(w.lower() for w in _WORD_RE.findall(text[:4000])))
    if not words:
        return rng.sample(_WORDS, k)
    return [words[i] for i in sorted(rng.sample(range(len(words)), min(k, len(words))))]


@dataclasses.dataclass
class Reply:
    think: str
    answer: str


def derive_reply(
    text_key: str,
    prompt_text: str,
    system_text: str,
    tokens: int,
    think_fraction: float,
    directives: dict[str, str],
) -> Reply:
    """The (thinking, answer) pair for a prompt: deterministic in its arguments."""
    rng = random.Random(_h("reply", text_key, tokens))
    asks = system_text + "\n" + prompt_text
    if "rating" in directives or _JUDGE_RE.search(asks):
        rating = directives.get("rating") or str(1 + rng.randrange(10))
        think = _text(_THINK_POOL, _AVG_THINK, rng, int(tokens * think_fraction) * CHARS_PER_TOKEN)
        answer = f"The response is mostly accurate and relevant.\n\nRating: [[{rating}]]"
        return Reply(think, answer)
    if _SUMMARY_RE.search(asks):
        a, b, c = (_topic(prompt_text, rng) + ["details"] * 3)[:3]
        answer = f"The reasoning examines {a} and {b}, checks {c}, and then settles on the answer."
        think = _text(_THINK_POOL, _AVG_THINK, rng, 400)
        return Reply(think, answer)
    think_chars = int(tokens * think_fraction) * CHARS_PER_TOKEN
    answer_chars = max(40, tokens * CHARS_PER_TOKEN - think_chars)
    topic = ", ".join(_topic(prompt_text, rng))
    think = f"Okay, the question is about {topic}. " + _text(
        _THINK_POOL, _AVG_THINK, rng, max(0, think_chars - 40 - len(topic))
    )
    answer = _text(_ANSWER_POOL, _AVG_ANSWER, rng, answer_chars)
    if _CODE_RE.search(prompt_text):
        answer += f"\n\n```python\ndef solve(x):\n    return x * {rng.randint(2, 9)}\n```"
    if "answer" in directives or _MATH_RE.search(prompt_text):
        boxed = directives.get("answer") or str(rng.randint(0, 999))
        answer += f"\n\nThe final answer is \\boxed{{{boxed}}}."
    return Reply(think, answer)


def _tok(s: str | None) -> int:
    return math.ceil(len(s) / CHARS_PER_TOKEN) if s else 0


def _cut(s: str, tokens: int) -> str:
    return s[: max(0, tokens) * CHARS_PER_TOKEN]


def shape_choice(scenario: str, reply: Reply, budget: int | None) -> tuple[dict[str, Any], str, int]:
    """(message, finish_reason, reasoning_tokens) for one choice, cut to `budget` tokens."""
    big = 1 << 40
    b = big if budget is None else budget
    t, a = reply.think, reply.answer
    msg: dict[str, Any] = {"role": "assistant", "content": None}
    if scenario in ("reasoning_content", "reasoning", "length_null", "length_partial"):
        field = "reasoning" if scenario == "reasoning" else "reasoning_content"
        finish = "stop"
        if scenario == "length_null":
            t, a, finish = _cut(t, min(b, max(1, _tok(t) * 3 // 5))), None, "length"
        elif scenario == "length_partial":
            a, finish = (
                _cut(a, min(max(0, b - _tok(t)), max(1, _tok(a) // 2))),
                "length",
            )
        if _tok(t) > b:
            t, a, finish = _cut(t, b), None, "length"
        elif a is not None and _tok(t) + _tok(a) > b:
            a, finish = _cut(a, b - _tok(t)), "length"
        msg[field] = t
        msg["content"] = a
        return msg, finish, _tok(t)
    if scenario == "plain":
        content, think_part = a, ""
    elif scenario == "inline_think":
        content, think_part = (
            f"<think>\n{t}\n</think>\n\n{a}",
            f"<think>\n{t}\n</think>",
        )
    elif scenario == "inline_no_open":
        content, think_part = f"{t}\n</think>\n\n{a}", f"{t}\n</think>"
    elif scenario == "think_and_answer_tags":
        content, think_part = (
            f"<think>{t}</think> <answer>{a}</answer>",
            f"<think>{t}</think>",
        )
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    finish = "stop"
    if _tok(content) > b:
        content, finish = _cut(content, b), "length"
    msg["content"] = content
    return msg, finish, min(_tok(think_part), _tok(content))


# --------------------------------------------------------------------------- stats


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests_total = 0  # chat completion requests
        self.by_status: dict[str, int] = {}  # HTTP status, plus "drop" for no response
        self.by_fault: dict[str, int] = {}
        self.by_scenario: dict[str, int] = {}
        self.by_prompt: dict[str, int] = {}  # prompt hash -> requests (duplicates show here)
        self.by_path: dict[str, int] = {}
        self.in_flight = 0
        self.in_flight_max = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.started = time.monotonic()

    @staticmethod
    def _inc(d: dict[str, int], key: str) -> None:
        d[key] = d.get(key, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests_total": self.requests_total,
            "by_status": dict(self.by_status),
            "by_fault": dict(self.by_fault),
            "by_scenario": dict(self.by_scenario),
            "by_prompt": dict(self.by_prompt),
            "duplicate_prompts": sum(1 for v in self.by_prompt.values() if v > 1),
            "by_path": dict(self.by_path),
            "in_flight": self.in_flight,
            "in_flight_max": self.in_flight_max,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "uptime_s": time.monotonic() - self.started,
            "process_cpu_s": time.process_time(),  # whole process: includes a client thread
            "pid": os.getpid(),
        }


def prompt_hash(messages: list[Any]) -> str:
    """The key /_stats counts requests under: a hash of the request's messages as sent."""
    return hashlib.sha256(_dumps_sorted(messages)).hexdigest()[:16]


# --------------------------------------------------------------------------- server


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_MAX_BODY = 64 << 20


class _Drop(Exception):
    """Close the connection without a response."""


def _error(
    status: int, message: str, etype: str, code: str | None, param: str | None = None
) -> tuple[int, bytes, dict[str, str]]:
    body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
    return status, _dumps(body), {}


class OpenAIServer:
    """The asyncio HTTP/1.1 server; run it with `serve()` inside an event loop."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.config.validate()
        self.stats = Stats()
        self._attempts: dict[str, int] = {}
        self._scripts: list[tuple[str, deque[dict[str, Any]]]] = []
        self._cache: OrderedDict[tuple[Any, ...], Reply] = OrderedDict()
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.port: int | None = None
        self._counter = 0

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(
            self._connection,
            HOST,
            port,
            limit=1 << 20,
            backlog=1024,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        if self._conns:
            await asyncio.wait(self._conns, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    # -- connection loop -------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    ConnectionError,
                ):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, _version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length > _MAX_BODY or "chunked" in headers.get("transfer-encoding", ""):
                    writer.write(self._head(413, 0, {"connection": "close"}))
                    return
                body = await reader.readexactly(length) if length else b""
                try:
                    await self._dispatch(method, target.split("?", 1)[0], headers, body, reader, writer)
                except _Drop:
                    writer.transport.abort()
                    return
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        except asyncio.CancelledError:
            # Only stop() cancels; ending quietly avoids 3.11's noisy callback on cancelled
            # connection tasks.
            writer.transport.abort()
            return
        finally:
            self._conns.discard(task)
            writer.close()

    @staticmethod
    def _head(
        status: int,
        length: int | None,
        extra: dict[str, str],
        ctype: str = "application/json",
    ) -> bytes:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"content-type: {ctype}",
        ]
        lines.append(f"content-length: {length}" if length is not None else "transfer-encoding: chunked")
        lines.extend(f"{k}: {v}" for k, v in extra.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        writer.write(self._head(status, len(body), headers) + body)
        await writer.drain()

    async def _dispatch(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        Stats._inc(self.stats.by_path, f"{method} {path}")
        if path == "/v1/chat/completions" and method == "POST":
            await self._chat(headers, body, reader, writer)
        elif path == "/v1/models" and method == "GET":
            status, out, extra = self._auth(headers) or self._models()
            await self._send(writer, status, out, extra)
        elif path == "/_stats" and method == "GET":
            await self._send(writer, 200, _dumps(self.stats.snapshot()), {})
        elif path == "/_control" and method == "POST":
            await self._send(writer, *self._control(body))
        else:
            await self._send(
                writer,
                *_error(
                    404,
                    f"no route {method} {path}",
                    "invalid_request_error",
                    "not_found",
                ),
            )

    def _auth(self, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]] | None:
        want = self.config.api_key
        if want is None:
            return None
        got = headers.get("authorization", "")
        if got == f"Bearer {want}":
            return None
        # Show only the key's tail, like the real API, so logs never hold a whole secret.
        shown = f"...{got[-4:]}" if len(got) > 11 else "(none)"
        return _error(
            401,
            f"Incorrect API key provided: {shown}.",
            "invalid_request_error",
            "invalid_api_key",
        )

    def _models(self) -> tuple[int, bytes, dict[str, str]]:
        names = list(self.config.models) or [self.config.served_model or "any"]
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "test-server"} for n in names]
        return 200, _dumps({"object": "list", "data": data}), {}

    def _control(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        try:
            req = _loads(body or b"{}")
            if req.get("reset"):
                self.stats.reset()
                self._attempts.clear()
                self._scripts.clear()
                self._cache.clear()
            if req.get("config"):
                self.config.update(req["config"])
            for item in req.get("script") or []:
                self._scripts.append((str(item.get("match", "")), deque(item["steps"])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _error(400, f"bad /_control body: {exc}", "invalid_request_error", None)
        cfg = dataclasses.asdict(self.config)
        cfg["api_key"] = None if self.config.api_key is None else "***"
        return 200, _dumps({"ok": True, "config": cfg}), {}

    # -- chat completions ------------------------------------------------------

    async def _chat(
        self,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        st = self.stats
        st.requests_total += 1
        st.in_flight += 1
        st.in_flight_max = max(st.in_flight_max, st.in_flight)
        status = 0
        try:
            status = await self._chat_inner(headers, body, reader, writer)
        except _Drop:
            status = -1
            raise
        finally:
            st.in_flight -= 1
            Stats._inc(st.by_status, "drop" if status <= 0 else str(status))

    async def _chat_inner(
        self,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> int:
        cfg = self.config
        denied = self._auth(headers)
        if denied:
            await self._send(writer, *denied)
            return denied[0]
        try:
            req = _loads(body)
            messages = req["messages"]
            model = req["model"]
            if not isinstance(messages, list) or not messages or not isinstance(model, str):
                raise TypeError("messages must be a non-empty list and model a string")
        except (ValueError, KeyError, TypeError) as exc:
            err = _error(400, f"invalid request body: {exc}", "invalid_request_error", None)
            await self._send(writer, *err)
            return 400
        if cfg.models and model not in cfg.models:
            err = _error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
                "model",
            )
            await self._send(writer, *err)
            return 404

        phash = prompt_hash(messages)
        attempt = self._attempts.get(phash, 0) + 1
        self._attempts[phash] = attempt
        Stats._inc(self.stats.by_prompt, phash)

        # Directives live in the last user message; the reply is derived without them.
        system_text, user_text, all_text = _texts(messages)
        directives: dict[str, str] = {}
        for key, value in _DIRECTIVE_RE.findall(user_text):
            problem = _directive_problem(key, value)
            if problem:
                await self._send(writer, *_error(400, problem, "invalid_request_error", None))
                return 400
            directives[key] = value
        # Whole directive lines go, so a prompt with and without them yields the same text.
        clean_user = _DIRECTIVE_LINE_RE.sub("", user_text).strip() if directives else user_text
        clean_all = _DIRECTIVE_LINE_RE.sub("", all_text).strip() if directives else all_text.strip()

        step = self._next_step(all_text)
        if step:
            directives.update({k: str(v) for k, v in step.items() if k in DIRECTIVES})
            if "status" in step:
                return await self._raw_step(step, writer)

        latency = float(directives.get("latency", cfg.latency))
        if cfg.latency_jitter:
            latency += cfg.latency_jitter * (2 * (_h("lat", cfg.seed, phash, attempt) % 10007) / 10006 - 1)
        fault = self._fault(directives, phash, attempt)
        if fault:
            Stats._inc(self.stats.by_fault, fault)

        prompt_tokens = sum(_tok(_content_text(m.get("content"))) + 4 for m in messages if isinstance(m, dict))
        if fault == "context_length" or prompt_tokens > cfg.max_context_tokens:
            err = _error(
                400,
                f"This model's maximum context length is {cfg.max_context_tokens} tokens. "
                f"However, your messages resulted in {prompt_tokens} tokens. "
                "Please reduce the length of the messages.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            )
            await self._send(writer, *err)
            return 400

        if latency > 0:
            await asyncio.sleep(latency)
        if fault == "timeout":
            # Hold without a reply; give up as soon as the client hangs up.
            try:
                got = await asyncio.wait_for(reader.read(1), timeout=cfg.timeout_hold)
            except TimeoutError:
                got = b"x"
            if not got:
                raise _Drop
        elif fault == "drop":
            raise _Drop
        elif fault in ("429", "500", "503"):
            code = int(fault)
            if code == 429:
                ra = float(directives.get("retry_after", cfg.retry_after))
                err = _error(
                    429,
                    "Rate limit reached for requests.",
                    "requests",
                    "rate_limit_exceeded",
                )
                hdr = {"retry-after": str(int(ra)) if ra == int(ra) else str(ra)}
                await self._send(writer, 429, err[1], hdr)
            elif code == 500:
                await self._send(
                    writer,
                    *_error(
                        500,
                        "The server had an error while processing your request.",
                        "server_error",
                        None,
                    ),
                )
            else:
                await self._send(
                    writer,
                    *_error(
                        503,
                        "The engine is currently overloaded, please try again later.",
                        "server_error",
                        None,
                    ),
                )
            return code

        scenario = directives.get("scenario", cfg.scenario)
        if scenario not in SCENARIOS:
            await self._send(
                writer,
                *_error(400, f"unknown scenario {scenario!r}", "invalid_request_error", None),
            )
            return 400
        budget = req.get("max_completion_tokens") or req.get("max_tokens")
        if cfg.max_output_tokens and isinstance(budget, int) and budget > cfg.max_output_tokens:
            msg = f"Invalid max_tokens value, the valid range of max_tokens is [1, {cfg.max_output_tokens}]"
            await self._send(writer, *_error(400, msg, "invalid_request_error", "invalid_request_error"))
            return 400
        Stats._inc(self.stats.by_scenario, scenario)
        tokens = int(directives.get("tokens", cfg.tokens_per_reply))
        n = max(1, int(req.get("n") or 1))
        seed = req.get("seed")
        text_key_base = _h(clean_all, tokens)

        choices = []
        completion_tokens = reasoning_tokens = 0
        for i in range(n):
            if step and {"content", "reasoning_content", "reasoning", "finish_reason", "tool_calls"} & step.keys():
                msg = {"role": "assistant", "content": step.get("content")}
                for f in ("reasoning_content", "reasoning", "tool_calls"):
                    if f in step:
                        msg[f] = step[f]
                finish = step.get("finish_reason", "stop")
                rtok = _tok(msg.get("reasoning_content") or msg.get("reasoning"))
            elif fault == "content_filter":
                msg, finish, rtok = (
                    {"role": "assistant", "content": None},
                    "content_filter",
                    0,
                )
            else:
                reply = self._reply(text_key_base, seed, i, clean_user, system_text, tokens, directives)
                msg, finish, rtok = shape_choice(scenario, reply, budget)
            ctok = _tok(msg.get("content")) + _tok(msg.get("reasoning_content") or msg.get("reasoning"))
            completion_tokens += ctok
            reasoning_tokens += rtok
            choices.append({"index": i, "message": msg, "finish_reason": finish, "logprobs": None})
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        self._counter += 1
        served = cfg.served_model or model
        resp = {
            "id": f"chatcmpl-{self._counter:x}{phash[:8]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": served,
            "system_fingerprint": "fp_test_server",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
            },
        }
        if fault == "malformed":
            out = _dumps(resp)
            await self._send(writer, 200, out[: len(out) // 2], {})
            return 200
        if req.get("stream"):
            include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
            await self._stream(writer, resp, include_usage)
            return 200
        await self._send(writer, 200, _dumps(resp), {})
        return 200

    def _next_step(self, text: str) -> dict[str, Any] | None:
        for match, steps in self._scripts:
            if steps and match in text:
                return steps.popleft()
        return None

    async def _raw_step(self, step: dict[str, Any], writer: asyncio.StreamWriter) -> int:
        status = int(step["status"])
        body = step.get(
            "body",
            {
                "error": {
                    "message": "scripted",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
        )
        out = body.encode() if isinstance(body, str) else _dumps(body)
        await self._send(
            writer,
            status,
            out,
            {str(k): str(v) for k, v in (step.get("headers") or {}).items()},
        )
        return status

    def _fault(self, directives: dict[str, str], phash: str, attempt: int) -> str | None:
        spec = directives.get("fault")
        if spec:
            name, _, times = spec.partition(" ")
            times = times.strip().lstrip("x")
            if name not in FAULTS:
                return None
            return name if not times or attempt <= int(times) else None
        rates = self.config.fault_rates
        if not rates:
            return None
        u = (_h("fault", self.config.seed, phash, attempt) % 1_000_003) / 1_000_003
        acc = 0.0
        for name in FAULTS:  # fixed order keeps the pick stable when rates change
            acc += rates.get(name, 0.0)
            if u < acc:
                return name
        return None

    def _reply(
        self,
        base: int,
        seed: Any,
        index: int,
        user: str,
        system: str,
        tokens: int,
        directives: dict[str, str],
    ) -> Reply:
        # Cache per prompt: retries and n-sample requests reuse the text instead of rebuilding it.
        key = (base, seed, index, directives.get("answer"), directives.get("rating"))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        text_key = f"{base}:{seed}:{index}"
        reply = derive_reply(text_key, user, system, tokens, self.config.think_fraction, directives)
        self._cache[key] = reply
        if len(self._cache) > 2048:
            self._cache.popitem(last=False)
        return reply

    async def _stream(self, writer: asyncio.StreamWriter, resp: dict[str, Any], include_usage: bool) -> None:
        writer.write(self._head(200, None, {"cache-control": "no-cache"}, "text/event-stream"))
        base = {k: resp[k] for k in ("id", "object", "created", "model", "system_fingerprint")}
        base["object"] = "chat.completion.chunk"
        pieces = max(1, self.config.stream_chunks)

        def event(choices: list[dict[str, Any]], usage: Any = None) -> bytes:
            payload = b"data: " + _dumps({**base, "choices": choices, "usage": usage}) + b"\n\n"
            return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"

        for ch in resp["choices"]:
            i, msg = ch["index"], ch["message"]
            writer.write(
                event(
                    [
                        {
                            "index": i,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ]
                )
            )
            for field in ("reasoning_content", "reasoning", "content"):
                text = msg.get(field)
                if not text:
                    continue
                step = max(1, -(-len(text) // pieces))
                for j in range(0, len(text), step):
                    writer.write(
                        event(
                            [
                                {
                                    "index": i,
                                    "delta": {field: text[j : j + step]},
                                    "finish_reason": None,
                                }
                            ]
                        )
                    )
                await writer.drain()
            writer.write(event([{"index": i, "delta": {}, "finish_reason": ch["finish_reason"]}]))
        if include_usage:
            writer.write(event([], resp["usage"]))
        done = b"data: [DONE]\n\n"
        writer.write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
        await writer.drain()


def _directive_problem(key: str, value: str) -> str | None:
    """Why a directive line is invalid, or None; bad directives fail loudly with a 400."""
    if key not in DIRECTIVES:
        return f"unknown directive @@{key}; one of {DIRECTIVES}"
    if key == "fault":
        name, _, times = value.partition(" ")
        if name not in FAULTS or not re.fullmatch(r"(x?\d+)?", times.strip()):
            return f"bad @@fault: {value!r}; want NAME [xK], NAME one of {FAULTS}"
    if key == "scenario" and value not in SCENARIOS:
        return f"unknown scenario {value!r}; one of {SCENARIOS}"
    return None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _texts(messages: list[Any]) -> tuple[str, str, str]:
    """(system text, last user text, all text) of a conversation."""
    system = "\n".join(
        _content_text(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    )
    user = ""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            user = _content_text(m.get("content"))
            break
    every = "\n".join(_content_text(m.get("content")) for m in messages if isinstance(m, dict))
    return system, user, every


# --------------------------------------------------------------------------- runners


class ServerHandle:
    """What `run_server` / `run_server_process` yield: an address and a control client."""

    def __init__(self, port: int, pid: int, server: OpenAIServer | None = None) -> None:
        self.port = port
        self.pid = pid
        self.server = server  # the in-process server object (thread mode only)
        self.url = f"http://{HOST}:{port}"
        self.base_url = f"{self.url}/v1"
        # Never route loopback calls through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"content-type": "application/json"})
        with self._opener.open(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return self._call("/_stats")

    def control(
        self,
        *,
        config: dict[str, Any] | None = None,
        reset: bool = False,
        script: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"reset": reset}
        if config:
            payload["config"] = config
        if script:
            payload["script"] = script
        return self._call("/_control", payload)

    def reset(self) -> dict[str, Any]:
        return self.control(reset=True)


@contextlib.contextmanager
def run_server(**config: Any) -> Iterator[ServerHandle]:
    """Run the server on a free 127.0.0.1 port in a background thread (own event loop)."""
    server = OpenAIServer(ServerConfig(**config))
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start(0))
        except OSError as exc:  # surface bind errors in the caller's thread
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=main, name="openai-test-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("test server did not start within 10 s")
    if failure:
        raise failure[0]
    assert server.port is not None
    try:
        yield ServerHandle(server.port, os.getpid(), server)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


API_KEY_ENV = "ANSWER_DISTILL_TEST_SERVER_KEY"


@contextlib.contextmanager
def run_server_process(**config: Any) -> Iterator[ServerHandle]:
    """Run the server in a child process (`python -m tests.servers.openai_server`)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "tests.servers.openai_server", "--port", "0"]
    if config.get("api_key") is not None:  # keys travel by env, never on a command line
        env[API_KEY_ENV] = config.pop("api_key")
        cmd += ["--api-key-env", API_KEY_ENV]
    if config:
        cmd += ["--config-json", json.dumps(config)]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        # Bounded wait for the one "LISTENING ..." line the child prints when ready.
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("LISTENING"):
            raise RuntimeError(f"test server process did not start: {line!r}")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        yield ServerHandle(port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Loopback OpenAI-compatible TEST server (not a model).")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--latency", type=float)
    p.add_argument("--latency-jitter", type=float)
    p.add_argument("--scenario", choices=SCENARIOS)
    p.add_argument("--tokens-per-reply", type=int)
    p.add_argument("--served-model")
    p.add_argument("--model", action="append", dest="models", help="accepted model (repeat)")
    p.add_argument("--api-key-env", help="name of an env var holding the required API key")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-context-tokens", type=int)
    p.add_argument("--fault-rate", action="append", default=[], metavar="NAME=P")
    p.add_argument("--config-json", help="ServerConfig fields as JSON (flags override)")
    a = p.parse_args(argv)
    cfg: dict[str, Any] = json.loads(a.config_json) if a.config_json else {}
    for name in (
        "latency",
        "latency_jitter",
        "scenario",
        "tokens_per_reply",
        "served_model",
        "models",
        "seed",
        "max_context_tokens",
    ):
        if getattr(a, name) is not None:
            cfg[name] = getattr(a, name)
    if a.api_key_env:
        cfg["api_key"] = os.environ[a.api_key_env]
    for item in a.fault_rate:
        name, _, rate = item.partition("=")
        cfg.setdefault("fault_rates", {})[name] = float(rate)
    server = OpenAIServer(ServerConfig(**cfg))

    async def serve() -> None:
        port = await server.start(a.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"LISTENING http://{HOST}:{port}/v1", flush=True)
        await stop.wait()
        await server.stop()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
