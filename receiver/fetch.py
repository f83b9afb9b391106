"""Download one output safely: only from allowed hosts, streamed to a spool file, hashed on
the way, resumed with Range after a cut connection, capped in size."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx
import msgspec

__all__ = ["DownloadError", "Downloaded", "HostPolicy", "download"]

_CHUNK = 256 * 1024
_MAX_REDIRECTS = 5
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


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
        return cls(hosts, allow_private=_is_loopback_name(base_host))

    async def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise DownloadError(f"not an http(s) URL: {url[:200]}", permanent=True)
        if host not in self.hosts and not (self.allow_private and _is_loopback_name(host)):
            raise DownloadError(f"host {host!r} is not an allowed download host", permanent=True)
        if not self.allow_private:
            await _refuse_private(host, parts.port or (443 if parts.scheme == "https" else 80))


def _is_loopback_name(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _refuse_private(host: str, port: int) -> None:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DownloadError(f"cannot resolve {host}: {exc}") from None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            raise DownloadError(f"{host} resolves to non-public {address}", permanent=True)


class _ErrorBody(msgspec.Struct):
    code: str | None = None
    message: str | None = None


class _Envelope(msgspec.Struct):
    error: _ErrorBody


async def download(
    http: httpx.AsyncClient,
    url: str,
    spool: Path,
    *,
    policy: HostPolicy,
    max_bytes: int,
    resumes: int = 5,
) -> Downloaded:
    """Fetch `url` into `spool`, continuing a partial spool left by an earlier attempt."""
    state = _Spool.open(spool)
    try:
        for _ in range(resumes + 1):
            try:
                complete = await _fetch_into(http, url, state, policy, max_bytes)
            except (httpx.TransportError, httpx.StreamError):
                complete = False  # cut mid-way: resume from what we have
            if complete:
                return state.result()
        raise DownloadError(f"connection cut {resumes + 1} times; will resume later")
    finally:
        state.close()


@dataclass
class _Spool:
    path: Path
    file: BinaryIO
    hasher: hashlib._Hash
    size: int
    content_type: str | None = None

    @classmethod
    def open(cls, path: Path) -> _Spool:
        path.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        size = 0
        if path.exists():
            with path.open("rb") as existing:
                while chunk := existing.read(1 << 20):
                    hasher.update(chunk)
                    size += len(chunk)
        return cls(path, path.open("ab"), hasher, size)

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.hasher.update(chunk)
        self.size += len(chunk)

    def restart(self) -> None:
        self.file.truncate(0)
        self.file.seek(0)
        self.hasher = hashlib.sha256()
        self.size = 0

    def result(self) -> Downloaded:
        self.file.flush()
        return Downloaded(self.path, self.hasher.hexdigest(), self.size, self.content_type)

    def close(self) -> None:
        self.file.close()


async def _fetch_into(
    http: httpx.AsyncClient, url: str, spool: _Spool, policy: HostPolicy, max_bytes: int
) -> bool:
    headers = {"Accept-Encoding": "identity"}
    if spool.size:
        headers["Range"] = f"bytes={spool.size}-"
    response = await _open(http, url, headers, policy)
    try:
        expected = _expected_total(response, spool)
        if expected is not None and expected > max_bytes:
            raise DownloadError(f"output is {expected} bytes, over the cap", permanent=True)
        spool.content_type = response.headers.get("content-type", spool.content_type)
        async for chunk in response.aiter_raw(_CHUNK):
            spool.write(chunk)
            if spool.size > max_bytes:
                raise DownloadError("output exceeds the size cap", permanent=True)
    finally:
        await response.aclose()
    return expected is None or spool.size >= expected


def _expected_total(response: httpx.Response, spool: _Spool) -> int | None:
    """The full size, restarting the spool when the server ignored or misread our Range."""
    if response.status_code == 206:
        start, total = _content_range(response.headers.get("content-range", ""))
        if start != spool.size:
            spool.restart()
            raise httpx.StreamError("206 for a different offset; starting over")
        return total
    if spool.size:
        spool.restart()  # a 200 to a Range request is the whole file again
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
    http: httpx.AsyncClient, url: str, headers: dict[str, str], policy: HostPolicy
) -> httpx.Response:
    for _ in range(_MAX_REDIRECTS + 1):
        await policy.check(url)
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
        raise _error(response)
    raise DownloadError("too many redirects", permanent=True)


def _error(response: httpx.Response) -> DownloadError:
    try:
        body = msgspec.json.decode(response.content, type=_Envelope).error
    except msgspec.DecodeError:
        body = _ErrorBody()
    status = response.status_code
    code = body.code or ("output_expired" if status == 410 else None)
    permanent = status in (410, 422) or (400 <= status < 500 and status not in (404, 408, 429))
    message = (
        f"HTTP {status}"
        + (f" {code}" if code else "")
        + (f": {body.message}" if body.message else "")
    )
    retry_after = response.headers.get("retry-after", "")
    return DownloadError(
        message[:300],
        status=status,
        code=code,
        permanent=permanent,
        retry_after=float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None,
    )
