"""The job state machine and the plan of writes a batch of observations amounts to. Pure: no
I/O. The job tracker (`receiver.jobs.tracker`) reads the jobs, asks for a plan, and writes it.

Status only moves forward (pending < queued < processing < terminal); a terminal status never
changes; a different terminal status arriving later is kept as an unapplied event. News may
come by webhook, poll, sweep or the create call, in any order and any number of times.

A batch is decided in arrival order in memory, then written with one statement per kind of
change. A batch of one is the same path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from receiver.generation import (
    GenerationResponse,
    generation_kind,
    kind_of_id,
    parse_timestamp,
    to_micros,
)
from storage.records import (
    UNSET,
    JobRecord,
    JobUpdate,
    NewJob,
    NewJobEvent,
    NewOutput,
    changed_fields,
)
from storage.states import NON_TERMINAL, TERMINAL, CostState, JobKind, JobStatus, OutputState

__all__ = [
    "NON_TERMINAL",
    "TERMINAL",
    "Decision",
    "JobChanges",
    "Observation",
    "ObservationResult",
    "decide",
    "is_known",
    "plan",
    "poll_interval",
    "source_kind",
    "tracked_job",
]

_RANK: dict[str, int] = {status: rank for rank, status in enumerate(NON_TERMINAL)}
_RANK |= dict.fromkeys(TERMINAL, 3)
_UNKNOWN_RANK = -1
EXPECTED_DURATION: dict[str, timedelta] = {
    JobKind.IMAGE: timedelta(seconds=30),
    JobKind.VIDEO: timedelta(minutes=3),
}
POLL_INTERVAL_CAP = timedelta(minutes=30)


def poll_interval(kind: str, attempts: int) -> timedelta:
    """How long to wait before asking Aurous about a running job again: its expected
    duration, doubling with every poll that found it still running, capped."""
    expected = EXPECTED_DURATION.get(kind, timedelta(minutes=1))
    interval: timedelta = expected * 2 ** min(attempts, 16)
    return min(POLL_INTERVAL_CAP, interval)


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
            return Decision(apply=False, refresh_outputs=observed == JobStatus.SUCCEEDED)
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


@dataclass
class JobChanges:
    """The typed writes a batch of observations amounts to."""

    new_jobs: dict[str, NewJob] = field(default_factory=dict)
    updates: dict[str, JobUpdate] = field(default_factory=dict)
    events: list[NewJobEvent] = field(default_factory=list)
    outputs: list[NewOutput] = field(default_factory=list)


def plan(
    existing: Mapping[str, JobRecord], observations: Sequence[Observation], output_ttl_s: int
) -> tuple[list[ObservationResult], JobChanges]:
    """Decide `observations` in order against the jobs as stored (`existing`)."""
    planner = _Planner(existing, output_ttl_s)
    results = [planner.observe(observation) for observation in observations]
    return results, planner.finish()


def tracked_job(job_id: str, at: datetime) -> tuple[NewJob, NewJobEvent]:
    """A job known only by its id, to be polled for its state."""
    job = NewJob(
        id=job_id,
        kind=kind_of_id(job_id),
        status=JobStatus.PENDING,
        terminal=False,
        first_seen_via="api",
        first_seen_at=at,
        last_observed_at=at,
        next_poll_at=at,
    )
    event = NewJobEvent(job_id, at, "api", None, JobStatus.PENDING, True, "tracked by id")
    return job, event


@dataclass(slots=True)
class _JobState:
    """The planner's working view of one job."""

    status: str
    kind: str
    created_at: datetime | None
    completed_at: datetime | None
    next_poll_at: datetime | None = None
    poll_attempts: int = 0


