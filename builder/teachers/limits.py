"""Request limits: token buckets for requests/min and tokens/min, backoff with full jitter.

All waiting happens on the event loop (no threads); waiters are served first come, first
served, so a big request cannot be starved by a stream of small ones.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time


class TokenBucket:
    """`rate` units per second, bursting up to `capacity`; `take` waits until units exist."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, n: float) -> None:
        n = min(n, self.capacity)  # a request larger than the burst waits for a full bucket
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= n:
                    self._tokens -= n
                    return
                await asyncio.sleep((n - self._tokens) / self.rate)

    def give_back(self, n: float) -> None:
        """Return over-estimated units (tokens/min is charged on max_tokens, settled on usage)."""
        self._refill()
        self._tokens = min(self.capacity, self._tokens + n)


class RateLimiter:
    """Requests/min and tokens/min for one task, plus a shared pause after a Retry-After."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.rpm = TokenBucket(requests_per_minute / 60, requests_per_minute / 60) if requests_per_minute else None
        self.tpm = TokenBucket(tokens_per_minute / 60, tokens_per_minute / 60) if tokens_per_minute else None
        self._resume_at = 0.0

    def pause_for(self, seconds: float) -> None:
        """A 429 with Retry-After: every request of this task holds off, not only the one refused."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    async def acquire(self, est_tokens: int) -> None:
        while (wait := self._resume_at - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        if self.rpm:
            await self.rpm.take(1)
        if self.tpm:
            await self.tpm.take(est_tokens)

    def settle(self, est_tokens: int, used_tokens: int) -> None:
        if self.tpm and used_tokens < est_tokens:
            self.tpm.give_back(est_tokens - used_tokens)


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random) -> float:
    """Full jitter (uniform in [0, min(cap, base·2^(attempt-1))]), never shorter than Retry-After."""
    jitter = rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))
    return max(jitter, retry_after) if retry_after is not None else jitter


def capped_wait(retry_after: float | None, cap: float) -> tuple[float | None, bool]:
    """A server's Retry-After, held to the recipe's `limits.retry_after_max_s`: an endpoint asking
    for a day (86400 s, or an HTTP date) would otherwise stall the run silently. (wait, capped?)"""
    if retry_after is None or retry_after <= cap:
        return retry_after, False
    return cap, True


def parse_retry_after(headers: object) -> float | None:
    """Seconds from `retry-after-ms` / `retry-after` (seconds or an HTTP date); None if absent."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    ms = get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time())
