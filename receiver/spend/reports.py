"""Spend reports as users see them (API and CLI): the summary, the ledger, findings, the
per-job CSV and the runway. Credits are JSON numbers; sums are exact in micro-credits first.

`charged` is net: charges minus refunds, i.e. what the credits were really spent on. `held`
and `released` are the holds placed and released; `refunded` is shown on its own as well.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import msgspec

from receiver.csv_cells import SafeWriter
from receiver.errors import ReceiverError
from receiver.shapes import Page, decode_number_cursor, view_of
from receiver.spend.rules import credits_text
from storage import gateway
from storage.db import Connection, Database
from storage.records import FindingRecord, JobSpend, LedgerEntryRecord, SpendGroup
from storage.types import as_utc

__all__ = [
    "CSV_COLUMNS",
    "GROUPINGS",
    "Finding",
    "LedgerEntry",
    "Money",
    "ReportError",
    "Runway",
    "RunwayView",
    "SpendSummary",
    "export_csv",
    "findings",
    "ledger_page",
    "parse_moment",
    "runway",
    "runway_days_text",
    "runway_line",
    "summary",
]

GROUPINGS = gateway.GROUPINGS
CSV_COLUMNS = (
    "id",
    "kind",
    "model",
    "status",
    "created",
    "completed",
    "held",
    "charged",
    "released",
    "refunded",
    "findings",
)
FINDING_STATES = ("open", "resolved", "all")
RUNWAY_WINDOW = timedelta(days=7)
# Beyond a year a runway in days is noise: a week's average spend does not predict that far.
RUNWAY_SHOWN_UP_TO_DAYS = 365


class ReportError(ReceiverError):
    """A report parameter is not usable; `param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(400, "invalid_parameter", message, param=param)


def _credits(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000


def parse_moment(value: str | None, param: str) -> datetime | None:
    """`2026-05-04` (midnight UTC) or an ISO-8601 date-time; naive times are UTC."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return as_utc(moment)
    except (ValueError, OverflowError):  # OverflowError: year 9999 plus an offset
        raise ReportError(param, f"{param} must be a date (2026-05-04) or ISO-8601 time") from None


def _check_by(by: str) -> None:
    if by not in GROUPINGS:
        raise ReportError("by", f"by must be one of {', '.join(GROUPINGS)}; got {by!r}")


class Money(msgspec.Struct, frozen=True):
    """Credits that moved, and over how many jobs."""

    charged: float | None  # net: charges minus refunds
    held: float | None
    released: float | None
    refunded: float | None
    jobs: int

    @classmethod
    def of(cls, group: SpendGroup) -> Money:
        return cls(
            _credits(group.charges - group.refunded),
            _credits(group.held),
            _credits(group.released),
            _credits(group.refunded),
            group.jobs,
        )


class SpendGroupView(Money, frozen=True):
    key: str  # a day, kind, model or status


class SpendSummary(msgspec.Struct, frozen=True):
    by: str  # day | kind | model | status
    since: datetime | None
    until: datetime | None
    total: Money
    groups: list[SpendGroupView]
    currency: str = "credit"


async def summary(
    db: Database, by: str = "day", since: datetime | None = None, until: datetime | None = None
) -> SpendSummary:
    _check_by(by)

    def read(conn: Connection) -> tuple[SpendGroup, list[SpendGroup]]:
        return gateway.spend_total(conn, since, until), gateway.spend_groups(conn, by, since, until)

    total, groups = await db.read(read)
    views = [SpendGroupView(**msgspec.structs.asdict(Money.of(g)), key=g.key) for g in groups]
    return SpendSummary(by, since, until, Money.of(total), views)


class LedgerEntry(msgspec.Struct, frozen=True):
    """One credit movement as synced from Aurous; debits are negative."""

    id: str
    type: str  # hold | release | charge | refund | topup | adjustment
    amount: float | None
    currency: str
    generation_id: str | None
    hold_id: str | None
    created_at: datetime | None
    description: str | None
    contract: str  # ledger | usage
    synced_at: datetime

    @classmethod
    def of(cls, entry: LedgerEntryRecord) -> LedgerEntry:
        return view_of(cls, entry, id=entry.uev_id, amount=_credits(entry.amount_micros))


async def ledger_page(
    db: Database,
    *,
    type_: str | None = None,
    job_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[LedgerEntry]:
    """Newest first, as Aurous lists them; amounts signed (debits negative)."""
    before = decode_number_cursor(cursor)
    page = await db.read(
        lambda conn: gateway.list_ledger(
            conn, type_=type_, generation_id=job_id, before_position=before, limit=limit
        )
    )
    next_cursor = str(page.items[-1].position) if page.has_more else None
    return Page([LedgerEntry.of(e) for e in page.items], page.has_more, next_cursor)


class Finding(msgspec.Struct, frozen=True):
    """A place where the money and the jobs disagree."""

    id: int
    code: str
    subject: str
    job_id: str | None
    expected: float | None
    actual: float | None
    reason: str
    action: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, finding: FindingRecord) -> Finding:
        expected, actual = _credits(finding.expected_micros), _credits(finding.actual_micros)
        return view_of(cls, finding, expected=expected, actual=actual)


async def findings(
    db: Database, state: str = "open", *, cursor: str | None = None, limit: int | None = None
) -> Page[Finding]:
    """Oldest first; a page of `limit` with `has_more`/`next_cursor`, or all of them."""
    if state not in FINDING_STATES:
        raise ReportError("status", f"status must be one of {', '.join(FINDING_STATES)}")
    after = decode_number_cursor(cursor) or 0
    rows = await db.read(
        lambda conn: gateway.list_findings(
            conn, state=state, after_id=after, limit=None if limit is None else limit + 1
        )
    )
    page = rows if limit is None else rows[:limit]
    has_more = len(rows) > len(page)
    next_cursor = str(page[-1].id) if has_more else None
    return Page([Finding.of(r) for r in page], has_more, next_cursor)


@functools.lru_cache(maxsize=4096)
def _amount(micros: int) -> str:
    return credits_text(micros)  # prices repeat: most jobs cost one of a few amounts


async def export_csv(
    db: Database, since: datetime | None = None, until: datetime | None = None
) -> str:
    """One row per job with movements in the window; amounts in credits, exact decimals."""

    def read(conn: Connection) -> tuple[list[JobSpend], dict[str, list[str]]]:
        return gateway.money_by_job(conn, since, until), gateway.open_finding_codes(conn)

    rows, codes = await db.read(read)
    out = io.StringIO()
    writer = SafeWriter(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_row(r, codes) for r in rows)
    return out.getvalue()


def _csv_row(row: JobSpend, codes: dict[str, list[str]]) -> tuple[str | None, ...]:
    return (
        row.generation_id,
        row.kind,
        row.model,
        row.status,
        row.created,
        row.completed,
        _amount(row.held),
        _amount(row.charges - row.refunded),
        _amount(row.released),
        _amount(row.refunded),
        ";".join(codes.get(row.generation_id, ())),
    )


class RunwayView(msgspec.Struct, frozen=True):
    available: float | None
    daily_spend: float | None
    window_days: float
    days: float | None
    balance_as_of: datetime | None


@dataclass(frozen=True)
class Runway:
    available_micros: int | None
    daily_micros: int
    window_days: float
    as_of: datetime | None

    @property
    def days(self) -> float | None:
        if self.available_micros is None or self.daily_micros <= 0:
            return None
        return self.available_micros / self.daily_micros

    def view(self) -> RunwayView:
        return RunwayView(
            available=_credits(self.available_micros),
            daily_spend=_credits(self.daily_micros),
            window_days=round(self.window_days, 2),
            days=None if self.days is None else round(self.days, 1),
            balance_as_of=self.as_of,
        )


async def runway(db: Database, now: datetime) -> Runway:
    """Available credits (latest balance snapshot) ÷ average daily net spend over the last 7
    days; with a ledger younger than that, over the days it spans (at least one)."""
    since = now - RUNWAY_WINDOW
    snapshot, (spent, first) = await db.read(
        lambda conn: (gateway.latest_balance_snapshot(conn), gateway.spend_since(conn, since))
    )
    span = (now - first).total_seconds() / 86400 if first else 7.0
    days = min(7.0, max(1.0, span))
    available = snapshot.available_micros if snapshot else None
    return Runway(available, round(spent / days), days, snapshot.taken_at if snapshot else None)


def runway_days_text(days: float | None) -> str:
    """The runway as people read it: whole days (rounded down, so it never promises a day
    too many), or "more than a year". The API keeps the number (`RunwayView.days`)."""
    if days is None:
        return "unknown"
    if days > RUNWAY_SHOWN_UP_TO_DAYS:
        return "more than a year"
    whole = math.floor(days)
    if whole < 1:
        return "less than a day"
    return "1 day" if whole == 1 else f"{whole} days"


def runway_line(r: Runway) -> str:
    if r.available_micros is None:
        return "runway: unknown (no balance snapshot yet; run `aurous-receiver spend sync`)"
    available = credits_text(r.available_micros)
    if r.days is None:
        return f"runway: {available} credits available; nothing spent in the last 7 days"
    daily = credits_text(r.daily_micros)
    return (
        f"runway: {runway_days_text(r.days)} ({available} credits available ÷ {daily} per day, "
        f"average of the last {r.window_days:.0f} days)"
    )
