"""Records of the webhook side: the keyring and the deliveries."""

from __future__ import annotations

from datetime import datetime

import msgspec

from storage.records.base import Record

__all__ = [
    "DeliveryRecord",
    "NewDelivery",
    "NewSecret",
    "RejectionCountRecord",
    "SecretRecord",
    "SessionRecord",
]


class NewSecret(Record, frozen=True):
    label: str | None
    source: str  # env | cli | endpoint
    ciphertext: bytes
    fingerprint: str  # a keyed hash: finds the same secret without decrypting
    preview: str
    created_at: datetime
    expires_at: datetime | None


class SecretRecord(NewSecret, frozen=True):
    id: int
    retired_at: datetime | None
    last_matched_at: datetime | None
    match_count: int


class DeliveryRecord(Record, frozen=True):
    """A stored delivery, without its body."""

    id: int
    event_id: str | None
    event_type: str | None
    status: str
    duplicates: int  # copies of this event that came again
    last_duplicate_at: datetime | None
    reject_reason: str | None = msgspec.field(name="reason")  # as the API names it
    received_at: datetime
    signature_t: int | None
    secret_id: int | None
    job_id: str | None
    synthetic: bool
    body_size: int
    headers: dict[str, str]
    remote_addr: str | None
    request_id: str | None


class NewDelivery(Record, frozen=True):
    status: str
    received_at: datetime
    body: bytes
    body_size: int
    headers: dict[str, str]
    remote_addr: str | None
    request_id: str | None
    event_id: str | None = None  # None for rows that carry no event of their own
    event_type: str | None = None
    reject_reason: str | None = None
    signature_t: int | None = None
    secret_id: int | None = None
    job_id: str | None = None
    synthetic: bool = False


class RejectionCountRecord(Record, frozen=True):
    reason: str
    count: int
    last_at: datetime


class SessionRecord(Record, frozen=True):
    """A signed-in dashboard browser, by the hash of its cookie."""

    id_hash: str
    token_fingerprint: str
    created_at: datetime
    expires_at: datetime
