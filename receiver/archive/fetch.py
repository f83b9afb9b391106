"""Download one output safely: only from allowed hosts, streamed to a spool file, hashed on
the way, resumed with Range after a cut connection, capped in size. One download at a time
writes a spool file (an exclusive lock on it), whichever process or task it is."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import ipaddress
import json
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from receiver.aurous import retry_after_seconds
from receiver.errors import decode_error_envelope
from receiver.hosts import is_loopback_name

__all__ = ["DownloadError", "Downloaded", "HostPolicy", "discard_spool", "download"]

_CHUNK = 256 * 1024
_MAX_REDIRECTS = 5


class _Restart(Exception):
    """The server's answer does not continue our partial file: start it over."""


class _Whole(Exception):
    """The server says our partial file is already all of it (416 with that very length)."""


class DownloadError(Exception):
    """Why a download did not complete. `code` carries Aurous's error code when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    size: int
    content_type: str | None


@dataclass(frozen=True)
class HostPolicy:
    """Outputs come from the Aurous API host (plus configured extra hosts), never from private
    or link-local addresses unless Aurous itself is on loopback (tests, the simulator)."""

    hosts: frozenset[str]
    allow_private: bool

    @classmethod
    def for_base(cls, base_url: str, extra_hosts: tuple[str, ...] = ()) -> HostPolicy:
        base_host = (urlsplit(base_url).hostname or "").lower()
        hosts = frozenset({base_host, *(h.lower() for h in extra_hosts)})
        return cls(hosts, allow_private=is_loopback_name(base_host))

    async def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise DownloadError(f"not an http(s) URL: {url[:200]}", permanent=True)
        if host not in self.hosts and not (self.allow_private and is_loopback_name(host)):
            raise DownloadError(f"host {host!r} is not an allowed download host", permanent=True)
        if not self.allow_private:
            await _refuse_private(host, parts.port or (443 if parts.scheme == "https" else 80))


async def _refuse_private(host: str, port: int) -> None:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DownloadError(f"cannot resolve {host}: {exc}") from None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            raise DownloadError(f"{host} resolves to non-public {address}", permanent=True)


async def download(
    http: httpx.AsyncClient,
    url: str,
    spool: Path,
    *,
    policy: HostPolicy,
    max_bytes: int,
    resumes: int = 5,
    ready: Callable[[], Awaitable[None]] | None = None,
) -> Downloaded:
    """Fetch `url` into `spool`, continuing a partial spool left by an earlier attempt.
    `ready` is awaited right before each request (a pause Aurous asked for)."""
    state = await asyncio.to_thread(_Spool.open, spool)  # it hashes what an attempt left
    try:
        if state.whole:  # a crash came after the last byte: nothing left to ask the server
            return state.result()
        if state.source not in (None, url):  # a fresh URL after a 410: its bytes may differ
            await state.restart()
        for _ in range(resumes + 1):
            try:
                complete = await _fetch_into(http, url, state, policy, max_bytes, ready)
            except (httpx.TransportError, httpx.StreamError):
                complete = False  # cut mid-way: resume from what we have
            except _Whole:
                complete = True
            except _Restart:
                await state.restart()
                complete = False
            await state.drain()
            if complete:
                return state.result()
        raise DownloadError(f"connection cut {resumes + 1} times; will resume later")
    finally:
        state.close()


_BATCH = 4 << 20  # hand the disk 4 MiB at a time
_SYNC_EVERY = 32 << 20  # push to disk as we go, so the final fsync is short


@dataclass
class _Spool:
    """The partial download on disk. Hashing and writing run in a worker thread, one batch
    behind the network reads, so the socket is read while the previous batch is stored."""

    path: Path
    file: BinaryIO
    hasher: hashlib._Hash
    size: int  # bytes received, written or still buffered
    content_type: str | None = None
    total: int | None = None  # the output's whole size, once a server has said it
    source: str | None = None  # the URL the bytes came from
    buffer: list[bytes] = field(default_factory=list)
    buffered: int = 0
    unsynced: int = 0
    writing: asyncio.Future[Any] | None = None
    syncing: asyncio.Future[None] | None = None

    @classmethod
    def open(cls, path: Path) -> _Spool:
        """The spool at `path`, locked for this download, with what an earlier attempt left."""
        path.parent.mkdir(parents=True, exist_ok=True)
        file = path.open("a+b")  # writes always append; reads start where we seek
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise DownloadError("another download of this output is under way") from None
        hasher = hashlib.sha256()
        size = 0
        file.seek(0)
        while chunk := file.read(1 << 20):
            hasher.update(chunk)
            size += len(chunk)
        content_type, total, source = _read_meta(path)
        if os.fstat(file.fileno()).st_nlink > 1:
            total = size  # already linked into the store whole: it must never be truncated
        return cls(path, file, hasher, size, content_type, total, source)

    @property
    def whole(self) -> bool:
        return self.total is not None and self.size == self.total

    def remember(self, content_type: str | None, total: int | None, source: str) -> None:
        """Keep what the server said of the output beside the spool: after a crash or a failed
        store, a whole spool is stored as it is, even once its URL has expired."""
        if (content_type, total, source) == (self.content_type, self.total, self.source):
            return
        self.content_type, self.total, self.source = content_type, total, source
        meta = json.dumps({"content_type": content_type, "total": total, "url": source})
        _meta_path(self.path).write_text(meta)

    async def write(self, chunk: bytes) -> None:
        self.buffer.append(chunk)
        self.buffered += len(chunk)
        self.size += len(chunk)
        if self.buffered >= _BATCH:
            await self._hand_over()

    async def drain(self) -> None:
        """Everything received is written and hashed."""
        await self._hand_over()
        await self._wait_for_writer()
        if self.syncing is not None:
            await self.syncing

    async def restart(self) -> None:
        await self._wait_for_writer()
        if os.fstat(self.file.fileno()).st_nlink > 1:
            raise DownloadError("the spool is already a stored blob; it is not rewritten")
        self.content_type = self.total = self.source = None
        _meta_path(self.path).unlink(missing_ok=True)
        self.buffer, self.buffered = [], 0
        self.file.truncate(0)
        self.file.seek(0)
        self.hasher = hashlib.sha256()
        self.size = 0

    async def _hand_over(self) -> None:
        if not self.buffer:
            return
        # One buffer per batch: hashing and writing release the GIL once each for all of it,
        # instead of once per network chunk, and each time the thread wants the GIL back
        # it may wait a whole switch interval behind the busy event loop.
        batch, self.buffer, self.buffered = b"".join(self.buffer), [], 0
        await self._wait_for_writer()
        self.writing = asyncio.ensure_future(
            asyncio.gather(
                asyncio.to_thread(self.hasher.update, batch), asyncio.to_thread(self._store, batch)
            )
        )

    async def _wait_for_writer(self) -> None:
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing
        if self.unsynced >= _SYNC_EVERY and (self.syncing is None or self.syncing.done()):
            # Push written data to disk in the background, so the fsync that makes the
            # archive durable at the end has little left to wait for.
            self.unsynced = 0
            self.syncing = asyncio.ensure_future(
                asyncio.to_thread(os.fdatasync, self.file.fileno())
            )

    def _store(self, batch: bytes) -> None:
        self.file.flush()
        view, written = memoryview(batch), 0
        while written < len(batch):  # a short write continues where it stopped
            written += os.write(self.file.fileno(), view[written:])
        self.unsynced += len(batch)

    def result(self) -> Downloaded:
        self.file.flush()
        return Downloaded(self.path, self.hasher.hexdigest(), self.size, self.content_type)

    def close(self) -> None:
        """Close once the writer thread is done with the file (it may still be, if cancelled)."""
        busy = [f for f in (self.writing, self.syncing) if f is not None and not f.done()]
        if not busy:
            self.file.close()
        else:
            asyncio.gather(*busy, return_exceptions=True).add_done_callback(
                lambda _: self.file.close()
            )


async def _fetch_into(
    http: httpx.AsyncClient,
    url: str,
    spool: _Spool,
    policy: HostPolicy,
    max_bytes: int,
    ready: Callable[[], Awaitable[None]] | None,
) -> bool:
    headers = {"Accept-Encoding": "identity"}
    if spool.size:
        headers["Range"] = f"bytes={spool.size}-"
    response = await _open(http, url, headers, policy, ready)
    try:
        expected = _expected_total(response, spool)
        if expected is not None and expected > max_bytes:
            raise DownloadError(f"output is {expected} bytes, over the cap", permanent=True)
        spool.remember(response.headers.get("content-type", spool.content_type), expected, url)
        async for chunk in response.aiter_raw():
            await spool.write(chunk)
            if spool.size > max_bytes:
                raise DownloadError("output exceeds the size cap", permanent=True)
    finally:
        await response.aclose()
    if expected is not None and spool.size > expected:
        raise _Restart("more bytes than the output's declared size; starting over")
    return expected is None or spool.size == expected


def _expected_total(response: httpx.Response, spool: _Spool) -> int | None:
    """The full size, restarting the spool when the server ignored or misread our Range."""
    if response.status_code == 206:
        start, total = _content_range(response.headers.get("content-range", ""))
        if start != spool.size:
            raise _Restart("206 for a different offset; starting over")
        return total
    if spool.size:
        raise _Restart("a 200 to a Range request is the whole file again")
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


def _content_range(value: str) -> tuple[int, int | None]:
    try:
        _, _, rest = value.partition(" ")
        span, _, total = rest.partition("/")
        start = int(span.split("-")[0])
        return start, int(total) if total.isdigit() else None
    except ValueError:
        return -1, None


async def _open(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    policy: HostPolicy,
    ready: Callable[[], Awaitable[None]] | None,
) -> httpx.Response:
    for _ in range(_MAX_REDIRECTS + 1):
        await policy.check(url)
        if ready is not None:
            await ready()
        request = http.build_request("GET", url, headers=headers)
        response = await http.send(request, stream=True, follow_redirects=False)
        if response.is_redirect and "location" in response.headers:
            await response.aclose()
            url = urljoin(url, response.headers["location"])
            continue
        if response.status_code in (200, 206):
            return response
        await response.aread()
        await response.aclose()
        if response.status_code == 416 and "Range" in headers:
            held = headers["Range"].removeprefix("bytes=").removesuffix("-")
            if response.headers.get("content-range", "") == f"bytes */{held}":
                raise _Whole()
            raise _Restart("416 to our Range request; starting over")
        raise _error(response)
    raise DownloadError("too many redirects", permanent=True)


def _error(response: httpx.Response) -> DownloadError:
    body = decode_error_envelope(response.content)
    status = response.status_code
    code = (body.code if body else None) or ("output_expired" if status == 410 else None)
    permanent = status in (410, 422) or (400 <= status < 500 and status not in (404, 408, 429))
    message = (
        f"HTTP {status}"
        + (f" {code}" if code else "")
        + (f": {body.message}" if body and body.message else "")
    )
    return DownloadError(
        message[:300],
        status=status,
        code=code,
        permanent=permanent,
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
    )


def discard_spool(path: Path) -> None:
    """The spool and what was kept beside it."""
    path.unlink(missing_ok=True)
    _meta_path(path).unlink(missing_ok=True)


def _meta_path(spool: Path) -> Path:
    return spool.with_name(spool.name + ".meta")


def _read_meta(spool: Path) -> tuple[str | None, int | None, str | None]:
    try:
        meta = json.loads(_meta_path(spool).read_text())
    except (OSError, ValueError):
        return None, None, None
    if not isinstance(meta, dict):
        return None, None, None
    content_type, total, source = meta.get("content_type"), meta.get("total"), meta.get("url")
    return (
        content_type if isinstance(content_type, str) else None,
        total if isinstance(total, int) and not isinstance(total, bool) else None,
        source if isinstance(source, str) else None,
    )
