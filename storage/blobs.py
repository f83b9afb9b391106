"""Content-addressed, write-once blob storage over obstore: a local folder, S3, or memory.

A blob lives at `sha256/ab/cd/<hash>` under the store's root. The caller vouches that a
file's bytes hash to the sha256 it passes (the archiver hashes while downloading); this
module never re-hashes on the way in, but it refuses to commit a source file whose size
changes while it is being uploaded.

No reader ever sees part of a blob. Small files go up in one create-if-absent put (S3:
`PUT` with `If-None-Match: *`; local: a staging file hard-linked into place; memory: an
atomic insert), so exactly one writer wins. Larger files stream from disk as a multipart
upload that becomes visible only when it completes (S3: CompleteMultipartUpload; local: a
staging file renamed into place); obstore cannot make that conditional, so the blob is
checked for first, and a racing writer at worst replaces it with the same bytes.

obstore is imported when a store first needs it: a local store opens at its first read or
write, so a receiver that has archived nothing yet has not loaded it (about 4 MiB of an idle
receiver's memory, bench/idle.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urlsplit

if TYPE_CHECKING:
    from obstore import Attributes, GetOptions, GetResult
    from obstore.store import ClientConfig, ObjectStore, S3Config

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobStoreError",
    "BlobStoreUnavailable",
    "key_for",
    "servable_type",
]

_MiB = 1024 * 1024
# Bigger files go multipart: a single put holds the whole body in memory.
_PART_SIZE = 8 * _MiB
# Parts in flight per upload; with _PART_SIZE this bounds an upload's buffers near 24 MiB.
_UPLOAD_CONCURRENCY = 2
_READ_SIZE = _MiB
_HASH = re.compile(r"[0-9a-f]{64}")
_KEY = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_URL_FORMS = "file:///abs/path, s3://bucket/prefix or memory://"
# obstore's default 30 s covers a whole request, body included: too short to stream a video.
_S3_CLIENT: ClientConfig = {"connect_timeout": "10s", "timeout": "30min"}


# What an Aurous output can be. Anything else (HTML, SVG, scripts: whatever an upstream or an
# attacker between us and it claimed) is kept and served as an opaque download, never rendered
# in the dashboard's origin, nor by a bucket answering a presigned link.
SAFE_MEDIA_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/gif",
        "image/avif",
        "video/mp4",
        "video/webm",
        "video/quicktime",
    }
)
OPAQUE = "application/octet-stream"


def servable_type(content_type: str | None) -> str:
    """The stored type if it is one an output can be, else an opaque download."""
    essence = (content_type or "").split(";", 1)[0].strip().lower()
    return essence if essence in SAFE_MEDIA_TYPES else OPAQUE


class BlobStoreError(ValueError):
    """A bad store URL or hash, or a source file that changed while being stored."""


class BlobNotFound(BlobStoreError):
    """No blob is stored under the hash."""


class BlobStoreUnavailable(Exception):
    """The store could not be read just now (S3 down, credentials refused, a disk error)."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    size: int
    content_type: str | None = None


