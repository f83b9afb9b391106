"""Records of the hand-over to the customer's app: the outbox's events, destinations and
their secrets, pushes of events to destinations, and every attempt."""

from __future__ import annotations

from datetime import datetime

from storage.records.base import UNSET, Change, Record, UnsetType

__all__ = [
    "DestinationEdit",
    "DestinationRecord",
    "DestinationSecretRecord",
    "EventRecord",
    "NewEvent",
    "NewPush",
    "NewPushAttempt",
    "PushAttemptRecord",
    "PushFinish",
    "PushRecord",
    "PushTally",
]


class NewEvent(Record, frozen=True):
    id: str  # evt_…
    type: str
    job_id: str | None
    kind: str | None  # the job's kind, for destination filters
    sequence: int | None  # per job
    created_at: datetime
    data: bytes  # the event's `data`, JSON


class EventRecord(NewEvent, frozen=True):
    """An event as stored; `position` orders events as they were committed."""

    position: int


class DestinationRecord(Record, frozen=True):
    id: str  # dst_…
    url: str
    label: str | None
    events: list[str]  # patterns: job.*, output.archived, …
    kind: str | None  # only jobs of this kind
    state: str  # enabled | disabled
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None  # the first failure since the last success
    last_success_at: datetime | None


class DestinationEdit(Change, frozen=True):
    """What an operator may change of a destination's settings; its state and health have
    writers of their own."""

    url: str | UnsetType = UNSET
    label: str | UnsetType | None = UNSET
    events: list[str] | UnsetType = UNSET
    kind: str | UnsetType | None = UNSET


class DestinationSecretRecord(Record, frozen=True):
    """A destination's signing secret, sealed; inserted and read as it is (its row id only
    orders the rows)."""

    destination_id: str
    ciphertext: bytes
    preview: str
    created_at: datetime
    expires_at: datetime | None  # set when a rotation replaces it


class NewPush(Record, frozen=True):
    """One event to push to one destination."""

    destination_id: str
    event_id: str
    event_position: int
    job_id: str | None
    sequence: int | None
    state: str  # pending | delivered | failed
    next_attempt_at: datetime
    created_at: datetime


class PushRecord(NewPush, frozen=True):
    """A push as its claim hands it out; how earlier attempts ended is in the attempt log."""

    id: int
    attempts: int


class PushFinish(Change, frozen=True):
    """The end of one attempt: delivered, failed for good, or when to try again."""

    state: str | UnsetType = UNSET
    next_attempt_at: datetime | UnsetType = UNSET
    delivered_at: datetime | UnsetType | None = UNSET


class NewPushAttempt(Record, frozen=True):
    destination_id: str
    event_id: str
    attempted_at: datetime
    status: int | None  # HTTP status; None when no answer came
    latency_ms: int
    error: str | None
    response: str | None  # the first KiB of the answer


class PushAttemptRecord(NewPushAttempt, frozen=True):
    id: int


class PushTally(Record, frozen=True):
    """A destination's pushes by state, and its oldest one still pending."""

    destination_id: str
    pending: int
    delivered: int
    failed: int
    oldest_pending_at: datetime | None
