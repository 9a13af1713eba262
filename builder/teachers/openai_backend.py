"""The `openai` backend: openai.AsyncOpenAI against one or more OpenAI-compatible endpoints.

Why our own client loop and not datatrove's InferenceRunner (measured on datatrove 0.10.1):
it keeps `reasoning_content` only when talking to localhost, drops it through the openai
client, and its readiness probe never reaches an authenticated remote endpoint. This loop
keeps at least its resume guarantees (a durable per-task store, skip what is stored) and
adds ours: every reasoning field kept whole, counted retries, limits, fail-fast.

One worker coroutine per concurrency slot pulls items; the openai client's own retries are
off (max_retries=0) so every retry is ours and counted. The raw JSON body is parsed with
orjson instead of pydantic models: faster, and every field the server sent (reasoning
fields under any name, usage details) survives as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from builder.config.generate import Endpoint, Limits, TeacherConfig
from builder.errors import UserError, redact, unset_state
from builder.teachers.budget import Budget, stop_message, worst_prompt_tokens
from builder.teachers.error_reply import error_reply
from builder.teachers.items import WorkItem, reply_row
from builder.teachers.limits import RateLimiter, backoff_delay, capped_wait, parse_retry_after
from builder.teachers.reply_shape import reply_fields, scrub_secrets
from builder.teachers.store import StoreWriter

log = logging.getLogger("builder.teachers")
CHARS_PER_TOKEN = 4  # prompt-size estimate for the tokens/min bucket, settled on usage


def api_key(ep: Endpoint, teacher: str) -> str:
    import os

    if ep.api_key_env is None:
        return "EMPTY"  # vLLM and local servers accept any key
    value = os.environ.get(ep.api_key_env)
    if not (value or "").strip():  # a key of spaces (or a lone newline) is no key: said so, never sent
        raise UserError(
            f"teacher {teacher}: environment variable {ep.api_key_env} (the API key for {ep.base_url}) "
            f"{unset_state(value)}; export it before running"
        )
    return value.strip()  # a trailing newline or CR (a key pasted from a file) is no part of the key


@dataclass
class Outcome:
    """One HTTP attempt's result, classified."""

    body: dict[str, Any] | None = None
    code: str = ""  # error code, "" on success
    retryable: bool = False
    retry_after: float | None = None
    message: str = ""
    fatal: bool = False  # counts toward fail-fast (auth, unknown model, unreachable)
    stop: bool = False  # every later request would fail the same (no balance left): abort now, successes or not


def classify(exc: BaseException, secrets: Iterable[str]) -> Outcome:
    import openai

    def clean(text: str) -> str:
        for s in secrets:
            if s and s != "EMPTY":
                text = text.replace(s, "***")
        return redact(" ".join(text.split()))[:500]

    msg = clean(f"{type(exc).__name__}: {exc}")
    if type(exc.__cause__).__name__ in ("ConnectError", "ConnectTimeout"):
        # Nothing answered at all (httpx_aiohttp reports a refused connect as ConnectTimeout).
        return Outcome(code="connection_error", retryable=True, message=clean(f"{type(exc).__name__}: {exc.__cause__}"), fatal=True)
    if isinstance(exc, openai.APITimeoutError):
        return Outcome(code="timeout", retryable=True, message=msg)
    if isinstance(exc, openai.APIConnectionError):
        return Outcome(code="connection_error", retryable=True, message=msg, fatal=True)
    from builder.teachers.aiohttp_transport import HTTPFailure

    if isinstance(exc, (openai.APIStatusError, HTTPFailure)):
        status = exc.status_code
        headers = exc.response.headers if isinstance(exc, openai.APIStatusError) else exc.headers
        body_code = str(exc.body.get("code") or "") if isinstance(exc.body, dict) else ""
        if status == 429:
            return Outcome(code="rate_limited", retryable=True, message=msg, retry_after=parse_retry_after(headers))
        if status == 402:  # DeepSeek/OpenRouter "Insufficient Balance": the rest would all be refused
            return Outcome(code="insufficient_balance", message=msg, fatal=True, stop=True)
        if status in (401, 403):
            return Outcome(code="auth_failed", message=msg, fatal=True)
        if status == 404:
            return Outcome(code="model_not_found", message=msg, fatal=True)
        if status == 400 and ("context_length" in body_code or "context length" in str(exc).lower()):
            return Outcome(code="context_length_exceeded", message=msg)
        if status in (408, 409) or status >= 500:
            return Outcome(code="server_error" if status >= 500 else "timeout", retryable=True, message=msg,
                           retry_after=parse_retry_after(headers))  # fmt: skip
        # fatal: a recipe the endpoint refuses (max_tokens over its limit, an unknown parameter)
        # stops after fail_fast_after refusals with nothing answered, not after every prompt.
        return Outcome(code="bad_request", message=msg, fatal=True)
    aio = _aiohttp_outcome(exc, msg)
    if aio is not None:
        return aio
    if isinstance(exc, (orjson.JSONDecodeError, KeyError, IndexError, TypeError)):
        return Outcome(code="malformed_response", retryable=True, message=msg)
    if isinstance(exc, (ConnectionError, asyncio.TimeoutError)):
        return Outcome(code="connection_error", retryable=True, message=msg)
    raise exc