def key_for(sha256: str) -> str:
    if not _HASH.fullmatch(sha256):
        raise BlobStoreError(f"not a lowercase hex sha256: {sha256[:80]!r}")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class BlobStore:
    def __init__(
        self,
        store: ObjectStore | None,
        location: str,
        *,
        keeps_types: bool,
        root: Path | None = None,
    ) -> None:
        """`store` None: a local store on `root`, opened at its first use."""
        if store is None and root is None:
            raise ValueError("a blob store needs an obstore store or a local root")
        self._opened = store
        self._location = location
        self._root = root  # the folder of a local store: lets put_file link instead of copy
        # LocalStore rejects attributes outright, so there is nowhere to keep a content type.
        self._keeps_types = keeps_types

    @property
    def _store(self) -> ObjectStore:
        if self._opened is None:
            from obstore.store import LocalStore

            assert self._root is not None  # __init__ refuses a store without either
            self._opened = LocalStore(self._root)
        return self._opened

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None) -> BlobStore:
        """Open `file:///abs/path`, `s3://bucket/prefix` or `memory://` (a new, empty store)."""
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            raise _bad_url(url, "query strings and fragments are not allowed")
        if parts.scheme == "file":
            return _open_local(url, parts)
        if parts.scheme == "s3":
            return _open_s3(url, parts, os.environ if env is None else env)
        if parts.scheme == "memory" and parts.netloc == "" and parts.path in ("", "/"):
            from obstore.store import MemoryStore

            return cls(MemoryStore(), "memory://", keeps_types=True)
        raise _bad_url(url, f"expected {_URL_FORMS}")

    def describe(self) -> str:
        return self._location

    async def put_file(self, path: Path, sha256: str, content_type: str | None = None) -> bool:
        """Store `path` as the blob `sha256` unless it exists; True if this call wrote it."""
        key = key_for(sha256)
        attributes: Attributes | None = None
        if self._keeps_types:  # a presigned link is answered by the store, with these
            servable = servable_type(content_type)
            attributes = {"Content-Type": servable}
            if servable == OPAQUE:
                attributes["Content-Disposition"] = "attachment"
        source = await asyncio.to_thread(path.open, "rb")
        try:
            size = os.fstat(source.fileno()).st_size
            if size <= _PART_SIZE:
                written = await self._put_whole(key, source, size, attributes)
            else:
                written = await self._put_multipart(key, source, size, attributes)
        finally:
            # Also dooms an upload that outlives a cancelled caller: its next read fails.
            source.close()
        if written and self._root is not None:  # the caller records it as archived next
            await asyncio.to_thread(_make_durable, self._root / key)
        return written

    async def adopt_file(self, path: Path, sha256: str, content_type: str | None = None) -> bool:
        """Move a finished file into the store (the caller gives it up: `path` is gone after).
        On a local store on the same disk this is one hard link, not a copy."""
        key = key_for(sha256)
        if self._root is not None and _same_device(path, self._root):
            stored = await asyncio.to_thread(_link_into_place, path, self._root / key)
        else:
            stored = await self.put_file(path, sha256, content_type)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        return stored

    async def signed_url(self, sha256: str, expires_in: timedelta) -> str | None:
        """A URL anyone may GET the blob from until it expires: presigned on S3; None for a
        local or memory store (the service serves those itself)."""
        if self._root is not None:  # local: no need to open the store to know
            return None
        import obstore as obs
        from obstore.store import S3Store

        if not isinstance(self._store, S3Store):
            return None
        url: str = await obs.sign_async(self._store, "GET", key_for(sha256), expires_in)
        return url

    async def head(self, sha256: str) -> BlobInfo | None:
        try:
            result = await self._get(sha256, {"head": True})
        except BlobNotFound:
            return None
        return BlobInfo(result.meta["size"], result.attributes.get("Content-Type"))

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) like `data[start:end]`; BlobNotFound on first iteration."""
        if start < 0 or (end is not None and end < start):
            raise BlobStoreError(f"bad byte range [{start}, {end})")
        options = await self._range_options(sha256, start, end)
        if options is None:
            return
        result = await self._get(sha256, options)
        from obstore.exceptions import BaseError

        try:
            async for chunk in result.stream(min_chunk_size=_READ_SIZE):
                yield chunk
        except (BaseError, OSError) as err:
            raise BlobStoreUnavailable(f"{self._location} could not be read: {err}") from None

    async def list_hashes(self) -> AsyncIterator[tuple[str, int]]:
        """Every stored blob's hash and size; objects outside the key layout are skipped."""
        import obstore as obs

        async for batch in obs.list(self._store, "sha256", chunk_size=1000):
            for meta in batch:
                match = _KEY.fullmatch(meta["path"])
                if match and match[3].startswith(match[1] + match[2]):
                    yield match[3], meta["size"]

    async def rehash(self, sha256: str) -> str:
        digest = hashlib.sha256()
        async for chunk in self.read(sha256):
            digest.update(chunk)
        return digest.hexdigest()

    async def delete(self, sha256: str) -> None:
        """Remove a blob if present. For tests and repair tools: blobs are otherwise forever."""
        import obstore as obs

        with contextlib.suppress(FileNotFoundError):
            await obs.delete_async(self._store, key_for(sha256))

    async def _put_whole(
        self, key: str, source: IO[bytes], size: int, attributes: Attributes | None
    ) -> bool:
        import obstore as obs
        from obstore.exceptions import AlreadyExistsError

        data = await asyncio.to_thread(source.read)
        _check_size(len(data), size)
        try:
            await obs.put_async(self._store, key, data, mode="create", attributes=attributes)
        except AlreadyExistsError:
            return False
        return True

    async def _put_multipart(
        self, key: str, source: IO[bytes], size: int, attributes: Attributes | None
    ) -> bool:
        import obstore as obs

        if await self._exists(key):
            return False
        await obs.put_async(
            self._store,
            key,
            _chunks_of(source, size),
            attributes=attributes,
            use_multipart=True,
            chunk_size=_PART_SIZE,
            max_concurrency=_UPLOAD_CONCURRENCY,
        )
        return True

    async def _exists(self, key: str) -> bool:
        import obstore as obs

        try:
            await obs.head_async(self._store, key)
        except FileNotFoundError:
            return False
        return True

    async def _range_options(self, sha256: str, start: int, end: int | None) -> GetOptions | None:
        """GET options for the span, or None if it is empty; stores reject empty ranges."""
        if start == 0 and end is None:
            return {}
        info = await self.head(sha256)
        if info is None:
            raise BlobNotFound(f"no blob {sha256}")
        stop = info.size if end is None else min(end, info.size)
        return {"range": (start, stop)} if start < stop else None

    async def _get(self, sha256: str, options: GetOptions) -> GetResult:
        import obstore as obs
        from obstore.exceptions import BaseError

        try:
            return await obs.get_async(self._store, key_for(sha256), options=options)
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {sha256} in {self._location}") from None
        except (BaseError, OSError) as err:
            raise BlobStoreUnavailable(f"{self._location} could not be read: {err}") from None


