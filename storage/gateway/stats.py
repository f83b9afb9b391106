"""Aggregates for the operator dashboard: what arrives, how jobs end, what is at risk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import cast, func, select
from sqlalchemy.types import Float

from storage.db import Connection
from storage.gateway._common import record_select, records
from storage.models import DELIVERY, FINDING, JOB, OUTPUT
from storage.records import AtRiskOutput
from storage.states import OutputState

__all__ = [
    "deliveries_per_minute",
    "open_findings_by_code",
    "recent_outputs_at_risk",
    "terminal_via_by_day",
    "terminal_via_counts",
]


def _epoch(conn: Connection, column: Any) -> Any:
    if conn.dialect_name == "postgresql":
        return func.extract("epoch", column)
    return cast(func.strftime("%s", column), Float)


def deliveries_per_minute(conn: Connection, since: datetime, minutes: int) -> dict[str, list[int]]:
    """Per outcome, how many deliveries arrived in each of the `minutes` after `since`."""
    bucket = func.floor((_epoch(conn, DELIVERY.c.received_at) - since.timestamp()) / 60)
    stmt = (
        select(DELIVERY.c.status, bucket.label("minute"), func.count())
        .where(DELIVERY.c.received_at >= since)
        .group_by(DELIVERY.c.status, bucket)
    )
    series: dict[str, list[int]] = {}
    for status, minute, count in conn.execute(stmt):
        index = int(minute)
        if 0 <= index < minutes:
            series.setdefault(status, [0] * minutes)[index] += int(count)
    return series


def terminal_via_counts(conn: Connection, since: datetime) -> dict[str, int]:
    """How jobs that ended since `since` were first seen terminal (webhook, poll, sweep…)."""
    stmt = (
        select(JOB.c.terminal_via, func.count())
        .where(JOB.c.terminal.is_(True), JOB.c.completed_at >= since)
        .group_by(JOB.c.terminal_via)
    )
    return {via or "unknown": int(n) for via, n in conn.execute(stmt)}


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


def terminal_via_by_day(conn: Connection, since: datetime) -> dict[str, dict[str, int]]:
    """Per completion day (UTC), how jobs were first seen terminal."""
    stmt = select(JOB.c.completed_at, JOB.c.terminal_via).where(
        JOB.c.terminal.is_(True), JOB.c.completed_at >= since
    )
    days: dict[str, dict[str, int]] = {}
    for completed_at, via in conn.execute(stmt):
        day = days.setdefault(completed_at.date().isoformat(), {})
        day[via or "unknown"] = day.get(via or "unknown", 0) + 1
    return days


def open_findings_by_code(conn: Connection) -> dict[str, int]:
    stmt = (
        select(FINDING.c.code, func.count())
        .where(FINDING.c.resolved_at.is_(None))
        .group_by(FINDING.c.code)
    )
    return {code: int(n) for code, n in conn.execute(stmt)}
