"""Store webhook deliveries: every verified delivery and its job change in one transaction,
acknowledged only after the commit.

Concurrent deliveries are committed together (group commit): a writer task takes whatever is
waiting, stores each item in one transaction, and answers every caller after the one commit.
With `synchronous=FULL` a commit costs a disk flush, so sharing it is what keeps throughput up;
each caller still hears back only once its delivery is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from receiver.generation import GenerationResponse
from receiver.jobs.lifecycle import (
    Observation,
    ObservationResult,
    record_observations,
    write_retrying_races,
)
from receiver.webhooks.envelope import Envelope, body_key
from receiver.webhooks.signing import Match
from storage import gateway
from storage.db import Database

__all__ = ["Intake", "IntakeClosed", "Outcome", "RejectedRequest", "VerifiedDelivery"]

log = logging.getLogger(__name__)

REJECTED_BODY_PREFIX = 4096


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"


class IntakeClosed(RuntimeError):
    """The service is shutting down; the sender should retry."""


@dataclass(frozen=True)
class RequestFacts:
    received_at: datetime
    headers: dict[str, str]
    remote_addr: str | None
    request_id: str | None


@dataclass(frozen=True)
class VerifiedDelivery:
    body: bytes
    match: Match
    facts: RequestFacts
    envelope: Envelope | None  # None: signed but undecodable
    decode_error: str | None = None


@dataclass(frozen=True)
class RejectedRequest:
    reason: str
    message: str
    body_prefix: bytes
    body_size: int
    facts: RequestFacts


@dataclass
class _Pending:
    item: VerifiedDelivery | RejectedRequest
    future: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    observation: ObservationResult | None = None


class Intake:
    def __init__(
        self,
        db: Database,
        *,
        output_ttl_s: int,
        keep_rejected: int = 1000,
        max_batch: int = 128,
        writers: int = 1,
    ) -> None:
        self._db = db
        self._output_ttl_s = output_ttl_s
        self._keep_rejected = keep_rejected
        self._max_batch = max_batch
        self._writer_count = writers
        self._listeners: list[Callable[[Sequence[ObservationResult]], None]] = []
        self._event_listeners: list[Callable[[Sequence[str]], None]] = []
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writers: list[asyncio.Task[None]] = []

    def add_listener(self, listener: Callable[[Sequence[ObservationResult]], None]) -> None:
        """Called with the job changes of each commit, after it (e.g. to start archiving)."""
        self._listeners.append(listener)

    def add_event_listener(self, listener: Callable[[Sequence[str]], None]) -> None:
        """Called with the types of the newly accepted events that are not about a job
        (e.g. `usage.balance_low`), after the commit that stored them."""
        self._event_listeners.append(listener)

    async def start(self) -> None:
        self._writers = [
            asyncio.create_task(self._run(), name=f"intake-writer-{n}")
            for n in range(self._writer_count)
        ]

    async def stop(self) -> None:
        await self._drain()
        for task in self._writers:
            task.cancel()
        for task in self._writers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._writers = []
        while not self._queue.empty():
            self._queue.get_nowait().future.set_exception(IntakeClosed("shutting down"))

    async def _drain(self, timeout_s: float = 10.0) -> None:
        """Let the writers finish what is queued before they stop."""
        if self._writers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)

    async def submit(self, item: VerifiedDelivery | RejectedRequest) -> Outcome:
        if not self._writers:
            raise IntakeClosed("intake is not running")
        pending = _Pending(item)
        self._queue.put_nowait(pending)
        return await asyncio.shield(pending.future)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._store_batch(batch)
        except asyncio.CancelledError:
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(IntakeClosed("shutting down"))
            raise
        except Exception as exc:
            if len(batch) > 1:  # find the one that fails; the others still get stored
                for pending in batch:
                    await self._commit([pending])
                return
            log.exception("storing a delivery failed")
            batch[0].future.set_exception(exc)
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.future.done():
                pending.future.set_result(outcome)
        self._notify(batch)
        self._notify_events(batch, outcomes)

    async def _store_batch(self, batch: list[_Pending]) -> list[Outcome]:
        return await write_retrying_races(self._db, lambda conn: self._store_all(conn, batch))

    async def _store_all(self, conn: AsyncConnection, batch: list[_Pending]) -> list[Outcome]:
        outcomes = await _store_deliveries(conn, batch)
        accepted = [p for p, o in zip(batch, outcomes, strict=True) if o is Outcome.ACCEPTED]
        observed = [p for p in accepted if _generation_of(p) is not None]
        results = await record_observations(
            conn, [_observation(p) for p in observed], output_ttl_s=self._output_ttl_s
        )
        for pending, result in zip(observed, results, strict=True):
            pending.observation = result
        await gateway.record_secret_matches(conn, _secret_matches(batch))
        rejections = [p.item for p in batch if isinstance(p.item, RejectedRequest)]
        if rejections:
            await _store_rejections(conn, rejections, self._keep_rejected)
        return outcomes

    def _notify(self, batch: list[_Pending]) -> None:
        results = [p.observation for p in batch if p.observation is not None]
        for listener in self._listeners if results else ():
            try:
                listener(results)
            except Exception:
                log.exception("after-commit listener failed")

    def _notify_events(self, batch: list[_Pending], outcomes: list[Outcome]) -> None:
        types = [
            p.item.envelope.event_type
            for p, o in zip(batch, outcomes, strict=True)
            if o is Outcome.ACCEPTED
            and isinstance(p.item, VerifiedDelivery)
            and p.item.envelope is not None
            and p.item.envelope.generation is None
        ]
        for listener in self._event_listeners if types else ():
            try:
                listener(types)
            except Exception:
                log.exception("after-commit event listener failed")


def _row(item: VerifiedDelivery) -> dict[str, Any]:
    envelope = item.envelope
    generation = envelope.generation if envelope else None
    return {
        "event_id": envelope.event_key if envelope else body_key(item.body),
        "event_type": envelope.event_type if envelope else None,
        "status": "processed" if envelope else "quarantined",
        "duplicate_of": None,
        "reject_reason": item.decode_error,
        "received_at": item.facts.received_at,
        "signature_t": item.match.timestamp,
        "secret_id": item.match.secret_id,
        "job_id": generation.id if generation else None,
        "synthetic": bool(envelope and envelope.synthetic),
        "body": item.body,
        "body_size": len(item.body),
        "headers": item.facts.headers,
        "remote_addr": item.facts.remote_addr,
        "request_id": item.facts.request_id,
    }


async def _store_deliveries(conn: AsyncConnection, batch: list[_Pending]) -> list[Outcome]:
    """Insert every verified delivery; the UNIQUE event id decides which ones are new."""
    rows = {id(p): _row(p.item) for p in batch if isinstance(p.item, VerifiedDelivery)}
    new_events = await gateway.insert_deliveries(conn, list(rows.values()))
    outcomes, claimed, duplicates = [], set(), []
    for pending in batch:
        row = rows.get(id(pending))
        if row is None:
            outcomes.append(Outcome.REJECTED)
        elif row["event_id"] in new_events and row["event_id"] not in claimed:
            claimed.add(row["event_id"])
            quarantined = row["status"] == "quarantined"
            outcomes.append(Outcome.QUARANTINED if quarantined else Outcome.ACCEPTED)
        else:
            outcomes.append(Outcome.DUPLICATE)
            duplicates.append(row)
    if duplicates:
        originals = await gateway.find_delivery_ids(conn, [r["event_id"] for r in duplicates])
        await gateway.insert_delivery_records(
            conn,
            [
                r
                | {
                    "event_id": None,
                    "status": "duplicate",
                    "body": b"",
                    "duplicate_of": originals.get(r["event_id"]),
                }
                for r in duplicates
            ],
        )
    return outcomes


async def _store_rejections(
    conn: AsyncConnection, rejections: list[RejectedRequest], keep: int
) -> None:
    await gateway.insert_delivery_records(
        conn,
        [
            {
                "status": "rejected",
                "reject_reason": item.reason,
                "received_at": item.facts.received_at,
                "body": item.body_prefix[:REJECTED_BODY_PREFIX],
                "body_size": item.body_size,
                "headers": item.facts.headers,
                "remote_addr": item.facts.remote_addr,
                "request_id": item.facts.request_id,
            }
            for item in rejections
        ],
    )
    counts: dict[str, tuple[int, datetime]] = {}
    for item in rejections:
        count, _ = counts.get(item.reason, (0, item.facts.received_at))
        counts[item.reason] = (count + 1, item.facts.received_at)
    await gateway.bump_rejection_counts(conn, counts)
    await gateway.prune_rejected(conn, keep)


def _generation_of(pending: _Pending) -> GenerationResponse | None:
    item = pending.item
    if isinstance(item, VerifiedDelivery) and item.envelope is not None:
        return item.envelope.generation
    return None


def _observation(pending: _Pending) -> Observation:
    item = pending.item
    assert isinstance(item, VerifiedDelivery) and item.envelope is not None
    generation = item.envelope.generation
    assert generation is not None
    return Observation(generation, f"webhook:{item.envelope.event_key}", item.facts.received_at)


def _secret_matches(batch: list[_Pending]) -> dict[int, tuple[int, datetime]]:
    counts: dict[int, int] = defaultdict(int)
    latest: dict[int, datetime] = {}
    for pending in batch:
        item = pending.item
        if isinstance(item, VerifiedDelivery) and item.match.secret_id is not None:
            secret_id = item.match.secret_id
            counts[secret_id] += 1
            latest[secret_id] = max(
                latest.get(secret_id, item.facts.received_at), item.facts.received_at
            )
    return {secret_id: (count, latest[secret_id]) for secret_id, count in counts.items()}
