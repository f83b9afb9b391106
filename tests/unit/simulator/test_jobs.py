from __future__ import annotations

from typing import Any

from simulator.config import SimulatorConfig
from simulator.jobs import Job, JobStore, plan_job


def make_job(
    sequence: int, *, created: float = 0.0, outcome: str = "succeeded", extended: bool = False
) -> Job:
    params: dict[str, Any] = {"count": 1, "inference_type": "t2i"}
    return Job(
        sequence=sequence,
        id=f"img_{sequence:026d}",
        kind="image",
        created_at=created,
        queued_at=created + 1,
        processing_at=created + 2,
        finish_at=created + 20,
        outcome=outcome,
        extended=extended,
        cost=1.0,
        breakdown={},
        params=params,
        base_url="http://x",
        request_id="req_x",
        api_version="2026-05-15",
        output_count=1,
        output_size=1000,
    )


def test_plan_is_seeded_per_sequence() -> None:
    config = SimulatorConfig(seed=5, failed_rate=0.3, moderation_rate=0.3)
    assert plan_job(config, "image", 3) == plan_job(config, "image", 3)
    assert plan_job(config, "image", 3) != plan_job(config, "image", 4)
    durations = [plan_job(config, "image", n)["duration"] for n in range(200)]
    assert min(durations) >= 10 and max(durations) <= 30
    videos = [plan_job(config, "video", n)["duration"] for n in range(200)]
    assert min(videos) >= 30 and max(videos) <= 120
    outcomes = {plan_job(config, "image", n)["outcome"] for n in range(200)}
    assert outcomes == {"succeeded", "failed", "moderation_rejected"}


def test_status_follows_the_clock() -> None:
    job = make_job(0)
    assert [job.status(t) for t in (0, 1.5, 2, 19.9, 20)] == [
        "pending",
        "pending",
        "processing",
        "processing",
        "succeeded",
    ]
    extended = make_job(1, extended=True)
    assert extended.status(1.5) == "queued"


def test_moderation_surfaces_as_failed_unless_extended() -> None:
    assert make_job(0, outcome="moderation_rejected").status(30) == "failed"
    assert make_job(0, outcome="moderation_rejected").error_message(30)
    assert (
        make_job(0, outcome="moderation_rejected", extended=True).status(30)
        == "moderation_rejected"
    )
    cancelled = make_job(0)
    cancelled.cancelled_at = 5.0
    assert cancelled.status(30) == "cancelled" and cancelled.finished_at(30) == 5.0


def test_store_pages_and_prunes() -> None:
    store = JobStore()
    for n in range(5):
        store.add(make_job(n, created=float(n)))
    rows, more = store.page(limit=2, starting_after=None, ending_before=None)
    assert [j.sequence for j in rows] == [4, 3] and more
    rows, more = store.page(limit=2, starting_after="img_" + f"{3:026d}", ending_before=None)
    assert [j.sequence for j in rows] == [2, 1] and more
    rows, more = store.page(limit=5, starting_after=None, ending_before="img_" + f"{1:026d}")
    assert [j.sequence for j in rows] == [4, 3, 2] and not more
    assert [j.sequence for j in store.pop_due(21.5)] == [0, 1]
    for job in store.all()[:2]:
        job.settled = True
    assert store.prune(now=100.0, keep_for=50.0) == 2
    assert len(store) == 3 and store.get("img_" + f"{0:026d}") is None
    rows, _ = store.page(limit=10, starting_after=None, ending_before=None)
    assert [j.sequence for j in rows] == [4, 3, 2]