@dataclass
class _Planner:
    existing: Mapping[str, JobRecord]
    output_ttl_s: int
    states: dict[str, _JobState] = field(default_factory=dict)
    changes: JobChanges = field(default_factory=JobChanges)
    observed: dict[str, datetime] = field(default_factory=dict)
    outputs: dict[str, list[NewOutput]] = field(default_factory=dict)

    def observe(self, observation: Observation) -> ObservationResult:
        generation = observation.generation
        known = self._state(generation.id)
        decision = decide(known.status if known else None, generation.status)
        created = known is None
        state = known or self._create(observation)
        previous = None if created else state.status
        if decision.apply and not created:
            self._change(generation.id, _transition(observation, state))
            state.status = generation.status
        self._note_observed(generation.id, observation.observed_at)
        self._schedule_poll(generation.id, state, observation.observed_at)
        if decision.event_note is not None:
            self.changes.events.append(_event(observation, previous, decision))
        pending = self._plan_outputs(observation, state, decision)
        return ObservationResult(
            generation.id,
            state.status,
            decision.apply,
            created,
            pending,
            source_kind(observation.source),
            generation.status,
        )

    def finish(self) -> JobChanges:
        for job_id, at in self.observed.items():
            self._change(job_id, JobUpdate(last_observed_at=at))
        self.changes.outputs = [row for rows in self.outputs.values() for row in rows]
        return self.changes

    def _state(self, job_id: str) -> _JobState | None:
        if job_id not in self.states and (job := self.existing.get(job_id)) is not None:
            self.states[job_id] = _JobState(
                job.status,
                job.kind,
                job.created_at,
                job.completed_at,
                job.next_poll_at,
                job.poll_attempts,
            )
        return self.states.get(job_id)

    def _create(self, observation: Observation) -> _JobState:
        job = _new_job(observation)
        self.changes.new_jobs[job.id] = job
        state = _JobState(job.status, job.kind, job.created_at, job.completed_at, job.next_poll_at)
        self.states[job.id] = state
        return state

    def _change(self, job_id: str, change: JobUpdate) -> None:
        values = changed_fields(change)
        new_job = self.changes.new_jobs.get(job_id)
        if new_job is not None:
            self.changes.new_jobs[job_id] = msgspec.structs.replace(new_job, **values)
        else:
            current = self.changes.updates.get(job_id, JobUpdate())
            self.changes.updates[job_id] = msgspec.structs.replace(current, **values)
        state = self.states[job_id]
        if change.completed_at is not UNSET:
            state.completed_at = change.completed_at
        if change.created_at is not UNSET:
            state.created_at = change.created_at
        if change.kind is not UNSET:
            state.kind = change.kind

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
            self._change(job_id, JobUpdate(next_poll_at=next_poll))

    def _plan_outputs(self, observation: Observation, state: _JobState, decision: Decision) -> bool:
        generation = observation.generation
        applies = decision.apply or decision.refresh_outputs
        if generation.status != JobStatus.SUCCEEDED or not applies:
            return False
        urls = generation.output_sources()
        if not urls:
            return False
        completed = state.completed_at or _completed_at(observation)
        deadline = completed + timedelta(seconds=self.output_ttl_s)
        self.outputs[generation.id] = [
            NewOutput(generation.id, i, url, deadline, OutputState.PENDING)
            for i, url in enumerate(urls)
        ]
        return True


def _event(observation: Observation, previous: str | None, decision: Decision) -> NewJobEvent:
    return NewJobEvent(
        job_id=observation.generation.id,
        at=observation.observed_at,
        source=observation.source,
        from_status=previous,
        to_status=observation.generation.status,
        applied=decision.apply,
        note=decision.event_note or None,
    )


def _completed_at(observation: Observation) -> datetime:
    # Without a completed_at, the observation time is the latest the job can have finished.
    return parse_timestamp(observation.generation.completed_at) or observation.observed_at


def _reported(observation: Observation) -> JobUpdate:
    """What an applied observation says about the job."""
    generation = observation.generation
    terminal = generation.status in TERMINAL
    change = JobUpdate(
        status=generation.status,
        terminal=terminal,
        error_message=generation.error_message,
        last_response=msgspec.json.encode(generation),
        completed_at=_completed_at(observation) if terminal else UNSET,
        terminal_via=source_kind(observation.source) if terminal else UNSET,
        model=generation.model() or UNSET,
    )
    cost = generation.cost
    if cost is None or cost.amount is None:
        return change
    return msgspec.structs.replace(
        change,
        cost_micros=to_micros(cost.amount),
        cost_state=CostState.CHARGED if terminal else CostState.HELD,
        cost_currency=cost.currency or "credit",
    )


def _new_job(observation: Observation) -> NewJob:
    generation = observation.generation
    job = NewJob(
        id=generation.id,
        kind=generation_kind(generation),
        status=generation.status,
        terminal=False,
        first_seen_via=source_kind(observation.source),
        first_seen_at=observation.observed_at,
        last_observed_at=observation.observed_at,
        created_at=parse_timestamp(generation.created_at),
        next_poll_at=_first_poll_at(observation),
    )
    return msgspec.structs.replace(job, **changed_fields(_reported(observation)))


def _transition(observation: Observation, state: _JobState) -> JobUpdate:
    change = _reported(observation)
    if state.created_at is None:
        created = parse_timestamp(observation.generation.created_at)
        change = msgspec.structs.replace(change, created_at=created)
    if state.kind == JobKind.UNKNOWN:
        change = msgspec.structs.replace(change, kind=generation_kind(observation.generation))
    return change


def _first_poll_at(observation: Observation) -> datetime:
    kind = generation_kind(observation.generation)
    started = parse_timestamp(observation.generation.created_at) or observation.observed_at
    expected = EXPECTED_DURATION.get(kind, timedelta(minutes=1))
    return max(started, observation.observed_at) + expected
