"""`aurous-receiver demo`: the simulator and the receiver wired together on loopback, a mixed
workload, a live table until everything settles, then both keep running until Ctrl-C.

The workload is an honest account: no two requests are alike, so the spend audit has nothing to
say about it, except about the one anomaly the demo injects on purpose and labels (a request
sent twice), so that the Spend page shows what a finding looks like.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
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

SETTLE_TIMEOUT_S = 120
# Open requests (a dashboard tab polling) get this long to finish when Ctrl-C stops the receiver.
_GRACEFUL_STOP_S = 3
_FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)

# What a small team might ask for in an afternoon (demo_workload.json): no two requests alike.
# (The audit flags a request repeated within a minute as a duplicate, so a demo that repeated
# itself would report anomalies of its own making; the same prompt with another seed is a new
# request, not a repeat.)
_Body = dict[str, str | int | bool]  # a create request's JSON body
_WORKLOAD: dict[str, list[_Body]] = json.loads(
    (Path(__file__).parent / "demo_workload.json").read_text()
)
_IMAGE_REQUESTS: tuple[_Body, ...] = tuple(_WORKLOAD["images"])
_VIDEO_REQUESTS: tuple[_Body, ...] = tuple(_WORKLOAD["videos"])
# Jobs another backend of the same team creates straight at Aurous: the sweep adopts them.
_ELSEWHERE_PROMPTS = tuple(f"catalogue photo {n}: a ceramic mug, studio light" for n in range(10))
# The anomaly injected on purpose: one request sent twice under two idempotency keys, as a
# client that retries without reusing its key would. Aurous bills both jobs.
_DUPLICATE_LABEL = "sent twice on purpose by the demo"
_DUPLICATE_REQUEST: _Body = {
    "prompt": f"a paper boat on a pond ({_DUPLICATE_LABEL})",
    "size": "2k_1_1",
}
_DUPLICATE_KEYS = ("demo-duplicate-on-purpose-1", "demo-duplicate-on-purpose-2")
EXPECTED_JOBS = len(_IMAGE_REQUESTS) + len(_VIDEO_REQUESTS) + len(_ELSEWHERE_PROMPTS) + 2


@dataclass(frozen=True)
class _Injected:
    """The duplicate request the demo sent on purpose: the original and its billed repeat."""

    original: str
    repeat: str


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
    click.echo(
        f"Starting the Aurous simulator (127.0.0.1:{sport}) and the receiver "
        f"(127.0.0.1:{rport}); demo data in {data_dir}, wiped at every start."
    )
    click.echo(
        "The simulator misbehaves like a real upstream at times: it drops, repeats, reorders "
        "and mis-signs some webhooks, answers some GETs with 5xx, cuts some downloads short; "
        "some jobs fail or are moderated. The receiver is expected to cope."
    )
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
    try:
        asyncio.run(_migrate(settings))
        simulator.start()
        asyncio.run(_serve_and_drive(settings, rport, sport, api_key))
    except KeyboardInterrupt:  # Ctrl-C before the receiver was up; afterwards it is handled
        pass
    finally:
        simulator.stop()  # last: the receiver's shutdown may still have been talking to it
    click.echo("demo stopped; its data is in " + str(data_dir))


async def _migrate(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


class _ReceiverServer(uvicorn.Server):
    """uvicorn without its own Ctrl-C handling: uvicorn would stop the receiver while the
    workload still talks to it, and re-raise the signal afterwards, which cancels the demo's
    clean-up half-way. `_serve_and_drive` takes the signals instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_and_drive(settings: Settings, rport: int, sport: int, api_key: str) -> None:
    """Serve until Ctrl-C, then stop in order: the workload, the receiver (whose shutdown stops
    its background work before closing the clients and the database that work uses), the
    demo's app; `run_demo` stops the simulator last."""
    loop = asyncio.get_running_loop()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=rport,
        log_level="warning",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=_GRACEFUL_STOP_S,
    )
    server = _ReceiverServer(config)
    app = DemoApp()
    driver = asyncio.create_task(_drive(settings, server, app, rport, sport, api_key))

    def stop_after_a_failed_drive(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            server.should_exit = True  # the error is raised below, once everything is stopped

    def stop() -> None:
        if server.should_exit:
            click.echo(f"still stopping: open requests get {_GRACEFUL_STOP_S} s to finish")
        else:
            click.echo("\nstopping the demo")  # on a line of its own, after the live table
        driver.cancel()
        server.should_exit = True

    driver.add_done_callback(stop_after_a_failed_drive)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    try:
        await server.serve()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver
        await app.stop()


async def _drive(
    settings: Settings,
    server: uvicorn.Server,
    app: DemoApp,
    rport: int,
    sport: int,
    api_key: str,
) -> None:
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    token = (settings.data_dir / "admin.token").read_text().strip()
    receiver = f"http://127.0.0.1:{rport}"
    async with httpx.AsyncClient(timeout=30) as http:
        await _connect_app(http, receiver, token, app)
        await _workload(http, receiver, token, f"http://127.0.0.1:{sport}", api_key)
        injected = await _inject_duplicate(http, receiver, token)
        settled = await _watch(settings, EXPECTED_JOBS)
        await _report_findings(http, receiver, token, injected)
    _print_urls(receiver, token, sport, settled, settings.data_dir)
    click.echo(f"Your app was told {app.told} events (GET {receiver}/events has them all).")


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
    click.echo(
        f"Sending the workload: {len(_IMAGE_REQUESTS)} image and {len(_VIDEO_REQUESTS)} video "
        f"requests through the receiver, {len(_ELSEWHERE_PROMPTS)} images created straight at "
        "Aurous by 'another backend' (the receiver's sweep finds them)."
    )
    for body in _IMAGE_REQUESTS:
        await http.post(f"{receiver}/jobs/images", json=body, headers=auth)
    for body in _VIDEO_REQUESTS:
        await http.post(f"{receiver}/jobs/videos", json=body, headers=auth)
    for prompt in _ELSEWHERE_PROMPTS:
        await http.post(
            f"{simulator}/v1/images", json={"prompt": prompt}, headers={"X-Api-Key": api_key}
        )


async def _inject_duplicate(http: httpx.AsyncClient, receiver: str, token: str) -> _Injected | None:
    """Send one request twice under two idempotency keys: a real anomaly of the account (two
    jobs billed for one picture) that the audit must report as `duplicate_request`."""
    job_ids = []
    for key in _DUPLICATE_KEYS:
        answer = await http.post(
            f"{receiver}/jobs/images",
            json=_DUPLICATE_REQUEST,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        )
        if answer.status_code != 201:
            click.echo(f"(the injected duplicate request was refused: {answer.text[:200]})")
            return None
        job_ids.append(answer.json()["id"])
    original, repeat = job_ids
    click.echo(
        f"Injected on purpose: the request {json.dumps(_DUPLICATE_REQUEST['prompt'])} sent twice "
        f"under two idempotency keys ({', '.join(_DUPLICATE_KEYS)}), as a client retrying "
        f"without its key would. Aurous bills both jobs ({original}, {repeat}); the audit "
        f"should report {repeat} as a duplicate_request finding on the Spend page."
    )
    return _Injected(original, repeat)


async def _report_findings(
    http: httpx.AsyncClient, receiver: str, token: str, injected: _Injected | None
) -> None:
    """Run the audit once more now that the jobs are done, and say which findings are open:
    the injected one, and anything else, which would be news."""
    auth = {"Authorization": f"Bearer {token}"}
    await http.post(f"{receiver}/spend/sync", headers=auth)
    answer = await http.get(f"{receiver}/spend/findings", params={"status": "open"}, headers=auth)
    findings = answer.json()["data"]
    planted = [f for f in findings if injected is not None and f["subject"] == injected.repeat]
    others = [f for f in findings if f not in planted]
    click.echo(f"Spend audit: {len(findings)} open finding(s).")
    for finding in planted:
        click.echo(f"  injected on purpose: {finding['code']}: {finding['reason']}")
    for finding in others:
        click.echo(f"  not injected, worth a look: {finding['code']}: {finding['reason']}")


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


def _print_urls(receiver: str, token: str, sport: int, settled: bool, data_dir: Path) -> None:
    example = json.dumps(f"Authorization: Bearer {token}")
    # the demo's keyring is in its own data directory: trigger signs with it from there
    trigger = f"RECEIVER_DATA_DIR={data_dir} aurous-receiver trigger image.completed"
    click.echo(f"""
Dashboard  {receiver}/    log in with the admin token: {token}
  jobs       curl -H {example} {receiver}/jobs
  deliveries curl -H {example} {receiver}/deliveries
  metrics    curl -H {example} {receiver}/metrics
  a webhook  {trigger} --url {receiver}/webhooks/aurous
Simulator  http://127.0.0.1:{sport}   (truth: http://127.0.0.1:{sport}/_sim/truth)
{"Everything settled." if settled else "Still settling."} Both keep running; Ctrl-C stops them.""")
