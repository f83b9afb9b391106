"""Webhook deliveries as stored: processed, duplicate, quarantined, and rejected with reasons."""

from __future__ import annotations

from typing import Annotated

from litestar.params import FromQuery, Parameter

from receiver.runtime import RuntimeDep
from receiver.shapes import Listing, Page
from receiver.web.http import api_get
from receiver.webhooks import views
from receiver.webhooks.views import Delivery, RejectionCount

__all__ = ["list_deliveries", "list_rejection_counts"]


@api_get("/deliveries", "listDeliveries", "Webhook deliveries, newest first")
async def list_deliveries(
    runtime: RuntimeDep,
    status: Annotated[
        str | None, Parameter(pattern="^(processed|duplicate|quarantined|rejected)$")
    ] = None,
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
) -> Page[Delivery]:
    return await views.list_deliveries(runtime.db, status=status, cursor=cursor, limit=limit)


@api_get(
    "/deliveries/rejections",
    "countRejections",
    "How many requests were rejected, by reason, since the start",
)
async def list_rejection_counts(runtime: RuntimeDep) -> Listing[RejectionCount]:
    return Listing(await views.rejection_counts(runtime.db))
