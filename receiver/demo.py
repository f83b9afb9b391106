"""`aurous-receiver demo`: the simulator and the receiver wired together on loopback, a mixed
workload, a live table until everything settles, then both keep running until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn

from receiver.demo_app import DemoApp
from receiver.settings import Settings
from receiver.web.app import create_app
from storage import gateway
from storage.db import Database
from storage.migrate import upgrade
from storage.records import OutputCounts
from storage.states import NON_TERMINAL

__all__ = ["run_demo"]

IMAGES, VIDEOS, ELSEWHERE = 24, 6, 10
SETTLE_TIMEOUT_S = 120
_FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)


def _port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _SimulatorThread:
    """The simulator in its own thread and event loop, like a separate server."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="error", access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="simulator")

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise click.ClickException("the simulator did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def run_demo(data_dir: Path, receiver_port: int = 8000, simulator_port: int = 8900) -> None:
    from simulator import SimulatorConfig, create_simulator_app

    rport, sport = _port(receiver_port), _port(simulator_port)
    api_key, secret = f"al_live_{secrets.token_hex(32)}", f"whsec_{secrets.token_urlsafe(24)}"
    shutil.rmtree(data_dir, ignore_errors=True)  # demo data only: start clean every time
    simulator = _SimulatorThread(
        create_simulator_app(
            SimulatorConfig(
                api_key=api_key,
                seed=7,
                time_scale=10.0,
                public_url=f"http://127.0.0.1:{sport}",
                webhook_url=f"http://127.0.0.1:{rport}/webhooks/aurous",
                webhook_secret=secret,
                drop_rate=0.1,
                duplicate_rate=0.05,
                reorder_rate=0.1,
                bad_signature_rate=0.05,
                get_5xx_rate=0.05,
                truncate_rate=0.05,
                failed_rate=0.08,
                moderation_rate=0.04,
            )
        ),
        sport,
    )
    settings = Settings(
        data_dir=data_dir,
        aurous_api_key=api_key,
        aurous_base_url=f"http://127.0.0.1:{sport}",
        bootstrap_secrets=(secret,),
        tick_s=1.0,
        sweep_interval_s=5.0,
    )
    asyncio.run(_migrate(settings))
    simulator.start()
    try:
        asyncio.run(_serve_and_drive(settings, rport, sport, api_key))
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    click.echo("demo stopped; its data is in " + str(data_dir))


async def _migrate(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


async def _serve_and_drive(settings: Settings, rport: int, sport: int, api_key: str) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=rport,
        log_level="warning",
        access_log=False,
        log_config=None,
    )
    server = uvicorn.Server(config)
    driver = asyncio.create_task(_drive(settings, server, rport, sport, api_key))
    try:
        await server.serve()
    finally:
        driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver


async def _drive(
    settings: Settings, server: uvicorn.Server, rport: int, sport: int, api_key: str
) -> None:
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    token = (settings.data_dir / "admin.token").read_text().strip()
    receiver = f"http://127.0.0.1:{rport}"
    app = DemoApp()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await _connect_app(http, receiver, token, app)
            await _workload(http, receiver, token, f"http://127.0.0.1:{sport}", api_key)
            settled = await _watch(settings, IMAGES + VIDEOS + ELSEWHERE)
        _print_urls(receiver, token, sport, settled)
        click.echo(f"Your app was told {app.told} events (GET {receiver}/events has them all).")
    finally:
        await app.stop()


async def _connect_app(http: httpx.AsyncClient, receiver: str, token: str, app: DemoApp) -> None:
    """A destination of the demo's own, so every job change shows up next to the table."""
    port = await app.start()
    created = await http.post(
        f"{receiver}/destinations",
        json={"url": f"http://127.0.0.1:{port}/events", "label": "the demo's app"},
        headers={"Authorization": f"Bearer {token}"},
    )
    app.secret = created.json()["secret"]


async def _workload(
    http: httpx.AsyncClient, receiver: str, token: str, simulator: str, api_key: str
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    prompts = ["a lighthouse at dawn", "a fox in the snow", "neon city rain", "a tea garden"]
    for n in range(IMAGES):
        body = {"prompt": prompts[n % len(prompts)], "size": "2k_1_1", "count": 1 + n % 2}
        await http.post(f"{receiver}/jobs/images", json=body, headers=auth)
    for n in range(VIDEOS):
        body = {"prompt": prompts[n % len(prompts)], "duration": 2 + n % 3, "resolution": "480p"}
        await http.post(f"{receiver}/jobs/videos", json=body, headers=auth)
    for n in range(ELSEWHERE):  # jobs another backend created: the sweep adopts them
        await http.post(
            f"{simulator}/v1/images",
            json={"prompt": f"elsewhere {n}"},
            headers={"X-Api-Key": api_key},
        )


async def _watch(settings: Settings, expected_jobs: int) -> bool:
    db = Database(settings.database_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < SETTLE_TIMEOUT_S:
            jobs, outputs = await _counts(db)
            _show(jobs, outputs, time.monotonic() - started)
            running = sum(n for s, n in jobs.items() if s in NON_TERMINAL)
            if sum(jobs.values()) >= expected_jobs and not running and not outputs.pending:
                click.echo("\nsettled.")
                return True
            await asyncio.sleep(1)
        click.echo("\nnot settled after two minutes; still running (see the table).")
        return False
    finally:
        await db.dispose()


async def _counts(db: Database) -> tuple[dict[str, int], OutputCounts]:
    return await db.read(
        lambda conn: (
            gateway.count_jobs_by_status(conn),
            gateway.output_counts(conn, at_risk_before=_FAR_PAST),
        )
    )


def _show(jobs: dict[str, int], outputs: OutputCounts, elapsed: float) -> None:
    by_status = "  ".join(f"{s} {n}" for s, n in sorted(jobs.items())) or "no jobs yet"
    archive = f"archived {outputs.archived}  pending {outputs.pending}  lost {outputs.lost}"
    line = f"[{elapsed:5.1f}s] jobs: {by_status} | outputs: {archive}"
    end = "\r" if sys.stdout.isatty() else "\n"
    click.echo(line.ljust(110), nl=False)
    click.echo(end, nl=False)


def _print_urls(receiver: str, token: str, sport: int, settled: bool) -> None:
    example = json.dumps(f"Authorization: Bearer {token}")
    click.echo(f"""
Dashboard  {receiver}/    log in with the admin token: {token}
  jobs       curl -H {example} {receiver}/jobs
  deliveries curl -H {example} {receiver}/deliveries
  metrics    curl -H {example} {receiver}/metrics
Simulator  http://127.0.0.1:{sport}   (truth: http://127.0.0.1:{sport}/_sim/truth)
{"Everything settled." if settled else "Still settling."} Both keep running; Ctrl-C stops them.""")
