"""The webhook keyring as stored: secrets encrypted at rest, imported from the environment or
added by the CLI, cached briefly and reloaded on a miss so new secrets work without a restart."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from receiver.shapes import view_of
from receiver.webhooks.signing import (
    Keyring,
    KeyringEntry,
    Match,
    RejectReason,
    SignatureRejected,
    verify,
)
from storage import gateway
from storage.crypto import CryptoError, SecretBox
from storage.db import Connection, Database
from storage.records import NewSecret, SecretRecord
from storage.types import utcnow

__all__ = ["Secret", "SecretError", "SecretStore", "preview_secret", "secret_state"]

log = logging.getLogger(__name__)
_PURPOSE = b"webhook_secret"
_CACHE_S = 1.0
_MISS_RELOAD_S = 0.25
_RELOAD_ON = {RejectReason.NO_MATCHING_SIGNATURE, RejectReason.NO_ACTIVE_SECRET}


class SecretError(ValueError):
    """A secret cannot be added or changed; the message says why."""


class Secret(msgspec.Struct, frozen=True):
    """A secret of the keyring as the API shows it: metadata only, never the secret."""

    id: int
    label: str | None
    source: str
    preview: str
    state: str  # active | expired | retired
    created_at: datetime
    expires_at: datetime | None
    retired_at: datetime | None
    last_matched_at: datetime | None
    match_count: int

    @classmethod
    def of(cls, record: SecretRecord, now: datetime) -> Secret:
        return view_of(cls, record, state=secret_state(record, now))


def secret_state(secret: SecretRecord, now: datetime) -> str:
    if secret.retired_at is not None:
        return "retired"
    if secret.expires_at is not None and secret.expires_at <= now:
        return "expired"
    return "active"


def preview_secret(secret: str) -> str:
    prefix = "whsec_" if secret.startswith("whsec_") else ""
    body = secret[len(prefix) :]
    return f"{prefix}{body[:3]}…{body[-4:]}" if len(body) > 8 else f"{prefix}…"


def validate_secret(secret: str) -> str:
    secret = secret.strip()
    if not 8 <= len(secret) <= 512 or any(c.isspace() for c in secret) or not secret.isprintable():
        raise SecretError("a webhook secret is 8 to 512 printable characters without spaces")
    return secret


class SecretStore:
    def __init__(self, db: Database, box: SecretBox, *, clock: Callable[[], float] = time.time):
        self._db = db
        self._box = box
        self._clock = clock
        self._keyring = Keyring()
        self._loaded_at = float("-inf")
        self._reloading: asyncio.Future[Keyring] | None = None
        self._unopened: set[int] = set()  # said once each

    async def add(
        self,
        secret: str,
        *,
        source: str,
        label: str | None = None,
        expires_at: datetime | None = None,
    ) -> int:
        """The new secret's id. Adding a secret that is already stored is an error."""
        row = self._row(validate_secret(secret), source, label, expires_at)
        new_id = await self._db.write(lambda conn: gateway.insert_secret(conn, row))
        if new_id is None:
            raise SecretError("this secret is already in the keyring")
        self._loaded_at = float("-inf")
        return new_id

    async def bootstrap(self, secrets: Sequence[str]) -> list[int]:
        """Import secrets from the environment once; ones already stored are left as they are."""
        label = "from AUROUS_WEBHOOK_SECRET"
        rows = [self._row(validate_secret(secret), "env", label, None) for secret in secrets]

        def insert(conn: Connection) -> list[int]:
            inserted = [gateway.insert_secret(conn, row) for row in rows]
            return [new_id for new_id in inserted if new_id is not None]

        added = await self._db.write(insert)
        self._loaded_at = float("-inf")
        return added

    async def find(self, secret: str) -> int | None:
        fingerprint = self._box.fingerprint(secret)
        return await self._db.read(lambda conn: gateway.secret_id_by_fingerprint(conn, fingerprint))

    async def retire(self, secret_id: int) -> None:
        now = utcnow()
        if not await self._db.write(lambda conn: gateway.retire_secret(conn, secret_id, now)):
            raise SecretError(f"no active secret with id {secret_id}")
        self._loaded_at = float("-inf")

    async def expire(self, secret_id: int, at: datetime) -> None:
        if not await self._db.write(lambda conn: gateway.set_secret_expiry(conn, secret_id, at)):
            raise SecretError(f"no secret with id {secret_id}")
        self._loaded_at = float("-inf")

    async def replace(self, secret: str, *, label: str, grace: timedelta) -> tuple[int, list[int]]:
        """Add `secret` and let the active secrets with the same label (the endpoint's previous
        secret) expire after `grace`. Returns the new id and the ids given an expiry."""
        row = self._row(validate_secret(secret), "endpoint", label, None)
        until = utcnow() + grace

        def replace(conn: Connection) -> tuple[int, list[int]]:
            previous = [
                r.id
                for r in gateway.list_secrets(conn, include_retired=False)
                if r.label == label and (r.expires_at is None or r.expires_at > until)
            ]
            new_id = gateway.insert_secret(conn, row)
            if new_id is None:
                raise SecretError("this secret is already in the keyring")
            for secret_id in previous:
                gateway.set_secret_expiry(conn, secret_id, until)
            return new_id, previous

        replaced = await self._db.write(replace)
        self._loaded_at = float("-inf")
        return replaced

    async def list(self) -> list[Secret]:
        rows = await self._db.read(gateway.list_secrets)
        now = utcnow()
        return [Secret.of(row, now) for row in rows]

    async def verify(self, body: bytes, header: str | None, *, tolerance_s: int) -> Match:
        """Verify against the cached keyring, reloading it once when nothing matched."""
        now = self._clock()
        if now - self._loaded_at > _CACHE_S:
            await self.reload()
        try:
            return verify(body, header, self._keyring, now=now, tolerance_s=tolerance_s)
        except SignatureRejected as rejected:
            if rejected.reason not in _RELOAD_ON or now - self._loaded_at < _MISS_RELOAD_S:
                raise
        await self.reload()
        return verify(body, header, self._keyring, now=now, tolerance_s=tolerance_s)

    async def reload(self) -> Keyring:
        """Reload once for everyone waiting: concurrent callers share one read."""
        if self._reloading is None:
            self._reloading = asyncio.ensure_future(self._load())
            self._reloading.add_done_callback(self._reload_done)
        return await asyncio.shield(self._reloading)

    def _reload_done(self, _: asyncio.Future[Keyring]) -> None:
        self._reloading = None

    async def sealed_elsewhere(self) -> tuple[int, int]:
        """How many active secrets this master key opens, and how many it does not."""
        rows = await self._db.read(lambda conn: gateway.list_secrets(conn, include_retired=False))
        unopened = sum(1 for r in rows if self._open(r) is None)
        return len(rows) - unopened, unopened

    async def _load(self) -> Keyring:
        rows = await self._db.read(lambda conn: gateway.list_secrets(conn, include_retired=False))
        entries = []
        for r in rows:
            secret = self._open(r)
            if secret is None:  # one secret sealed under another key must not stop the others
                continue
            expires = r.expires_at.timestamp() if r.expires_at else None
            entries.append(KeyringEntry(r.id, secret.encode(), expires))
        self._keyring = Keyring(tuple(entries))
        self._loaded_at = self._clock()
        return self._keyring

    def _open(self, row: SecretRecord) -> str | None:
        try:
            return self._box.open(row.ciphertext, _PURPOSE)
        except CryptoError:
            if row.id not in self._unopened:
                self._unopened.add(row.id)
                log.error(
                    "keyring secret #%d is sealed under another master key and is left out; "
                    "retire it (`aurous-receiver secrets retire %d`) and add it again",
                    row.id,
                    row.id,
                )
            return None

    def _row(
        self, secret: str, source: str, label: str | None, expires_at: datetime | None
    ) -> NewSecret:
        return NewSecret(
            label=label,
            source=source,
            ciphertext=self._box.seal(secret, _PURPOSE),
            fingerprint=self._box.fingerprint(secret),
            preview=preview_secret(secret),
            created_at=datetime.now(UTC),
            expires_at=expires_at,
        )
