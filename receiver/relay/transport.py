"""The HTTP side of a push: one POST, its answer reduced to what is recorded.

aiohttp rather than httpx (which the rest of the service uses): posting small bodies to a
destination 16 at a time, it sustains about ten times the requests per second of an httpx
AsyncClient on the same machine (bench/relay.py prints both), and pushes are the service's
busiest outgoing traffic. Redirects are not followed: a destination answers, it does not send
the event elsewhere. Only the first KiB of an answer is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported at the first push: a receiver without destinations never loads it
    import aiohttp

__all__ = ["Answer", "PushTransport"]

ANSWER_KEPT = 1024
_ERROR_KEPT = 300


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer came (refused, reset, timed out)
    latency_ms: int
    error: str | None
    response: str | None  # the first KiB of the answer's body
    retry_after: float | None  # seconds, from a 429 or 503

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @classmethod
    def failure(cls, error: str, latency_ms: int = 0) -> Answer:
        return cls(None, latency_ms, error[:_ERROR_KEPT], None, None)


class PushTransport:
    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        import aiohttp

        started = time.perf_counter()
        try:
            return await self._post(url, body, headers, started)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Answer.failure(f"{type(exc).__name__}: {exc}", _since(started))

    async def _post(self, url: str, body: bytes, headers: dict[str, str], started: float) -> Answer:
        session = self._session_now()
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            head = await response.content.read(ANSWER_KEPT)
            if not response.content.at_eof():
                response.close()  # a long answer is not read to its end, nor its connection kept
            retry_after = (
                _seconds(response.headers.get("retry-after", ""))
                if response.status in (429, 503)
                else None
            )
            text = head.decode("utf-8", "replace")
            return Answer(response.status, _since(started), None, text, retry_after)

    def _session_now(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:  # made inside the running loop
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
