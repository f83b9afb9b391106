"""`serve --workers 2`: two processes behind one port share the webhooks and the background
work through the database's leases, on SQLite and on PostgreSQL. Every output is downloaded
once, every status applied once, every ledger row stored once, and both stop cleanly."""

from __future__ import annotations

import signal
from contextlib import ExitStack
from pathlib import Path

import psutil

from tests.support.harness import (
    ReceiverProcess,
    free_port,
    receiver_settings,
    start_simulator,
    truth_by_id,
    wait_for,
)


def test_two_workers_share_the_port_and_do_each_piece_of_work_once(
    tmp_path: Path, db_url: str
) -> None:
    with ExitStack() as stack:
        port = free_port()
        sim = start_simulator(
            stack, receiver_port=port, drop_rate=0.3, duplicate_rate=0.2, failed_rate=0.1
        )
        settings = receiver_settings(tmp_path / "data", db_url, sim, sweep_interval_s=2.0)
        receiver = ReceiverProcess(settings, port, args=("--workers", "2"))
        stack.callback(receiver.stop)
        receiver.start()
        children = psutil.Process(receiver.process.pid).children()
        workers = [p for p in children if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2

        sim.create_direct("image", 60)
        sim.create_direct("video", 6, {"prompt": "two workers", "duration": 2})

        def settled() -> bool:
            truth = truth_by_id(sim)
            jobs = {job["id"]: job for job in receiver.get("/jobs?limit=200")["data"]}
            return set(jobs) == set(truth) and all(
                job["status"] == truth[job_id]["status"]
                and all(o["state"] == "archived" for o in job["outputs"])
                for job_id, job in jobs.items()
            )

        wait_for(settled, timeout=120, interval=1)
        receiver.post("/spend/sync", {})
        stats = sim.stats()
        downloads = sum(stats["outputs"].get(f"{kind}_downloads", 0) for kind in ("image", "video"))
        outputs = sum(
            len(job["outputs"]) for job in truth_by_id(sim).values() if job["status"] == "succeeded"
        )
        assert downloads == outputs, f"{downloads} downloads for {outputs} outputs"
        for job in receiver.get("/jobs?limit=200")["data"]:
            events = receiver.get(f"/jobs/{job['id']}/events")["data"]
            applied = [e["to_status"] for e in events if e["applied"]]
            assert len(applied) == len(set(applied)), (job["id"], events)
        ledger = receiver.get("/spend/ledger?limit=500")["data"]
        assert ledger and len({row["id"] for row in ledger}) == len(ledger)

        receiver.process.send_signal(signal.SIGTERM)
        assert receiver.process.wait(30) == 0
        assert not any(worker.is_running() and worker.status() != "zombie" for worker in workers)
