"""Download links in events: whoever holds one may fetch that one archived output until the
link expires, without the admin token. On S3 the link is presigned by the bucket; otherwise
the receiver serves it (`/links/outputs/...`), checking an HMAC keyed from the master key."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta

from receiver.errors import ReceiverError
from storage.blobs import BlobStore

__all__ = ["Links"]

LINK_PREFIX = "/links/outputs"


class Links:
    def __init__(
        self, blobs: BlobStore, key: bytes, ttl: timedelta, public_url: str | None
    ) -> None:
        self._blobs = blobs
        self._key = key
        self._ttl = ttl
        self._base = (public_url or "").rstrip("/")

    async def link(self, job_id: str, index: int, sha256: str) -> tuple[str, datetime]:
        """A link to the output's bytes, and when it stops working."""
        expires = int(time.time() + self._ttl.total_seconds())
        expires_at = datetime.fromtimestamp(expires, UTC)
        presigned = await self._blobs.signed_url(sha256, self._ttl)
        if presigned is not None:
            return presigned, expires_at
        signature = self._sign(job_id, index, expires)
        path = f"{LINK_PREFIX}/{job_id}/{index}?expires={expires}&signature={signature}"
        return self._base + path, expires_at

    def check(self, job_id: str, index: int, expires: str, signature: str) -> None:
        """Refuse an altered link (403) or an expired one (410)."""
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            raise ReceiverError(403, "invalid_link", "this download link is not valid")
        expected = self._sign(job_id, index, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise ReceiverError(403, "invalid_link", "this download link is not valid")
        if int(expires) < time.time():
            raise ReceiverError(410, "link_expired", "this download link has expired")

    def _sign(self, job_id: str, index: int, expires: int) -> str:
        message = f"{job_id}\n{index}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
