"""What really happened, for tests and the demo: GET /_sim/truth."""

from __future__ import annotations

import dataclasses
from typing import Any

from simulator.billing import money
from simulator.clock import iso
from simulator.core import Simulator
from simulator.jobs import Job
from simulator.render import output_paths

__all__ = ["truth_snapshot"]


def _final_status(job: Job) -> str:
    if job.cancelled_at is not None:
        return "cancelled"
    if not job.extended and job.outcome in {"moderation_rejected", "expired"}:
        return "failed"
    return job.outcome


def _outputs(sim: Simulator, job: Job, with_sha256: bool) -> list[dict[str, Any]]:
    if _final_status(job) != "succeeded":
        return []
    rows = []
    for index, path in enumerate(output_paths(job)):
        media = sim.media_for(job, index)
        rows.append(
            {
                "index": index,
                "path": path,
                "size": media.size,
                "content_type": media.content_type,
                "sha256": sim.output_sha256(job, index) if with_sha256 else None,
            }
        )
    return rows


def _job(sim: Simulator, job: Job, now: float, with_sha256: bool) -> dict[str, Any]:
    return {
        "id": job.id,
        "sequence": job.sequence,
        "kind": job.kind,
        "status": job.status(now),
        "final_status": _final_status(job),
        "terminal": job.is_terminal(now),
        "created_at": iso(job.created_at),
        "completed_at": iso(job.finished_at(now)),
        "planned_completed_at": iso(job.completed_at),
        "planned_duration_ms": int((job.finish_at - job.created_at) * 1000),
        "error_message": job.error_message(now),
        "cost": money(job.cost),
        "charged": None if job.charged is None else money(job.charged),
        "hold_id": job.hold_id,
        "ledger_anomaly": job.ledger_anomaly,
        "webhook_url": job.webhook_url,
        "outputs": _outputs(sim, job, with_sha256),
    }


def truth_snapshot(sim: Simulator, *, with_sha256: bool = True) -> dict[str, Any]:
    sim.settle()
    now = sim.clock.now()
    return {
        "now": iso(now),
        "now_unix": now,
        "seed": sim.config.seed,
        "jobs": [_job(sim, job, now, with_sha256) for job in sim.jobs.all()],
        "pruned_jobs": sim.jobs.pruned,
        "ledger": [row.to_json() for row in sim.ledger.rows],
        "balance": sim.ledger.balance(),
        "endpoints": [endpoint.to_json() for endpoint in sim.endpoints.all()],
        "config": dataclasses.asdict(sim.config),
    }
