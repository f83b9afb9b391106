"""Turning outcomes into webhook deliveries, with the delivery faults decided per delivery.

Endpoint deliveries use the envelope `{"id": "evt_…", "type": …, "data": …}` and per-request
callbacks the `{event, data}` body (both described in the README's "The webhook endpoint").
Fault draws come from a stream seeded by (seed, delivery number), so the same run injects the
same faults.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any

import msgspec

from simulator.clock import iso
from simulator.delivery import Delivery
from simulator.ids import new_id
from simulator.jobs import Job

if TYPE_CHECKING:
    from simulator.core import Simulator
    from simulator.webhooks import Endpoint

__all__ = ["EventBus", "event_type_for"]

REORDER_DELAY_S = (5.0, 60.0)
DUPLICATE_DELAY_S = (0.5, 3.0)


def event_type_for(job: Job, status: str) -> str:
    if status == "succeeded":
        return f"{job.kind}.completed"
    if status == "cancelled":
        return f"{job.kind}.cancelled"
    return f"{job.kind}.failed"


class EventBus:
    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self._deliveries = 0

    def job_finished(self, job: Job, status: str) -> None:
        event_type = event_type_for(job, status)
        data = self._sim.render(job)
        self.emit(event_type, data)
        if job.webhook_url and not event_type.endswith(".cancelled"):
            self._callback(job.webhook_url, event_type, data)

    def emit(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        synthetic: bool = False,
        only: Endpoint | None = None,
        exclude: str | None = None,
    ) -> str:
        now = self._sim.clock.now()
        event_id = new_id("evt_", now)
        envelope = {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created_at": iso(now),
            "synthetic": synthetic,
            "data": data,
        }
        body = msgspec.json.encode(envelope)
        self._sim.stats.incr("deliveries", "events_created")
        targets = [only] if only is not None else self._subscribers(event_type, exclude)
        for endpoint in targets:
            attempts = self._sim.config.endpoint_max_attempts
            self._enqueue(Delivery(event_id, event_type, body, endpoint.url, endpoint.id, attempts))
        return event_id

    def _subscribers(self, event_type: str, exclude: str | None) -> list[Endpoint]:
        return [
            e for e in self._sim.endpoints.active() if e.subscribes(event_type) and e.id != exclude
        ]

    def _callback(self, url: str, event_type: str, data: dict[str, Any]) -> None:
        body = msgspec.json.encode({"event": event_type, "data": data})
        self._sim.stats.incr("deliveries", "callbacks_created")
        attempts = self._sim.config.callback_attempts
        self._enqueue(Delivery(None, event_type, body, url, None, attempts))

    def _enqueue(self, delivery: Delivery) -> None:
        sim, config = self._sim, self._sim.config
        self._deliveries += 1
        rng = random.Random(f"{config.seed}:delivery:{self._deliveries}")
        drop, duplicate, reorder, bad = (rng.random() for _ in range(4))
        if drop < config.drop_rate:
            sim.stats.incr("faults", "drop")
            return
        due = sim.clock.now()
        if reorder < config.reorder_rate:
            due += rng.uniform(*REORDER_DELAY_S)
            sim.stats.incr("faults", "reorder")
        delivery.bad_signature_first = bad < config.bad_signature_rate
        sim.deliveries.push(delivery, due)
        if duplicate < config.duplicate_rate:
            sim.stats.incr("faults", "duplicate")
            copy = dataclasses.replace(
                delivery, max_attempts=1, bad_signature_first=False, copy=True
            )
            sim.deliveries.push(copy, due + rng.uniform(*DUPLICATE_DELAY_S))
