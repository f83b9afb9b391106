"""Destinations: the customer's endpoints that events are pushed to, each with an event filter
and signing secrets generated here, shown once, and kept encrypted like the keyring."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import msgspec

from receiver.errors import ReceiverError
from receiver.ids import new_id
from receiver.jobs.outbox import EVENT_TYPES, is_pattern
from receiver.shapes import view_of
from storage import gateway
from storage.crypto import CryptoError, SecretBox
from storage.db import Connection, Database
from storage.records import (
    DestinationEdit,
    DestinationRecord,
    DestinationSecretRecord,
    PushTally,
)
from storage.types import utcnow

__all__ = [
    "CreatedDestination",
    "Destination",
    "DestinationChange",
    "DestinationSecretView",
    "DestinationStore",
    "NewDestination",
]

log = logging.getLogger(__name__)
_PURPOSE = b"destination_secret"
_KINDS = ("image", "video")


class NewDestination(msgspec.Struct, frozen=True):
    """What `POST /destinations` takes."""

    url: str
    events: list[str] = msgspec.field(default_factory=lambda: ["*"])
    kind: str | None = None  # image | video: only events about jobs of this kind
    label: str | None = None


class DestinationChange(msgspec.Struct, frozen=True):
    """What `PATCH /destinations/{id}` takes; a field left out is unchanged."""

    url: str | msgspec.UnsetType = msgspec.UNSET
    events: list[str] | msgspec.UnsetType = msgspec.UNSET
    kind: str | msgspec.UnsetType | None = msgspec.UNSET
    label: str | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class DestinationSecretView(msgspec.Struct, frozen=True):
    preview: str  # whsec_AbC…wxyz
    created_at: datetime
    expires_at: datetime | None  # set while a rotation's grace period runs


class Destination(DestinationRecord, frozen=True):
    """A destination as the API shows it: its filter, its state, and how its pushes stand."""

    secrets: list[DestinationSecretView] = msgspec.field(default_factory=list)
    pending: int = 0
    delivered: int = 0
    failed: int = 0
    oldest_pending_at: datetime | None = None  # the lag: how long the oldest push has waited


class CreatedDestination(Destination, frozen=True):
    secret: str = ""  # whsec_…: shown this once


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _preview(secret: str) -> str:
    body = secret.removeprefix("whsec_")
    return f"whsec_{body[:4]}…{body[-4:]}"


def _check_url(url: str) -> str:
    """An http(s) URL with a host and a valid port, no white space or control characters, and
    no user or password in it (they would be shown wherever the destination is)."""
    try:
        parts = urlsplit(url)
        usable = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and parts.port != 0  # reading the port refuses one out of range
            and len(url) <= 2000
            and url.isprintable()
            and " " not in url
            and parts.username is None
        )
    except ValueError:  # an unclosed [ or a port out of range
        usable = False
    if not usable:
        message = "url must be an http(s) URL with a host, without spaces or credentials"
        raise ReceiverError(400, "invalid_url", message, param="url")
    return url


def _check_events(patterns: Sequence[str]) -> list[str]:
    bad = [p for p in patterns if not is_pattern(p)]
    if bad or not patterns:
        known = ", ".join(EVENT_TYPES)
        raise ReceiverError(
            400,
            "invalid_event_pattern",
            f"unknown event pattern {bad[0] if bad else ''!r}: use *, job.*, output.*, or one of "
            f"{known}",
            param="events",
        )
    return sorted(set(patterns))


def _check_kind(kind: str | None) -> str | None:
    if kind is not None and kind not in _KINDS:
        raise ReceiverError(400, "invalid_kind", "kind must be image or video", param="kind")
    return kind


def _check_label(label: str | None) -> str | None:
    if label is not None and (len(label) > 200 or not label.isprintable()):
        message = "label must be at most 200 printable characters (no NUL or line breaks)"
        raise ReceiverError(400, "invalid_label", message, param="label")
    return label


def _not_found(destination_id: str) -> ReceiverError:
    return ReceiverError(404, "destination_not_found", f"no destination {destination_id!r}")


class DestinationStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box
        self._unopened: set[str] = set()  # destinations said once each

    async def add(self, request: NewDestination) -> CreatedDestination:
        now, secret = utcnow(), new_secret()
        record = DestinationRecord(
            id=new_id("dst_"),
            url=_check_url(request.url),
            label=_check_label(request.label),
            events=_check_events(request.events),
            kind=_check_kind(request.kind),
            state="enabled",
            disabled_reason=None,
            created_at=now,
            updated_at=now,
            failing_since=None,
            last_success_at=None,
        )
        sealed = DestinationSecretRecord(record.id, self._seal(secret), _preview(secret), now, None)
        await self._db.write(lambda conn: gateway.add_destination(conn, record, sealed))
        shown = await self.get(record.id)
        return view_of(CreatedDestination, shown, secret=secret)

    async def list_all(self) -> list[Destination]:
        return await self._db.read(lambda conn: _views(conn, gateway.list_destinations(conn)))

    async def get(self, destination_id: str) -> Destination:
        def read(conn: Connection) -> list[Destination]:
            found = gateway.get_destination(conn, destination_id)
            return _views(conn, [found] if found else [])

        views = await self._db.read(read)
        if not views:
            raise _not_found(destination_id)
        return views[0]

    async def change(self, destination_id: str, change: DestinationChange) -> Destination:
        edit = DestinationEdit()
        if not isinstance(change.url, msgspec.UnsetType):
            edit = msgspec.structs.replace(edit, url=_check_url(change.url))
        if not isinstance(change.events, msgspec.UnsetType):
            edit = msgspec.structs.replace(edit, events=_check_events(change.events))
        if not isinstance(change.kind, msgspec.UnsetType):
            edit = msgspec.structs.replace(edit, kind=_check_kind(change.kind))
        if not isinstance(change.label, msgspec.UnsetType):
            edit = msgspec.structs.replace(edit, label=_check_label(change.label))
        enabled, now = change.enabled, utcnow()

        def write(conn: Connection) -> bool:
            if not gateway.edit_destination(conn, destination_id, edit, now):
                return False
            if not isinstance(enabled, msgspec.UnsetType):
                reason = None if enabled else "disabled by an operator"
                gateway.switch_destination(
                    conn, destination_id, enabled=enabled, reason=reason, at=now
                )
            return True

        if not await self._db.write(write):
            raise _not_found(destination_id)
        return await self.get(destination_id)

    async def remove(self, destination_id: str) -> None:
        if not await self._db.write(lambda conn: gateway.delete_destination(conn, destination_id)):
            raise _not_found(destination_id)

    async def rotate_secret(self, destination_id: str, grace: timedelta) -> CreatedDestination:
        """A new secret; the ones before it keep signing for `grace`, then stop."""
        now, secret = utcnow(), new_secret()
        sealed = DestinationSecretRecord(
            destination_id, self._seal(secret), _preview(secret), now, None
        )

        def rotate(conn: Connection) -> bool:
            if gateway.get_destination(conn, destination_id) is None:
                return False
            gateway.expire_destination_secrets(conn, destination_id, now + grace)
            gateway.add_destination_secret(conn, sealed)
            return True

        if not await self._db.write(rotate):
            raise _not_found(destination_id)
        return view_of(CreatedDestination, await self.get(destination_id), secret=secret)

    def signing_secrets(
        self, conn: Connection, destination_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        """The plaintext secrets each destination's pushes are signed with now (read in the
        caller's transaction)."""
        found: dict[str, list[str]] = {}
        for row in gateway.destination_secrets(conn, destination_ids, utcnow()):
            secret = self._open(row)
            if secret is not None:
                found.setdefault(row.destination_id, []).append(secret)
        return found

    async def sealed_elsewhere(self) -> tuple[int, int]:
        """How many signing secrets this master key opens, and how many destinations have one
        it does not."""

        def read(conn: Connection) -> list[DestinationSecretRecord]:
            ids = [d.id for d in gateway.list_destinations(conn)]
            return gateway.destination_secrets(conn, ids, utcnow())

        opened = [(row, self._open(row)) for row in await self._db.read(read)]
        unopened = {row.destination_id for row, secret in opened if secret is None}
        return sum(1 for _, secret in opened if secret is not None), len(unopened)

    def _open(self, row: DestinationSecretRecord) -> str | None:
        try:
            return self._box.open(row.ciphertext, _PURPOSE)
        except CryptoError:  # one secret sealed under another key must not stop the others
            if row.destination_id not in self._unopened:
                self._unopened.add(row.destination_id)
                log.error(
                    "a signing secret of destination %s is sealed under another master key and "
                    "is left out; rotate it (`aurous-receiver destinations rotate-secret %s "
                    "--grace 0`)",
                    row.destination_id,
                    row.destination_id,
                )
            return None

    def _seal(self, secret: str) -> bytes:
        return self._box.seal(secret, _PURPOSE)


def _views(conn: Connection, found: Sequence[DestinationRecord]) -> list[Destination]:
    if not found:
        return []
    ids = [d.id for d in found]
    secrets_by_id: dict[str, list[DestinationSecretView]] = {}
    for row in gateway.destination_secrets(conn, ids, utcnow()):
        view = DestinationSecretView(row.preview, row.created_at, row.expires_at)
        secrets_by_id.setdefault(row.destination_id, []).append(view)
    tallies = {t.destination_id: t for t in gateway.push_tallies(conn)}
    empty = PushTally("", 0, 0, 0, None)
    return [
        view_of(
            Destination,
            d,
            secrets=secrets_by_id.get(d.id, []),
            pending=tallies.get(d.id, empty).pending,
            delivered=tallies.get(d.id, empty).delivered,
            failed=tallies.get(d.id, empty).failed,
            oldest_pending_at=tallies.get(d.id, empty).oldest_pending_at,
        )
        for d in found
    ]
