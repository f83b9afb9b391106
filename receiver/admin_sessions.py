"""Dashboard sign-ins. A session is a random cookie whose hash is stored with an expiry
(`RECEIVER_SESSION_TTL_S`, 12 h) and a fingerprint of the admin token it proved: logging out
deletes it, and a new admin token ends every session. Wrong tokens are throttled per client
address."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from datetime import timedelta

from storage import gateway
from storage.db import Connection, Database
from storage.records import SessionRecord
from storage.types import utcnow

__all__ = ["LOGIN_ATTEMPTS_PER_MINUTE", "Sessions"]

LOGIN_ATTEMPTS_PER_MINUTE = 10
_THROTTLED_CLIENTS = 10_000  # addresses remembered at once; the oldest are forgotten first


class Sessions:
    def __init__(self, db: Database, admin_token: str, ttl: timedelta) -> None:
        self._db = db
        self._fingerprint = hmac.new(
            admin_token.encode(), b"aurous-receiver/session/v1", hashlib.sha256
        ).hexdigest()
        self._ttl = ttl
        self._failures: dict[str, deque[float]] = {}

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    async def start(self) -> str:
        """A new session; the cookie value to hand to the browser."""
        cookie = secrets.token_urlsafe(32)
        now = utcnow()
        record = SessionRecord(_hash(cookie), self._fingerprint, now, now + self._ttl)

        def write(conn: Connection) -> None:
            gateway.prune_sessions(conn, now)
            gateway.add_session(conn, record)

        await self._db.write(write)
        return cookie

    async def is_valid(self, cookie: str) -> bool:
        session = await self._db.read(lambda conn: gateway.get_session(conn, _hash(cookie)))
        return (
            session is not None
            and session.expires_at > utcnow()
            and hmac.compare_digest(session.token_fingerprint, self._fingerprint)
        )

    async def end(self, cookie: str) -> None:
        await self._db.write(lambda conn: gateway.end_session(conn, _hash(cookie)))

    def may_try(self, client: str) -> bool:
        """False once `client` got the token wrong too often in the last minute."""
        recent = self._failures.get(client)
        if recent is None:
            return True
        while recent and recent[0] < time.monotonic() - 60:
            recent.popleft()
        return len(recent) < LOGIN_ATTEMPTS_PER_MINUTE

    def failed(self, client: str) -> None:
        if client not in self._failures and len(self._failures) >= _THROTTLED_CLIENTS:
            del self._failures[next(iter(self._failures))]
        self._failures.setdefault(client, deque()).append(time.monotonic())


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "replace")).hexdigest()
