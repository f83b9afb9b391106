"""The event feed: a page from a cursor (long-polling with `wait`), a live Server-Sent Events
stream, and the replay of one event to one destination."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.response import Stream

from receiver.relay.events import Event
from receiver.relay.feed import MAX_WAIT_S
from receiver.relay.replay import replay_event
from receiver.runtime import RuntimeDep
from receiver.shapes import Page, decode_number_cursor
from receiver.web.http import ERROR_RESPONSES, api_get, api_post
from receiver.web.routes.destinations import Replayed

__all__ = ["list_events", "replay_one_event", "stream_events"]


class ReplayRequest(msgspec.Struct, frozen=True):
    destination: str  # dst_…


_PAGE = {
    200: ResponseSpec(data_container=Page[Event], description="Events, oldest first"),
    **ERROR_RESPONSES,
}


@api_get(
    "/events",
    "listEvents",
    "Events from a cursor, oldest first; `wait` holds the answer until one comes (up to 30 s)",
    responses=_PAGE,
)
async def list_events(
    runtime: RuntimeDep,
    after: FromQuery[str | None] = None,
    types: FromQuery[str | None] = None,
    job_id: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    wait: Annotated[float, Parameter(ge=0, le=MAX_WAIT_S)] = 0,
) -> Response[bytes]:
    wanted = [t for t in (types or "").split(",") if t]
    body = await runtime.feed.page(
        after=decode_number_cursor(after) or 0,
        types=wanted,
        job_id=job_id,
        limit=limit,
        wait_s=wait,
    )
    return Response(body, media_type="application/json")


@api_get(
    "/events/stream",
    "streamEvents",
    "Server-Sent Events (id: the event id), from `after` or the `Last-Event-ID` header",
    media_type="text/event-stream",
)
async def stream_events(
    request: Request[Any, Any, Any], runtime: RuntimeDep, after: FromQuery[str | None] = None
) -> Stream:
    last = request.headers.get("last-event-id")
    start = await runtime.feed.position_of(last) if last else decode_number_cursor(after) or 0
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return Stream(runtime.feed.stream(start), media_type="text/event-stream", headers=headers)


@api_post(
    "/events/{event_id:str}/replay",
    "replayEvent",
    "Push one event to one destination again, with its original id",
    status_code=200,
)
async def replay_one_event(
    runtime: RuntimeDep, event_id: FromPath[str], data: JSONBody[ReplayRequest]
) -> Replayed:
    replayed = await replay_event(runtime.db, event_id, data.destination)
    runtime.pusher.kick()
    return Replayed(replayed)
