"""Records of jobs: the job, its events and outputs, poll leases and create requests."""

from __future__ import annotations

from datetime import datetime

from storage.records.base import UNSET, Change, Record, UnsetType
from storage.states import Source

__all__ = [
    "ArchivedBlob",
    "AtRiskOutput",
    "JobEndings",
    "JobEventRecord",
    "JobRecord",
    "JobRequestRecord",
    "JobRequestUpdate",
    "JobUpdate",
    "NewJob",
    "NewJobEvent",
    "NewJobRequest",
    "NewOutput",
    "OutputCounts",
    "OutputFinish",
    "OutputRecord",
    "PollClaim",
]


class JobRecord(Record, frozen=True):
    id: str
    kind: str
    status: str
    terminal: bool
    first_seen_via: str
    terminal_via: str | None
    created_at: datetime | None
    completed_at: datetime | None
    first_seen_at: datetime
    last_observed_at: datetime
    next_poll_at: datetime | None
    poll_attempts: int
    cost_micros: int | None
    cost_state: str | None
    cost_currency: str
    model: str | None
    error_message: str | None
    idempotency_key: str | None


class NewJob(Record, frozen=True):
    id: str
    kind: str
    status: str
    terminal: bool
    first_seen_via: str
    first_seen_at: datetime
    last_observed_at: datetime
    created_at: datetime | None = None
    completed_at: datetime | None = None
    terminal_via: str | None = None
    next_poll_at: datetime | None = None
    poll_attempts: int = 0
    cost_micros: int | None = None
    cost_state: str | None = None
    cost_currency: str = "credit"
    model: str | None = None
    error_message: str | None = None
    last_response: bytes | None = None
    idempotency_key: str | None = None


class JobUpdate(Change, frozen=True):
    status: str | UnsetType = UNSET
    terminal: bool | UnsetType = UNSET
    kind: str | UnsetType = UNSET
    terminal_via: str | UnsetType | None = UNSET
    created_at: datetime | UnsetType | None = UNSET
    completed_at: datetime | UnsetType | None = UNSET
    last_observed_at: datetime | UnsetType = UNSET
    next_poll_at: datetime | UnsetType | None = UNSET
    cost_micros: int | UnsetType | None = UNSET
    cost_state: str | UnsetType | None = UNSET
    cost_currency: str | UnsetType = UNSET
    model: str | UnsetType | None = UNSET
    error_message: str | UnsetType | None = UNSET
    last_response: bytes | UnsetType | None = UNSET
    idempotency_key: str | UnsetType | None = UNSET


class NewJobEvent(Record, frozen=True):
    job_id: str
    at: datetime
    source: str  # webhook:evt_… | poll | sweep | api
    from_status: str | None
    to_status: str
    applied: bool
    note: str | None


class JobEventRecord(NewJobEvent, frozen=True):
    """A job event as stored; `id` orders a job's history."""

    id: int


class NewOutput(Record, frozen=True):
    job_id: str
    position: int  # the n of /jobs/{id}/outputs/{n}
    source_url: str
    deadline: datetime
    state: str


class OutputRecord(NewOutput, frozen=True):
    id: int
    attempts: int
    next_attempt_at: datetime | None
    sha256: str | None
    size: int | None
    content_type: str | None
    archived_at: datetime | None
    last_error: str | None


class OutputFinish(Change, frozen=True):
    """The end of one archive attempt (archived, lost, none), or when to try again."""

    state: str | UnsetType = UNSET
    sha256: str | UnsetType = UNSET
    size: int | UnsetType = UNSET
    content_type: str | UnsetType | None = UNSET
    archived_at: datetime | UnsetType = UNSET
    last_error: str | UnsetType | None = UNSET
    next_attempt_at: datetime | UnsetType | None = UNSET


class OutputCounts(Record, frozen=True):
    pending: int = 0
    archived: int = 0
    lost: int = 0
    none: int = 0
    at_risk: int = 0  # pending, with a deadline before the time asked about
    bytes: int = 0  # of archived outputs


class JobEndings(Record, frozen=True):
    """Jobs that reached their final status, counted by the road it came by (`webhook`,
    `poll`, `sweep`, `api`), kept apart for the jobs the receiver expected a webhook for."""

    webhook_expected: dict[str, int]
    no_webhook_expected: dict[str, int]

    @property
    def missed_webhooks(self) -> int:
        """Jobs expected to send a webhook whose final status came by a poll or a sweep
        instead (the dashboard's and the gauge's one definition)."""
        return sum(n for via, n in self.webhook_expected.items() if via in _MISSED_VIA)

    @property
    def missed_webhook_rate(self) -> float | None:
        """Missed webhooks over the jobs that expected one; None when no job did."""
        expected = sum(self.webhook_expected.values())
        return self.missed_webhooks / expected if expected else None


# A job expected to send a webhook whose end came by one of these roads instead missed it
# (an end learnt from the create call's own answer, `api`, did not).
_MISSED_VIA = frozenset((Source.POLL, Source.SWEEP))


class ArchivedBlob(Record, frozen=True):
    """One archived sha256, its size, and one job that holds it."""

    sha256: str
    size: int | None
    job_id: str


class AtRiskOutput(Record, frozen=True):
    job_id: str
    position: int
    deadline: datetime
    attempts: int
    last_error: str | None


class PollClaim(Record, frozen=True):
    """A running job leased for one poll."""

    id: str
    kind: str
    poll_attempts: int
    next_poll_at: datetime | None


class NewJobRequest(Record, frozen=True):
    """A create request, stored with its idempotency key before Aurous is called."""

    idempotency_key: str
    kind: str
    fingerprint: str
    body: bytes
    state: str
    created_at: datetime
    updated_at: datetime


class JobRequestRecord(NewJobRequest, frozen=True):
    id: int
    job_id: str | None
    attempts: int
    last_error: str | None
    aurous_request_id: str | None


class JobRequestUpdate(Change, frozen=True):
    state: str | UnsetType = UNSET
    job_id: str | UnsetType | None = UNSET
    last_error: str | UnsetType | None = UNSET
    aurous_request_id: str | UnsetType | None = UNSET
    updated_at: datetime | UnsetType = UNSET
