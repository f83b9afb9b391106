"""Aggregates for the operator dashboard: what arrives, how jobs end, what is at risk."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import cast, func, literal, select
from sqlalchemy.types import Float

from storage.db import Connection
from storage.gateway._common import record_select, records
from storage.models import DELIVERY, FINDING, JOB, OUTPUT
from storage.records import AtRiskOutput, JobEndings
from storage.states import DeliveryStatus, OutputState, Source

__all__ = [
    "deliveries_per_minute",
    "job_endings",
    "job_endings_by_day",
    "open_findings_by_code",
    "recent_outputs_at_risk",
]


def _epoch(conn: Connection, column: Any) -> Any:
    if conn.dialect_name == "postgresql":
        return func.extract("epoch", column)
    return cast(func.strftime("%s", column), Float)


def _utc_day(conn: Connection, column: Any) -> Any:
    """The UTC date of a timestamp column, as `YYYY-MM-DD` text."""
    if conn.dialect_name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)  # SQLite holds naive UTC text


def deliveries_per_minute(conn: Connection, since: datetime, minutes: int) -> dict[str, list[int]]:
    """Per outcome, how many deliveries arrived in each of the `minutes` after `since`."""
    bucket = func.floor((_epoch(conn, DELIVERY.c.received_at) - since.timestamp()) / 60)
    stmt = (
        select(DELIVERY.c.status, bucket.label("minute"), func.count())
        .where(DELIVERY.c.received_at >= since)
        .group_by(DELIVERY.c.status, bucket)
    )
    # copies are counted on their first delivery, so they fall in the minute of the last one
    last_copy = func.floor((_epoch(conn, DELIVERY.c.last_duplicate_at) - since.timestamp()) / 60)
    copies = (
        select(literal(DeliveryStatus.DUPLICATE.value), last_copy, func.sum(DELIVERY.c.duplicates))
        .where(DELIVERY.c.last_duplicate_at >= since)
        .group_by(last_copy)
    )
    series: dict[str, list[int]] = {}
    for status, minute, count in [*conn.execute(stmt), *conn.execute(copies)]:
        index = int(minute)
        if 0 <= index < minutes:
            series.setdefault(status, [0] * minutes)[index] += int(count)
    return series


def job_endings(conn: Connection, since: datetime) -> JobEndings:
    """How jobs that ended since `since` were first seen terminal (webhook, poll, sweep…),
    apart for those the receiver expected a webhook for: the jobs it created (the create
    request's idempotency key is on the row) and those a webhook told it of first. A job first
    found by a sweep or a poll, or tracked by id, was created by another backend, whose
    webhooks may well go elsewhere."""
    expected: Counter[str] = Counter()
    not_expected: Counter[str] = Counter()
    for day in job_endings_by_day(conn, since).values():
        expected.update(day.webhook_expected)
        not_expected.update(day.no_webhook_expected)
    return JobEndings(dict(expected), dict(not_expected))


def job_endings_by_day(conn: Connection, since: datetime) -> dict[str, JobEndings]:
    """`job_endings` per UTC day (`YYYY-MM-DD`) the jobs ended on; days when none ended are
    left out."""
    day = _utc_day(conn, JOB.c.completed_at)
    created_here = JOB.c.idempotency_key.is_not(None)
    stmt = (
        select(day, JOB.c.first_seen_via, created_here, JOB.c.terminal_via, func.count())
        .where(JOB.c.terminal.is_(True), JOB.c.completed_at >= since)
        .group_by(day, JOB.c.first_seen_via, created_here, JOB.c.terminal_via)
    )
    days: dict[str, tuple[Counter[str], Counter[str]]] = {}
    for ended_on, first_seen_via, made_here, terminal_via, count in conn.execute(stmt):
        expected, not_expected = days.setdefault(ended_on, (Counter(), Counter()))
        counts = expected if made_here or first_seen_via == Source.WEBHOOK else not_expected
        counts[terminal_via or "unknown"] += int(count)
    return {
        ended_on: JobEndings(dict(expected), dict(not_expected))
        for ended_on, (expected, not_expected) in days.items()
    }


def recent_outputs_at_risk(
    conn: Connection, before: datetime, limit: int = 20
) -> list[AtRiskOutput]:
    stmt = (
        record_select(AtRiskOutput, OUTPUT)
        .where(OUTPUT.c.state == OutputState.PENDING, OUTPUT.c.deadline < before)
        .order_by(OUTPUT.c.deadline)
        .limit(limit)
    )
    return records(AtRiskOutput, conn.execute(stmt))


def open_findings_by_code(conn: Connection) -> dict[str, int]:
    stmt = (
        select(FINDING.c.code, func.count())
        .where(FINDING.c.resolved_at.is_(None))
        .group_by(FINDING.c.code)
    )
    return {code: int(n) for code, n in conn.execute(stmt)}
