"""The hand-over where destinations misbehave, operators replay and retention prunes: every
event reaches each destination once at a time, in order, and a slow one holds up no other."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from receiver.jobs.replica import Replica
from receiver.jobs.tracker import JobTracker
from receiver.metrics import Metrics
from receiver.relay import replay
from receiver.relay.destinations import DestinationChange, DestinationStore, NewDestination
from receiver.relay.links import Links
from receiver.relay.push import MAX_ATTEMPTS, PushConfig, Pusher
from receiver.relay.replay import replay_event, replay_range
from storage import gateway
from storage.blobs import BlobStore
from storage.crypto import SecretBox
from storage.db import Connection, Database
from storage.gateway import outbox
from storage.models import EVENT, EVENT_PUSH
from storage.types import utcnow
from tests.support.destination import DestinationApp, DestinationServer, start_destination


@dataclass
class _Relay:
    db: Database
    tracker: JobTracker
    destinations: DestinationStore
    root: Path

    def pusher(self, owner: str = "replica-a", *, lease_s: float = 60, **config: object) -> Pusher:
        replica = Replica(self.db, self.tracker, owner, lease=timedelta(seconds=lease_s))
        links = Links(
            BlobStore.from_url(f"file://{self.root}/blobs"), b"k" * 32, timedelta(1), None
        )
        return Pusher(replica, self.destinations, links, Metrics(), PushConfig(**config))  # type: ignore[arg-type]

    async def add(self, server: DestinationServer, app: DestinationApp) -> str:
        created = await self.destinations.add(NewDestination(server.url + "/hooks"))
        app.secrets.append(created.secret)
        return created.id

    async def tell(self, job_id: str, count: int = 1) -> None:
        def work(_: object, jobs: object) -> None:
            for _ in range(count):
                jobs.tell("spend.finding_opened", b'{"finding":null}', job_id)  # type: ignore[attr-defined]

        await self.tracker.write(work)

    async def pushes(self) -> list[tuple[str, int]]:
        query = select(EVENT_PUSH.c.state, EVENT_PUSH.c.attempts)
        return [tuple(row) for row in await self.db.read(lambda conn: conn.execute(query).all())]  # type: ignore[misc]


@pytest.fixture
async def relay(db_url: str, tmp_path: Path) -> AsyncIterator[_Relay]:
    db = Database(db_url)
    tracker = JobTracker(db, output_ttl_s=86_400)
    yield _Relay(db, tracker, DestinationStore(db, SecretBox(b"m" * 32)), tmp_path)
    await db.dispose()


@pytest.fixture
def servers() -> Iterator[list[DestinationServer]]:
    started: list[DestinationServer] = []
    yield started
    for server in started:
        server.stop()


def _serve(servers: list[DestinationServer], app: DestinationApp) -> DestinationServer:
    server = start_destination(app)
    servers.append(server)
    return server


async def test_a_destination_that_hangs_holds_up_no_other(
    relay: _Relay, servers: list[DestinationServer]
) -> None:
    hanging = DestinationApp(faults=["timeout"] * 100, hang_s=5)
    healthy = DestinationApp()
    await relay.add(_serve(servers, hanging), hanging)
    await relay.add(_serve(servers, healthy), healthy)
    for n in range(12):
        await relay.tell(f"img_{n:02}")
    pusher = relay.pusher(timeout=2.0, concurrency=4, per_destination=2, retry_scale=100)

    started = time.monotonic()
    pusher.kick()
    for _ in range(200):  # at most 10 s
        if len(healthy.received) == 12:
            break
        await asyncio.sleep(0.05)
    took = time.monotonic() - started
    await pusher.stop()

    assert len(healthy.received) == 12
    assert took < 1.5, f"the healthy destination waited {took:.1f} s behind the hanging one"


async def test_a_replayed_push_that_had_failed_gets_a_whole_schedule_again(
    relay: _Relay, servers: list[DestinationServer]
) -> None:
    app = DestinationApp(faults=["500"] * (MAX_ATTEMPTS + 2))
    await relay.add(_serve(servers, app), app)
    await relay.tell("img_failing")
    pusher = relay.pusher(retry_scale=1e-6)
    while (await relay.pushes())[0][0] != "failed":
        await pusher.run_until_idle()
        await asyncio.sleep(0.01)
    [event] = await relay.db.read(lambda conn: conn.execute(select(EVENT.c.id)).scalars().all())
    [destination] = await relay.destinations.list_all()

    await replay_event(relay.db, event, destination.id)
    while (await relay.pushes())[0][0] == "pending":
        await pusher.run_until_idle()
        await asyncio.sleep(0.01)

    assert await relay.pushes() == [("delivered", 3)]  # two more 500s, then delivered
    assert [r.webhook_id for r in app.received] == [event]


async def test_a_destination_failing_too_long_is_disabled_and_enabling_starts_afresh(
    relay: _Relay, servers: list[DestinationServer]
) -> None:
    app = DestinationApp(faults=["500"] * (2 * MAX_ATTEMPTS))
    destination_id = await relay.add(_serve(servers, app), app)
    pusher = relay.pusher(retry_scale=1e-6, disable_after=timedelta(seconds=0.3))

    await relay.tell("img_streak_1")
    await pusher.run_until_idle()  # every attempt fails, within the grace
    started = await relay.destinations.get(destination_id)
    assert started.state == "enabled" and started.failing_since is not None
    await asyncio.sleep(0.35)
    await relay.tell("img_streak_2")
    await pusher.run_until_idle()
    disabled = await relay.destinations.get(destination_id)
    assert disabled.state == "disabled" and disabled.failing_since == started.failing_since
    assert (disabled.disabled_reason or "").startswith("every push failed since")

    enabled = await relay.destinations.change(destination_id, DestinationChange(enabled=True))
    assert (enabled.state, enabled.disabled_reason, enabled.failing_since) == (
        "enabled",
        None,
        None,
    )
    app.faults.clear()  # the app is back
    await relay.tell("img_streak_3")
    await pusher.run_until_idle()
    healthy = await relay.destinations.get(destination_id)
    assert healthy.failing_since is None and healthy.last_success_at is not None
    assert healthy.state == "enabled" and healthy.updated_at == enabled.updated_at


async def test_a_replay_while_the_push_is_out_sends_it_once_at_a_time(
    relay: _Relay, servers: list[DestinationServer]
) -> None:
    app = DestinationApp(faults=["timeout"], hang_s=1.0)  # the first answer takes a second
    await relay.add(_serve(servers, app), app)
    await relay.tell("img_replayed")
    [destination] = await relay.destinations.list_all()
    pusher = relay.pusher(timeout=5.0)
    pushing = asyncio.create_task(pusher.run_until_idle())
    await asyncio.sleep(0.3)
    [event] = await relay.db.read(lambda conn: conn.execute(select(EVENT.c.id)).scalars().all())

    await replay_event(relay.db, event, destination.id)
    pusher.kick()
    await pushing
    await asyncio.sleep(1.2)
    await pusher.run_until_idle()

    assert app.overlapping == []


async def test_a_push_that_outlasts_its_lease_is_not_sent_again_beside_itself(
    relay: _Relay, servers: list[DestinationServer]
) -> None:
    app = DestinationApp(faults=["timeout"], hang_s=1.5)  # longer than the lease
    await relay.add(_serve(servers, app), app)
    await relay.tell("img_long")
    first = relay.pusher(lease_s=0.6, timeout=5.0)
    other = relay.pusher("replica-b", lease_s=0.6, timeout=5.0)
    pushing = asyncio.create_task(first.run_until_idle())
    await asyncio.sleep(1.0)
    meanwhile = await other.run_until_idle()
    await pushing

    assert meanwhile.handled == 0 and app.overlapping == []


async def test_a_replay_window_in_naive_times_is_read_as_utc(
    relay: _Relay, servers: list[DestinationServer]
) -> None:
    app = DestinationApp()
    destination = await relay.add(_serve(servers, app), app)
    await relay.tell("img_window", 2)
    now = utcnow().replace(tzinfo=None)

    replayed = await replay_range(
        relay.db, destination, now - timedelta(hours=1), now + timedelta(1)
    )

    assert replayed == 2


async def test_a_jobs_sequence_carries_on_after_its_events_are_pruned(relay: _Relay) -> None:
    await relay.tell("img_old", 3)
    await relay.db.write(lambda conn: gateway.prune_events(conn, utcnow() + timedelta(seconds=1)))
    await relay.tell("img_old")

    query = select(EVENT.c.sequence).where(EVENT.c.job_id == "img_old").order_by(EVENT.c.sequence)
    sequences = await relay.db.read(lambda conn: list(conn.execute(query).scalars()))
    assert sequences == [3, 4]


async def test_lookups_of_tens_of_thousands_of_jobs_fit_one_transaction(relay: _Relay) -> None:
    """A first audit pass may tell about every job at once: past any driver's parameter limit."""
    job_ids = [f"img_{n:06}" for n in range(40_000)]

    def look(conn: Connection) -> tuple[object, ...]:
        return (
            gateway.lock_jobs(conn, job_ids),
            gateway.list_outputs(conn, job_ids),
            outbox.last_sequences(conn, job_ids),
        )

    assert await relay.db.write(look) == ({}, [], {})


