"""A lean chat-completions POST over aiohttp, for `client: aiohttp` teachers.

The openai client costs ~1 ms of CPU per request in request building (httpx2 models, URL
parsing, header normalisation), measured on the benchmark; at hundreds of requests a second
per process that CPU turns into event-loop lag and lost throughput. This transport sends
the same request (Bearer auth, JSON body, `<base_url>/chat/completions`) and raises
`HTTPFailure` for non-200 answers, which the backend classifies exactly like the openai
client's errors. It is the default (`client: aiohttp`): benchmarks/generate.py measured it at
≤ 0.5 ms of client CPU per request at 0.95 of ideal throughput; `client: openai` stays for
setups that need the openai client (proxies from the environment, its own retries off anyway).
"""

from __future__ import annotations

from typing import Any


class HTTPFailure(Exception):
    """A non-200 answer: status, parsed JSON body (or None), headers."""

    def __init__(self, status: int, body: Any, headers: Any, text: str) -> None:
        super().__init__(f"Error code: {status} - {text[:400]}")
        self.status_code = status
        self.body = body.get("error", body) if isinstance(body, dict) else body
        self.headers = headers


class AiohttpApi:
    def __init__(self, base_url: str, api_key: str, connections: int, timeout_s: float, connect_timeout_s: float) -> None:
        import aiohttp

        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
            timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s),
            trust_env=False,
            headers=self._headers,  # session defaults: not merged from a new dict on every request
        )

    async def post_chat(self, body: bytes) -> bytes:
        async with self._session.post(self._url, data=body) as resp:
            data = await resp.read()
            if resp.status != 200:
                import orjson

                try:
                    parsed = orjson.loads(data)
                except orjson.JSONDecodeError:
                    parsed = None
                raise HTTPFailure(resp.status, parsed, resp.headers, data.decode("utf-8", "replace"))
            return data

    async def close(self) -> None:
        await self._session.close()
