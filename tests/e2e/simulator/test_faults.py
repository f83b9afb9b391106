"""Every fault knob changes behaviour in a way a test can see, and /_sim/stats counts it."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.simulator.conftest import Received, Receiver, Sim, verify_signature, wait_for


def register(sim: Sim, receiver: Receiver, events: list[str] | None = None) -> dict:
    return sim.client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url + "/hook", "events": events or ["image.completed"]},
    ).json()


def succeeded_image(sim: Sim) -> dict:
    job = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    return sim.wait_terminal(job["id"])


def test_drop(sim: Sim, receiver: Receiver) -> None:
    register(sim, receiver)
    sim.faults(drop_rate=1.0)
    job = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    sim.wait_terminal(job["id"])
    time.sleep(0.3)
    assert receiver.snapshot() == []
    assert sim.stats()["faults"]["drop"] == 1
    sim.faults(drop_rate=0.0)
    sim.client.post("/v1/images", json={"prompt": "y"})
    wait_for(lambda: receiver.snapshot())


def test_duplicate(make_sim: Callable[..., Sim], receiver: Receiver) -> None:
    sim = make_sim(duplicate_rate=1.0)
    register(sim, receiver)
    sim.client.post("/v1/images", json={"prompt": "x"})
    wait_for(lambda: len(receiver.snapshot()) == 2)
    first, second = (json.loads(r.body) for r in receiver.snapshot())
    assert first["id"] == second["id"]
    assert sim.stats()["faults"]["duplicate"] == 1


def test_reorder(make_sim: Callable[..., Sim], receiver: Receiver) -> None:
    sim = make_sim(reorder_rate=1.0, time_scale=200)
    register(sim, receiver)
    ids = [sim.client.post("/v1/images", json={"prompt": f"{i}"}).json()["id"] for i in range(8)]
    wait_for(lambda: len(receiver.snapshot()) == 8, timeout=15)
    finished = sorted(sim.truth(sha256=False)["jobs"], key=lambda j: j["planned_completed_at"])
    arrived = [json.loads(r.body)["data"]["id"] for r in receiver.snapshot()]
    assert sorted(arrived) == sorted(ids)
    assert arrived != [j["id"] for j in finished]
    assert sim.stats()["faults"]["reorder"] == 8


def test_bad_signature_then_good_retry(make_sim: Callable[..., Sim], receiver: Receiver) -> None:
    sim = make_sim(bad_signature_rate=1.0, time_scale=300)
    endpoint = register(sim, receiver)

    def verifying(record: Received) -> int:
        header = record.headers["aurous-webhook-signature"]
        return 200 if verify_signature(header, record.body, [endpoint["secret"]]) else 401

    receiver.status_for = verifying
    sim.client.post("/v1/images", json={"prompt": "x"})
    wait_for(lambda: len(receiver.snapshot()) == 2)
    bad, good = receiver.snapshot()
    assert json.loads(bad.body)["id"] == json.loads(good.body)["id"]
    assert verifying(bad) == 401 and verifying(good) == 200
    assert sim.stats()["faults"]["bad_signature"] == 1


def test_get_5xx(sim: Sim) -> None:
    job = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    sim.faults(get_5xx_rate=1.0)
    responses = [sim.client.get(f"/v1/images/{job['id']}") for _ in range(5)]
    assert all(500 <= r.status_code <= 504 for r in responses)
    assert all(r.json()["error"]["type"] == "server_error" for r in responses)
    assert sim.client.get("/v1/balance").status_code == 200  # only /v1/images* GETs
    assert sim.stats()["faults"]["get_5xx"] == 5
    sim.faults(get_5xx_rate=0.0)
    assert sim.client.get(f"/v1/images/{job['id']}").status_code == 200


def test_rate_limit_storm(sim: Sim) -> None:
    sim.faults(rate_limit_storm=1.0)
    response = sim.client.get("/v1/images")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "too_many_requests"
    assert "x-ratelimit-limit" in response.headers
    assert sim.stats()["faults"]["rate_limit_storm"] == 1


def test_truncate(sim: Sim) -> None:
    done = succeeded_image(sim)
    sim.faults(truncate_rate=1.0)
    received, expected = 0, 0

    def download() -> None:
        nonlocal received, expected
        with httpx.stream("GET", done["output_urls"][0], trust_env=False) as response:
            expected = int(response.headers["content-length"])
            for chunk in response.iter_bytes():
                received += len(chunk)

    with pytest.raises(httpx.RemoteProtocolError):
        download()
    assert 0 < received < expected
    assert sim.stats()["faults"]["truncate"] == 1
    sim.faults(truncate_rate=0.0)
    assert httpx.get(done["output_urls"][0], trust_env=False).status_code == 200


def test_slow_download(sim: Sim) -> None:
    done = succeeded_image(sim)
    started = time.monotonic()
    fast = httpx.get(done["output_urls"][0], trust_env=False)
    fast_s = time.monotonic() - started
    sim.faults(slow_download=200_000)
    started = time.monotonic()
    slow = httpx.get(done["output_urls"][0], trust_env=False)
    slow_s = time.monotonic() - started
    assert slow.content == fast.content
    assert slow_s >= len(slow.content) / 200_000 * 0.8 > fast_s
    assert sim.stats()["faults"]["slow_download"] == 1


def test_output_ttl(sim: Sim) -> None:
    done = succeeded_image(sim)
    sim.faults(output_ttl=30)
    sim.advance(31)
    assert httpx.get(done["output_urls"][0], trust_env=False).status_code == 410
    assert sim.stats()["outputs"]["expired_served_410"] == 1


def test_failure_and_moderation_rates(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(failed_rate=0.5, moderation_rate=0.5)
    for _ in range(10):
        sim.client.post("/v1/images", json={"prompt": "x"})
    faults = sim.stats()["faults"]
    assert faults["failed"] + faults["moderation_rejected"] == 10
    assert faults["failed"] > 0 and faults["moderation_rejected"] > 0


def _ledger(sim: Sim, job_id: str) -> list[dict]:
    return [r for r in sim.truth(sha256=False)["ledger"] if r["generation_id"] == job_id]


def test_bill_failed(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(failed_rate=1.0, bill_failed_rate=1.0)
    job = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    done = sim.wait_terminal(job["id"])
    assert done["status"] == "failed" and done["cost"]["amount"] == 0
    assert [r["type"] for r in _ledger(sim, job["id"])] == ["hold", "charge"]
    assert sim.stats()["faults"]["bill_failed"] == 1


def test_skip_release(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(failed_rate=1.0, skip_release_rate=1.0)
    job = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    sim.wait_terminal(job["id"])
    assert [r["type"] for r in _ledger(sim, job["id"])] == ["hold"]
    assert sim.client.get("/v1/balance").json()["held_credits"] == job["cost"]["amount"]
    assert sim.stats()["faults"]["skip_release"] == 1


def test_overcharge(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(overcharge_rate=1.0)
    job = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    done = sim.wait_terminal(job["id"])
    charge = next(r for r in _ledger(sim, job["id"]) if r["type"] == "charge")
    assert charge["amount"] != done["cost"]["amount"]
    assert sim.stats()["faults"]["overcharge"] == 1


def test_redirect(sim: Sim) -> None:
    done = succeeded_image(sim)
    sim.faults(redirect_outputs=True)
    response = httpx.get(done["output_urls"][0], trust_env=False, follow_redirects=True)
    assert response.history[0].status_code == 302
    truth = sim.job_truth(done["id"])["outputs"][0]["sha256"]
    assert hashlib.sha256(response.content).hexdigest() == truth
    assert sim.stats()["faults"]["redirect"] == 1


def test_unknown_knob_is_rejected(sim: Sim) -> None:
    response = sim.client.post("/_sim/faults", json={"warp_speed": 1})
    assert response.status_code == 400
    assert sim.client.post("/_sim/faults", json={"drop_rate": 2}).status_code == 400
    assert sim.faults(reorder=True)["reorder_rate"] == 0.5
