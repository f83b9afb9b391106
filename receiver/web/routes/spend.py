"""Spend: the summary, the local copy of the ledger, findings, the per-job CSV, and a way to
run the audit now."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from litestar import Response, get, post
from litestar.params import FromQuery, Parameter

from receiver.runtime import RuntimeDep
from receiver.spend import reports as spend
from receiver.spend.rules import LEDGER_TYPES
from receiver.web.http import ERROR_RESPONSES, ApiError
from storage.types import utcnow

__all__ = [
    "export_spend_csv",
    "get_spend_balance",
    "get_spend_summary",
    "list_findings",
    "list_ledger",
    "run_audit",
]

T = TypeVar("T")
_TYPES = "^(" + "|".join(sorted(LEDGER_TYPES)) + ")$"


async def _checked(report: Awaitable[T]) -> T:
    try:
        return await report
    except spend.ReportError as exc:
        raise ApiError(400, "invalid_parameter", str(exc), param=exc.param) from None


def _window(since: str | None, until: str | None) -> dict[str, Any]:
    try:
        return {
            "since": spend.parse_moment(since, "since"),
            "until": spend.parse_moment(until, "until"),
        }
    except spend.ReportError as exc:
        raise ApiError(400, "invalid_parameter", str(exc), param=exc.param) from None


@get(
    "/spend/summary",
    responses=ERROR_RESPONSES,
    operation_id="getSpendSummary",
    summary="Credits charged, held, released and refunded, in total and per day/kind/model/status",
)
async def get_spend_summary(
    runtime: RuntimeDep,
    by: FromQuery[str] = "day",
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> dict[str, Any]:
    return await _checked(spend.summary(runtime.db, by, **_window(since, until)))


@get(
    "/spend/ledger",
    responses=ERROR_RESPONSES,
    operation_id="listLedger",
    summary="The ledger as synced from Aurous, newest first (amounts signed: debits < 0)",
)
async def list_ledger(
    runtime: RuntimeDep,
    type: Annotated[str | None, Parameter(pattern=_TYPES)] = None,
    job: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    page = spend.ledger_page(runtime.db, type_=type, job_id=job, cursor=cursor, limit=limit)
    return await _checked(page)


@get(
    "/spend/findings",
    responses=ERROR_RESPONSES,
    operation_id="listFindings",
    summary="Where money and jobs disagree (open ones unless status says otherwise)",
)
async def list_findings(
    runtime: RuntimeDep,
    status: Annotated[str, Parameter(pattern="^(open|resolved|all)$")] = "open",
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    return await _checked(spend.findings(runtime.db, status, cursor=cursor, limit=limit))


@get(
    "/spend/export.csv",
    responses=ERROR_RESPONSES,
    operation_id="exportSpendCsv",
    summary="One CSV row per job: ids, status, times, held/charged/released/refunded, findings",
    media_type="text/csv",
)
async def export_spend_csv(
    runtime: RuntimeDep,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> Response[str]:
    body = await spend.export_csv(runtime.db, **_window(since, until))
    headers = {"Content-Disposition": 'attachment; filename="spend.csv"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@get(
    "/spend/balance",
    responses=ERROR_RESPONSES,
    operation_id="getSpendBalance",
    summary="The latest balance snapshot and the runway at the last 7 days' spend",
)
async def get_spend_balance(runtime: RuntimeDep) -> dict[str, Any]:
    return (await spend.runway(runtime.db, utcnow())).view()


@post(
    "/spend/sync",
    responses=ERROR_RESPONSES,
    operation_id="runAudit",
    status_code=200,
    summary="Sync the ledger, snapshot the balance and evaluate findings now",
)
async def run_audit(runtime: RuntimeDep) -> dict[str, Any]:
    if runtime.audit is None:
        raise ApiError(503, "not_configured", "AUROUS_API_KEY is not set")
    report = await runtime.audit.run("manual")
    runway = await spend.runway(runtime.db, utcnow())
    return {
        "ran": report.ran,
        "ledger": {"pages": report.sync.pages, "new": report.sync.new},
        "complete": report.sync.complete,
        "error": report.error,
        "balance_consistent": report.consistent,
        "new_findings": [d.code + ":" + d.subject for d in report.new_findings],
        "resolved": report.resolved,
        "adopted": report.adopted,
        "runway": runway.view(),
    }