def _aiohttp_outcome(exc: BaseException, msg: str) -> Outcome | None:
    """Errors of the `client: aiohttp` transport, mapped like the openai client's."""
    try:
        import aiohttp
    except ImportError:
        return None
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Outcome(code="connection_error", retryable=True, message=msg, fatal=True)
    if isinstance(exc, asyncio.TimeoutError):
        return Outcome(code="timeout", retryable=True, message=msg)
    if isinstance(exc, aiohttp.ClientError):  # reset, disconnected, cut payload
        return Outcome(code="connection_error", retryable=True, message=msg)
    return None


# httpx's connection pool scans every connection on each request (O(n) per request, O(n²)
# per second at n=256); measured at ~1.5 ms CPU per request. Splitting one endpoint's
# connections over several clients of at most this many keeps each scan short.
CONNECTIONS_PER_CLIENT = 32


@dataclass
class Client:
    url: str
    apis: list[Any]  # openai.AsyncOpenAI shards; worker w uses apis[w % len(apis)]
    outstanding: int = 0


class EndpointPool:
    """Least-outstanding-requests balancing; ties rotate so idle endpoints share the start."""

    def __init__(self, clients: list[Client]) -> None:
        self.clients = clients
        self._turn = 0

    def pick(self) -> Client:
        if len(self.clients) == 1:
            return self.clients[0]
        self._turn = (self._turn + 1) % len(self.clients)
        n = len(self.clients)
        return min((self.clients[(self._turn + i) % n] for i in range(n)), key=lambda c: c.outstanding)


def _httpx() -> Any:
    """The httpx the installed openai speaks: openai 3.x ships on the `httpx2` fork, 1.x/2.x on httpx."""
    try:
        import httpx2

        return httpx2
    except ImportError:
        import httpx

        return httpx


def _http_client(connections: int, timeout: Any) -> tuple[Any, bool]:
    """openai's aiohttp transport when usable (the `openai[aiohttp]` extra), else httpx; (client, is_aiohttp)."""
    import openai

    httpx = _httpx()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    try:  # without the extra, openai's DefaultAioHttpClient raises RuntimeError when built
        return openai.DefaultAioHttpClient(limits=limits, timeout=timeout), True
    except (RuntimeError, AttributeError, ImportError):
        return openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout), False


