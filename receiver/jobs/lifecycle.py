"""The job state machine and `record_observations`, the one path by which job state changes.

Status only moves forward (pending < queued < processing < terminal); a terminal status never
changes; a different terminal status arriving later is kept as an unapplied event. News may
come by webhook, poll, sweep or the create call, in any order and any number of times.

Observations are applied in batches: the jobs are read (and on PostgreSQL locked) once, each
observation is decided in order in memory, and the changes are written with one statement per
kind of change. A batch of one is the same path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from receiver.generation import GenerationResponse, generation_kind, parse_timestamp, to_micros
from storage import gateway
from storage.db import Database

__all__ = [
    "NON_TERMINAL",
    "TERMINAL",
    "ConcurrentInsert",
    "Decision",
    "Observation",
    "ObservationResult",
    "decide",
    "observe",
    "poll_interval",
    "record_observation",
    "record_observations",
    "source_kind",
    "track_job",
    "write_retrying_races",
]

T = TypeVar("T")

NON_TERMINAL = ("pending", "queued", "processing")
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired", "moderation_rejected"})
_RANK = {status: rank for rank, status in enumerate(NON_TERMINAL)} | dict.fromkeys(TERMINAL, 3)
_UNKNOWN_RANK = -1
EXPECTED_DURATION = {"image": timedelta(seconds=30), "video": timedelta(minutes=3)}
POLL_INTERVAL_CAP = timedelta(minutes=30)


def poll_interval(kind: str, attempts: int) -> timedelta:
    """How long to wait before asking Aurous about a running job again: its expected
    duration, doubling with every poll that found it still running, capped."""
    expected = EXPECTED_DURATION.get(kind, timedelta(minutes=1))
    interval: timedelta = expected * 2 ** min(attempts, 16)
    return min(POLL_INTERVAL_CAP, interval)


class ConcurrentInsert(RuntimeError):
    """Another transaction created one of these jobs first; retry the transaction."""


def rank(status: str) -> int:
    return _RANK.get(status, _UNKNOWN_RANK)


def is_known(status: str) -> bool:
    return status in _RANK


@dataclass(frozen=True, slots=True)
class Decision:
    apply: bool
    event_note: str | None = None  # an event is recorded when there is a note ("" = plain)
    refresh_outputs: bool = False


def decide(current: str | None, observed: str) -> Decision:
    """What an observation of `observed` does to a job whose status is `current`."""
    if current is None:
        unknown = f"first seen with unknown status {observed!r}"
        return Decision(apply=True, event_note="first seen" if is_known(observed) else unknown)
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
    status: str  # the job's status after the observation
    applied: bool
    created: bool
    has_pending_outputs: bool
    source: str = "api"  # webhook | poll | sweep | api
    observed: str = ""  # the status the observation reported


def source_kind(source: str) -> str:
    return source.split(":", 1)[0]


async def record_observation(
    conn: AsyncConnection, observation: Observation, *, output_ttl_s: int
) -> ObservationResult:
    [result] = await record_observations(conn, [observation], output_ttl_s=output_ttl_s)
    return result


async def record_observations(
    conn: AsyncConnection, observations: Sequence[Observation], *, output_ttl_s: int
) -> list[ObservationResult]:
    """Apply observations, in order, inside the caller's transaction.

    Raises `ConcurrentInsert` when another transaction created one of the jobs meanwhile
    (PostgreSQL only); the caller retries its transaction, which then sees that job.
    """
    if not observations:
        return []
    existing = await gateway.lock_jobs(conn, list({o.generation.id for o in observations}))
    plan = _Plan(existing, output_ttl_s)
    results = [plan.observe(observation) for observation in observations]
    await plan.write(conn)
    return results


@dataclass(slots=True)
class _JobState:
    status: str
    kind: str
    created_at: datetime | None
    completed_at: datetime | None
    next_poll_at: datetime | None = None
    poll_attempts: int = 0

    @classmethod
    def of(cls, row: Row[Any]) -> _JobState:
        return cls(
            row.status,
            row.kind,
            row.created_at,
            row.completed_at,
            row.next_poll_at,
            row.poll_attempts,
        )


@dataclass
class _Plan:
    """The writes a batch of observations amounts to, decided in memory in arrival order."""

    existing: dict[str, Row[Any]]
    output_ttl_s: int
    states: dict[str, _JobState] = field(default_factory=dict)
    new_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    observed: dict[str, datetime] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def observe(self, observation: Observation) -> ObservationResult:
        job_id = observation.generation.id
        known = self._state(job_id)
        decision = decide(known.status if known else None, observation.generation.status)
        created = known is None
        if known is None:
            values = self.new_jobs[job_id] = _new_job_values(observation)
            state = self.states[job_id] = _JobState(
                values["status"],
                values["kind"],
                values["created_at"],
                values["completed_at"],
                values["next_poll_at"],
            )
        else:
            state = known
        if decision.apply and not created:
            self._change(job_id, _transition_values(observation, state))
        previous = None if created else state.status
        if decision.apply and not created:
            state.status = observation.generation.status
        self._note_observed(job_id, observation.observed_at)
        self._schedule_poll(job_id, state, observation.observed_at)
        if decision.event_note is not None:
            self.events.append(_event_row(observation, previous, decision))
        pending = self._plan_outputs(observation, state, decision)
        return ObservationResult(
            job_id,
            state.status,
            decision.apply,
            created,
            pending,
            source_kind(observation.source),
            observation.generation.status,
        )

    def _state(self, job_id: str) -> _JobState | None:
        if job_id not in self.states and job_id in self.existing:
            self.states[job_id] = _JobState.of(self.existing[job_id])
        return self.states.get(job_id)

    def _change(self, job_id: str, values: dict[str, Any]) -> None:
        target = self.new_jobs.get(job_id)
        if target is None:
            target = self.changes.setdefault(job_id, {})
        target.update(values)
        state = self.states[job_id]
        state.completed_at = target.get("completed_at", state.completed_at)
        state.created_at = target.get("created_at", state.created_at)
        state.kind = target.get("kind", state.kind)

    def _note_observed(self, job_id: str, at: datetime) -> None:
        self.observed[job_id] = max(at, self.observed.get(job_id, at))

    def _schedule_poll(self, job_id: str, state: _JobState, at: datetime) -> None:
        """Any news of a running job postpones its next poll; a finished job needs none."""
        if state.status in TERMINAL:
            next_poll = None
        else:
            next_poll = at + poll_interval(state.kind, state.poll_attempts)
            if state.next_poll_at is not None:
                next_poll = max(next_poll, state.next_poll_at)
        if next_poll != state.next_poll_at:
            state.next_poll_at = next_poll
            self._change(job_id, {"next_poll_at": next_poll})

    def _plan_outputs(self, observation: Observation, state: _JobState, decision: Decision) -> bool:
        generation = observation.generation
        if generation.status != "succeeded" or not (decision.apply or decision.refresh_outputs):
            return False
        urls = generation.output_sources()
        if not urls:
            return False
        completed = state.completed_at or _completed_at(observation)
        deadline = completed + timedelta(seconds=self.output_ttl_s)
        self.outputs[generation.id] = [
            {
                "job_id": generation.id,
                "position": i,
                "source_url": url,
                "deadline": deadline,
                "state": "pending",
            }
            for i, url in enumerate(urls)
        ]
        return True

    async def write(self, conn: AsyncConnection) -> None:
        for job_id, at in self.observed.items():
            if job_id in self.new_jobs:
                self.new_jobs[job_id]["last_observed_at"] = at
            else:
                self.changes.setdefault(job_id, {})["last_observed_at"] = at
        inserted = await gateway.insert_jobs(conn, list(self.new_jobs.values()))
        if len(inserted) != len(self.new_jobs):
            raise ConcurrentInsert(f"jobs created concurrently: {set(self.new_jobs) - inserted}")
        await gateway.update_jobs(conn, self.changes)
        await gateway.insert_job_events(conn, self.events)
        await gateway.upsert_outputs(conn, [row for rows in self.outputs.values() for row in rows])


def _event_row(
    observation: Observation, previous: str | None, decision: Decision
) -> dict[str, Any]:
    return {
        "job_id": observation.generation.id,
        "at": observation.observed_at,
        "source": observation.source,
        "from_status": previous,
        "to_status": observation.generation.status,
        "applied": decision.apply,
        "note": decision.event_note or None,
    }


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
        "error_message": generation.error_message,
        "last_response": msgspec.json.encode(generation),
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


_NEW_JOB_DEFAULTS: dict[str, Any] = {
    "next_poll_at": None,
    "completed_at": None,
    "terminal_via": None,
    "cost_micros": None,
    "cost_state": None,
    "cost_currency": "credit",
    "model": None,
}


def _new_job_values(observation: Observation) -> dict[str, Any]:
    generation = observation.generation
    return {
        **_NEW_JOB_DEFAULTS,
        "id": generation.id,
        "kind": generation_kind(generation),
        "first_seen_via": source_kind(observation.source),
        "first_seen_at": observation.observed_at,
        "created_at": parse_timestamp(generation.created_at),
        "poll_attempts": 0,
        **_state_values(observation),
        "next_poll_at": _first_poll_at(observation),
    }


def _transition_values(observation: Observation, state: _JobState) -> dict[str, Any]:
    values = _state_values(observation)
    if state.created_at is None:
        values["created_at"] = parse_timestamp(observation.generation.created_at)
    if state.kind == "unknown":
        values["kind"] = generation_kind(observation.generation)
    return values


def _first_poll_at(observation: Observation) -> datetime:
    kind = generation_kind(observation.generation)
    started = parse_timestamp(observation.generation.created_at) or observation.observed_at
    expected = EXPECTED_DURATION.get(kind, timedelta(minutes=1))
    return max(started, observation.observed_at) + expected


async def track_job(conn: AsyncConnection, job_id: str, at: datetime) -> bool:
    """Start tracking a job known only by id; polling fills in its state. False if known."""
    prefixes = {"vid_": "video", "img_": "image"}
    kind = next((k for p, k in prefixes.items() if job_id.startswith(p)), "unknown")
    created = await gateway.insert_job(
        conn,
        {
            **_NEW_JOB_DEFAULTS,
            "id": job_id,
            "kind": kind,
            "status": "pending",
            "terminal": False,
            "first_seen_via": "api",
            "first_seen_at": at,
            "last_observed_at": at,
            "next_poll_at": at,
            "created_at": None,
            "poll_attempts": 0,
            "error_message": None,
            "last_response": None,
        },
    )
    if created:
        await gateway.insert_job_events(
            conn,
            [
                {
                    "job_id": job_id,
                    "at": at,
                    "source": "api",
                    "from_status": None,
                    "to_status": "pending",
                    "applied": True,
                    "note": "tracked by id",
                }
            ],
        )
    return created


async def observe(
    db: Database, observations: Sequence[Observation], *, output_ttl_s: int, attempts: int = 5
) -> list[ObservationResult]:
    """Record observations in their own transaction (see `write_retrying_races`)."""
    return await write_retrying_races(
        db,
        lambda conn: record_observations(conn, observations, output_ttl_s=output_ttl_s),
        attempts=attempts,
    )


async def write_retrying_races(
    db: Database, work: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = 5
) -> T:
    """`work` in one write transaction, run again when another replica created one of its
    jobs at the same moment (`ConcurrentInsert`): the retry then sees that job."""
    for attempt in range(1, attempts + 1):
        try:
            return await db.write_batch(work)
        except ConcurrentInsert:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")
