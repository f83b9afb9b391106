"""Limits that protect the process itself, whatever sits in front of it.

Two layers, because uvicorn sees what the app cannot (a request still sending its headers)
and the app sees what uvicorn does not (how much of a body it has buffered):

- the connection (`GuardedProtocol`): at most `max_connections` open at once, the header
  block finished within `header_timeout_s` and within `max_header_bytes`, idle keep-alive
  connections closed after `keepalive_s`;
- the body (`BodyLimits`): finished within `body_timeout_s` (else 408, and its memory is
  released), and bodies together never hold more than `body_buffer_bytes` beyond a small
  allowance each, so stalled uploads cannot take the memory of genuine deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import ClassVar, TypedDict

from litestar.types import Receive, ReceiveMessage
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from receiver.errors import ReceiverError
from receiver.logs import RateLimitedLog
from receiver.settings import Settings

__all__ = [
    "BodyLimits",
    "BodyReader",
    "GuardedProtocol",
    "HttpLimits",
    "UvicornOptions",
    "raise_file_limit",
    "uvicorn_options",
]

log = logging.getLogger(__name__)

FREE_BODY_BYTES = 64 * 1024  # what any one body may hold without drawing on the shared pool
_SPARE_FILES = 256  # descriptors kept for the database, media files, outgoing connections


@dataclass(frozen=True)
class HttpLimits:
    max_connections: int
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    keepalive_s: int
    body_buffer_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> HttpLimits:
        return cls(
            settings.max_connections,
            settings.max_header_bytes,
            settings.header_timeout_s,
            settings.body_timeout_s,
            settings.keepalive_s,
            settings.body_buffer_bytes,
        )


# One warning per limit per minute: an attack must not flood the log either.
_LIMIT_LOG = RateLimitedLog(log, every_s=60.0)


def _refusal(status: int, reason: bytes) -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(reason), reason)
    )


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the connection-level limits. A class of its own
    module, so that `serve --workers` can hand it to worker processes by name; a worker reads
    the limits from the environment it inherited, the serving process is told them."""

    limits: ClassVar[HttpLimits | None] = None
    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes = 0
    _in_headers = True

    @classmethod
    def _limits(cls) -> HttpLimits:
        if cls.limits is None:
            cls.limits = HttpLimits.of(Settings.from_env())
        return cls.limits

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self._limits().max_connections
        if len(self.connections) > limit:
            _LIMIT_LOG.warning("connections", f"over {limit} connections: refusing more")
            self._refuse(b"Service Unavailable", 503)
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        limit = self._limits().max_header_bytes
        if self._in_headers and self._header_bytes > limit:
            _LIMIT_LOG.warning("header_size", f"a header block over {limit} bytes: refused")
            self._refuse(b"Request Header Fields Too Large", 431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._disarm_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        timeout = self._limits().header_timeout_s
        self._header_timer = self.loop.call_later(timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            timeout = self._limits().header_timeout_s
            _LIMIT_LOG.warning(
                "header_timeout", f"a request's headers took over {timeout:g} s: closed"
            )
            self._refuse(b"Request Timeout", 408)

    def _refuse(self, reason: bytes, status: int) -> None:
        self._in_headers = False
        self._disarm_header_timer()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, reason))
            self.transport.close()


class _BodyPool:
    """Bytes that bodies may hold beyond their free allowance, shared by all requests."""

    def __init__(self, size: int) -> None:
        self.free = size

    def take(self, amount: int) -> bool:
        if amount > self.free:
            return False
        self.free -= amount
        return True

    def give(self, amount: int) -> None:
        self.free += amount


class BodyLimits:
    """A body is finished in time and holds only its share of memory (used by the one request
    middleware, `receiver.web.http.request_middleware`)."""

    def __init__(self, limits: HttpLimits) -> None:
        self._limits = limits
        self._pool = _BodyPool(limits.body_buffer_bytes)

    def reader(self, receive: Receive) -> BodyReader:
        """The `receive` of one request, held to the limits."""
        return BodyReader(receive, self._pool, self._limits.body_timeout_s)


class BodyReader:
    """Reads one body; `cut_off` once it was refused (late or over the budget), when the
    connection must close after the answer. `release` gives its memory share back."""

    def __init__(self, receive: Receive, pool: _BodyPool, timeout_s: float) -> None:
        self._receive = receive
        self._pool = pool
        self._deadline = time.monotonic() + timeout_s
        self._timeout_s = timeout_s
        self._read = 0
        self._drawn = 0
        self._done = False
        self.cut_off = False

    async def receive(self) -> ReceiveMessage:
        if self._done:  # after the body: wait for a disconnect as long as the app likes
            return await self._receive()
        try:
            async with asyncio.timeout(max(self._deadline - time.monotonic(), 0.0)):
                message = await self._receive()
        except TimeoutError:
            self.cut_off = True
            _LIMIT_LOG.warning(
                "body_timeout", f"a request body took over {self._timeout_s:g} s: answered 408"
            )
            raise ReceiverError(
                408, "request_timeout", "the request body was not finished in time"
            ) from None
        self._account(message)
        return message

    def _account(self, message: ReceiveMessage) -> None:
        if message["type"] != "http.request":
            return
        self._read += len(message.get("body", b""))
        self._done = not message.get("more_body", False)
        wanted = max(self._read - FREE_BODY_BYTES, 0) - self._drawn
        if wanted <= 0:
            return
        if not self._pool.take(wanted):
            self.cut_off = True
            _LIMIT_LOG.warning("body_pool", "request bodies fill their memory budget: refused")
            raise ReceiverError(503, "busy", "too many large requests at once; retry shortly")
        self._drawn += wanted

    def release(self) -> None:
        self._pool.give(self._drawn)
        self._drawn = 0


def raise_file_limit(limits: HttpLimits) -> None:
    """Let the process hold every connection it accepts plus its own files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.max_connections + _SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        if new_soft < wanted:
            log.warning(
                "open files are limited to %d: fewer than %d connections will fit",
                new_soft,
                limits.max_connections,
            )


class UvicornOptions(TypedDict):
    http: type[asyncio.Protocol]
    timeout_keep_alive: int
    backlog: int


def uvicorn_options(settings: Settings) -> UvicornOptions:
    """What `serve` hands uvicorn so that the limits hold."""
    limits = HttpLimits.of(settings)
    raise_file_limit(limits)
    GuardedProtocol.limits = limits
    return UvicornOptions(
        http=GuardedProtocol,
        timeout_keep_alive=limits.keepalive_s,
        backlog=limits.max_connections,
    )
