"""Reliability soaks, bounded in time, loopback only. Each prints its figures and exits 1 if a
promise broke.

crash   20,000 webhook deliveries from the simulator (with its retries) while the receiver is
        killed with SIGKILL at random moments 10 times (SQLite); with --postgres URL, three
        replicas on one PostgreSQL, one killed at a time. Checks: every acknowledged delivery is
        stored, no job event is recorded twice, every job ends in its true status.
faults  every simulator fault at once, one secret rotation and one wave of outputs expiring
        while downloads are refused; 2,000 jobs. Checks: every job in its true status, every
        succeeded output archived with the true sha256 except the expired wave (lost, counted).

    .venv/bin/python bench/soak.py crash [--jobs 20000] [--kills 10] [--postgres URL]
    .venv/bin/python bench/soak.py faults [--jobs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pg import database

from receiver.settings import Settings
from storage.db import Database
from storage.migrate import upgrade
from tests.support.harness import (
    ReceiverProcess,
    SimHandle,
    free_port,
    receiver_settings,
    start_simulator,
    wait_for,
)

SETTLE_TIMEOUT_S = 600


def migrate(url: str) -> None:
    async def go() -> None:
        db = Database(url)
        await upgrade(db)
        await db.dispose()

    asyncio.run(go())


def query(url: str, sql: str) -> list[Any]:
    async def go() -> list[Any]:
        db = Database(url)
        try:
            return await db.read(lambda conn: list(conn.execute(text(sql)).all()))
        finally:
            await db.dispose()

    return asyncio.run(go())


def create_jobs(sim: SimHandle, count: int) -> None:
    for first in range(0, count, 1000):
        kind = "video" if first // 1000 % 5 == 4 else "image"
        sim.create_direct(kind, min(1000, count - first), {"prompt": "soak", "duration": 2})


def compare(sim: SimHandle, url: str) -> dict[str, int]:
    truth = {job["id"]: job for job in sim.truth()["jobs"]}
    stored = dict(query(url, "SELECT id, status FROM job"))
    acked = set(sim.client.get("/_sim/acknowledged").json()["event_ids"])
    kept = {
        row[0] for row in query(url, "SELECT event_id FROM delivery WHERE event_id IS NOT NULL")
    }
    doubled = query(
        url,
        "SELECT job_id, to_status FROM job_event WHERE applied "
        "GROUP BY job_id, to_status HAVING COUNT(*) > 1",
    )
    return {
        "jobs": len(truth),
        "jobs_missing": len(set(truth) - set(stored)),
        "wrong_status": sum(1 for i, j in truth.items() if stored.get(i) != j["status"]),
        "acknowledged": len(acked),
        "acknowledged_lost": len(acked - kept),
        "events_doubled": len(doubled),
    }


def settled(sim: SimHandle, url: str) -> bool:
    if not all(job["terminal"] for job in sim.truth()["jobs"]):
        return False
    if sim.stats()["state"]["deliveries_queued"]:
        return False
    figures = compare(sim, url)
    return figures["jobs_missing"] == 0 and figures["wrong_status"] == 0


def crash_soak(args: argparse.Namespace) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="soak-crash-") as tmp, ExitStack() as stack:
        replicas = 3 if args.postgres else 1
        ports = [free_port() for _ in range(replicas)]
        sim = start_simulator(
            stack,
            receiver_port=ports[0],
            time_scale=100.0,
            rate_limits=False,
            duplicate_rate=0.02,
            reorder_rate=0.05,
        )
        secrets = [_register(sim, port) for port in ports[1:]]
        url = args.postgres or f"sqlite+aiosqlite:///{tmp}/receiver.db"
        migrate(url)
        receivers = []
        for n, port in enumerate(ports):
            base = receiver_settings(
                Path(tmp) / f"data-{n}", url, sim, lease_s=5, sweep_interval_s=5.0, tick_s=1.0
            )
            settings = base.with_overrides(
                bootstrap_secrets=(*base.bootstrap_secrets, *secrets),
                media_url=(Path(tmp) / "media").as_uri(),
            )
            receiver = ReceiverProcess(settings, port)
            stack.callback(receiver.stop)
            receiver.start()
            receivers.append(receiver)
        per_endpoint = max(1, args.jobs // replicas)
        started = time.monotonic()
        create_jobs(sim, per_endpoint)
        for kill in range(args.kills):
            time.sleep(random.uniform(0.5, 2.5))
            victim = receivers[kill % replicas]
            victim.kill()
            victim.start()
        wait_for(lambda: settled(sim, url), timeout=SETTLE_TIMEOUT_S, interval=2)
        figures = compare(sim, url)
        delivery_stats = sim.stats()["deliveries"]
        figures.update(
            kills=args.kills,
            replicas=replicas,
            deliveries=delivery_stats.get("succeeded", 0),
            deliveries_failed=delivery_stats.get("failed", 0),
            gave_up=delivery_stats.get("gave_up", 0),
            endpoints_disabled=delivery_stats.get("endpoints_disabled", 0),
            seconds=int(time.monotonic() - started),
        )
        return figures


def _register(sim: SimHandle, port: int) -> str:
    created = sim.client.post(
        "/v1/webhook_endpoints",
        json={"url": f"http://127.0.0.1:{port}/webhooks/aurous", "events": ["*"]},
    )
    secret: str = created.json()["secret"]
    return secret


def fault_soak(args: argparse.Namespace) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="soak-faults-") as tmp, ExitStack() as stack:
        port = free_port()
        sim = start_simulator(
            stack,
            receiver_port=port,
            time_scale=100.0,
            rate_limits=True,
            drop_rate=0.2,
            duplicate_rate=0.1,
            reorder_rate=0.2,
            bad_signature_rate=0.1,
            get_5xx_rate=0.1,
            rate_limit_storm=0.05,
            truncate_rate=0.05,
            failed_rate=0.05,
            moderation_rate=0.03,
            rotation_grace_s=86400.0,
            prune_margin_s=10**7,
        )
        url = f"sqlite+aiosqlite:///{tmp}/receiver.db"
        migrate(url)
        settings: Settings = receiver_settings(
            Path(tmp) / "data", url, sim, lease_s=5, sweep_interval_s=5.0, tick_s=1.0
        )
        receiver = ReceiverProcess(settings, port)
        stack.callback(receiver.stop)
        receiver.start()
        started = time.monotonic()
        wave = _expired_wave(sim, receiver, max(50, args.jobs // 20))
        create_jobs(sim, (args.jobs - len(wave)) // 2)
        _rotate(sim, settings)
        create_jobs(sim, args.jobs - len(wave) - (args.jobs - len(wave)) // 2)
        wait_for(
            lambda: settled(sim, url) and not _pending(url), timeout=SETTLE_TIMEOUT_S, interval=2
        )
        figures = compare(sim, url)
        figures.update(_archive_figures(sim, url, wave), seconds=int(time.monotonic() - started))
        figures["faults_injected"] = sum(sim.stats()["faults"].values())
        return figures


def _rotate(sim: SimHandle, settings: Settings) -> None:
    """Rotate the endpoint's secret mid-run (the simulator dual-signs during the grace)."""
    endpoint = sim.truth()["endpoints"][0]["id"]
    rotated = sim.client.post(f"/v1/webhook_endpoints/{endpoint}/rotate_secret").json()
    from click.testing import CliRunner

    from receiver.cli import cli
    from tests.support.harness import settings_env

    result = CliRunner().invoke(
        cli, ["secrets", "add", rotated["secret"]], env=settings_env(settings)
    )
    assert result.exit_code == 0, result.output


