"""Handing events over to the customer's app: latency and push throughput, on loopback.

(a) Latency: signed Aurous deliveries (each a new job that succeeded, one small output) at a
steady rate; for each, the time from the receiver's 200 (as the sender sees it) to the arrival
of its `job.succeeded` event at a local destination; `output.archived` is shown beside it
(it includes fetching and storing the output). p50 and p99.

(b) Throughput: events pile up for a disabled destination; enabling it, the receiver pushes
them all (signed, each attempt recorded). Baseline, in the same run: a bare httpx client posting
the same bodies to the same destination with the same concurrency as the pusher.

    .venv/bin/python bench/relay.py [--rate 200] [--seconds 10] [--backlog 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from ingest import MASTER_KEY, SECRET, TOKEN, free_port

PUSH_CONCURRENCY = 16  # the pusher's own (receiver.relay.push.PushConfig)
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def start(
    command: list[str], env: dict[str, str], ready: str, log: Path
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready, timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{command[1:3]} did not start; see {log}:\n{log.read_text()[-2000:]}")


def delivery(n: int, status: str, outputs: str) -> tuple[bytes, dict[str, str]]:
    from receiver.webhooks.signing import sign

    job_id = f"img_RELAY{n:010d}"
    data: dict[str, Any] = {
        "id": job_id,
        "object": "inference",
        "status": status,
        "media_type": "image",
        "created_at": "2026-05-04T10:00:00Z",
        "completed_at": "2026-05-04T10:00:14Z",
        "output_urls": [f"{outputs}/o/{job_id}.png"] if status == "succeeded" else [],
        "cost": {"amount": 2, "currency": "credit"},
    }
    kind = "image.completed" if status == "succeeded" else "image.failed"
    event = {"id": f"evt_RELAY{n:010d}", "type": kind, "created_at": "2026-05-04T10:00:15Z"}
    body = json.dumps({**event, "synthetic": False, "data": data}).encode()
    headers = {
        "content-type": "application/json",
        "aurous-webhook-signature": sign(body, [SECRET], int(time.time())),
    }
    return body, headers


async def send_paced(
    receiver: str, deliveries: list[tuple[bytes, dict[str, str]]], rate: float
) -> dict[str, float]:
    """Deliveries at `rate` per second; the time each one's 200 came back, by job id. The
    sender is aiohttp: the lightest client at hand, so that its own delay in seeing the 200
    stays small beside what is measured."""
    import aiohttp

    acked: dict[str, float] = {}
    async with aiohttp.ClientSession(base_url=receiver) as session:

        async def one(n: int) -> None:
            body, headers = deliveries[n]
            try:
                async with session.post("/webhooks/aurous", data=body, headers=headers) as answer:
                    if answer.status == 200:
                        acked[json.loads(body)["data"]["id"]] = time.time()
            except aiohttp.ClientError:
                return  # counted below: sent but not acknowledged

        started = time.perf_counter()
        tasks = []
        for n in range(len(deliveries)):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return acked


async def send_burst(receiver: str, first: int, count: int) -> None:
    async with httpx.AsyncClient(base_url=receiver, timeout=30) as client:
        numbers = iter(range(first, first + count))

        async def worker() -> None:
            for n in numbers:
                body, headers = delivery(n, "failed", "")
                response = await client.post("/webhooks/aurous", content=body, headers=headers)
                assert response.status_code == 200, response.text

        await asyncio.gather(*(worker() for _ in range(32)))


def events_after(client: httpx.Client, cursor: str) -> tuple[list[dict[str, Any]], str]:
    found: list[dict[str, Any]] = []
    while True:
        page = client.get("/events", params={"after": cursor, "limit": 500}).json()
        found += page["data"]
        if not page["has_more"]:
            return found, page["next_cursor"] or cursor
        cursor = page["next_cursor"]


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def arrivals(destination: str) -> dict[str, float]:
    """The first arrival of each webhook-id."""
    first: dict[str, float] = {}
    for webhook_id, at in httpx.get(f"{destination}/arrivals", timeout=60).json():
        first.setdefault(webhook_id, at)
    return first


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Latency:
    label: str
    sent: int
    acked: int
    by_type: dict[str, list[float]]  # ms from the 200 to the first arrival, per event type


def measure_latency(
    admin: httpx.Client, receiver: str, destination: str, phase: Phase, cursor: str
) -> tuple[Latency, str]:
    """Deliveries at the phase's rate; from each one's 200 to its events' arrival."""
    deliveries = [delivery(n, phase.status, destination) for n in phase.numbers]
    acked = asyncio.run(send_paced(receiver, deliveries, phase.rate))
    events: list[dict[str, Any]] = []

    def all_arrived() -> bool:
        nonlocal events, cursor
        more, cursor = events_after(admin, cursor)
        events += more
        told = [e for e in events if e["type"] in phase.types]
        return len(told) >= len(acked) * len(phase.types) and set(arrivals(destination)) >= {
            e["id"] for e in told
        }

    wait_until(all_arrived, 300, f"every event of {phase.label} to arrive")
    first = arrivals(destination)
    by_type: dict[str, list[float]] = {kind: [] for kind in phase.types}
    for event in events:
        if event["type"] in by_type and event["job_id"] in acked:
            by_type[event["type"]].append((first[event["id"]] - acked[event["job_id"]]) * 1000)
    return Latency(phase.label, len(deliveries), len(acked), by_type), cursor


