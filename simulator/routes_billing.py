"""GET /v1/balance (§8.1) and the credit ledger GET /v1/usage/events (§8.2 contract (a))."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from simulator.billing import LEDGER_TYPES
from simulator.errors import ApiError, validation_error
from simulator.http import guard, json_response

__all__ = ["BILLING_ROUTES"]

AnyRequest = Request[Any, Any, Any]


@get("/v1/balance")
async def balance(request: AnyRequest) -> Response[bytes]:
    sim = guard(request, "get")
    sim.stats.incr("gets", "balance")
    return json_response(sim.ledger.balance())


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    if not raw.isdigit():
        raise validation_error("invalid_format", "limit", "'limit' must be an integer.")
    if not 1 <= int(raw) <= 100:
        raise validation_error("value_out_of_range", "limit", "'limit' must be 1 to 100.")
    return int(raw)


@get("/v1/usage/events")
async def usage_events(request: AnyRequest) -> Response[bytes]:
    sim = guard(request, "get")
    sim.stats.incr("gets", "usage_events")
    query = request.query_params
    kind = query.get("type")
    if kind is not None and kind not in LEDGER_TYPES:
        raise validation_error("invalid_format", "type", f"'type' must be one of {LEDGER_TYPES}.")
    after = query.get("starting_after")
    if after is not None and not sim.ledger.has(after):
        raise ApiError(404, "resource_not_found", "No such usage event.", param="starting_after")
    rows, has_more = sim.ledger.page(
        limit=_limit(query.get("limit")), starting_after=after, kind=kind
    )
    return json_response(
        {
            "object": "list",
            "data": [row.to_json() for row in rows],
            "has_more": has_more,
            "next_cursor": rows[-1].id if has_more and rows else None,
        }
    )


BILLING_ROUTES = [balance, usage_events]
