"""Store webhook deliveries: every verified delivery and its job change in one transaction,
acknowledged only after the commit.

Concurrent deliveries are committed together (group commit): a writer task takes whatever is
waiting, stores each item in one transaction, and answers every caller after the one commit.
With `synchronous=FULL` a commit costs a disk flush, so sharing it is what keeps throughput up;
each caller still hears back only once its delivery is durable.

Every delivery that is not accepted is logged with its reason, one line per reason at most
every `REFUSAL_LOG_EVERY_S` (the rest counted on the next line): anyone can send requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from receiver.generation import GenerationResponse
from receiver.jobs.lifecycle import Observation
from receiver.jobs.tracker import JobTracker, JobWriter
from receiver.logs import RateLimitedLog
from receiver.webhooks.envelope import Envelope, body_key
from receiver.webhooks.signing import Match, RejectReason
from storage import gateway
from storage.db import Connection
from storage.records import NewDelivery
from storage.states import DeliveryStatus

__all__ = ["Intake", "IntakeClosed", "RejectedRequest", "VerifiedDelivery"]

log = logging.getLogger(__name__)

REJECTED_BODY_PREFIX = 4096
BALANCE_LOW = "usage.balance_low"  # Aurous's: the customer's app hears it as balance.low
REFUSAL_LOG_EVERY_S = 10.0
_QUARANTINED = "quarantined"  # the rate limit's key: decode errors are free text
# What an operator can do about a rejection that is most likely their set-up, not an attack.
_REJECTION_HINTS: dict[str, str] = {
    RejectReason.NO_ACTIVE_SECRET: (
        "add the endpoint's secret: `aurous-receiver secrets add whsec_…` "
        "or AUROUS_WEBHOOK_SECRET at start"
    ),
    RejectReason.NO_MATCHING_SIGNATURE: (
        "if this is Aurous, the endpoint's current secret is not in the keyring "
        "(`aurous-receiver secrets list`)"
    ),
    RejectReason.TIMESTAMP_TOO_OLD: "a replay, or this host's clock is off",
    RejectReason.TIMESTAMP_IN_FUTURE: "this host's clock is off, or the sender's",
}


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


Item = VerifiedDelivery | RejectedRequest


@dataclass
class _Pending:
    item: Item
    future: asyncio.Future[DeliveryStatus] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Intake:
    """`on_events` is told, after each commit, the types of the newly accepted events that
    are not about a job (e.g. `usage.balance_low`); job changes are the tracker's to tell."""

    def __init__(
        self,
        tracker: JobTracker,
        *,
        on_events: Callable[[Sequence[str]], None] | None = None,
        keep_rejected: int = 1000,
        max_batch: int = 128,
        writers: int = 1,
    ) -> None:
        self._tracker = tracker
        self._on_events = on_events
        self._keep_rejected = keep_rejected
        self._max_batch = max_batch
        self._writer_count = writers
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writers: list[asyncio.Task[None]] = []
        self._refusals = RateLimitedLog(log, REFUSAL_LOG_EVERY_S)

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

    async def submit(self, item: VerifiedDelivery | RejectedRequest) -> DeliveryStatus:
        """Store `item`; its outcome once committed. Called in the request's context, so the
        lines logged here carry its request id."""
        if isinstance(item, RejectedRequest):
            self._log_rejected(item)  # whether or not it can still be stored
        if not self._writers:
            raise IntakeClosed("intake is not running")
        pending = _Pending(item)
        self._queue.put_nowait(pending)
        outcome = await asyncio.shield(pending.future)
        if outcome is DeliveryStatus.QUARANTINED and isinstance(item, VerifiedDelivery):
            self._log_quarantined(item)
        return outcome

    def _log_rejected(self, item: RejectedRequest) -> None:
        hint = _REJECTION_HINTS.get(item.reason)  # (a StrEnum key matches its text)
        self._refusals.warning(
            item.reason,
            "webhook delivery rejected (%s): %s; from %s%s",
            item.reason,
            _one_line(item.message),
            item.facts.remote_addr or "an unknown address",
            f"; {hint}" if hint else "",
        )

    def _log_quarantined(self, item: VerifiedDelivery) -> None:
        self._refusals.warning(
            _QUARANTINED,
            "webhook delivery quarantined: correctly signed but not understood (%s); "
            "kept in the delivery log, no job changed",
            _one_line(item.decode_error or "unknown reason"),
        )

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
        self._notify_events(batch, outcomes)

    async def _store_batch(self, batch: list[_Pending]) -> list[DeliveryStatus]:
        items = [p.item for p in batch]
        keep = self._keep_rejected
        return await self._tracker.write(lambda conn, jobs: _store_items(conn, jobs, items, keep))

    def _notify_events(self, batch: list[_Pending], outcomes: list[DeliveryStatus]) -> None:
        types = [
            p.item.envelope.event_type
            for p, o in zip(batch, outcomes, strict=True)
            if o is DeliveryStatus.PROCESSED
            and isinstance(p.item, VerifiedDelivery)
            and p.item.envelope is not None
            and p.item.envelope.generation is None
        ]
        if types and self._on_events is not None:
            try:
                self._on_events(types)
            except Exception:
                log.exception("after-commit event listener failed")


