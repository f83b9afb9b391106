"""Auth, request ids, versions, error envelopes, rate limits (§5) and idempotency (§6)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.simulator.conftest import API_KEY, Sim

REQ_ID = re.compile(r"req_[0-9A-HJKMNP-TV-Z]{26}")
ENVELOPE_KEYS = {"type", "code", "message", "param", "doc_url", "request_id"}


def assert_envelope(response: httpx.Response, status: int, error_type: str, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= ENVELOPE_KEYS
    assert (error["type"], error["code"]) == (error_type, code)
    assert error["request_id"] == response.headers["aurous-request-id"]
    assert REQ_ID.fullmatch(error["request_id"])
    return error  # type: ignore[no-any-return]


def test_missing_and_invalid_keys(sim: Sim) -> None:
    bare = httpx.Client(base_url=sim.url, trust_env=False)
    assert_envelope(bare.get("/v1/balance"), 401, "authentication", "missing_api_key")
    assert_envelope(
        bare.post("/v1/images", json={"prompt": "x"}), 401, "authentication", "missing_api_key"
    )
    wrong = bare.get("/v1/balance", headers={"X-Api-Key": "al_live_" + "0" * 64})
    assert_envelope(wrong, 401, "authentication", "invalid_api_key")
    bearer = bare.get("/v1/balance", headers={"Authorization": f"Bearer {API_KEY}"})
    assert bearer.status_code == 200
    bad_bearer = bare.get("/v1/balance", headers={"Authorization": "Bearer nope"})
    assert_envelope(bad_bearer, 401, "authentication", "invalid_api_key")


def test_request_ids_are_unique_and_on_every_response(sim: Sim) -> None:
    responses = [
        sim.client.get("/v1/balance"),
        sim.client.get("/v1/loras"),
        sim.client.post("/v1/images", json={"prompt": "x"}),
        sim.client.post("/v1/images", json={}),
        sim.client.get("/v1/nowhere"),
    ]
    ids = [r.headers["aurous-request-id"] for r in responses]
    assert all(REQ_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_version_is_echoed(sim: Sim) -> None:
    default = sim.client.get("/v1/balance")
    assert default.headers["aurous-version"] == "2026-05-15"
    pinned = sim.client.post(
        "/v1/images", json={"prompt": "x"}, headers={"Aurous-Version": "2026-06-19"}
    )
    assert pinned.headers["aurous-version"] == "2026-06-19"
    assert pinned.json()["aurous_version"] == "2026-06-19"
    bad = sim.client.get("/v1/balance", headers={"Aurous-Version": "june"})
    assert_envelope(bad, 400, "invalid_request", "invalid_format")


def test_unknown_route_and_wrong_method(sim: Sim) -> None:
    assert_envelope(sim.client.get("/v1/does-not-exist"), 404, "not_found", "resource_not_found")
    wrong = sim.client.delete("/v1/images")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["request_id"] == wrong.headers["aurous-request-id"]


def test_bad_json_is_an_envelope(sim: Sim) -> None:
    response = sim.client.post(
        "/v1/images", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_envelope(response, 400, "invalid_request", "invalid_format")
    array = sim.client.post("/v1/images", json=["prompt"])
    assert_envelope(array, 400, "invalid_request", "invalid_format")


def test_rate_limit_headers_on_every_response(sim: Sim) -> None:
    for response, limit in [
        (sim.client.get("/v1/balance"), "1200"),
        (sim.client.post("/v1/images", json={"prompt": "x"}), "120"),
        (sim.client.post("/v1/images", json={}), "120"),
        (sim.client.post("/v1/images/estimate", json={"prompt": "x"}), "240"),
        (
            sim.client.post(
                "/v1/webhook_endpoints", json={"url": "https://e.com/h", "events": ["*"]}
            ),
            "10",
        ),
    ]:
        assert response.headers["x-ratelimit-limit"] == limit
        assert int(response.headers["x-ratelimit-remaining"]) < int(limit)
        assert int(response.headers["x-ratelimit-reset"]) >= int(time.time())


def test_bucket_empties_then_refills_on_the_simulated_clock(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(time_scale=0.001)
    body = {"url": "https://example.com/h", "events": ["*"]}
    remaining = []
    for _ in range(10):
        response = sim.client.post("/v1/webhook_endpoints", json=body)
        assert response.status_code == 201
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    assert remaining == list(range(9, -1, -1))
    limited = sim.client.post("/v1/webhook_endpoints", json=body)
    error = assert_envelope(limited, 429, "rate_limit", "too_many_requests")
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert "webhook_endpoints" in error["message"]
    assert sim.client.get("/v1/balance").status_code == 200  # other classes unaffected
    sim.advance(6.1)  # 10 per minute: one token every 6 simulated seconds
    assert sim.client.post("/v1/webhook_endpoints", json=body).status_code == 201
    assert sim.client.post("/v1/webhook_endpoints", json=body).status_code == 429


def test_images_post_burst_is_120(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(time_scale=0.001)
    statuses = [sim.client.post("/v1/images/does-not-exist/cancel").status_code for _ in range(121)]
    assert statuses[:120] == [404] * 120
    assert statuses[120] == 429


def test_idempotent_replay(sim: Sim) -> None:
    headers = {"Idempotency-Key": "5b0b7c1e-2d7f-4c1a-9b0e-3a6f7a0f1c2d"}
    first = sim.client.post("/v1/images", json={"prompt": "p", "steps": 20}, headers=headers)
    replay = sim.client.post(
        "/v1/images",
        content=b'{ "steps": 20,  "prompt": "p" }',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert first.status_code == replay.status_code == 201
    assert replay.headers["aurous-idempotent-replayed"] == "true"
    assert "aurous-idempotent-replayed" not in first.headers
    assert replay.json() == first.json()
    assert len(sim.client.get("/v1/images").json()["data"]) == 1
    holds = sim.client.get("/v1/usage/events", params={"type": "hold"}).json()["data"]
    assert len(holds) == 1  # never re-billed


def test_idempotency_conflicts(sim: Sim) -> None:
    key = {"Idempotency-Key": "k-1"}
    assert sim.client.post("/v1/images", json={"prompt": "a"}, headers=key).status_code == 201
    other_body = sim.client.post("/v1/images", json={"prompt": "b"}, headers=key)
    assert_envelope(other_body, 409, "invalid_request", "idempotency_key_in_use")
    assert "retry-after" not in other_body.headers
    other_route = sim.client.post("/v1/videos", json={"prompt": "a"}, headers=key)
    assert_envelope(other_route, 409, "invalid_request", "idempotency_key_in_use")
    alias = sim.client.post(
        "/v1/images", json={"prompt": "a"}, headers={"Aurous-Idempotent-Key": "k-1"}
    )
    assert alias.status_code == 201 and alias.headers["aurous-idempotent-replayed"] == "true"
    long_key = sim.client.post(
        "/v1/images", json={"prompt": "a"}, headers={"Idempotency-Key": "x" * 257}
    )
    assert long_key.status_code == 400


def test_without_key_every_request_is_new(sim: Sim) -> None:
    a = sim.client.post("/v1/images", json={"prompt": "same"}).json()
    b = sim.client.post("/v1/images", json={"prompt": "same"}).json()
    assert a["id"] != b["id"]


def test_failed_original_is_re_evaluated(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(start_balance=0.5)
    key = {"Idempotency-Key": "retry-after-topup"}
    poor = sim.client.post("/v1/images", json={"prompt": "x"}, headers=key)
    assert_envelope(poor, 402, "invalid_request", "balance_too_low")
    sim.control("POST", "ledger", {"type": "topup", "amount": 10})
    rich = sim.client.post("/v1/images", json={"prompt": "x"}, headers=key)
    assert rich.status_code == 201 and "aurous-idempotent-replayed" not in rich.headers


def test_in_flight_original_gives_409(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(create_latency_s=1.0)
    key = {"Idempotency-Key": "slow"}
    results: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(
            base_url=sim.url, headers={"X-Api-Key": API_KEY}, trust_env=False
        ) as client:
            results.append(client.post("/v1/images", json={"prompt": "x"}, headers=key))

    first = threading.Thread(target=send)
    first.start()
    time.sleep(0.3)
    second = sim.client.post("/v1/images", json={"prompt": "x"}, headers=key)
    first.join()
    assert_envelope(second, 409, "invalid_request", "idempotency_key_in_use")
    assert results[0].status_code == 201
    later = sim.client.post("/v1/images", json={"prompt": "x"}, headers=key)
    assert later.headers["aurous-idempotent-replayed"] == "true"
    assert later.json()["id"] == results[0].json()["id"]


def test_key_expires_after_24_hours(sim: Sim) -> None:
    key = {"Idempotency-Key": "daily"}
    first = sim.client.post("/v1/images", json={"prompt": "x"}, headers=key).json()
    sim.advance(86401)
    second = sim.client.post("/v1/images", json={"prompt": "x"}, headers=key)
    assert second.status_code == 201 and "aurous-idempotent-replayed" not in second.headers
    assert second.json()["id"] != first["id"]


@pytest.mark.parametrize("path", ["/_sim/stats", "/_sim/truth", "/_sim/faults"])
def test_control_api_needs_no_key(sim: Sim, path: str) -> None:
    assert httpx.get(sim.url + path, trust_env=False).status_code == 200
