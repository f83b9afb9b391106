"""Spend: the summary, the local copy of the ledger, findings, the per-job CSV, and a way to
run the audit now."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response
from litestar.params import FromQuery, Parameter

from receiver.errors import ReceiverError
from receiver.runtime import RuntimeDep
from receiver.shapes import Page
from receiver.spend import reports as spend
from receiver.spend.reports import Finding, LedgerEntry, RunwayView, SpendSummary
from receiver.spend.rules import LEDGER_TYPES
from receiver.web.http import api_get, api_post
from storage.types import utcnow

__all__ = [
    "export_spend_csv",
    "get_spend_balance",
    "get_spend_summary",
    "list_findings",
    "list_ledger",
    "run_audit",
]

_TYPES = "^(" + "|".join(sorted(LEDGER_TYPES)) + ")$"


class LedgerSyncView(msgspec.Struct, frozen=True):
    pages: int
    new: int


class AuditRun(msgspec.Struct, frozen=True):
    """What one audit pass did."""

    ran: bool  # False: another replica was auditing
    ledger: LedgerSyncView
    complete: bool
    error: str | None
    balance_consistent: bool
    new_findings: list[str]  # code:subject
    resolved: int
    adopted: int
    runway: RunwayView


@api_get(
    "/spend/summary",
    "getSpendSummary",
    "Credits charged, held, released and refunded, in total and per day/kind/model/status",
)
async def get_spend_summary(
    runtime: RuntimeDep,
    by: FromQuery[str] = "day",
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> SpendSummary:
    start, end = spend.parse_moment(since, "since"), spend.parse_moment(until, "until")
    return await spend.summary(runtime.db, by, start, end)


@api_get(
    "/spend/ledger",
    "listLedger",
    "The ledger as synced from Aurous, newest first (amounts signed: debits < 0)",
)
async def list_ledger(
    runtime: RuntimeDep,
    type: Annotated[str | None, Parameter(pattern=_TYPES)] = None,
    job: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> Page[LedgerEntry]:
    return await spend.ledger_page(runtime.db, type_=type, job_id=job, cursor=cursor, limit=limit)


@api_get(
    "/spend/findings",
    "listFindings",
    "Where money and jobs disagree (open ones unless status says otherwise)",
)
async def list_findings(
    runtime: RuntimeDep,
    status: Annotated[str, Parameter(pattern="^(open|resolved|all)$")] = "open",
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=10_000)] = 1000,
) -> Page[Finding]:
    return await spend.findings(runtime.db, status, cursor=cursor, limit=limit)


@api_get(
    "/spend/export.csv",
    "exportSpendCsv",
    "One CSV row per job: ids, status, times, held/charged/released/refunded, findings",
    media_type="text/csv",
)
async def export_spend_csv(
    runtime: RuntimeDep,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> Response[str]:
    start, end = spend.parse_moment(since, "since"), spend.parse_moment(until, "until")
    body = await spend.export_csv(runtime.db, start, end)
    headers = {"Content-Disposition": 'attachment; filename="spend.csv"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@api_get(
    "/spend/balance",
    "getSpendBalance",
    "The latest balance snapshot and the runway at the last 7 days' spend",
)
async def get_spend_balance(runtime: RuntimeDep) -> RunwayView:
    return (await spend.runway(runtime.db, utcnow())).view()


@api_post(
    "/spend/sync",
    "runAudit",
    "Sync the ledger, snapshot the balance and evaluate findings now",
    status_code=200,
)
async def run_audit(runtime: RuntimeDep) -> AuditRun:
    if runtime.audit is None:
        raise ReceiverError(503, "not_configured", "AUROUS_API_KEY is not set")
    report = await runtime.audit.run("manual")
    runway = await spend.runway(runtime.db, utcnow())
    return AuditRun(
        ran=report.ran,
        ledger=LedgerSyncView(report.sync.pages, report.sync.new),
        complete=report.sync.complete,
        error=report.error,
        balance_consistent=report.consistent,
        new_findings=[d.code + ":" + d.subject for d in report.new_findings],
        resolved=report.resolved,
        adopted=report.adopted,
        runway=runway.view(),
    )