@dataclass
class Phase:
    label: str
    status: str  # of the jobs the deliveries announce
    types: tuple[str, ...]  # the events each delivery leads to
    rate: float
    numbers: range  # job numbers


async def post_all_httpx(url: str, bodies: list[tuple[str, bytes]]) -> None:
    queue = iter(bodies)
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker() -> None:
            for webhook_id, body in queue:
                headers = {"content-type": "application/json", "webhook-id": webhook_id}
                response = await client.post(url, content=body, headers=headers)
                assert response.status_code == 204

        await asyncio.gather(*(worker() for _ in range(PUSH_CONCURRENCY)))


async def post_all_aiohttp(url: str, bodies: list[tuple[str, bytes]]) -> None:
    import aiohttp

    queue = iter(bodies)
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            for webhook_id, body in queue:
                headers = {"content-type": "application/json", "webhook-id": webhook_id}
                async with session.post(url, data=body, headers=headers) as response:
                    assert response.status == 204

        await asyncio.gather(*(worker() for _ in range(PUSH_CONCURRENCY)))


def measure_bare(destination: str, bodies: list[tuple[str, bytes]], client: Any) -> float:
    """Events/s a bare client posts: from its start to the last arrival."""
    httpx.post(f"{destination}/reset")
    started = time.time()
    asyncio.run(client(f"{destination}/hooks", bodies))
    return len(bodies) / (max(arrivals(destination).values()) - started)


