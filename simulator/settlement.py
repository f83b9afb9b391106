"""What a finished job does to the ledger, including the injected billing anomalies.

Normal: success charges the hold's amount, anything else releases it. Anomalies (decided from a
stream seeded by (seed, job sequence), so reruns repeat them): an overcharge on success, a
charge for a job that produced nothing, or a hold that is never released.
"""

from __future__ import annotations

import random

from simulator.billing import Ledger
from simulator.config import SimulatorConfig
from simulator.jobs import Job
from simulator.stats import Stats

__all__ = ["settle_bill"]


def _overcharge(cost: float) -> float:
    return cost * 1.5 + 0.5


def settle_bill(ledger: Ledger, config: SimulatorConfig, stats: Stats, job: Job, at: float) -> None:
    rng = random.Random(f"{config.seed}:bill:{job.sequence}")
    anomaly_roll, release_roll = rng.random(), rng.random()
    succeeded = job.internal_status(at) == "succeeded"
    if succeeded and anomaly_roll < config.overcharge_rate:
        job.ledger_anomaly = "overcharge"
    elif not succeeded and anomaly_roll < config.bill_failed_rate:
        job.ledger_anomaly = "bill_failed"
    elif not succeeded and release_roll < config.skip_release_rate:
        job.ledger_anomaly = "skip_release"
    if job.ledger_anomaly:
        stats.incr("faults", job.ledger_anomaly)
    if job.ledger_anomaly == "skip_release":
        job.charged = 0.0
        return
    kind = "charge" if succeeded or job.ledger_anomaly == "bill_failed" else "release"
    amount = _overcharge(job.cost) if job.ledger_anomaly == "overcharge" else job.cost
    job.charged = amount if kind == "charge" else 0.0
    ledger.record(kind, amount, at, generation_id=job.id, hold_id=job.hold_id, held_delta=-job.cost)