def _expired_wave(sim: SimHandle, receiver: ReceiverProcess, count: int) -> list[str]:
    """Jobs whose outputs expire while the simulator refuses every download."""
    sim.faults(get_5xx_rate=1.0)
    ids = sim.create_direct("image", count)
    wait_for(
        lambda: all(j["terminal"] for j in sim.truth()["jobs"] if j["id"] in ids),
        timeout=120,
        interval=1,
    )
    time.sleep(3)  # let the receiver see them and fail to download
    sim.advance(86400 + 600)
    sim.faults(get_5xx_rate=0.1)
    return ids


def _pending(url: str) -> bool:
    return bool(query(url, "SELECT 1 FROM output WHERE state = 'pending' LIMIT 1"))


def _archive_figures(sim: SimHandle, url: str, wave: list[str]) -> dict[str, int]:
    truth = {job["id"]: job for job in sim.truth()["jobs"]}
    rows = query(url, "SELECT job_id, position, state, sha256 FROM output")
    stored = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    figures = {"outputs": 0, "archived_true": 0, "lost_in_wave": 0, "wrong": 0}
    for job_id, job in truth.items():
        if job["status"] != "succeeded":
            continue
        for output in job["outputs"]:
            figures["outputs"] += 1
            state, sha = stored.get((job_id, output["index"]), ("missing", None))
            if state == "archived" and sha == output["sha256"]:
                figures["archived_true"] += 1
            elif state == "lost" and job_id in wave:
                figures["lost_in_wave"] += 1
            else:
                figures["wrong"] += 1
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("soak", choices=["crash", "faults"])
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL, or auto")
    args = parser.parse_args()
    args.jobs = args.jobs or (20_000 if args.soak == "crash" else 2_000)
    if args.postgres:
        with database(args.postgres) as url:
            args.postgres = url
            figures = crash_soak(args)
    else:
        figures = crash_soak(args) if args.soak == "crash" else fault_soak(args)
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    broken = (
        figures.get("acknowledged_lost", 0)
        + figures.get("events_doubled", 0)
        + figures.get("wrong_status", 0)
        + figures.get("jobs_missing", 0)
        + figures.get("wrong", 0)
    )
    print("PASS" if broken == 0 else "FAIL")
    raise SystemExit(1 if broken else 0)


if __name__ == "__main__":
    main()