def _store_items(
    conn: Connection, jobs: JobWriter, items: Sequence[Item], keep_rejected: int
) -> list[DeliveryStatus]:
    """Store a batch in the caller's transaction: each item's outcome, in order."""
    outcomes = _store_deliveries(conn, items)
    new = [i for i, o in zip(items, outcomes, strict=True) if o is DeliveryStatus.PROCESSED]
    jobs.observe([_observation(i) for i in new if _generation_of(i) is not None])
    for envelope in _envelopes(new, BALANCE_LOW):
        jobs.tell("balance.low", b'{"balance":%s}' % envelope.data)
    gateway.record_secret_matches(conn, _secret_matches(items))
    rejections = [i for i in items if isinstance(i, RejectedRequest)]
    if rejections:
        _store_rejections(conn, rejections, keep_rejected)
    return outcomes


def _one_line(text: str, limit: int = 300) -> str:
    """Text from a request, safe for one log line: no line breaks or control characters."""
    return "".join(c if c.isprintable() else " " for c in text[:limit])


def _row(item: VerifiedDelivery) -> NewDelivery:
    envelope = item.envelope
    generation = envelope.generation if envelope else None
    return NewDelivery(
        event_id=envelope.event_key if envelope else body_key(item.body),
        event_type=envelope.event_type if envelope else None,
        status=DeliveryStatus.PROCESSED if envelope else DeliveryStatus.QUARANTINED,
        reject_reason=item.decode_error,
        received_at=item.facts.received_at,
        signature_t=item.match.timestamp,
        secret_id=item.match.secret_id,
        job_id=generation.id if generation else None,
        synthetic=bool(envelope and envelope.synthetic),
        body=item.body,
        body_size=len(item.body),
        headers=item.facts.headers,
        remote_addr=item.facts.remote_addr,
        request_id=item.facts.request_id,
    )


def _store_deliveries(conn: Connection, items: Sequence[Item]) -> list[DeliveryStatus]:
    """Insert every verified delivery; the UNIQUE event id decides which ones are new."""
    rows = {id(i): _row(i) for i in items if isinstance(i, VerifiedDelivery)}
    new_events = gateway.insert_deliveries(conn, list(rows.values()))
    outcomes: list[DeliveryStatus] = []
    claimed: set[str | None] = set()
    duplicates: dict[str, tuple[int, datetime]] = {}
    for item in items:
        row = rows.get(id(item))
        if row is None:
            outcomes.append(DeliveryStatus.REJECTED)
        elif row.event_id in new_events and row.event_id not in claimed:
            claimed.add(row.event_id)
            quarantined = row.status == DeliveryStatus.QUARANTINED
            outcomes.append(DeliveryStatus.QUARANTINED if quarantined else DeliveryStatus.PROCESSED)
        else:
            outcomes.append(DeliveryStatus.DUPLICATE)
            copies, last_at = duplicates.get(row.event_id or "", (0, row.received_at))
            duplicates[row.event_id or ""] = (copies + 1, max(last_at, row.received_at))
    gateway.count_duplicates(conn, duplicates)
    return outcomes


def _store_rejections(conn: Connection, rejections: list[RejectedRequest], keep: int) -> None:
    gateway.insert_delivery_records(
        conn,
        [
            NewDelivery(
                status=DeliveryStatus.REJECTED,
                reject_reason=item.reason,
                received_at=item.facts.received_at,
                body=item.body_prefix[:REJECTED_BODY_PREFIX],
                body_size=item.body_size,
                headers=item.facts.headers,
                remote_addr=item.facts.remote_addr,
                request_id=item.facts.request_id,
            )
            for item in rejections
        ],
    )
    counts: dict[str, tuple[int, datetime]] = {}
    for item in rejections:
        count, _ = counts.get(item.reason, (0, item.facts.received_at))
        counts[item.reason] = (count + 1, item.facts.received_at)
    gateway.bump_rejection_counts(conn, counts)
    gateway.prune_rejected(conn, keep)


def _envelopes(items: Sequence[Item], event_type: str) -> list[Envelope]:
    found = []
    for item in items:
        if isinstance(item, VerifiedDelivery) and item.envelope is not None:
            found += [item.envelope] if item.envelope.event_type == event_type else []
    return found


def _generation_of(item: Item) -> GenerationResponse | None:
    if isinstance(item, VerifiedDelivery) and item.envelope is not None:
        return item.envelope.generation
    return None


def _observation(item: Item) -> Observation:
    assert isinstance(item, VerifiedDelivery) and item.envelope is not None
    generation = item.envelope.generation
    assert generation is not None
    return Observation(generation, f"webhook:{item.envelope.event_key}", item.facts.received_at)


def _secret_matches(items: Sequence[Item]) -> dict[int, tuple[int, datetime]]:
    counts: dict[int, int] = defaultdict(int)
    latest: dict[int, datetime] = {}
    for item in items:
        if isinstance(item, VerifiedDelivery) and item.match.secret_id is not None:
            secret_id = item.match.secret_id
            counts[secret_id] += 1
            latest[secret_id] = max(
                latest.get(secret_id, item.facts.received_at), item.facts.received_at
            )
    return {secret_id: (count, latest[secret_id]) for secret_id, count in counts.items()}