def make_pool(teacher: TeacherConfig, endpoints: list[Endpoint], concurrency: int) -> tuple[EndpointPool, list[str]]:
    import openai

    httpx = _httpx()
    lim = teacher.limits
    timeout = httpx.Timeout(lim.timeout_s, connect=lim.connect_timeout_s)
    clients, keys = [], []
    for ep in endpoints:
        key = api_key(ep, teacher.name)
        keys.append(key)
        if teacher.client == "aiohttp":
            from builder.teachers.aiohttp_transport import AiohttpApi

            api = AiohttpApi(ep.base_url, key, concurrency, lim.timeout_s, lim.connect_timeout_s)
            clients.append(Client(ep.base_url, [api]))
            continue
        http, fast = _http_client(concurrency, timeout)
        https = [http]
        if not fast:  # httpx: split the pool (see CONNECTIONS_PER_CLIENT); an unused client holds nothing
            shards = -(-concurrency // CONNECTIONS_PER_CLIENT)
            https = [_http_client(-(-concurrency // shards), timeout)[0] for _ in range(shards)]
        apis = [openai.AsyncOpenAI(base_url=ep.base_url, api_key=key, max_retries=0, http_client=h, timeout=timeout)
                for h in https]  # fmt: skip
        clients.append(Client(ep.base_url, apis))
    return EndpointPool(clients), keys


@dataclass
class RunState:
    ok: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    any_success: bool = False
    fatal_streak: int = 0
    abort: str = ""
    abort_event: asyncio.Event = field(default_factory=asyncio.Event)
    warnings: list[str] = field(default_factory=list)  # said live and in the stage summary
    warned_wait: bool = False
    budget: Budget | None = None  # limits.max_cost_usd: checked before every request


def parse_reply(body: Any) -> dict[str, Any]:
    """The reply part of a row from a chat.completion body (typed checks: teachers/reply_shape.py)."""
    return reply_fields(body)


async def _sleep_or_abort(state: RunState, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(state.abort_event.wait(), seconds)


def request_body(teacher: TeacherConfig, item: WorkItem) -> bytes:
    """The chat.completions JSON body. Encoded here, once, with orjson: the client's own param
    transform walks every message through TypedDict machinery (~3 ms CPU a request measured)
    and only renames aliased keys, of which chat messages have none."""
    s = teacher.sampling
    body: dict[str, Any] = {
        "model": teacher.model,
        "messages": item.messages,
        "temperature": s.temperature,
        "top_p": s.top_p,
        s.max_tokens_param: item.max_tokens,
    }
    if s.seed is not None:
        body["seed"] = s.seed + item.sample_index  # one seed for all samples would repeat one reply
    if item.tools:
        body["tools"] = item.tools
    body.update(s.extra_body)
    return orjson.dumps(body)


async def post_chat(api: Any, body: bytes, lim: Limits) -> bytes:
    """POST /chat/completions through the openai client (auth, base_url, its error classes)."""
    resp = await api.post(
        "/chat/completions",
        cast_to=_httpx().Response,
        content=body,
        options={"headers": {"Content-Type": "application/json"}, "timeout": lim.timeout_s},
    )
    return resp.content


async def _one(
    slot: int,
    item: WorkItem,
    teacher: TeacherConfig,
    pool: EndpointPool,
    limiter: RateLimiter,
    state: RunState,
    secrets: list[str],
    rng: random.Random,
    steps: list[int],
    store: Callable[[dict[str, Any], WorkItem], None],
) -> None:
    lim = teacher.limits
    est_prompt = sum(len(m["content"] or "") for m in item.messages) // CHARS_PER_TOKEN + 1
    worst_prompt = worst_prompt_tokens(request_body(teacher, item), len(item.messages)) if state.budget else 0
    attempts = 0
    started = time.monotonic()
    out = Outcome()
    while True:
        if state.abort:
            if attempts:  # stopped between retries: the attempts made are on record (accounting)
                store(reply_row(item, teacher, status="failed", error_code=out.code, error_message=out.message,
                                attempts=attempts, latency_s=time.monotonic() - started), item)  # fmt: skip
                state.failed += 1
            return  # never tried: not stored, the export writes it as "not_attempted"
        held = state.budget.reserve(worst_prompt, item.max_tokens) if state.budget else 0.0
        if held is None and state.budget:  # it could take the spend past the cap: stop, keep what is stored
            state.abort = state.abort or stop_message(teacher, state.budget.before + state.budget.spent)
            state.abort_event.set()
            continue
        est = est_prompt + item.max_tokens
        await limiter.acquire(est)
        client = pool.pick()
        client.outstanding += 1
        attempts += 1
        state.requests += 1
        t0 = time.monotonic()
        try:
            api = client.apis[slot % len(client.apis)]
            body = request_body(teacher, item)
            data = await (api.post_chat(body) if teacher.client == "aiohttp" else post_chat(api, body, lim))
            parsed = orjson.loads(data)
            if (refused := error_reply(parsed)) is not None:  # a 200 carrying {"error": …}
                raise refused
            fields = scrub_secrets(parse_reply(parsed), secrets)
            out = Outcome(body=fields)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classify() re-raises what it does not know
            out = classify(exc, secrets)
        finally:
            client.outstanding -= 1
        if state.budget:
            state.budget.settle(held or 0.0, out.body)
        latency = time.monotonic() - t0
        if out.body is not None:
            fields = out.body
            used = (fields.get("prompt_tokens") or 0) + (fields.get("completion_tokens") or 0)
            limiter.settle(est, used)
            state.any_success = True
            state.fatal_streak = 0
            row = reply_row(item, teacher, latency_s=latency, attempts=attempts, **fields)
            store(row, item)
            nxt = [s for s in steps if s > item.max_tokens]
            if fields.get("finish_reason") == "length" and fields["status"] == "ok" and nxt:
                item.max_tokens = nxt[0]  # truncation ladder: same id, larger budget
                attempts, started = 0, time.monotonic()
                continue
            if fields["status"] == "ok":
                state.ok += 1
            else:
                state.failed += 1
            return
        limiter.settle(est, 0)
        if out.stop and not state.abort:
            state.abort = _abort_message(out, teacher, client.url)
            state.abort_event.set()
        if out.fatal and not state.any_success:
            state.fatal_streak += 1
            if state.fatal_streak >= lim.fail_fast_after and not state.abort:
                state.abort = _abort_message(out, teacher, client.url)
                state.abort_event.set()
        if out.retryable and attempts < lim.max_attempts and not state.abort:
            wait, capped = capped_wait(out.retry_after, lim.retry_after_max_s)
            if capped:
                _long_wait(state, teacher, client.url, out)
            if wait is not None:
                limiter.pause_for(wait)
            state.retries += 1
            await _sleep_or_abort(state, backoff_delay(attempts, lim.backoff_base_s, lim.backoff_max_s, wait, rng))
            continue
        row = reply_row(item, teacher, status="failed", error_code=out.code, error_message=out.message,
                        attempts=attempts, latency_s=time.monotonic() - started)  # fmt: skip
        store(row, item)
        state.failed += 1
        return


def _long_wait(state: RunState, teacher: TeacherConfig, url: str, out: Outcome) -> None:
    """Say once per run that a Retry-After was cut to limits.retry_after_max_s (a request that keeps
    being refused ends as a retryable failure after max_attempts, asked again by a re-run)."""
    if state.warned_wait:
        return
    state.warned_wait = True
    line = redact(f"teacher {teacher.name}: {url} asked to wait {out.retry_after:,.0f} s before retrying ({out.code}); "
                  f"waiting at most limits.retry_after_max_s = {teacher.limits.retry_after_max_s:g} s per retry instead "
                  "(raise it to honour longer waits)")  # fmt: skip
    state.warnings.append(line)
    log.warning("%s", line)


def _abort_message(out: Outcome, teacher: TeacherConfig, url: str) -> str:
    what = {
        "auth_failed": f"the endpoint {url} refused the API key (401/403); check the key in the teacher's api_key_env",
        "model_not_found": f"the endpoint {url} does not serve model {teacher.model!r} (404); check `model`",
        "connection_error": f"cannot reach {url}; is the server running and the base_url right?",
        "bad_request": f"the endpoint {url} rejected the request ({out.message[:300]}); check `sampling` "
                       "(max_tokens, extra_body) against what it accepts",
    }.get(out.code, out.message)
    if out.code == "insufficient_balance":
        return redact(f"teacher {teacher.name}: the endpoint {url} refused the request for lack of balance (402); "
                      "top up the account and re-run: stored replies are kept, the rest are asked then")  # fmt: skip
    # Redacted: it is written to the stage summary, and a base_url may carry a key (user:KEY@host).
    return redact(f"teacher {teacher.name}: {what} ({teacher.limits.fail_fast_after} requests in a row failed, none succeeded)")


async def run_requests(
    items: Iterable[WorkItem],
    teacher: TeacherConfig,
    endpoints: list[Endpoint],
    writer: StoreWriter,
    run_id: str,
    share: float = 1.0,
    seed: int = 0,
    budget: Budget | None = None,
) -> RunState:
    """Send every item (each already holding its max_tokens) and store every outcome."""
    lim = teacher.limits
    conc = max(1, int(lim.concurrency * share))
    rpm = lim.requests_per_minute * share if lim.requests_per_minute else None
    tpm = lim.tokens_per_minute * share if lim.tokens_per_minute else None
    pool, secrets = make_pool(teacher, endpoints, conc)
    limiter = RateLimiter(rpm, tpm)
    state = RunState(budget=budget)
    rng = random.Random(seed)
    steps = teacher.sampling.steps()
    it: Iterator[WorkItem] = iter(items)

    def store(row: dict[str, Any], item: WorkItem) -> None:
        writer.append(row, run=run_id, source=item.source, category=item.category)

    async def worker(slot: int) -> None:
        for item in it:  # a shared iterator: each item goes to exactly one worker
            if state.abort:
                return
            await _one(slot, item, teacher, pool, limiter, state, secrets, rng, steps, store)

    async def syncer() -> None:
        while True:  # fsync even when requests are slow to come back
            await asyncio.sleep(1.0)
            writer.sync()

    sync_task = asyncio.create_task(syncer())
    # What is alive now (the items, their messages, the clients) lives for the whole run: frozen,
    # the collector stops walking it on every collection the replies' churn triggers.
    gc.freeze()
    try:
        await asyncio.gather(*(worker(i) for i in range(conc)))
    finally:
        gc.unfreeze()
        sync_task.cancel()
        for c in pool.clients:
            for api in c.apis:
                await api.close()
    return state
