"""The names of states and kinds the tables hold, in one place. They are `StrEnum`s, so a
member compares equal to the text stored in the database and encodes to it in JSON.

A job's status is text, not only a `JobStatus`: Aurous may report a status this code does not
know yet, and it is stored as it came (see the job tracker).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "NON_TERMINAL",
    "TERMINAL",
    "CostState",
    "DeliveryStatus",
    "JobKind",
    "JobStatus",
    "LedgerType",
    "OutputState",
    "RequestState",
    "Source",
]


class JobStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    MODERATION_REJECTED = "moderation_rejected"


NON_TERMINAL = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.PROCESSING)
TERMINAL = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.EXPIRED,
        JobStatus.MODERATION_REJECTED,
    }
)


class JobKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    UNKNOWN = "unknown"


class Source(StrEnum):
    """Where news of a job came from (a job event's source is `webhook:evt_…` for webhooks)."""

    WEBHOOK = "webhook"
    POLL = "poll"
    SWEEP = "sweep"
    API = "api"


class CostState(StrEnum):
    HELD = "held"
    CHARGED = "charged"


class OutputState(StrEnum):
    PENDING = "pending"  # to be archived
    ARCHIVED = "archived"
    LOST = "lost"  # expired or refused before its bytes were kept
    NONE = "none"  # Aurous says there is nothing to download


class DeliveryStatus(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"


class RequestState(StrEnum):
    """A create request sent through the receiver."""

    SENDING = "sending"  # stored; Aurous's answer not yet recorded
    CREATED = "created"
    FAILED = "failed"


class LedgerType(StrEnum):
    HOLD = "hold"
    RELEASE = "release"
    CHARGE = "charge"
    REFUND = "refund"
    TOPUP = "topup"
    ADJUSTMENT = "adjustment"
