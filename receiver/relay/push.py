"""Push events to destinations, as the Standard Webhooks specification has it: `webhook-id`
(the event's id), `webhook-timestamp`, `webhook-signature` (`v1,<base64>`, one per current
secret), the event as the JSON body. 2xx is delivered; anything else is tried again on a
schedule with jitter (Retry-After honoured) until it is failed for that destination. Pushes
are claimed with a lease, so replicas share them and a killed replica's are retaken; one job's
events reach a destination in order (the claim holds a later one back while an earlier one is
pending).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import NamedTuple

from standardwebhooks import Webhook

from receiver.jobs.outbox import OutboxNews
from receiver.jobs.replica import Replica
from receiver.metrics import Metrics
from receiver.relay.destinations import DestinationStore
from receiver.relay.events import render
from receiver.relay.links import Links
from receiver.relay.transport import Answer, PushTransport
from storage import gateway
from storage.db import Connection
from storage.records import DestinationRecord, EventRecord, NewPushAttempt, PushFinish, PushRecord
from storage.states import DestinationState, PushState
from storage.types import utcnow

__all__ = ["RETRY_SCHEDULE", "PushConfig", "PushOutcome", "Pusher", "next_attempt_delay"]

log = logging.getLogger(__name__)

# Seconds to wait after each failed attempt: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h and 10 h; the ninth failure... there is none: after the eighth attempt the event is
# failed for that destination.
RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
_RETRY_AFTER_CAP_S = 36000.0

_NO_SECRET = (
    "no signing secret of this destination opens with this master key, so nothing is sent "
    "unsigned: rotate its secret (`aurous-receiver destinations rotate-secret ID --grace 0`), "
    "then enable it; it gets what it missed"
)


@dataclass(frozen=True)
class PushConfig:
    concurrency: int = 16  # pushes in flight at once
    per_destination: int = 12  # at most, to one destination: a slow one leaves room for others
    timeout: float = 15.0
    retry_scale: float = 1.0  # shrinks the schedule (tests, demos)
    disable_after: timedelta = timedelta(days=5)


@dataclass
class PushOutcome:
    delivered: int = 0
    retry: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.delivered + self.retry + self.failed


def next_attempt_delay(attempts: int, scale: float, retry_after: float | None) -> float:
    """Seconds before the next attempt after `attempts` failed ones, jittered ±20%, never
    sooner than the destination asked for."""
    base = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1] * scale
    delay = base * random.uniform(0.8, 1.2)
    return max(delay, min(retry_after or 0.0, _RETRY_AFTER_CAP_S))


class _Claimed(NamedTuple):
    """A push leased to this replica, with the event it carries and where it goes."""

    push: PushRecord
    event: EventRecord
    destination: DestinationRecord


class _Claim(NamedTuple):
    """What one claim leased, with the signing secrets of their destinations; how many pushes
    it leased, and how many it could have."""

    pushes: list[_Claimed]
    secrets: dict[str, list[str]]
    taken: int
    asked: int


@dataclass(frozen=True)
class _Result:
    claimed: _Claimed
    answer: Answer
    at: datetime

    def attempt(self) -> NewPushAttempt:
        answer = self.answer
        return NewPushAttempt(
            self.claimed.push.destination_id,
            self.claimed.push.event_id,
            self.at,
            answer.status,
            answer.latency_ms,
            answer.error,
            answer.response,
        )


class Pusher:
    def __init__(
        self,
        replica: Replica,
        destinations: DestinationStore,
        links: Links,
        metrics: Metrics,
        config: PushConfig,
    ) -> None:
        self._replica = replica
        self._db = replica.db
        self._destinations = destinations
        self._links = links
        self._metrics = metrics
        self._config = config
        self._transport = PushTransport(config.timeout)
        self._wanted = asyncio.Event()
        self._running: asyncio.Task[PushOutcome] | None = None

    def on_events(self, news: OutboxNews) -> None:
        """A subscriber to the outbox: pushes were committed, start them now. Events that no
        destination wants cost no claim transaction (the ticker still looks every tick)."""
        if news.pushes:
            self.kick()

    def kick(self) -> None:
        self._wanted.set()
        self._loop()

    async def run_until_idle(self) -> PushOutcome:
        """Push everything due, joining the loop if it already runs; what it pushed."""
        self._wanted.set()
        return await asyncio.shield(self._loop())

    def _loop(self) -> asyncio.Task[PushOutcome]:
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._push_until_idle(), name="pusher")
        return self._running

    async def _push_until_idle(self) -> PushOutcome:
        """Keep up to `concurrency` pushes in flight until nothing is due. Each transaction
        records the pushes that ended since the last one and claims as many as there are free
        slots: a burst costs few transactions, and a slow destination holds up no other. A
        job's next event is claimable once its earlier one is no longer pending, so claiming
        while others fly keeps each job's order."""
        outcome = PushOutcome()
        flying: dict[asyncio.Task[_Result], str] = {}  # each push out, and its destination
        ended: list[_Result] = []
        more_due = True
        try:
            while True:
                self._wanted.clear()
                limit = self._config.concurrency - len(flying) if more_due else 0
                if ended or limit:
                    busy = Counter(flying.values())
                    work = partial(self._settle_and_claim, ended=ended, limit=limit, busy=busy)
                    claim, recorded = await self._db.write(work)
                    self._count(recorded, outcome)
                    ended = []
                    for push in claim.pushes:
                        task = asyncio.create_task(self._attempt(push, claim.secrets))
                        flying[task] = push.destination.id
                    more_due = claim.asked > 0 and claim.taken == claim.asked
                if not (flying or more_due or self._wanted.is_set()):
                    return outcome
                if not more_due or len(flying) >= self._config.concurrency:
                    done = await self._wait_for_change(set(flying))
                    ended = [task.result() for task in done]
                    for task in done:
                        del flying[task]
                    more_due = True  # news came, or an ended push lets its job's next one go
        finally:
            for task in flying:
                task.cancel()

    async def _wait_for_change(
        self, flying: set[asyncio.Task[_Result]]
    ) -> set[asyncio.Task[_Result]]:
        """Until a push ends or news comes; the pushes that ended."""
        news = asyncio.create_task(self._wanted.wait())
        try:
            await asyncio.wait({*flying, news}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            news.cancel()
        return {task for task in flying if task.done()}

    def _settle_and_claim(
        self, conn: Connection, *, ended: Sequence[_Result], limit: int, busy: Counter[str]
    ) -> tuple[_Claim, list[tuple[_Result, str | None]]]:
        recorded = self._write_results(conn, ended) if ended else []
        claim = self._claim(conn, limit, busy) if limit else _Claim([], {}, 0, 0)
        return claim, recorded

    def _claim(self, conn: Connection, limit: int, busy: Counter[str]) -> _Claim:
        """Lease a batch of due pushes, with their events, destinations and secrets. `busy`:
        the pushes out per destination. None goes to a destination that has all it may have
        out, and the batch is no larger than the least room any other one has left, so that
        whichever destinations it takes, none gets more than its room."""
        room = self._config.per_destination
        full = sorted(d for d, out in busy.items() if out >= room)
        least_room = min((room - out for out in busy.values() if out < room), default=room)
        asked = min(limit, least_room)
        pushes = self._replica.claim(partial(gateway.claim_pushes, skip=full), conn, limit=asked)
        claimed, secrets = self._with_events(conn, pushes) if pushes else ([], {})
        return _Claim(claimed, secrets, len(pushes), asked)

    def _with_events(
        self, conn: Connection, pushes: Sequence[PushRecord]
    ) -> tuple[list[_Claimed], dict[str, list[str]]]:
        events = {e.id: e for e in gateway.events_by_ids(conn, [p.event_id for p in pushes])}
        destinations = {d.id: d for d in gateway.list_destinations(conn)}
        claimed = [
            _Claimed(p, events[p.event_id], destinations[p.destination_id])
            for p in pushes
            if p.event_id in events and p.destination_id in destinations
        ]
        ids = sorted({c.destination.id for c in claimed})
        return claimed, self._destinations.signing_secrets(conn, ids)

    async def _attempt(self, claimed: _Claimed, secrets: dict[str, list[str]]) -> _Result:
        # Renewed while the push is out, so that a lease shorter than the push timeout does
        # not let another replica send the same event at the same time.
        lease = asyncio.create_task(
            self._replica.keep_lease(gateway.extend_push_lease, claimed.push.id)
        )
        try:
            keys = secrets.get(claimed.destination.id, [])
            if keys:
                body = await render(claimed.event, self._links)
                answer = await self._send(claimed, body, keys)
            else:  # never unsigned: the app could not tell it from a forgery
                answer = Answer.failure(_NO_SECRET)
        except Exception as exc:  # a bug must not stop the other pushes
            log.exception("pushing %s failed", claimed.event.id)
            answer = Answer.failure(f"internal error: {exc!r}")
        finally:
            lease.cancel()
        return _Result(claimed, answer, utcnow())

    async def _send(self, claimed: _Claimed, body: bytes, secrets: Sequence[str]) -> Answer:
        sent_at = datetime.now(UTC)
        text = body.decode()
        signatures = " ".join(Webhook(s).sign(claimed.event.id, sent_at, text) for s in secrets)
        headers = {
            "content-type": "application/json",
            "user-agent": "aurous-receiver",
            "webhook-id": claimed.event.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signatures,
        }
        return await self._transport.post(claimed.destination.url, body, headers)

    def _count(self, recorded: Sequence[tuple[_Result, str | None]], outcome: PushOutcome) -> None:
        for result, kind in recorded:
            if kind is None:
                continue  # our lease ran out: another replica has it now
            setattr(outcome, kind, getattr(outcome, kind) + 1)
            self._metrics.push_attempts.labels(kind).inc()
            if not result.answer.delivered:
                outcome.errors.append(result.answer.error or f"HTTP {result.answer.status}")

    def _write_results(
        self, conn: Connection, results: Sequence[_Result]
    ) -> list[tuple[_Result, str | None]]:
        """The attempts' outcomes, fenced by our leases: each delivered, retry or failed, or
        None when its lease was lost."""
        outcomes = {r.claimed.push.id: self._outcome(r) for r in results}
        finishes = {push_id: finish for push_id, (_, finish) in outcomes.items()}
        owned = gateway.finish_pushes(conn, self._replica.owner, finishes)
        kept = [r for r in results if r.claimed.push.id in owned]
        gateway.record_push_attempts(conn, [r.attempt() for r in kept])
        for destination_id in sorted({r.claimed.destination.id for r in kept}):
            answers = [r.answer for r in kept if r.claimed.destination.id == destination_id]
            self._judge_destination(conn, destination_id, answers, kept[0].at)
        return [
            (r, outcomes[r.claimed.push.id][0] if r.claimed.push.id in owned else None)
            for r in results
        ]

    def _outcome(self, result: _Result) -> tuple[str, PushFinish]:
        push, answer, now = result.claimed.push, result.answer, result.at
        if answer.delivered:
            return "delivered", PushFinish(state=PushState.DELIVERED, delivered_at=now)
        if push.attempts >= MAX_ATTEMPTS:
            return "failed", PushFinish(state=PushState.FAILED)
        delay = next_attempt_delay(push.attempts, self._config.retry_scale, answer.retry_after)
        return "retry", PushFinish(next_attempt_at=now + timedelta(seconds=delay))

    def _judge_destination(
        self, conn: Connection, destination_id: str, answers: Sequence[Answer], now: datetime
    ) -> None:
        """A success clears the failing streak; a destination failing without one for too long
        is disabled, visibly. One whose secret cannot be opened here is disabled at once: that
        is ours to mend, and its pushes wait, not spend their attempts."""
        if any(answer.error == _NO_SECRET for answer in answers):
            gateway.switch_destination(
                conn, destination_id, enabled=False, reason=_NO_SECRET, at=now
            )
            return
        ok = any(answer.delivered for answer in answers)
        gateway.record_destination_answer(conn, destination_id, ok=ok, at=now)
        destination = None if ok else gateway.get_destination(conn, destination_id)
        if destination is None or destination.state != DestinationState.ENABLED:
            return
        since = destination.failing_since or now
        if now - since >= self._config.disable_after:
            reason = f"every push failed since {since.isoformat()} (no success for {now - since})"
            cutoff = now - self._config.disable_after
            if gateway.switch_destination(
                conn,
                destination_id,
                enabled=False,
                reason=reason,
                at=now,
                failing_since_before=cutoff,
            ):
                log.warning("destination %s disabled: %s", destination_id, reason)

    async def stop(self) -> None:
        if self._running is not None and not self._running.done():
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running
        await self._transport.close()
