"""Issue 13's hard cases: a destination that fails in every way while the receiver is killed
with -9 twice, and three replicas on PostgreSQL sharing the pushes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.e2e.test_relay_flow import all_events, assert_in_order, settled
from tests.support.destination import DestinationApp, start_destination
from tests.support.harness import (
    ReceiverProcess,
    free_port,
    receiver_settings,
    start_receiver,
    start_simulator,
    wait_for,
)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_every_event_arrives_through_failures_and_two_kills_in_order(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    port = free_port()
    sim = start_simulator(stack, receiver_port=port, output_size=10_000)
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim)
    # The schedule shrunk a thousandfold: 5 ms, 0.3 s, 1.8 s, 7.2 s, …
    receiver = ReceiverProcess(settings, port, RECEIVER_RELAY_RETRY_SCALE="0.001")
    stack.callback(receiver.stop)
    receiver.start()
    faults = ["500", "reset", "429", "500", "timeout", "reset", "429", "500"]
    app = DestinationApp(faults=list(itertools.islice(itertools.cycle(faults), 60)))
    server = start_destination(app)
    stack.callback(server.stop)
    created = receiver.post("/destinations", {"url": server.url + "/hooks"})
    app.secrets.append(created["secret"])

    sim.create_direct("image", 20, {"prompt": "through the storm"})
    wait_for(lambda: len(app.received) >= 5, timeout=60, interval=0.1)
    receiver.kill()
    receiver.start()
    sim.create_direct("image", 20, {"prompt": "after the first kill"})
    wait_for(lambda: len(app.received) >= 30, timeout=90, interval=0.1)
    receiver.kill()
    receiver.start()

    def everything_arrived() -> bool:
        events = receiver.get("/events?limit=500")["data"]
        return len(events) >= 80 and {e["id"] for e in events} <= {
            r.webhook_id for r in app.received
        }

    wait_for(everything_arrived, timeout=240, interval=1)
    known = {e["id"] for e in receiver.get("/events?limit=500")["data"]}
    assert all(r.webhook_id in known and r.event["id"] == r.webhook_id for r in app.received)
    assert_in_order(app.received)
    assert app.faults == [] and app.refused == []


@pytest.mark.postgres
def test_three_replicas_share_the_pushes_and_never_send_one_twice_at_once(
    stack: ExitStack, tmp_path: Path, pg_url: str
) -> None:
    port = free_port()
    sim = start_simulator(stack, receiver_port=port, output_size=10_000)
    replicas = [
        start_receiver(
            stack,
            receiver_settings(tmp_path / f"data{n}", pg_url, sim, tick_s=0.2),
            port=port if n == 0 else 0,
        )
        for n in range(3)
    ]
    app = DestinationApp()
    server = start_destination(app)
    stack.callback(server.stop)
    created = replicas[1].client.post("/destinations", json={"url": server.url + "/hooks"})
    app.secrets.append(created.json()["secret"])
    for n in range(30):  # creates spread over the replicas: each one commits events
        assert replicas[n % 3].create("image", {"prompt": f"shared {n}"}).status_code == 201

    wait_for(lambda: settled(replicas[0], 30), timeout=120, interval=1)

    def everything_arrived() -> bool:
        return {e["id"] for e in all_events(replicas[2])} <= {r.webhook_id for r in app.received}

    wait_for(everything_arrived, timeout=120, interval=0.5)
    assert app.overlapping == []
    assert_in_order(app.received)
