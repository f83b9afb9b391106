"""Money per job from the ledger, the spend reports, and findings.

Per-job money is always summed per generation first and joined to `job` afterwards, so a
report looks up each job once, however many movements it has. Whole-history reports read the
rollups the ledger gateway maintains (`generation_money`, `spend_day`); a window reads the
ledger through a covering index.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, and_, case, func, literal, or_, select, type_coerce, update
from sqlalchemy.sql import ColumnElement, Select

from storage.db import Connection
from storage.gateway._common import chunks, insert, page_after, record_select, records
from storage.gateway.ledger import L
from storage.gateway.ledger import sum_of as _sum
from storage.models import FINDING, GENERATION_MONEY, JOB, JOB_EVENT, JOB_REQUEST, SPEND_DAY
from storage.records import (
    FindingRecord,
    FindingUpdate,
    JobMoney,
    JobSpend,
    NewFinding,
    RepeatedRequest,
    SpendGroup,
    changed_fields,
    values_of,
)
from storage.states import CostState, JobStatus, LedgerType

__all__ = [
    "GROUPINGS",
    "find_findings",
    "first_synced_at",
    "insert_findings",
    "list_findings",
    "money_by_job",
    "money_disagreements",
    "open_finding_codes",
    "open_findings",
    "repeated_requests",
    "spend_groups",
    "spend_since",
    "spend_total",
    "terminal_seen_at",
    "update_findings",
]

GROUPINGS = ("day", "kind", "model", "status")


# --- money per job ---------------------------------------------------------------------------


def _flow(kind: str, sign: int = 1) -> Any:
    return _sum(case((L.c.type == kind, L.c.amount_micros * sign), else_=0))


def _money(*group_by: Any, where: Iterable[ColumnElement[bool]] = ()) -> Select[Any]:
    """Holds placed, releases, charges and refunds as positive micro-credits."""
    return (
        select(
            *group_by,
            _flow(LedgerType.HOLD, -1).label("held"),
            _flow(LedgerType.RELEASE).label("released"),
            _flow(LedgerType.CHARGE, -1).label("charges"),
            _flow(LedgerType.REFUND).label("refunded"),
        )
        .where(L.c.generation_id.is_not(None), *where)
        .group_by(*group_by)
    )


def _per_generation(since: datetime | None = None, until: datetime | None = None) -> Any:
    """Money per generation as a subquery `m`: the maintained rollup for the whole history,
    the ledger itself for a window."""
    if since is None and until is None:
        g = GENERATION_MONEY.c
        return select(
            g.generation_id,
            g.held_micros.label("held"),
            g.released_micros.label("released"),
            g.charged_micros.label("charges"),
            g.refunded_micros.label("refunded"),
        ).subquery("m")
    return _money(L.c.generation_id, where=_window(since, until)).subquery("m")


def _window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    window: list[ColumnElement[bool]] = []
    if since is not None:
        window.append(L.c.created_at >= since)
    if until is not None:
        window.append(L.c.created_at < until)
    return window


def money_disagreements(conn: Connection, tolerance: int) -> list[JobMoney]:
    """Per generation with movements: those whose job is unknown, or whose money disagrees
    with the job (charged without success, charged other than its cost, a hold left over)."""
    m = _per_generation()
    charged = m.c.charges - m.c.refunded
    outstanding = m.c.held - m.c.released - m.c.refunded  # of jobs without a charge
    disagrees = or_(
        JOB.c.id.is_(None),
        and_(JOB.c.terminal, JOB.c.status != JobStatus.SUCCEEDED, charged > tolerance),
        and_(
            JOB.c.status == JobStatus.SUCCEEDED,
            JOB.c.cost_state == CostState.CHARGED,
            JOB.c.cost_micros.is_not(None),
            m.c.charges > 0,
            func.abs(charged - JOB.c.cost_micros) > tolerance,
        ),
        and_(JOB.c.terminal, m.c.charges == 0, outstanding > tolerance),
    )
    stmt = (
        select(
            m.c.generation_id,
            type_coerce(JOB.c.id.is_not(None), Boolean),
            JOB.c.status,
            type_coerce(func.coalesce(JOB.c.terminal, literal(False)), Boolean),
            JOB.c.cost_micros,
            JOB.c.cost_state,
            m.c.held,
            m.c.released,
            m.c.charges,
            m.c.refunded,
        )
        .select_from(m.outerjoin(JOB, JOB.c.id == m.c.generation_id))
        .where(disagrees)
    )
    return records(JobMoney, conn.execute(stmt))


def first_synced_at(conn: Connection, generation_ids: Sequence[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for chunk in chunks(generation_ids):
        stmt = (
            select(L.c.generation_id, func.min(L.c.synced_at))
            .where(L.c.generation_id.in_(chunk))
            .group_by(L.c.generation_id)
        )
        found.update(dict(conn.execute(stmt).all()))
    return found


def terminal_seen_at(
    conn: Connection, job_ids: Sequence[str], terminal: Collection[str]
) -> dict[str, datetime]:
    """When the receiver first recorded each job as finished (its own clock)."""
    found: dict[str, datetime] = {}
    for chunk in chunks(job_ids):
        stmt = (
            select(JOB_EVENT.c.job_id, func.min(JOB_EVENT.c.at))
            .where(
                JOB_EVENT.c.job_id.in_(chunk),
                JOB_EVENT.c.applied.is_(True),
                JOB_EVENT.c.to_status.in_(sorted(terminal)),
            )
            .group_by(JOB_EVENT.c.job_id)
        )
        found.update(dict(conn.execute(stmt).all()))
    return found


def repeated_requests(conn: Connection) -> list[RepeatedRequest]:
    """Create requests that produced a job and share their fingerprint with another one."""
    repeated = (
        select(JOB_REQUEST.c.fingerprint)
        .group_by(JOB_REQUEST.c.fingerprint)
        .having(func.count() > 1)
        .scalar_subquery()
    )
    stmt = (
        select(
            JOB_REQUEST.c.fingerprint,
            JOB_REQUEST.c.kind,
            JOB_REQUEST.c.job_id,
            JOB_REQUEST.c.idempotency_key,
            JOB_REQUEST.c.created_at,
            JOB.c.cost_micros,
        )
        .select_from(JOB_REQUEST.outerjoin(JOB, JOB.c.id == JOB_REQUEST.c.job_id))
        .where(JOB_REQUEST.c.fingerprint.in_(repeated), JOB_REQUEST.c.job_id.is_not(None))
        .order_by(JOB_REQUEST.c.fingerprint, JOB_REQUEST.c.created_at, JOB_REQUEST.c.id)
    )
    return records(RepeatedRequest, conn.execute(stmt))


# --- spend reports ---------------------------------------------------------------------------


def _day(conn: Connection) -> Any:
    if conn.dialect_name == "postgresql":
        return func.to_char(func.timezone("UTC", L.c.created_at), "YYYY-MM-DD")
    return func.substr(L.c.created_at, 1, 10)  # stored as 'YYYY-MM-DD HH:MM:SS…' in UTC


def spend_total(conn: Connection, since: datetime | None, until: datetime | None) -> SpendGroup:
    m = _per_generation(since, until)
    stmt = select(
        literal("total"),
        _sum(m.c.held).label("held"),
        _sum(m.c.released).label("released"),
        _sum(m.c.charges).label("charges"),
        _sum(m.c.refunded).label("refunded"),
        func.count().label("jobs"),
    )
    return records(SpendGroup, conn.execute(stmt))[0]


def spend_groups(
    conn: Connection, by: str, since: datetime | None, until: datetime | None
) -> list[SpendGroup]:
    """Money per day of movement, or per job kind / model / status ('unknown' when the job or
    the attribute is unknown); `jobs` counts the jobs with movements in each group."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group spend by {by!r}")
    window = _window(since, until)
    if by == "day" and not window:
        d = SPEND_DAY.c
        days: Select[Any] = select(
            d.day.label("key"),
            d.held_micros.label("held"),
            d.released_micros.label("released"),
            d.charged_micros.label("charges"),
            d.refunded_micros.label("refunded"),
            d.jobs,
        )
        return records(SpendGroup, conn.execute(days.order_by(d.day)))
    if by == "day":
        key = func.coalesce(_day(conn), "unknown").label("key")
        stmt = _money(key, where=window).add_columns(
            func.count(func.distinct(L.c.generation_id)).label("jobs")
        )
        return records(SpendGroup, conn.execute(stmt.order_by(key)))
    m = _per_generation(since, until)
    key = func.coalesce(JOB.c[by], "unknown").label("key")
    stmt = (
        select(
            key,
            _sum(m.c.held).label("held"),
            _sum(m.c.released).label("released"),
            _sum(m.c.charges).label("charges"),
            _sum(m.c.refunded).label("refunded"),
            func.count().label("jobs"),
        )
        .select_from(m.outerjoin(JOB, JOB.c.id == m.c.generation_id))
        .group_by(key)
        .order_by(key)
    )
    return records(SpendGroup, conn.execute(stmt))


