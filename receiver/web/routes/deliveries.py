"""Webhook deliveries as stored: processed, duplicate, quarantined, and rejected with reasons."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import Parameter

from receiver.runtime import RuntimeDep
from receiver.web.http import ERROR_RESPONSES
from storage import gateway

__all__ = ["list_deliveries", "list_rejection_counts"]


@get(
    "/deliveries",
    responses=ERROR_RESPONSES,
    operation_id="listDeliveries",
    summary="Webhook deliveries, newest first",
)
async def list_deliveries(
    runtime: RuntimeDep,
    status: Annotated[
        str | None, Parameter(pattern="^(processed|duplicate|quarantined|rejected)$")
    ] = None,
    cursor: Annotated[int | None, Parameter(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    async with runtime.db.read() as conn:
        rows = await gateway.list_deliveries(conn, status=status, before_id=cursor, limit=limit + 1)
    page = rows[:limit]
    has_more = len(rows) > limit
    return {
        "data": [_delivery_view(r._mapping) for r in page],
        "has_more": has_more,
        "next_cursor": page[-1].id if has_more else None,
    }


@get(
    "/deliveries/rejections",
    responses=ERROR_RESPONSES,
    operation_id="countRejections",
    summary="How many requests were rejected, by reason, since the start",
)
async def list_rejection_counts(runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.db.read() as conn:
        rows = await gateway.rejection_counts(conn)
    return {"data": [{"reason": r.reason, "count": r.count, "last_at": r.last_at} for r in rows]}


def _delivery_view(row: Any) -> dict[str, Any]:
    view = dict(row)
    view["reason"] = view.pop("reject_reason")
    return view