def measure_push(admin: httpx.Client, destination: str, destination_id: str, count: int) -> float:
    httpx.post(f"{destination}/reset")
    started = time.time()
    enabled = admin.patch(f"/destinations/{destination_id}", json={"enabled": True})
    assert enabled.status_code == 200, enabled.text
    wait_until(lambda: httpx.get(f"{destination}/count").json() >= count, 300, "the backlog")
    return count / (max(arrivals(destination).values()) - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--backlog", type=int, default=3000)
    args = parser.parse_args()
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        workdir = Path(tmp)
        dport, rport = free_port(), free_port()
        destination, receiver = f"http://127.0.0.1:{dport}", f"http://127.0.0.1:{rport}"
        env = dict(
            os.environ,
            RECEIVER_DATA_DIR=str(workdir / "data"),
            RECEIVER_ADMIN_TOKEN=TOKEN,
            RECEIVER_MASTER_KEY=MASTER_KEY,
            AUROUS_WEBHOOK_SECRET=SECRET,
            AUROUS_BASE_URL=destination,  # nothing is polled from the internet
            RECEIVER_LOG_FORMAT="text",
        )
        servers = [
            start(
                [sys.executable, str(here / "_servers.py"), "destination", str(dport)],
                env,
                f"{destination}/healthz",
                workdir / "destination.log",
            )
        ]
        try:
            servers.append(
                start(
                    [sys.executable, "-m", "receiver", "serve", "--port", str(rport)],
                    env,
                    f"{receiver}/readyz",
                    workdir / "receiver.log",
                )
            )
            report(args, receiver, destination)
        except BaseException:
            for log in ("receiver.log", "destination.log"):
                print(f"--- {log}", (workdir / log).read_text()[-3000:], sep="\n", file=sys.stderr)
            raise
        finally:
            for server in servers:
                server.terminate()
                server.wait(20)


def report(args: argparse.Namespace, receiver: str, destination: str) -> None:
    with httpx.Client(base_url=receiver, headers=ADMIN, timeout=60) as admin:
        created = admin.post("/destinations", json={"url": f"{destination}/hooks"})
        assert created.status_code == 201, created.text
        destination_id = created.json()["id"]
        count = int(args.rate * args.seconds)
        phases = [
            Phase("status only", "failed", ("job.failed",), args.rate, range(count)),
            Phase(
                "with an output each",
                "succeeded",
                ("job.succeeded", "output.archived"),
                args.rate,
                range(count, 2 * count),
            ),
        ]
        cursor, latencies = "0", []
        for phase in phases:
            progress(f"(a) {phase.label}: {args.rate:.0f} deliveries/s for {args.seconds:.0f} s")
            latency, cursor = measure_latency(admin, receiver, destination, phase, cursor)
            latencies.append(latency)

        disabled = admin.patch(f"/destinations/{destination_id}", json={"enabled": False})
        assert disabled.status_code == 200, disabled.text
        asyncio.run(send_burst(receiver, 10_000_000, args.backlog))
        backlog: list[dict[str, Any]] = []
        wait_until(
            lambda: len(backlog.extend(events_after(admin, cursor)[0]) or backlog) >= args.backlog,
            120,
            "the backlog's events",
        )
        bodies = [(e["id"], json.dumps(e).encode()) for e in backlog]
        progress(f"(b) bare clients post {len(bodies)} events")
        bare = measure_bare(destination, bodies, post_all_httpx)
        bare_aiohttp = measure_bare(destination, bodies, post_all_aiohttp)
        progress(f"(b) the receiver pushes {len(bodies)} events")
        pushed = measure_push(admin, destination, destination_id, len(bodies))

    print(f"(a) latency at {args.rate:.0f} deliveries/s for {args.seconds:.0f} s: 200 -> arrival")
    print(f"{'deliveries':<22}{'event':<18}{'events':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for latency in latencies:
        if latency.acked < latency.sent:
            print(f"  {latency.sent - latency.acked} of {latency.sent} were not answered 200")
        for kind, values in latency.by_type.items():
            print(
                f"{latency.label:<22}{kind:<18}{len(values):>8}{statistics.median(values):>10.1f}"
                f"{percentile(values, 0.99):>10.1f}{max(values):>10.1f}"
            )
    print(f"(b) throughput, a backlog of {len(bodies)} events, {PUSH_CONCURRENCY} at once")
    print(f"{'bare httpx client':<28}{bare:>10.0f} events/s")
    print(f"{'bare aiohttp client':<28}{bare_aiohttp:>10.0f} events/s")
    print(f"{'receiver push (signed)':<28}{pushed:>10.0f} events/s")
    for latency in latencies:
        first_type = next(iter(latency.by_type))
        values = latency.by_type[first_type]
        print(
            f"{latency.label}: {first_type} p50 {statistics.median(values):.1f} ms "
            f"(target <= 20), p99 {percentile(values, 0.99):.1f} ms (target <= 100)"
        )
    print(
        f"push/bare httpx {pushed / bare:.2f} (target >= 0.50), "
        f"push/bare aiohttp {pushed / bare_aiohttp:.2f}"
    )


if __name__ == "__main__":
    main()
