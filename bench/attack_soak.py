"""Signed deliveries keep flowing while the receiver is held under a connection attack.

A real `aurous-receiver serve` (SQLite, default limits) gets, at the same time: 1,000 idle
connections that never finish a request (reopened whenever the receiver closes one), 50 uploads
of 10 MiB bodies that stall before their end (reopened likewise), and genuine signed deliveries
at a fixed rate. Printed: how many deliveries were answered 200 and how fast, and the process's
RSS against its idle figure. Targets (issue 14): every delivery answered within 1 s, RSS within
100 MiB of idle.

    .venv/bin/python bench/attack_soak.py [--seconds 60] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import migrate

from receiver.webhooks.signing import sign
from tests.conftest import TEST_SECRET, make_settings
from tests.support.aurous import generation
from tests.support.harness import ReceiverProcess, free_port

IDLE_CONNECTIONS = 1000
STALLED_BODIES = 50
BODY_BYTES = 10 * 1024 * 1024 - 1


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("no VmRSS")


async def until_closed(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(OSError):
        await reader.read()


async def hold_idle(port: int, stop: asyncio.Event, opened: list[int]) -> None:
    """One connection that never sends a request; reopened when the receiver closes it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        opened[0] += 1
        with_stop = asyncio.ensure_future(stop.wait())
        closed = asyncio.ensure_future(until_closed(reader))
        await asyncio.wait({with_stop, closed}, return_when=asyncio.FIRST_COMPLETED)
        with_stop.cancel()
        closed.cancel()
        writer.close()


async def stall_body(port: int, stop: asyncio.Event, opened: list[int]) -> None:
    """A 10 MiB upload that sends all but its last bytes, then waits; reopened when cut off."""
    head = (
        b"POST /webhooks/aurous HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % BODY_BYTES
    )
    chunk = b" " * 65536
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            opened[0] += 1
            writer.write(head)
            sent = 0
            while sent < BODY_BYTES - 65536 and not reader.at_eof() and not stop.is_set():
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 2)
                sent += len(chunk)
            await asyncio.wait(
                {asyncio.ensure_future(until_closed(reader)), asyncio.ensure_future(stop.wait())},
                return_when=asyncio.FIRST_COMPLETED,
            )
            writer.close()
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(0.2)


async def deliver(client: httpx.AsyncClient, url: str, n: int) -> tuple[int, float]:
    job_id = f"img_soak{n:06d}"
    body = json.dumps(
        {"id": f"evt_{job_id}", "type": "image.completed", "data": generation(job_id)}
    ).encode()
    headers = {"Aurous-Webhook-Signature": sign(body, [TEST_SECRET], int(time.time()))}
    started = time.perf_counter()
    try:
        answer = await client.post(url, content=body, headers=headers, timeout=10)
        status = answer.status_code
    except httpx.HTTPError:
        status = 0
    return status, time.perf_counter() - started


async def attack(port: int, pid: int, seconds: float, rate: float) -> dict[str, float]:
    stop = asyncio.Event()
    idle_opened, stalled_opened = [0], [0]
    attackers = [asyncio.create_task(hold_idle(port, stop, idle_opened)) for _ in range(1000)]
    attackers += [asyncio.create_task(stall_body(port, stop, stalled_opened)) for _ in range(50)]
    await asyncio.sleep(3)  # let the attack settle before the genuine traffic starts
    peak = rss_kib(pid)
    url = f"http://127.0.0.1:{port}/webhooks/aurous"
    results: list[asyncio.Task[tuple[int, float]]] = []
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(limits=limits) as client:
        start = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - start) < seconds:
            due = start + n / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            results.append(asyncio.create_task(deliver(client, url, n)))
            n += 1
            if n % int(rate) == 0:
                peak = max(peak, rss_kib(pid))
        done = await asyncio.gather(*results)
    del elapsed
    stop.set()
    await asyncio.gather(*attackers, return_exceptions=True)
    latencies = sorted(latency for _, latency in done)
    return {
        "sent": len(done),
        "ok": sum(1 for status, _ in done if status == 200),
        "slow": sum(1 for latency in latencies if latency > 1.0),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
        "peak_kib": peak,
        "idle_opened": idle_opened[0],
        "stalled_opened": stalled_opened[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=20, help="genuine deliveries per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-attack-") as tmp, ExitStack() as stack:
        url = f"sqlite+aiosqlite:///{tmp}/receiver.db"
        migrate(url)
        settings = make_settings(Path(tmp) / "data", url, background=False)
        receiver = ReceiverProcess(settings, free_port())
        stack.callback(receiver.stop)
        receiver.start()
        time.sleep(3)
        idle = rss_kib(receiver.process.pid)
        figures = asyncio.run(attack(receiver.port, receiver.process.pid, args.seconds, args.rate))
    grew = (figures["peak_kib"] - idle) / 1024
    print(
        f"attack: {IDLE_CONNECTIONS} idle connections ({figures['idle_opened']:.0f} opened in "
        f"all), {STALLED_BODIES} stalled 10 MiB bodies ({figures['stalled_opened']:.0f} opened)"
    )
    print(
        f"genuine deliveries: {figures['ok']:.0f}/{figures['sent']:.0f} answered 200; latency "
        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"max {figures['max_ms']:.1f} ms; over 1 s: {figures['slow']:.0f}"
    )
    peak = figures["peak_kib"] / 1024
    print(f"RSS: idle {idle / 1024:.0f} MiB, peak {peak:.0f} MiB (+{grew:.0f})")
    met = figures["ok"] == figures["sent"] and figures["slow"] == 0 and grew <= 100
    verdict = "met" if met else "NOT met"
    print(f"targets (all answered within 1 s, RSS within 100 MiB of idle): {verdict}")


if __name__ == "__main__":
    main()