def _iso_text(conn: Connection, column: Any) -> Any:
    """A UTC time as ISO-8601 text to the second, formatted by the database (an export of
    100k jobs would otherwise spend most of its time parsing and re-printing datetimes)."""
    if conn.dialect_name == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    return func.strftime("%Y-%m-%dT%H:%M:%SZ", column)


def money_by_job(
    conn: Connection, since: datetime | None, until: datetime | None
) -> list[JobSpend]:
    """One row per generation with movements in the window, with what is known of its job
    (times as ISO-8601 text)."""
    m = _per_generation(since, until)
    stmt: Select[Any] = (
        select(
            m,
            JOB.c.kind,
            JOB.c.model,
            JOB.c.status,
            _iso_text(conn, JOB.c.created_at).label("created"),
            _iso_text(conn, JOB.c.completed_at).label("completed"),
            JOB.c.cost_micros,
        )
        .select_from(m.outerjoin(JOB, JOB.c.id == m.c.generation_id))
        .order_by(m.c.generation_id)
    )
    return records(JobSpend, conn.execute(stmt))


def spend_since(conn: Connection, since: datetime) -> tuple[int, datetime | None]:
    """Net credits charged (charges minus refunds) in movements since `since`, and when the
    ledger's first movement of all was (how much history an average can span)."""
    debits = case(
        (L.c.type.in_((LedgerType.CHARGE, LedgerType.REFUND)), L.c.amount_micros), else_=0
    )
    net = conn.execute(select(_sum(debits)).where(L.c.created_at >= since)).scalar_one()
    first = conn.execute(select(func.min(L.c.created_at))).scalar_one()
    return -int(net), first


