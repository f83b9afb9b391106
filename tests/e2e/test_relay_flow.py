"""Issue 13 end to end: every job change handed over to the customer's app, pushed (signed,
in order per job), pulled and streamed, replayed, through secret rotation, against the
simulator and a destination that verifies with the `standardwebhooks` package."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.destination import DestinationApp, Received, start_destination
from tests.support.harness import (
    ReceiverHandle,
    SimHandle,
    free_port,
    receiver_settings,
    start_receiver,
    start_simulator,
    truth_by_id,
    wait_for,
)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def start_pair(
    stack: ExitStack, data: Path, database_url: str, **faults: Any
) -> tuple[SimHandle, ReceiverHandle]:
    """The simulator and a receiver that it sends its webhooks to."""
    port = free_port()
    sim = start_simulator(stack, receiver_port=port, **faults)
    return sim, start_receiver(stack, receiver_settings(data, database_url, sim), port)


def add_destination(
    receiver: ReceiverHandle, app: DestinationApp, stack: ExitStack, **body: Any
) -> str:
    server = start_destination(app)
    stack.callback(server.stop)
    created = receiver.client.post("/destinations", json={"url": server.url + "/hooks", **body})
    assert created.status_code == 201, created.text
    app.secrets.append(created.json()["secret"])
    return str(created.json()["id"])


def all_events(receiver: ReceiverHandle) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = "0"
    while True:
        page = receiver.client.get("/events", params={"after": cursor, "limit": 500}).json()
        found += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return found


def settled(receiver: ReceiverHandle, expected: int) -> bool:
    jobs = receiver.jobs()
    if len(jobs) < expected or any(not job["terminal"] for job in jobs):
        return False
    return all(o["state"] != "pending" for job in jobs for o in job["outputs"])


def all_pushed(receiver: ReceiverHandle, app: DestinationApp, family: str = "") -> bool:
    """Every event (of this family, e.g. `job.`) has reached the destination."""
    wanted = {e["id"] for e in all_events(receiver) if e["type"].startswith(family)}
    return wanted <= {r.webhook_id for r in app.received}


def by_job(received: list[Received]) -> dict[str, list[dict[str, Any]]]:
    jobs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in received:
        if r.event["job_id"]:
            jobs[r.event["job_id"]].append(r.event)
    return jobs


def assert_in_order(received: list[Received]) -> None:
    """Per job, arrivals never go back in sequence (a redelivery repeats, never overtakes)."""
    for job_id, events in by_job(received).items():
        sequences = [e["sequence"] for e in events]
        assert sequences == sorted(sequences), (job_id, sequences)


def assert_every_change_told(
    sim: SimHandle, received: list[Received], receiver: ReceiverHandle
) -> None:
    told = by_job(received)
    for job_id, true_job in truth_by_id(sim).items():
        types = {e["type"] for e in told[job_id]}
        assert f"job.{true_job['status']}" in types, (job_id, types)
        if true_job["status"] == "succeeded":
            archived = [e for e in told[job_id] if e["type"] == "output.archived"]
            assert len({e["data"]["output"]["index"] for e in archived}) == len(
                true_job["outputs"]
            ), job_id


def test_every_job_change_and_output_reaches_the_app_signed_and_in_order(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim, receiver = start_pair(
        stack,
        tmp_path / "data",
        sqlite_url,
        failed_rate=0.1,
        moderation_rate=0.05,
        output_size=20_000,
    )
    app = DestinationApp()
    add_destination(receiver, app, stack)
    for n in range(100):
        assert receiver.create("image", {"prompt": f"relay {n}"}).status_code == 201
    sim.create_direct("image", 80, {"prompt": "elsewhere"})
    sim.create_direct("video", 20, {"prompt": "a video", "duration": 2})

    wait_for(lambda: settled(receiver, 200), timeout=240, interval=1)
    wait_for(lambda: all_pushed(receiver, app), timeout=60, interval=0.5)

    assert app.refused == []
    assert all(r.verified_by == [0] for r in app.received)
    assert_in_order(app.received)
    assert_every_change_told(sim, app.received, receiver)
    truth = truth_by_id(sim)
    archived = [r.event for r in app.received if r.event["type"] == "output.archived"]
    for event in archived[:20]:  # the links work without the admin token
        output = event["data"]["output"]
        assert output["download_url"] and output["download_expires_at"]
        body = httpx.get(receiver.server.url + output["download_url"]).content
        true_output = truth[event["job_id"]]["outputs"][output["index"]]
        assert hashlib.sha256(body).hexdigest() == true_output["sha256"] == output["sha256"]
        assert event["data"]["job"]["id"] == event["job_id"]
    altered = archived[0]["data"]["output"]["download_url"].replace("signature=", "signature=f")
    assert httpx.get(receiver.server.url + altered).status_code == 403


def test_jobs_whose_webhooks_never_came_are_told_all_the_same(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim, receiver = start_pair(
        stack, tmp_path / "data", sqlite_url, drop_rate=1.0, output_size=10_000
    )
    app = DestinationApp()
    add_destination(receiver, app, stack)
    for n in range(15):
        assert receiver.create("image", {"prompt": f"polled {n}"}).status_code == 201
    sim.create_direct("image", 15, {"prompt": "swept"})

    wait_for(lambda: settled(receiver, 30), timeout=180, interval=1)
    wait_for(lambda: all_pushed(receiver, app), timeout=60, interval=0.5)

    assert sim.stats()["deliveries"].get("succeeded", 0) == 0
    assert_every_change_told(sim, app.received, receiver)
    assert_in_order(app.received)


def test_the_feed_and_the_stream_yield_every_event_once_in_order(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim, receiver = start_pair(stack, tmp_path / "data", sqlite_url, output_size=10_000)
    sim.create_direct("image", 20, {"prompt": "fed"})
    wait_for(lambda: settled(receiver, 20), timeout=120, interval=1)
    everything = all_events(receiver)
    assert len(everything) >= 40

    paged: list[str] = []
    cursor = "0"
    while True:
        page = receiver.client.get("/events", params={"after": cursor, "limit": 7}).json()
        paged += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert paged == [e["id"] for e in everything]

    streamed = read_stream(receiver, len(everything) // 2, headers={})
    rest = read_stream(
        receiver, len(everything) - len(streamed), headers={"Last-Event-ID": streamed[-1]}
    )
    assert streamed + rest == [e["id"] for e in everything]

    waited = time.monotonic()
    empty = receiver.client.get("/events", params={"after": cursor, "wait": 1}).json()
    assert empty["data"] == [] and time.monotonic() - waited >= 0.9
    assert empty["next_cursor"] == cursor


def read_stream(receiver: ReceiverHandle, count: int, headers: dict[str, str]) -> list[str]:
    ids: list[str] = []
    with receiver.client.stream("GET", "/events/stream", headers=headers, timeout=30) as stream:
        for line in stream.iter_lines():
            if line.startswith("id: "):
                ids.append(line[4:])
            if line.startswith("data: "):
                assert json.loads(line[6:])["id"] == ids[-1]
                if len(ids) == count:
                    break
    return ids


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim, receiver = start_pair(stack, tmp_path / "data", sqlite_url, output_size=10_000)
    app = DestinationApp()
    destination = add_destination(receiver, app, stack, events=["job.*"])
    rotated = receiver.client.post(
        f"/destinations/{destination}/rotate-secret", json={"grace": "4s"}
    )
    assert rotated.status_code == 200, rotated.text
    app.secrets.append(rotated.json()["secret"])  # [old, new]: who verifies each push
    sim.create_direct("image", 5, {"prompt": "during the grace"})
    wait_for(lambda: len(app.received) >= 5, timeout=60, interval=0.2)
    assert all(r.verified_by == [0, 1] for r in app.received)

    time.sleep(4.5)
    before = len(app.received)
    sim.create_direct("image", 3, {"prompt": "after the grace"})
    wait_for(lambda: len(app.received) >= before + 3, timeout=60, interval=0.2)
    assert all(r.verified_by == [1] for r in app.received[before:])
    assert app.refused == []


def test_replay_resends_with_the_same_ids_and_a_disabled_destination_catches_up(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim, receiver = start_pair(stack, tmp_path / "data", sqlite_url, output_size=10_000)
    app = DestinationApp()
    destination = add_destination(receiver, app, stack, events=["job.*"])
    sim.create_direct("image", 4, {"prompt": "first"})
    wait_for(lambda: len(app.received) >= 4, timeout=60, interval=0.2)

    one = app.received[0].webhook_id
    answer = receiver.client.post(f"/events/{one}/replay", json={"destination": destination})
    assert answer.status_code == 200 and answer.json()["replayed"] == 1
    wait_for(lambda: [r.webhook_id for r in app.received].count(one) == 2, timeout=30)
    count = len(app.received)
    window = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    ranged = receiver.client.post(f"/destinations/{destination}/replay", json=window).json()
    assert ranged["replayed"] >= 4
    wait_for(lambda: len(app.received) >= count + ranged["replayed"], timeout=30)
    assert {r.webhook_id for r in app.received[count:]} == {r.webhook_id for r in app.received}

    disabled = receiver.client.patch(f"/destinations/{destination}", json={"enabled": False})
    assert disabled.json()["state"] == "disabled"
    quiet = len(app.received)
    sim.create_direct("image", 3, {"prompt": "while disabled"})
    wait_for(lambda: settled(receiver, 7), timeout=60, interval=0.5)
    time.sleep(2)
    assert len(app.received) == quiet
    receiver.client.patch(f"/destinations/{destination}", json={"enabled": True})
    wait_for(lambda: all_pushed(receiver, app, "job."), timeout=30, interval=0.2)
    assert_in_order(app.received[quiet:])


def test_bad_input_gets_the_error_envelope(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    _, receiver = start_pair(stack, tmp_path / "data", sqlite_url)
    client = receiver.client
    cases = [
        (client.post("/destinations", json={"url": "ftp://x/y"}), 400, "invalid_url"),
        (
            client.post("/destinations", json={"url": "http://x/y", "events": ["job.*", "nope"]}),
            400,
            "invalid_event_pattern",
        ),
        (client.get("/events", params={"after": "later"}), 400, "invalid_cursor"),
        (client.get("/events/stream", headers={"Last-Event-ID": "evt_gone"}), 400, "unknown_event"),
    ]
    app = DestinationApp()
    destination = add_destination(receiver, app, stack)
    cases.append(
        (
            client.post("/events/evt_nope/replay", json={"destination": destination}),
            404,
            "event_not_found",
        )
    )
    cases.append((client.get("/destinations/dst_nope"), 404, "destination_not_found"))
    for response, status, code in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert (
            error["code"] == code and error["request_id"] == response.headers["Receiver-Request-Id"]
        )
