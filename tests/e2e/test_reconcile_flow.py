"""Issue 5 end to end: sweeps, polls, creates and replicas against the simulator."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.harness import (
    ReceiverHandle,
    ReceiverProcess,
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


def all_terminal(sim: SimHandle) -> bool:
    return all(job["terminal"] for job in sim.truth()["jobs"])


def matches_truth(receiver: ReceiverHandle, sim: SimHandle) -> bool:
    truth = truth_by_id(sim)
    jobs = {job["id"]: job for job in receiver.jobs()}
    if set(jobs) != set(truth):
        return False
    for job_id, true_job in truth.items():
        job = jobs[job_id]
        if job["status"] != true_job["status"]:
            return False
        if any(o["state"] != "archived" for o in job["outputs"]):
            return False
        if true_job["status"] == "succeeded" and len(job["outputs"]) != len(true_job["outputs"]):
            return False
    return True


def create_half_and_half(receiver: ReceiverHandle, sim: SimHandle, total: int) -> None:
    for n in range(total // 2):
        response = receiver.create("image", {"prompt": f"through the receiver {n}"})
        assert response.status_code == 201, response.text
    sim.create_direct("image", total - total // 2)


def test_with_every_webhook_dropped_sweeps_find_every_job_cheaply(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    interval = 3.0
    port = free_port()
    sim = start_simulator(stack, receiver_port=port, drop_rate=1.0, failed_rate=0.05)
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim, sweep_interval_s=interval)
    receiver = start_receiver(stack, settings, port=port)
    create_half_and_half(receiver, sim, 500)

    wait_for(lambda: all_terminal(sim), timeout=60, interval=0.5)
    finished = time.monotonic()
    wait_for(lambda: matches_truth(receiver, sim), timeout=2 * interval + 15, interval=0.5)
    took = time.monotonic() - finished

    gets = sim.stats()["gets"]
    lists, polls = gets.get("images_list", 0), gets.get("images_get", 0)
    print(
        f"\n500 jobs, webhooks dropped: settled {took:.1f}s after the last finished "
        f"(sweep interval {interval}s); list GETs {lists}, targeted polls {polls}, "
        f"allowed {500 // 50} + polls"
    )
    assert sim.stats()["faults"]["drop"] >= 500
    # One GET per 50 jobs, plus the idle sweeps at start-up and at the end, plus one page that a
    # sweep reads again when it meets jobs still changing (how often depends on timing).
    assert lists <= 500 // 50 + 3
    via = Counter(job["terminal_via"] for job in receiver.jobs())
    assert via["webhook"] == 0


def test_429_storm_and_5xx_lose_nothing_and_pauses_are_respected(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    port = free_port()
    sim = start_simulator(
        stack, receiver_port=port, drop_rate=0.5, rate_limit_storm=0.2, get_5xx_rate=0.1
    )
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim, sweep_interval_s=2.0)
    receiver = start_receiver(stack, settings, port=port)
    sent: list[float] = []
    pauses: list[tuple[float, float]] = []
    runtime = receiver.server.app.state.runtime

    async def on_request(request: httpx.Request) -> None:
        sent.append(time.monotonic())

    async def on_response(response: httpx.Response) -> None:
        if response.status_code == 429:
            pauses.append((time.monotonic(), float(response.headers["retry-after"])))

    for client in (runtime.aurous.http, runtime.http):  # API calls and output downloads
        client.event_hooks["request"].append(on_request)
        client.event_hooks["response"].append(on_response)
    create_half_and_half(receiver, sim, 100)
    wait_for(lambda: all_terminal(sim), timeout=60, interval=0.5)
    # Nothing may be lost; how long it takes depends on the dice: a download that meets
    # several 429s and 5xx in a row waits out a growing backoff (1 s, 2 s, 4 s, ... jittered).
    wait_for(lambda: matches_truth(receiver, sim), timeout=180, interval=0.5)

    assert sim.stats()["faults"]["rate_limit_storm"] > 0
    assert pauses
    for received_at, retry_after in pauses:
        during = [t for t in sent if received_at < t < received_at + retry_after - 0.05]
        assert during == [], f"requests sent during a {retry_after}s pause"


def test_kill_9_after_aurous_accepted_a_create_leaves_exactly_one_job(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    port = free_port()
    sim = start_simulator(stack, receiver_port=port, create_reply_delay_s=3.0)
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim, create_repair_after_s=2)
    receiver = ReceiverProcess(settings, port)
    stack.callback(receiver.stop)
    receiver.start()

    def create() -> None:
        headers = {"Authorization": f"Bearer {settings.admin_token}", "Idempotency-Key": "k-1"}
        with contextlib.suppress(httpx.TransportError):  # it dies mid-request: the point
            httpx.post(
                f"{receiver.url}/jobs/images",
                json={"prompt": "exactly once"},
                headers=headers,
                timeout=10,
            )

    caller = threading.Thread(target=create)
    caller.start()
    wait_for(lambda: len(sim.truth()["jobs"]) == 1, timeout=10, interval=0.05)
    receiver.kill()  # Aurous has the job; the receiver never heard back
    caller.join(10)
    sim.faults(create_reply_delay=0)

    receiver.start()  # the repair pass resends key k-1; Aurous replays the original
    [true_job] = sim.truth()["jobs"]
    job = wait_for(
        lambda: (j := receiver.get(f"/jobs/{true_job['id']}")).get("id") and j,
        timeout=30,
        interval=0.2,
    )
    assert job["first_seen_via"] in ("api", "sweep", "webhook")
    assert len(sim.truth()["jobs"]) == 1
    retry = httpx.post(
        f"{receiver.url}/jobs/images",
        json={"prompt": "exactly once"},
        headers={"Authorization": f"Bearer {settings.admin_token}", "Idempotency-Key": "k-1"},
        timeout=10,
    )
    assert retry.status_code == 201
    assert retry.json()["id"] == true_job["id"]
    assert len(sim.truth()["jobs"]) == 1


def test_the_same_key_with_another_body_is_refused(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim = start_simulator(stack)
    receiver = start_receiver(stack, receiver_settings(tmp_path / "data", sqlite_url, sim))
    first = receiver.create("image", {"prompt": "a"}, key="same")
    again = receiver.create("image", {"prompt": "a"}, key="same")
    other = receiver.create("image", {"prompt": "b"}, key="same")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_in_use"
    bad = receiver.create("image", {"prompt": ""})
    assert bad.status_code == 400
    assert bad.json()["error"]["aurous_request_id"].startswith("req_")
    assert len(sim.truth()["jobs"]) == 1


def register_endpoint(sim: SimHandle, url: str) -> str:
    created = sim.client.post("/v1/webhook_endpoints", json={"url": url, "events": ["*"]})
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


@pytest.mark.postgres
def test_three_replicas_share_the_work_exactly_once(
    stack: ExitStack, tmp_path: Path, pg_url: str
) -> None:
    ports = [free_port() for _ in range(3)]
    sim = start_simulator(
        stack,
        receiver_port=ports[0],
        drop_rate=0.2,
        duplicate_rate=0.2,
        reorder_rate=0.2,
        get_5xx_rate=0.1,
        failed_rate=0.05,
    )
    secrets = [register_endpoint(sim, f"http://127.0.0.1:{p}/webhooks/aurous") for p in ports[1:]]
    receivers = []
    for port in ports:
        settings = receiver_settings(tmp_path / "data", pg_url, sim, sweep_interval_s=2.0)
        settings = settings.with_overrides(
            bootstrap_secrets=(*settings.bootstrap_secrets, *secrets),
            media_url=(tmp_path / "shared-media").as_uri(),
            data_dir=tmp_path / f"data-{port}",
        )
        receivers.append(start_receiver(stack, settings, port=port))
    create_half_and_half(receivers[0], sim, 150)
    sim.create_direct("video", 10, {"prompt": "replicas", "duration": 2})

    wait_for(lambda: all_terminal(sim), timeout=60, interval=0.5)
    wait_for(lambda: matches_truth(receivers[1], sim), timeout=90, interval=1)

    stats = sim.stats()
    downloads = stats["outputs"].get("image_downloads", 0) + stats["outputs"].get(
        "video_downloads", 0
    )
    outputs = sum(
        len(j["outputs"]) for j in truth_by_id(sim).values() if j["status"] == "succeeded"
    )
    assert downloads == outputs, f"{downloads} downloads for {outputs} outputs"
    for job in receivers[2].jobs():
        events = receivers[2].client.get(f"/jobs/{job['id']}/events").json()["data"]
        applied = [e["to_status"] for e in events if e["applied"]]
        assert len(applied) == len(set(applied)), (job["id"], events)
    accepted = Counter(
        d["status"]
        for r in receivers
        for d in r.client.get("/deliveries", params={"limit": 200}).json()["data"]
    )
    assert accepted["processed"] > 0
    assert stats["faults"]["duplicate"] > 0


def _cli(settings: Any, *args: str) -> str:
    from click.testing import CliRunner

    from receiver.cli import cli
    from tests.support.harness import settings_env

    result = CliRunner().invoke(cli, list(args), env=settings_env(settings))
    assert result.exit_code == 0, result.output
    return result.output


def _deliveries(sim: SimHandle) -> dict[str, int]:
    return dict(sim.stats()["deliveries"])


@pytest.mark.parametrize("grace", ["24h", "0"])
def test_endpoint_rotation_loses_no_delivery(
    stack: ExitStack, tmp_path: Path, sqlite_url: str, grace: str
) -> None:
    port = free_port()
    sim = start_simulator(stack, rotation_grace_s=86400.0 if grace == "24h" else 0.0)
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim, bootstrap_secrets=())
    receiver = start_receiver(stack, settings, port=port)
    registered = _cli(settings, "endpoint", "register", f"http://127.0.0.1:{port}/webhooks/aurous")
    endpoint_id = registered.split()[1].rstrip(";")
    assert endpoint_id.startswith("we_")

    sim.create_direct("image", 20)
    if grace == "24h":  # rotate while deliveries are flowing
        _cli(settings, "endpoint", "rotate", endpoint_id, "--grace", grace)
    wait_for(lambda: all_terminal(sim), timeout=30, interval=0.2)
    wait_for(lambda: len([j for j in receiver.jobs() if j["terminal"]]) == 20, timeout=30)
    if grace == "0":  # immediate rotation: the very next delivery carries only the new secret
        _cli(settings, "endpoint", "rotate", endpoint_id, "--grace", grace)
        [job_id] = sim.create_direct("image", 1)
        job = wait_for(
            lambda: receiver.client.get(f"/jobs/{job_id}").json().get("terminal"),
            timeout=30,
            interval=0.1,
        )
        assert job
    stats = _deliveries(sim)
    assert stats.get("failed", 0) == 0, stats
    rejected = receiver.client.get("/deliveries", params={"status": "rejected"}).json()["data"]
    assert rejected == []
    secrets = receiver.client.get("/secrets").json()["data"]
    assert [s["state"] for s in secrets] == (
        ["active", "active"] if grace == "24h" else ["expired", "active"]
    )
