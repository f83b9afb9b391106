"""`AurousClient`: everything the service asks of the Aurous API, over one httpx client.

Errors come back as typed exceptions decoded from Aurous's error envelope. Retries follow the
documented policy: `rate_limit` waits for Retry-After (and pauses every caller meanwhile),
`server_error` and network failures back off with jitter, everything else is final. GETs draw
from a shared per-minute budget that also slows down when X-RateLimit-Remaining runs low.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from receiver.errors import ErrorBody, ReceiverError, decode_error_envelope
from receiver.generation import (
    GenerationError,
    GenerationResponse,
    decode_generation,
    decode_generation_list,
)

__all__ = [
    "AurousClient",
    "AurousError",
    "RateBudget",
    "RawJson",
    "retry_after_seconds",
]

RawJson = dict[str, Any]
"""An Aurous answer as parsed JSON, for the endpoints read field by field (billing, webhook
endpoints); generations are decoded into typed structs instead."""

_RETRYABLE_TYPES = {"rate_limit", "server_error"}
_LOW_REMAINING = 0.05  # below 5% of the bucket left, spread requests out
_LONGEST_PAUSE_S = 300.0  # a longer Retry-After is waited in turns of this


class AurousError(ReceiverError):
    """An error answer from Aurous (or no answer at all: type `network`). `status` is
    Aurous's; the receiver passes an error on with it, or 502 when Aurous gave none."""

    def __init__(
        self,
        status: int,
        type_: str,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        extra: dict[str, str | None] | None = None
        if request_id:
            extra = {"aurous_request_id": request_id}
        super().__init__(status, code, message, param=param, extra=extra)
        self.type = type_
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    @property
    def http_status(self) -> int:
        return self.status if self.status >= 400 else 502

    @property
    def retryable(self) -> bool:
        return self.type in _RETRYABLE_TYPES or self.type == "network"


def _error_from(response: httpx.Response) -> AurousError:
    body = decode_error_envelope(response.content)
    if body is None:
        fallback = "server_error" if response.status_code >= 500 else "invalid_request"
        body = ErrorBody(
            type=fallback, code=f"http_{response.status_code}", message=response.text[:200]
        )
    if response.status_code == 429:
        body.type = "rate_limit"
    return AurousError(
        response.status_code,
        body.type,
        body.code,
        body.message,
        request_id=body.request_id or response.headers.get("aurous-request-id"),
        param=body.param,
        retry_after=_retry_after(response),
    )


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after_seconds(response.headers.get("retry-after"))


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` in seconds, at most `_LONGEST_PAUSE_S`: every call to Aurous waits with
    the one that was told, so a day (or "1e400") must not stop polls, creates and downloads."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), _LONGEST_PAUSE_S)


class RateBudget:
    """A per-minute allowance of GETs shared by every caller, plus the 429 pause."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_minute = per_minute
        self._tokens = float(per_minute)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.used = 0

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())

    async def wait_unpaused(self) -> None:
        while (delay := self.paused_for()) > 0:
            await self._sleep(delay)

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                await self.wait_unpaused()
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.used += 1
                    return
                await self._sleep((1 - self._tokens) * 60 / self.per_minute)

    async def watch(self, response: httpx.Response) -> None:
        """httpx response hook: runs as soon as the headers arrive, before the body is read,
        so a 429 pauses every other caller before any of them can send again."""
        if response.status_code == 429:
            self.pause(_retry_after(response) or 1.0)
        remaining = response.headers.get("x-ratelimit-remaining", "")
        limit = response.headers.get("x-ratelimit-limit", "")
        if remaining.isdigit() and limit.isdigit():
            self.observe_remaining(int(remaining), int(limit))

    def observe_remaining(self, remaining: int, limit: int) -> None:
        """When Aurous says its bucket is nearly empty, stop spending ours for a moment."""
        if limit > 0 and remaining <= limit * _LOW_REMAINING:
            self._tokens = min(self._tokens, 0.0)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(
            self.per_minute, self._tokens + (now - self._updated) * self.per_minute / 60
        )
        self._updated = now


class AurousClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        budget: RateBudget,
        version: str | None = None,
        http: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "aurous-receiver/0.1"}
        if api_key:
            headers["X-Api-Key"] = api_key
        if version:
            headers["Aurous-Version"] = version
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.requests: Counter[str] = Counter()
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5))
        self._http.event_hooks["response"].append(budget.watch)
        self._headers = headers
        self._max_attempts = max_attempts
        self._sleep = sleep

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying client (tests hook its events to watch the traffic)."""
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- generations -------------------------------------------------------------------------

    async def get_generation(self, generation_id: str) -> GenerationResponse:
        response = await self._request("GET", f"/v1/images/{generation_id}", kind="get")
        return _generation(response)

    async def list_generations(
        self, *, starting_after: str | None = None, limit: int = 100
    ) -> tuple[list[GenerationResponse], bool, str | None]:
        params = _list_params(starting_after, limit)
        response = await self._request("GET", "/v1/images", params=params, kind="list")
        return decode_generation_list(response.content)

    async def create(
        self, kind: str, body: bytes, idempotency_key: str
    ) -> tuple[GenerationResponse, httpx.Response]:
        path = "/v1/videos" if kind == "video" else "/v1/images"
        response = await self._request(
            "POST",
            path,
            content=body,
            kind="create",
            headers={"Idempotency-Key": idempotency_key, "Content-Type": "application/json"},
        )
        return _generation(response), response

    async def cancel(self, generation_id: str) -> GenerationResponse:
        response = await self._request("POST", f"/v1/images/{generation_id}/cancel", kind="cancel")
        return _generation(response)

    # --- billing -----------------------------------------------------------------------------

    async def balance(self) -> RawJson:
        return await self._json("GET", "/v1/balance", kind="balance")

    async def usage_events(
        self,
        *,
        starting_after: str | None = None,
        limit: int = 100,
        start_time: datetime | None = None,
        cursor: str | None = None,
    ) -> RawJson:
        """A page of the credit ledger (§8.2 contract (a), paged by `starting_after`) or, with
        `start_time`, of the usage event stream (contract (b), paged by an opaque `cursor`)."""
        if start_time is None:
            params = _list_params(starting_after, limit)
        else:
            params = {"start_time": _rfc3339(start_time), "limit": limit}
            if cursor:
                params["cursor"] = cursor
        return await self._json("GET", "/v1/usage/events", params=params, kind="usage")

    # --- webhook endpoints -------------------------------------------------------------------

    async def create_webhook_endpoint(
        self, url: str, events: list[str], description: str | None = None
    ) -> RawJson:
        body: dict[str, str | list[str]] = {"url": url, "events": events}
        if description:
            body["description"] = description
        return await self._json("POST", "/v1/webhook_endpoints", json=body, kind="endpoint")

    async def rotate_webhook_secret(self, endpoint_id: str) -> RawJson:
        path = f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret"
        return await self._json("POST", path, kind="endpoint")

    async def test_webhook(self, endpoint_id: str, event_type: str) -> RawJson:
        path = f"/v1/webhook_endpoints/{endpoint_id}/test"
        return await self._json("POST", path, json={"event_type": event_type}, kind="endpoint")

    # --- transport ---------------------------------------------------------------------------

    async def _json(self, method: str, path: str, **kwargs: Any) -> RawJson:
        response = await self._request(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AurousError(
                response.status_code,
                "server_error",
                "unexpected_body",
                f"{method} {path} did not answer with a JSON object",
            )
        return data

    async def _request(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await self._attempt(method, path, kind, headers, **kwargs)
            except AurousError as error:
                if not error.retryable or attempt == self._max_attempts:
                    raise
                if error.type != "rate_limit":  # a 429 already paused the budget (watch)
                    await self._sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    async def _attempt(
        self,
        method: str,
        path: str,
        kind: str,
        headers: Mapping[str, str] | None,
        **kwargs: Any,
    ) -> httpx.Response:
        if method == "GET":
            await self.budget.acquire()
        else:
            await self.budget.wait_unpaused()
        self.requests[kind] += 1
        try:
            response = await self._http.request(
                method,
                self.base_url + path,
                headers={**self._headers, **(headers or {})},
                **kwargs,
            )
        except httpx.RequestError as exc:  # no answer, or one that could not be read
            raise AurousError(0, "network", "network_error", f"{method} {path}: {exc!r}") from None
        if response.is_success:
            return response
        raise _error_from(response)


def _list_params(starting_after: str | None, limit: int) -> dict[str, str | int]:
    params: dict[str, str | int] = {"limit": limit}
    if starting_after:
        params["starting_after"] = starting_after
    return params


def _generation(response: httpx.Response) -> GenerationResponse:
    """The answer's generation; an answer that is none (or one storage cannot hold) is Aurous's
    error, as a 5xx would be, so that every caller of the client handles it as one."""
    try:
        return decode_generation(response.content)
    except GenerationError as error:
        raise AurousError(
            502,
            "server_error",
            "invalid_response",
            f"Aurous answered with no usable generation: {error}",
            request_id=response.headers.get("aurous-request-id"),
        ) from None


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _backoff(attempt: int) -> float:
    """1 s, 2 s, 4 s, 8 s … capped at 30 s, with full jitter on the upper half."""
    base = min(30.0, 2.0 ** (attempt - 1))
    return base / 2 + random.uniform(0, base / 2)
