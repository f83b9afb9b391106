"""Aggregates for the operator dashboard: what arrives, how jobs end, what is at risk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Float

from storage.models import DELIVERY, FINDING, JOB, OUTPUT

__all__ = [
    "deliveries_per_minute",
    "open_findings_by_code",
    "recent_outputs_at_risk",
    "terminal_via_by_day",
    "terminal_via_counts",
]


def _epoch(conn: AsyncConnection, column: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", column)
    return cast(func.strftime("%s", column), Float)


async def deliveries_per_minute(
    conn: AsyncConnection, since: datetime, minutes: int
) -> dict[str, list[int]]:
    """Per outcome, how many deliveries arrived in each of the `minutes` after `since`."""
    bucket = func.floor((_epoch(conn, DELIVERY.c.received_at) - since.timestamp()) / 60)
    stmt = (
        select(DELIVERY.c.status, bucket.label("minute"), func.count())
        .where(DELIVERY.c.received_at >= since)
        .group_by(DELIVERY.c.status, bucket)
    )
    series: dict[str, list[int]] = {}
    for status, minute, count in (await conn.execute(stmt)).all():
        index = int(minute)
        if 0 <= index < minutes:
            series.setdefault(status, [0] * minutes)[index] += int(count)
    return series


async def terminal_via_counts(conn: AsyncConnection, since: datetime) -> dict[str, int]:
    """How jobs that ended since `since` were first seen terminal (webhook, poll, sweep…)."""
    stmt = (
        select(JOB.c.terminal_via, func.count())
        .where(JOB.c.terminal.is_(True), JOB.c.completed_at >= since)
        .group_by(JOB.c.terminal_via)
    )
    return {via or "unknown": int(n) for via, n in (await conn.execute(stmt)).all()}


async def recent_outputs_at_risk(
    conn: AsyncConnection, before: datetime, limit: int = 20
) -> list[Any]:
    stmt = (
        select(
            OUTPUT.c.job_id,
            OUTPUT.c.position,
            OUTPUT.c.deadline,
            OUTPUT.c.attempts,
            OUTPUT.c.last_error,
        )
        .where(OUTPUT.c.state == "pending", OUTPUT.c.deadline < before)
        .order_by(OUTPUT.c.deadline)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())


async def terminal_via_by_day(conn: AsyncConnection, since: datetime) -> dict[str, dict[str, int]]:
    """Per completion day (UTC), how jobs were first seen terminal."""
    rows = (
        await conn.execute(
            select(JOB.c.completed_at, JOB.c.terminal_via).where(
                JOB.c.terminal.is_(True), JOB.c.completed_at >= since
            )
        )
    ).all()
    days: dict[str, dict[str, int]] = {}
    for completed_at, via in rows:
        day = days.setdefault(completed_at.date().isoformat(), {})
        day[via or "unknown"] = day.get(via or "unknown", 0) + 1
    return days


async def open_findings_by_code(conn: AsyncConnection) -> dict[str, int]:
    stmt = (
        select(FINDING.c.code, func.count())
        .where(FINDING.c.resolved_at.is_(None))
        .group_by(FINDING.c.code)
    )
    return {code: int(n) for code, n in (await conn.execute(stmt)).all()}
