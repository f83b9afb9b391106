"""Records of the money: the ledger, balance snapshots, report rows and findings. Amounts are
integer micro-credits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.records.base import UNSET, Change, Record, UnsetType

__all__ = [
    "BalanceSnapshotRecord",
    "FindingRecord",
    "FindingUpdate",
    "JobMoney",
    "JobSpend",
    "LedgerEntryRecord",
    "NewBalanceSnapshot",
    "NewFinding",
    "NewLedgerEntry",
    "RepeatedRequest",
    "SpendGroup",
]


class NewLedgerEntry(Record, frozen=True):
    """A movement to store; the walk that read it gives its position and sync time."""

    uev_id: str
    type: str
    amount_micros: int  # signed from the team's side: debits < 0
    currency: str
    generation_id: str | None
    hold_id: str | None
    created_at: datetime | None  # Aurous's clock
    description: str | None
    contract: str  # ledger (uev_ rows) | usage (per-request rows with credits_charged)
    raw: dict[str, Any]  # the row as Aurous sent it


class LedgerEntryRecord(NewLedgerEntry, frozen=True):
    id: int
    position: int  # Aurous's order: higher is newer
    synced_at: datetime  # the receiver's clock


class NewBalanceSnapshot(Record, frozen=True):
    """GET /v1/balance at a moment; `ledger_position` only when the ledger did not move
    while it was read."""

    taken_at: datetime
    trigger: str
    credits_micros: int | None
    held_micros: int | None
    available_micros: int | None
    billing_mode: str | None
    ledger_head: str | None
    ledger_position: int | None
    raw: dict[str, Any]


class BalanceSnapshotRecord(NewBalanceSnapshot, frozen=True):
    id: int


class JobMoney(Record, frozen=True):
    """What the ledger moved for one generation (positive amounts), beside what its job says;
    `known` is False when the receiver has no such job."""

    job_id: str
    known: bool
    status: str | None
    terminal: bool
    cost_micros: int | None
    cost_state: str | None
    held: int
    released: int
    charges: int
    refunded: int


class SpendGroup(Record, frozen=True):
    """Money moved in one group of a report (a day, kind, model or status), or in total."""

    key: str
    held: int
    released: int
    charges: int
    refunded: int
    jobs: int


class JobSpend(Record, frozen=True):
    """One generation's money with what is known of its job (times as ISO-8601 text)."""

    generation_id: str
    held: int
    released: int
    charges: int
    refunded: int
    kind: str | None
    model: str | None
    status: str | None
    created: str | None
    completed: str | None
    cost_micros: int | None


class RepeatedRequest(Record, frozen=True):
    """A create request that produced a job and shares its fingerprint with another one."""

    fingerprint: str
    kind: str
    job_id: str
    idempotency_key: str
    created_at: datetime
    cost_micros: int | None


class NewFinding(Record, frozen=True):
    code: str
    subject: str  # the job id, or what else the finding is about
    job_id: str | None
    expected_micros: int | None
    actual_micros: int | None
    action: str | None  # what the audit did about it (adopted, not_found, …)
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    reason: str


class FindingRecord(NewFinding, frozen=True):
    id: int


class FindingUpdate(Change, frozen=True):
    expected_micros: int | UnsetType | None = UNSET
    actual_micros: int | UnsetType | None = UNSET
    reason: str | UnsetType = UNSET
    action: str | UnsetType | None = UNSET
    last_seen_at: datetime | UnsetType = UNSET
    resolved_at: datetime | UnsetType | None = UNSET