async def _chunks_of(source: IO[bytes], size: int) -> AsyncIterator[bytes]:
    """The file's bytes; raising here makes obstore abort the upload, so nothing lands."""
    seen = 0
    while chunk := await asyncio.to_thread(source.read, _READ_SIZE):
        seen += len(chunk)
        _check_size(seen, size, final=False)
        yield chunk
    _check_size(seen, size)


def _check_size(seen: int, size: int, *, final: bool = True) -> None:
    if seen > size or (final and seen != size):
        raise BlobStoreError(f"source file changed size during upload ({size} -> {seen} bytes)")


def _open_local(url: str, parts: SplitResult) -> BlobStore:
    folder = Path(unquote(parts.path))
    if parts.netloc not in ("", "localhost") or not folder.is_absolute():
        raise _bad_url(url, "expected file:///abs/path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _bad_url(url, f"cannot create the folder: {err.strerror}") from None
    return BlobStore(None, folder.as_uri(), keeps_types=False, root=folder)


def _same_device(path: Path, root: Path) -> bool:
    try:
        return path.stat().st_dev == root.stat().st_dev
    except OSError:
        return False


def _link_into_place(source: Path, final: Path) -> bool:
    """Local fast path: make the (already complete) source file the blob with one hard link.
    The link either appears whole or fails because the blob exists: never partial, and no
    staging copy to leave behind. Flushed to disk first: the caller records it as archived."""
    with source.open("rb") as handle:
        os.fsync(handle.fileno())
    _make_folders(final.parent)
    try:
        os.link(source, final)
    except FileExistsError:
        return False
    _fsync_folder(final.parent)
    return True


def _make_durable(stored: Path) -> None:
    """A file the store wrote (it does not flush) on disk, with the folders that name it."""
    with stored.open("rb") as handle:
        os.fsync(handle.fileno())
    for folder in stored.parents[:4]:  # sha256/ab/cd/, sha256/ab/, sha256/ and the root
        _fsync_folder(folder)


def _make_folders(folder: Path) -> None:
    """`folder` and its missing parents, each made durable in the folder that holds it."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for made in reversed(missing):
        _fsync_folder(made.parent)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _open_s3(url: str, parts: SplitResult, env: Mapping[str, str]) -> BlobStore:
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket):
        raise _bad_url(url, "expected s3://bucket/prefix with a valid bucket name")
    prefix = unquote(parts.path).strip("/")
    config = _s3_config(env)
    endpoint = config.get("endpoint", "")
    client: ClientConfig = {**_S3_CLIENT}
    if endpoint.startswith("http://"):
        client["allow_http"] = True
    from obstore.exceptions import BaseError
    from obstore.store import S3Store

    try:
        store = S3Store(bucket, prefix=prefix or None, config=config, client_options=client)
    except (BaseError, ValueError) as err:
        raise _bad_url(url, str(err).splitlines()[0]) from None
    where = f"s3://{bucket}/{prefix}".rstrip("/")
    if endpoint:
        where += f" at {_without_userinfo(endpoint)}"
    return BlobStore(store, where, keeps_types=True)


def _s3_config(env: Mapping[str, str]) -> S3Config:
    """Pass the AWS_* variables explicitly: obstore would otherwise read only os.environ."""
    config: S3Config = {}
    if value := env.get("AWS_ACCESS_KEY_ID"):
        config["access_key_id"] = value
    if value := env.get("AWS_SECRET_ACCESS_KEY"):
        config["secret_access_key"] = value
    if value := env.get("AWS_SESSION_TOKEN"):
        config["session_token"] = value
    if value := env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"):
        config["region"] = value
    if value := env.get("AWS_ENDPOINT_URL"):
        config["endpoint"] = value
    return config


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def _bad_url(url: str, why: str) -> BlobStoreError:
    shown = _without_userinfo(url).replace("\n", " ")
    return BlobStoreError(f"unusable blob store URL {shown!r}: {why}")
