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

    def jobs_after(self, existing: Mapping[str, JobRecord]) -> dict[str, JobRecord]:
        """Each job these changes touch, as a reader will find it once they are written."""
        after = {job_id: _stored(new) for job_id, new in self.new_jobs.items()}
        for job_id, update in self.updates.items():
            base = after.get(job_id) or existing.get(job_id)
            if base is not None:
                values = changed_fields(update)
                values.pop("last_response", None)  # kept on the row, not on the record
                after[job_id] = msgspec.structs.replace(base, **values)
        return after


def _stored(new: NewJob) -> JobRecord:
    values = msgspec.structs.asdict(new)
    del values["last_response"]
    return JobRecord(**values)


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


# The columns a batch changes, per job, gathered as the batch is decided and typed once at the
# end (a record per step would cost as much as the rest of the planning).
_Values = dict[str, object]


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
    new_jobs: dict[str, _Values] = field(default_factory=dict)
    updates: dict[str, _Values] = field(default_factory=dict)
    events: list[NewJobEvent] = field(default_factory=list)
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
            self.events.append(_event(observation, previous, decision))
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
            self._change(job_id, {"last_observed_at": at})
        return JobChanges(
            new_jobs={i: msgspec.convert(v, NewJob) for i, v in self.new_jobs.items()},
            updates={i: msgspec.convert(v, JobUpdate) for i, v in self.updates.items()},
            events=self.events,
            outputs=[row for rows in self.outputs.values() for row in rows],
        )

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
        generation = observation.generation
        kind = generation_kind(generation)
        created_at = parse_timestamp(generation.created_at)
        started = max(created_at or observation.observed_at, observation.observed_at)
        self.new_jobs[generation.id] = {
            "id": generation.id,
            "kind": kind,
            "first_seen_via": source_kind(observation.source),
            "first_seen_at": observation.observed_at,
            "created_at": created_at,
            "next_poll_at": started + EXPECTED_DURATION.get(kind, timedelta(minutes=1)),
            **_reported(observation),
        }
        state = _JobState(generation.status, kind, created_at, None)
        self.states[generation.id] = state
        self._change(generation.id, {})  # completed_at, if the job is first seen finished
        return state

    def _change(self, job_id: str, change: _Values) -> None:
        target = self.new_jobs.get(job_id)
        if target is None:
            target = self.updates.setdefault(job_id, {})
        target.update(change)
        state = self.states[job_id]
        state.completed_at = _time(target.get("completed_at", state.completed_at))
        state.created_at = _time(target.get("created_at", state.created_at))
        state.kind = str(target.get("kind", state.kind))

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


def _time(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


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


def _reported(observation: Observation) -> _Values:
    """What an applied observation says about the job."""
    generation = observation.generation
    terminal = generation.status in TERMINAL
    values: _Values = {
        "status": generation.status,
        "terminal": terminal,
        "error_message": generation.error_message,
        "last_response": msgspec.json.encode(generation),
    }
    if terminal:
        values["completed_at"] = _completed_at(observation)
        values["terminal_via"] = source_kind(observation.source)
    cost = generation.cost
    if cost is not None and cost.amount is not None:
        values["cost_micros"] = to_micros(cost.amount)
        values["cost_state"] = CostState.CHARGED if terminal else CostState.HELD
        values["cost_currency"] = cost.currency or "credit"
    if model := generation.model():
        values["model"] = model
    return values


def _transition(observation: Observation, state: _JobState) -> _Values:
    change = _reported(observation)
    if state.created_at is None:
        change["created_at"] = parse_timestamp(observation.generation.created_at)
    if state.kind == JobKind.UNKNOWN:
        change["kind"] = generation_kind(observation.generation)
    return change
