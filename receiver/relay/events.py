"""Events as the customer's app receives them, pushed, pulled or streamed: the same JSON
everywhere, `{"id", "type", "created_at", "sequence", "job_id", "data"}`. An output event's
output carries a fresh download link each time it is sent."""

from __future__ import annotations

from datetime import datetime

import msgspec

from receiver.aurous import RawJson
from receiver.jobs.outbox import OUTPUT_EVENTS, OutputData
from receiver.jobs.views import Job, Output
from receiver.relay.links import Links
from receiver.spend.reports import Finding
from storage.records import EventRecord

__all__ = ["Event", "render"]

_OUTPUT_TYPES = frozenset(OUTPUT_EVENTS.values())


class OutputLink(Output, frozen=True):
    download_url: str | None = None  # no admin token needed, until download_expires_at
    download_expires_at: datetime | None = None


class OutputLinkData(msgspec.Struct, frozen=True):
    job: Job
    output: OutputLink


class EventData(msgspec.Struct, frozen=True):
    """What an event carries, by type: `job` for job.* and output.*, `output` for output.*,
    `finding` for spend.finding_opened, `balance` for balance.low."""

    job: Job | None = None  # as GET /jobs/{id} shows it
    output: OutputLink | None = None
    finding: Finding | None = None  # as GET /spend/findings shows it
    balance: RawJson | None = None  # Aurous's usage.balance_low data, as it came


class Event(msgspec.Struct, frozen=True):
    """One event, as every consumer sees it (the shape documented for `GET /events`)."""

    id: str  # evt_…: the same on every delivery of this event (`webhook-id`)
    type: str  # job.<status>, output.archived, output.lost, spend.finding_opened, balance.low
    created_at: datetime
    sequence: int | None  # this job's events, numbered 1, 2, … in the order they happened
    job_id: str | None
    data: EventData


class _Wire(msgspec.Struct, frozen=True):
    id: str
    type: str
    created_at: datetime
    sequence: int | None
    job_id: str | None
    data: msgspec.Raw


_output_data = msgspec.json.Decoder(OutputData)


async def render(event: EventRecord, links: Links) -> bytes:
    """The event's JSON, with fresh download links."""
    data = event.data
    if event.type in _OUTPUT_TYPES:
        data = await _with_link(data, links)
    wire = _Wire(
        event.id, event.type, event.created_at, event.sequence, event.job_id, msgspec.Raw(data)
    )
    return msgspec.json.encode(wire)


async def _with_link(data: bytes, links: Links) -> bytes:
    stored = _output_data.decode(data)
    output = msgspec.convert(msgspec.structs.asdict(stored.output), OutputLink)
    if stored.output.state == "archived" and stored.output.sha256:
        url, expires = await links.link(stored.job.id, output.index, stored.output.sha256)
        output = msgspec.structs.replace(output, download_url=url, download_expires_at=expires)
    return msgspec.json.encode(OutputLinkData(stored.job, output))
