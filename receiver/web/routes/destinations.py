"""Destinations: the customer's endpoints that events are pushed to, their attempts, secret
rotation, and replay of a time range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from receiver.errors import ReceiverError
from receiver.relay.destinations import (
    CreatedDestination,
    Destination,
    DestinationChange,
    NewDestination,
)
from receiver.relay.replay import replay_range
from receiver.runtime import RuntimeDep
from receiver.settings import SettingsError, parse_duration
from receiver.shapes import Listing, Page, decode_number_cursor, view_of
from receiver.web.http import api_delete, api_get, api_patch, api_post
from storage import gateway
from storage.records import PushAttemptRecord

__all__ = [
    "create_destination",
    "get_destination",
    "list_destinations",
    "list_push_attempts",
    "remove_destination",
    "replay_to_destination",
    "rotate_destination_secret",
    "update_destination",
]

DestinationId = FromPath[str]


class PushAttempt(PushAttemptRecord, frozen=True):
    """One attempt to push an event: the answer's status (none if no answer came), latency
    and first KiB, or the error."""


class Rotation(msgspec.Struct, frozen=True):
    grace: str = "24h"  # how long the previous secret keeps signing too (e.g. 0, 90m, 24h)


class Window(msgspec.Struct, frozen=True):
    since: datetime
    until: datetime


class Replayed(msgspec.Struct, frozen=True):
    replayed: int  # events set to be pushed again, with their original ids


@api_post(
    "/destinations",
    "createDestination",
    "Add a destination; its signing secret is in the answer, this once",
    status_code=201,
)
async def create_destination(
    runtime: RuntimeDep, data: JSONBody[NewDestination]
) -> CreatedDestination:
    return await runtime.destinations.add(data)


@api_get("/destinations", "listDestinations", "Every destination, with how its pushes stand")
async def list_destinations(runtime: RuntimeDep) -> Listing[Destination]:
    return Listing(await runtime.destinations.list_all())


@api_get("/destinations/{destination_id:str}", "getDestination", "One destination")
async def get_destination(runtime: RuntimeDep, destination_id: DestinationId) -> Destination:
    return await runtime.destinations.get(destination_id)


@api_patch(
    "/destinations/{destination_id:str}",
    "updateDestination",
    "Change a destination's URL, filter or label, or enable or disable it",
)
async def update_destination(
    runtime: RuntimeDep, destination_id: DestinationId, data: JSONBody[DestinationChange]
) -> Destination:
    changed = await runtime.destinations.change(destination_id, data)
    if changed.state == "enabled":
        runtime.pusher.kick()  # what it missed goes out now
    return changed


@api_delete(
    "/destinations/{destination_id:str}",
    "removeDestination",
    "Remove a destination with its pushes and attempts",
    status_code=204,
)
async def remove_destination(runtime: RuntimeDep, destination_id: DestinationId) -> None:
    await runtime.destinations.remove(destination_id)


@api_get(
    "/destinations/{destination_id:str}/attempts",
    "listPushAttempts",
    "Attempts to push events to a destination, newest first",
)
async def list_push_attempts(
    runtime: RuntimeDep,
    destination_id: DestinationId,
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> Page[PushAttempt]:
    await runtime.destinations.get(destination_id)  # 404 for an unknown destination
    before = decode_number_cursor(cursor)
    rows = await runtime.db.read(
        lambda conn: gateway.list_push_attempts(
            conn, destination_id, before_id=before, limit=limit + 1
        )
    )
    page, more = rows[:limit], len(rows) > limit
    return Page([view_of(PushAttempt, r) for r in page], more, str(page[-1].id) if more else None)


@api_post(
    "/destinations/{destination_id:str}/rotate-secret",
    "rotateDestinationSecret",
    "A new signing secret; the previous one keeps signing too for the grace period",
    status_code=200,
)
async def rotate_destination_secret(
    runtime: RuntimeDep, destination_id: DestinationId, data: JSONBody[Rotation | None] = None
) -> CreatedDestination:
    try:
        grace = timedelta(seconds=parse_duration((data or Rotation()).grace))
    except SettingsError as exc:
        raise ReceiverError(400, "invalid_grace", str(exc), param="grace") from None
    return await runtime.destinations.rotate_secret(destination_id, grace)


@api_post(
    "/destinations/{destination_id:str}/replay",
    "replayToDestination",
    "Push every event of [since, until) that the destination wants again, with the same ids",
    status_code=200,
)
async def replay_to_destination(
    runtime: RuntimeDep, destination_id: DestinationId, data: JSONBody[Window]
) -> Replayed:
    replayed = await replay_range(runtime.db, destination_id, data.since, data.until)
    runtime.pusher.kick()
    return Replayed(replayed)