async def test_a_replay_of_a_long_range_takes_every_event_once(
    relay: _Relay, servers: list[DestinationServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range is replayed a page to a transaction; here pages of three events."""
    monkeypatch.setattr(replay, "_PAGE", 3)
    await relay.tell("img_many", 7)
    app = DestinationApp()
    destination = await relay.add(_serve(servers, app), app)  # added after: it missed them
    now = utcnow()

    replayed = await replay_range(relay.db, destination, now - timedelta(hours=1), now)

    assert replayed == 7
    assert await relay.pushes() == [("pending", 0)] * 7


async def _remove_destination(url: str, destination_id: str) -> None:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute("DELETE FROM destination WHERE id = $1", destination_id)
    finally:
        await connection.close()


@pytest.mark.postgres
async def test_a_destination_removed_while_a_job_change_fans_out_fails_neither(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The removal waits for the job's transaction, then takes its new pushes with it."""
    db = Database(pg_url)
    relay = _Relay(
        db,
        JobTracker(db, output_ttl_s=86_400),
        DestinationStore(db, SecretBox(b"m" * 32)),
        tmp_path,
    )
    created = await relay.destinations.add(NewDestination("http://127.0.0.1:9/hooks"))
    read = outbox.destinations_to_tell
    removals: list[threading.Thread] = []

    def read_then_remove(conn: Connection) -> list[Any]:
        found = read(conn)
        removal = threading.Thread(
            target=asyncio.run, args=(_remove_destination(pg_url, created.id),)
        )
        removal.start()
        removals.append(removal)
        time.sleep(0.3)  # the operator's removal runs now, while this transaction is open
        return found

    monkeypatch.setattr(outbox, "destinations_to_tell", read_then_remove)
    try:
        await relay.tell("img_fanned_out")
        removals[0].join(10)
        assert await relay.destinations.list_all() == []
        assert await relay.pushes() == []
    finally:
        await db.dispose()


async def test_a_destination_whose_secret_this_key_cannot_open_gets_nothing_unsigned(
    relay: _Relay, servers: list[DestinationServer]
) -> None:
    """A secret an earlier release sealed under another master key is left out: nothing is
    sent unsigned (the app could not tell it from a forgery). The destination is disabled
    with the reason, its pushes wait, and once its secret is rotated and it is enabled, it
    gets what it missed."""
    app = DestinationApp()
    server = _serve(servers, app)
    elsewhere = DestinationStore(relay.db, SecretBox(b"o" * 32))
    created = await elsewhere.add(NewDestination(server.url + "/hooks"))
    await relay.tell("img_unsigned")
    pusher = relay.pusher(retry_scale=1e-6)

    await pusher.run_until_idle()
    stopped = await relay.destinations.get(created.id)
    rotated = await relay.destinations.rotate_secret(created.id, timedelta(0))
    app.secrets.append(rotated.secret)
    await relay.destinations.change(created.id, DestinationChange(enabled=True))
    await pusher.run_until_idle()
    await pusher.stop()

    assert stopped.state == "disabled" and "no signing secret" in (stopped.disabled_reason or "")
    assert len(app.received) == 1 and await relay.pushes() == [("delivered", 2)]
