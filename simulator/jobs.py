"""In-memory generations. Status is computed from the clock, so a job costs no task or timer.

A job's whole future (queue delay, duration, outcome) is drawn from a stream seeded by
(seed, sequence number) when it is created: the n-th job of a run behaves the same every run.
"""

from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from simulator.config import SimulatorConfig

__all__ = ["TERMINAL", "Job", "JobStore", "plan_job"]

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired", "moderation_rejected"})

_FAILURE_MESSAGES = {
    "failed": "Generation failed: upstream provider error",
    "moderation_rejected": "Content policy violation",
    "expired": "Generation timed out",
}


@dataclass(slots=True, eq=False)
class Job:
    sequence: int
    id: str
    kind: str  # "image" | "video"
    created_at: float
    queued_at: float
    processing_at: float
    finish_at: float
    outcome: str  # planned terminal status in the 7-value vocabulary
    extended: bool
    cost: float
    breakdown: dict[str, Any]
    params: dict[str, Any]
    base_url: str
    request_id: str
    api_version: str
    output_count: int
    output_size: int
    webhook_url: str | None = None
    hold_id: str | None = None
    cancelled_at: float | None = None
    settled: bool = False
    charged: float | None = None
    ledger_anomaly: str | None = None
    sha256: dict[int, str] = field(default_factory=dict)

    @property
    def completed_at(self) -> float | None:
        return self.cancelled_at if self.cancelled_at is not None else self.finish_at

    def internal_status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if now >= self.finish_at:
            return self.outcome
        if now >= self.processing_at:
            return "processing"
        if self.extended and now >= self.queued_at:
            return "queued"
        return "pending"

    def status(self, now: float) -> str:
        """The status as the API shows it: the 5-value set unless extended statuses are on."""
        status = self.internal_status(now)
        if not self.extended and status in {"moderation_rejected", "expired"}:
            return "failed"
        return status

    def is_terminal(self, now: float) -> bool:
        return self.internal_status(now) in TERMINAL

    def finished_at(self, now: float) -> float | None:
        return self.completed_at if self.is_terminal(now) else None

    def error_message(self, now: float) -> str | None:
        return _FAILURE_MESSAGES.get(self.internal_status(now))

    def has_outputs(self, now: float) -> bool:
        return self.internal_status(now) == "succeeded"


def plan_job(config: SimulatorConfig, kind: str, sequence: int) -> dict[str, Any]:
    """Timing and outcome for the n-th job, drawn from its own seeded stream."""
    rng = random.Random(f"{config.seed}:job:{sequence}")
    if kind == "image":
        duration = rng.uniform(config.image_duration_min_s, config.image_duration_max_s)
    else:
        duration = rng.uniform(config.video_duration_min_s, config.video_duration_max_s)
    queue_delay = min(duration / 2, rng.uniform(0.5, max(0.5, config.queue_delay_max_s)))
    roll = rng.random()
    outcome = "succeeded"
    if roll < config.failed_rate:
        outcome = "failed"
    elif roll < config.failed_rate + config.moderation_rate:
        outcome = "moderation_rejected"
    elif roll < config.failed_rate + config.moderation_rate + config.expired_rate:
        outcome = "expired"
    return {"duration": duration, "queue_delay": queue_delay, "outcome": outcome}


class JobStore:
    """Jobs by id, in creation order, with a heap of upcoming finishes for settling."""

    def __init__(self) -> None:
        self._by_id: dict[str, Job] = {}
        self._order: list[Job] = []
        self._sequences: list[int] = []
        self._finishes: list[tuple[float, int, str]] = []
        self.next_sequence = 0
        self.pruned = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, job: Job) -> None:
        self._by_id[job.id] = job
        self._order.append(job)
        self._sequences.append(job.sequence)
        heapq.heappush(self._finishes, (job.finish_at, job.sequence, job.id))

    def get(self, job_id: str) -> Job | None:
        return self._by_id.get(job_id)

    def all(self) -> list[Job]:
        return list(self._order)

    def next_finish(self) -> float | None:
        return self._finishes[0][0] if self._finishes else None

    def pop_due(self, now: float) -> list[Job]:
        """Jobs whose planned finish has passed and that were not settled yet, in finish order."""
        due: list[Job] = []
        while self._finishes and self._finishes[0][0] <= now:
            _, _, job_id = heapq.heappop(self._finishes)
            job = self._by_id.get(job_id)
            if job is not None and not job.settled:
                due.append(job)
        return due

    def prune(self, now: float, keep_for: float) -> int:
        """Forget settled jobs whose outputs expired `keep_for` seconds ago."""
        keep = [j for j in self._order if not _prunable(j, now, keep_for)]
        removed = len(self._order) - len(keep)
        if removed:
            for job in self._order:
                if _prunable(job, now, keep_for):
                    del self._by_id[job.id]
            self._order = keep
            self._sequences = [j.sequence for j in keep]
            self.pruned += removed
        return removed

    def page(
        self, *, limit: int, starting_after: str | None, ending_before: str | None
    ) -> tuple[list[Job], bool]:
        """Newest first. starting_after: strictly older rows; ending_before: strictly newer."""
        if starting_after is not None:
            stop = self._position(starting_after)
            rows = self._order[max(0, stop - limit) : stop]
            return rows[::-1], stop - limit > 0
        if ending_before is not None:
            start = self._position(ending_before) + 1
            rows = self._order[start : start + limit]
            return rows[::-1], start + limit < len(self._order)
        rows = self._order[-limit:] if limit else []
        return rows[::-1], len(self._order) > limit

    def _position(self, job_id: str) -> int:
        job = self._by_id[job_id]
        return bisect.bisect_left(self._sequences, job.sequence)


def _prunable(job: Job, now: float, keep_for: float) -> bool:
    return job.settled and job.completed_at is not None and now > job.completed_at + keep_for