# --- findings --------------------------------------------------------------------------------


def insert_findings(conn: Connection, findings: Sequence[NewFinding]) -> set[tuple[str, str]]:
    """Insert findings not reported before; returns the (code, subject) of the new ones."""
    if not findings:
        return set()
    stmt = (
        insert(conn, FINDING)
        .on_conflict_do_nothing(index_elements=["code", "subject"])
        .returning(FINDING.c.code, FINDING.c.subject)
    )
    rows = [values_of(finding) for finding in findings]
    return set(conn.execute(stmt, rows))


def open_findings(conn: Connection, codes: Collection[str]) -> list[FindingRecord]:
    stmt = record_select(FindingRecord, FINDING).where(
        FINDING.c.code.in_(sorted(codes)), FINDING.c.resolved_at.is_(None)
    )
    return records(FindingRecord, conn.execute(stmt))


def find_findings(conn: Connection, code: str, subjects: Sequence[str]) -> list[FindingRecord]:
    stmt = record_select(FindingRecord, FINDING).where(
        FINDING.c.code == code, FINDING.c.subject.in_(subjects)
    )
    return records(FindingRecord, conn.execute(stmt))


def update_findings(conn: Connection, ids: Sequence[int], change: FindingUpdate) -> None:
    if ids:
        stmt = update(FINDING).where(FINDING.c.id.in_(ids)).values(**changed_fields(change))
        conn.execute(stmt)


def list_findings(
    conn: Connection, *, state: str = "open", after_id: int = 0, limit: int | None = None
) -> list[FindingRecord]:
    """Oldest first from `after_id`; every one of them unless `limit`."""
    stmt = page_after(FindingRecord, FINDING, FINDING.c.id, after_id, limit)
    if state == "open":
        stmt = stmt.where(FINDING.c.resolved_at.is_(None))
    elif state == "resolved":
        stmt = stmt.where(FINDING.c.resolved_at.is_not(None))
    return records(FindingRecord, conn.execute(stmt))


def open_finding_codes(conn: Connection) -> dict[str, list[str]]:
    stmt = (
        select(FINDING.c.job_id, FINDING.c.code)
        .where(FINDING.c.resolved_at.is_(None), FINDING.c.job_id.is_not(None))
        .order_by(FINDING.c.job_id, FINDING.c.code)
    )
    codes: dict[str, list[str]] = {}
    for job_id, code in conn.execute(stmt):
        codes.setdefault(job_id, []).append(code)
    return codes
