"""The outbox: what the customer's app is told about a transaction's changes, written in that
transaction. The job tracker gathers the news as it writes; at the end of the transaction
this module turns it into events (with the job as `GET /jobs/{id}` shows it) and fans each one
out to the destinations that want it.

Event types: `job.<status>` for every applied status change (the first sighting included),
`output.archived`, `output.lost`, `spend.finding_opened`, `balance.low`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import msgspec

from receiver.ids import new_id
from receiver.jobs.lifecycle import ObservationResult
from receiver.jobs.views import Job, Output
from storage import gateway
from storage.db import Connection
from storage.gateway import outbox
from storage.records import (
    DestinationRecord,
    JobRecord,
    NewEvent,
    NewOutput,
    NewPush,
    OutputRecord,
)
from storage.states import JobStatus, OutputState, PushState

__all__ = [
    "EVENT_TYPES",
    "JobData",
    "Outbox",
    "OutboxNews",
    "OutputData",
    "is_pattern",
    "job_event_type",
    "wants",
]

OUTPUT_EVENTS = {OutputState.ARCHIVED: "output.archived", OutputState.LOST: "output.lost"}
EVENT_TYPES = (
    *(f"job.{status}" for status in JobStatus),
    *OUTPUT_EVENTS.values(),
    "spend.finding_opened",
    "balance.low",
)
PENDING = PushState.PENDING
SUCCEEDED = JobStatus.SUCCEEDED
_FAMILIES = {"job", "output", "spend", "balance"}
_ODD = re.compile(r"[^a-z0-9_]+")


class JobData(msgspec.Struct, frozen=True):
    job: Job


class OutputData(msgspec.Struct, frozen=True):
    job: Job
    output: Output


def job_event_type(status: str) -> str:
    """`job.<status>`; a status Aurous invented after this code keeps its name, made safe."""
    known = _KNOWN_TYPES.get(status)
    return known or "job." + (_ODD.sub("_", status.lower()).strip("_")[:64] or "unknown")


_KNOWN_TYPES = {str(status): f"job.{status}" for status in JobStatus}


def is_pattern(pattern: str) -> bool:
    """`*`, a family (`job.*`), or one type; `job.` takes statuses this code does not know."""
    if pattern in ("*", *EVENT_TYPES):
        return True
    family, _, rest = pattern.partition(".")
    if family not in _FAMILIES or not rest:
        return False
    return rest == "*" or (family == "job" and job_event_type(rest) == pattern)


def wants(destination: DestinationRecord, event_type: str, kind: str | None) -> bool:
    """Whether the destination's filter takes this event (a kind filter only narrows events
    about jobs)."""
    if destination.kind and kind and destination.kind != kind:
        return False
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in destination.events)


class OutboxNews(NamedTuple):
    """What one transaction wrote to the outbox: events, and pushes of them to destinations."""

    events: int
    pushes: int


@dataclass
class _Told:
    type: str
    job_id: str | None
    data: bytes


@dataclass
class Outbox:
    """The news of one transaction, written as events when it is about to commit. What the
    writer already holds (the jobs as it leaves them, the outputs of jobs it created) is not
    read again."""

    conn: Connection
    now: datetime
    _status_news: list[ObservationResult] = field(default_factory=list)
    _output_news: list[OutputRecord] = field(default_factory=list)
    _told: list[_Told] = field(default_factory=list)
    _jobs: dict[str, JobRecord] = field(default_factory=dict)
    _created_outputs: dict[str, list[Output]] = field(default_factory=dict)
    _sequences: dict[str, int] = field(default_factory=dict)  # the last one, where known

    def jobs_changed(
        self,
        results: Sequence[ObservationResult],
        jobs: Mapping[str, JobRecord],
        outputs: Sequence[NewOutput] = (),
    ) -> None:
        """`jobs`: the jobs as the transaction leaves them; `outputs`: those it wrote."""
        self._status_news += [r for r in results if r.applied]
        self._jobs.update(jobs)
        created = {r.job_id for r in results if r.created}
        for job_id in created:  # (its events may not be the first about it: findings come first)
            self._created_outputs.setdefault(job_id, [])
        for output in outputs:
            if output.job_id in created:
                self._created_outputs[output.job_id].append(Output.new(output))

    def output_finished(self, output: OutputRecord) -> None:
        if output.state in OUTPUT_EVENTS:
            self._output_news.append(output)
            self._created_outputs.pop(output.job_id, None)  # now read back from the table

    def tell(self, event_type: str, data: bytes, job_id: str | None = None) -> None:
        """An event that is not a job's status or output (`data`: its JSON object)."""
        self._told.append(_Told(event_type, job_id, data))

    def flush(self) -> OutboxNews:
        """Write the events and their pushes; how many of each were written."""
        job_ids = sorted(
            {r.job_id for r in self._status_news}
            | {o.job_id for o in self._output_news}
            | {t.job_id for t in self._told if t.job_id}
        )
        if not (job_ids or self._told):
            return OutboxNews(0, 0)
        events = _Events(self.now, self._read_jobs(job_ids), self._read_outputs(job_ids))
        events.sequences = self._read_sequences(job_ids)
        for result in self._status_news:
            events.job_changed(result)
        for output in self._output_news:
            events.output_finished(output)
        for told in self._told:
            events.add(told.type, told.job_id, told.data)
        positions = outbox.insert_events(self.conn, events.rows)
        pushes = self._fan_out(events.rows, positions)
        self._status_news, self._output_news, self._told = [], [], []
        return OutboxNews(len(events.rows), pushes)

    def _read_jobs(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        missing = [i for i in job_ids if i not in self._jobs]
        if missing:
            self._jobs.update(gateway.lock_jobs(self.conn, missing))
        return {i: self._jobs[i] for i in job_ids if i in self._jobs}

    def _read_outputs(self, job_ids: Sequence[str]) -> dict[str, list[Output]]:
        outputs = {i: self._created_outputs[i] for i in job_ids if i in self._created_outputs}
        unread = [
            i
            for i in job_ids
            if i not in outputs and (job := self._jobs.get(i)) and job.status == SUCCEEDED
        ]
        for output in gateway.list_outputs(self.conn, unread) if unread else ():
            outputs.setdefault(output.job_id, []).append(Output.of(output))
        return outputs

    def _read_sequences(self, job_ids: Sequence[str]) -> dict[str, int]:
        unknown = [i for i in job_ids if i not in self._sequences]
        if unknown:
            found = outbox.last_sequences(self.conn, unknown)
            self._sequences.update({i: found.get(i, 0) for i in unknown})
        return self._sequences

    def _fan_out(self, rows: Sequence[NewEvent], positions: dict[str, int]) -> int:
        destinations = outbox.destinations_to_tell(self.conn)
        pushes = [
            NewPush(d.id, e.id, positions[e.id], e.job_id, e.sequence, PENDING, self.now, self.now)
            for e in rows
            for d in destinations
            if wants(d, e.type, e.kind)
        ]
        outbox.insert_pushes(self.conn, pushes)
        return len(pushes)


@dataclass
class _Events:
    now: datetime
    jobs: dict[str, JobRecord]
    outputs: dict[str, list[Output]]  # by job
    sequences: dict[str, int] = field(default_factory=dict)
    rows: list[NewEvent] = field(default_factory=list)

    def job_changed(self, result: ObservationResult) -> None:
        job = self._job(result.job_id)
        if job is None:
            return
        # Several changes of one job in one transaction: each event names its own status.
        job = msgspec.structs.replace(job, status=result.status)
        self.add(job_event_type(result.status), result.job_id, msgspec.json.encode(JobData(job)))

    def output_finished(self, finished: OutputRecord) -> None:
        job = self._job(finished.job_id)
        if job is None:
            return
        output = Output.of(finished)
        data = msgspec.json.encode(OutputData(job, output))
        self.add(OUTPUT_EVENTS[OutputState(finished.state)], finished.job_id, data)

    def add(self, event_type: str, job_id: str | None, data: bytes) -> None:
        sequence = None
        if job_id is not None:
            sequence = self.sequences.get(job_id, 0) + 1
            self.sequences[job_id] = sequence
        job = self.jobs.get(job_id) if job_id else None
        kind = job.kind if job else None
        self.rows.append(
            NewEvent(new_id("evt_"), event_type, job_id, kind, sequence, self.now, data)
        )

    def _job(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        return Job.with_outputs(job, self.outputs.get(job_id, [])) if job else None
