"""The job state machine and `record_observation`, the one path by which job state changes.

Status only moves forward (pending < queued < processing < terminal); a terminal status never
changes; a different terminal status arriving later is kept as an unapplied event. News may
come by webhook, poll, sweep or the create call, in any order and any number of times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from receiver.envelope import (
    GenerationResponse,
    generation_kind,
    parse_timestamp,
    to_micros,
)
from storage import gateway

__all__ = [
    "NON_TERMINAL",
    "TERMINAL",
    "Decision",
    "Observation",
    "ObservationResult",
    "decide",
    "record_observation",
    "source_kind",
    "track_job",
]

NON_TERMINAL = ("pending", "queued", "processing")
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired", "moderation_rejected"})
_RANK = {status: rank for rank, status in enumerate(NON_TERMINAL)} | dict.fromkeys(TERMINAL, 3)
_UNKNOWN_RANK = -1
EXPECTED_DURATION = {"image": timedelta(seconds=30), "video": timedelta(minutes=3)}


def rank(status: str) -> int:
    return _RANK.get(status, _UNKNOWN_RANK)


def is_known(status: str) -> bool:
    return status in _RANK


@dataclass(frozen=True, slots=True)
class Decision:
    apply: bool
    event_note: str | None = None  # an event is recorded when there is a note
    refresh_outputs: bool = False


def decide(current: str | None, observed: str) -> Decision:
    """What an observation of `observed` does to a job whose status is `current`."""
    if current is None:
        note = (
            "first seen" if is_known(observed) else f"first seen with unknown status {observed!r}"
        )
        return Decision(apply=True, event_note=note)
    if current in TERMINAL:
        if observed == current:
            return Decision(apply=False, refresh_outputs=observed == "succeeded")
        if observed in TERMINAL:
            return Decision(apply=False, event_note=f"contradiction: {observed} after {current}")
        return Decision(apply=False)  # a late non-terminal report: stale, nothing to do
    if not is_known(observed):
        if observed == current:
            return Decision(apply=False)
        return Decision(apply=False, event_note=f"unknown status {observed!r} not applied")
    if rank(observed) > rank(current):
        return Decision(apply=True, event_note="")
    return Decision(apply=False)


@dataclass(frozen=True, slots=True)
class Observation:
    generation: GenerationResponse
    source: str  # "webhook:evt_…" | "poll" | "sweep" | "api"
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class ObservationResult:
    job_id: str
    status: str
    applied: bool
    created: bool
    has_pending_outputs: bool


def source_kind(source: str) -> str:
    return source.split(":", 1)[0]


async def record_observation(
    conn: AsyncConnection, observation: Observation, *, output_ttl_s: int
) -> ObservationResult:
    """Apply one observation inside the caller's transaction."""
    generation = observation.generation
    current = await gateway.lock_job(conn, generation.id)
    created = False
    if current is None:
        created = await gateway.insert_job(conn, _new_job_values(observation))
        if not created:  # another transaction inserted it first; apply on top of theirs
            current = await gateway.lock_job(conn, generation.id)
    previous = None if created or current is None else current.status
    decision = decide(previous, generation.status)
    if decision.apply and not created:
        await gateway.update_job(conn, generation.id, _transition_values(observation, current))
    elif not created:
        await gateway.update_job(conn, generation.id, {"last_observed_at": observation.observed_at})
    if decision.event_note is not None:
        await _record_event(conn, observation, previous, decision)
    pending = await _sync_outputs(conn, observation, current, decision, output_ttl_s)
    status = generation.status if decision.apply else (current.status if current else "")
    return ObservationResult(generation.id, status, decision.apply, created, pending)


async def _record_event(
    conn: AsyncConnection, observation: Observation, previous: str | None, decision: Decision
) -> None:
    await gateway.insert_job_event(
        conn,
        {
            "job_id": observation.generation.id,
            "at": observation.observed_at,
            "source": observation.source,
            "from_status": previous,
            "to_status": observation.generation.status,
            "applied": decision.apply,
            "note": decision.event_note or None,
        },
    )


async def _sync_outputs(
    conn: AsyncConnection,
    observation: Observation,
    current: Row[Any] | None,
    decision: Decision,
    output_ttl_s: int,
) -> bool:
    generation = observation.generation
    if generation.status != "succeeded" or not (decision.apply or decision.refresh_outputs):
        return False
    urls = generation.output_sources()
    if not urls:
        return False
    completed = _completed_at(observation)
    if current is not None and current.completed_at is not None:
        completed = current.completed_at
    deadline = completed + timedelta(seconds=output_ttl_s)
    await gateway.upsert_outputs(conn, generation.id, urls, deadline)
    return True


def _completed_at(observation: Observation) -> datetime:
    # Without a completed_at, the observation time is the latest the job can have finished.
    return parse_timestamp(observation.generation.completed_at) or observation.observed_at


def _state_values(observation: Observation) -> dict[str, Any]:
    generation = observation.generation
    terminal = generation.status in TERMINAL
    cost = generation.cost
    values: dict[str, Any] = {
        "status": generation.status,
        "terminal": terminal,
        "last_observed_at": observation.observed_at,
        "error_message": generation.error_message,
        "last_response": msgspec.json.encode(generation),
        "next_poll_at": None if terminal else _first_poll_at(observation),
    }
    if terminal:
        values["completed_at"] = _completed_at(observation)
        values["terminal_via"] = source_kind(observation.source)
    if cost is not None and cost.amount is not None:
        values["cost_micros"] = to_micros(cost.amount)
        values["cost_state"] = "charged" if terminal else "held"
        values["cost_currency"] = cost.currency or "credit"
    if generation.model():
        values["model"] = generation.model()
    return values


def _new_job_values(observation: Observation) -> dict[str, Any]:
    generation = observation.generation
    return {
        "id": generation.id,
        "kind": generation_kind(generation),
        "first_seen_via": source_kind(observation.source),
        "first_seen_at": observation.observed_at,
        "created_at": parse_timestamp(generation.created_at),
        **_state_values(observation),
    }


def _transition_values(observation: Observation, current: Row[Any] | None) -> dict[str, Any]:
    values = _state_values(observation)
    if current is not None and current.created_at is None:
        values["created_at"] = parse_timestamp(observation.generation.created_at)
    if current is not None and current.kind == "unknown":
        values["kind"] = generation_kind(observation.generation)
    return values


def _first_poll_at(observation: Observation) -> datetime:
    kind = generation_kind(observation.generation)
    started = parse_timestamp(observation.generation.created_at) or observation.observed_at
    return max(started, observation.observed_at) + EXPECTED_DURATION.get(kind, timedelta(minutes=1))


async def track_job(conn: AsyncConnection, job_id: str, at: datetime) -> bool:
    """Start tracking a job known only by id; polling fills in its state. False if known."""
    kind = (
        "video"
        if job_id.startswith("vid_")
        else "image"
        if job_id.startswith("img_")
        else "unknown"
    )
    created = await gateway.insert_job(
        conn,
        {
            "id": job_id,
            "kind": kind,
            "status": "pending",
            "terminal": False,
            "first_seen_via": "api",
            "first_seen_at": at,
            "last_observed_at": at,
            "next_poll_at": at,
        },
    )
    if created:
        await gateway.insert_job_event(
            conn,
            {
                "job_id": job_id,
                "at": at,
                "source": "api",
                "from_status": None,
                "to_status": "pending",
                "applied": True,
                "note": "tracked by id",
            },
        )
    return created
