"""Same seed, same flags, same requests -> same jobs, statuses, costs and bytes (sha256)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.e2e.simulator.conftest import Sim

FLAGS: dict[str, Any] = {
    "time_scale": 1.0,
    "failed_rate": 0.3,
    "moderation_rate": 0.2,
    "overcharge_rate": 0.3,
    "output_size": 20_000,
    "video_size": 50_000,
}


def run_workload(sim: Sim) -> list[dict[str, Any]]:
    for i in range(6):
        sim.client.post("/v1/images", json={"prompt": f"image {i}", "count": 1 + i % 3})
    for i in range(3):
        sim.client.post("/v1/videos", json={"prompt": f"video {i}", "duration": 2 + i})
    sim.advance(600)
    jobs = sim.truth()["jobs"]
    ledger = sim.truth(sha256=False)["ledger"]
    charges = {row["generation_id"]: row["amount"] for row in ledger if row["type"] == "charge"}
    return [
        {
            "id_random_part": job["id"][-16:],  # the time part follows the clock
            "kind": job["kind"],
            "status": job["status"],
            "duration": job["planned_duration_ms"],
            "cost": job["cost"],
            "charged": charges.get(job["id"]),
            "outputs": [(o["index"], o["size"], o["sha256"]) for o in job["outputs"]],
        }
        for job in jobs
    ]


def test_same_seed_same_everything(make_sim: Callable[..., Sim]) -> None:
    first = run_workload(make_sim(seed=42, **FLAGS))
    second = run_workload(make_sim(seed=42, **FLAGS))
    assert first == second
    statuses = {job["status"] for job in first}
    assert "succeeded" in statuses and "failed" in statuses
    assert sum(len(job["outputs"]) for job in first) >= 3


def test_other_seed_other_bytes(make_sim: Callable[..., Sim]) -> None:
    first = run_workload(make_sim(seed=1, **FLAGS))
    other = run_workload(make_sim(seed=2, **FLAGS))
    hashes = {o[2] for job in first for o in job["outputs"]}
    other_hashes = {o[2] for job in other for o in job["outputs"]}
    assert hashes.isdisjoint(other_hashes)
    assert [j["duration"] for j in first] != [j["duration"] for j in other]
