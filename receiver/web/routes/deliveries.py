"""Webhook deliveries as stored: processed, duplicate, quarantined, and rejected with reasons."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import FromQuery, Parameter

from receiver.paging import Listing, Page
from receiver.runtime import RuntimeDep
from receiver.web.http import ERROR_RESPONSES
from receiver.webhooks import views
from receiver.webhooks.views import Delivery, RejectionCount

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
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
) -> Page[Delivery]:
    return await views.list_deliveries(runtime.db, status=status, cursor=cursor, limit=limit)


@get(
    "/deliveries/rejections",
    responses=ERROR_RESPONSES,
    operation_id="countRejections",
    summary="How many requests were rejected, by reason, since the start",
)
async def list_rejection_counts(runtime: RuntimeDep) -> Listing[RejectionCount]:
    return Listing(await views.rejection_counts(runtime.db))
