"""The simulator's webhook endpoints and deliveries, checked against Aurous's documented
scheme and the envelopes the README's "The webhook endpoint" describes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from tests.e2e.simulator.conftest import Receiver, Sim, verify_signature, wait_for

EIGHT_TYPES = {
    "image.completed",
    "image.failed",
    "image.cancelled",
    "video.completed",
    "video.failed",
    "video.cancelled",
    "usage.balance_low",
    "webhook.endpoint_disabled",
}
ENDPOINT_FIELDS = {
    "id",
    "object",
    "url",
    "events",
    "secret_preview",
    "is_active",
    "consecutive_failures",
    "last_success_at",
    "last_failure_at",
    "metadata",
    "created_at",
    "updated_at",
    "description",
    "secret",
}


def register(
    sim: Sim, receiver: Receiver, events: list[str] | None = None, path: str = "/hook"
) -> dict:
    response = sim.client.post(
        "/v1/webhook_endpoints", json={"url": receiver.url + path, "events": events or ["*"]}
    )
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(receiver: Receiver, path: str = "/hook") -> list[dict]:
    return [json.loads(r.body) for r in receiver.snapshot(path)]


def test_create_returns_secret_once_and_documented_shape(sim: Sim, receiver: Receiver) -> None:
    created = register(sim, receiver, ["*"])
    assert set(created) == ENDPOINT_FIELDS
    assert created["id"].startswith("we_") and created["object"] == "webhook_endpoint"
    assert created["secret"].startswith("whsec_")
    assert set(created["events"]) == EIGHT_TYPES
    assert created["is_active"] is True and created["consecutive_failures"] == 0
    assert created["last_success_at"] is None and created["last_failure_at"] is None
    preview = created["secret_preview"]
    assert re.fullmatch(r"whsec_.{3}\.\.\..{4}", preview)
    assert preview.endswith(created["secret"][-4:])
    fetched = sim.client.get(f"/v1/webhook_endpoints/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["secret"] is None
    assert fetched.json()["secret_preview"] == preview


def test_create_validation(sim: Sim) -> None:
    cases = [
        ({"url": "http://example.com/hook", "events": ["*"]}, "url"),
        ({"url": "https://example.com/hook"}, "events"),
        ({"url": "https://example.com/hook", "events": ["image.exploded"]}, "events"),
        ({"events": ["*"]}, "url"),
        ({"url": "https://example.com/" + "a" * 2050, "events": ["*"]}, "url"),
    ]
    for body, param in cases:
        response = sim.client.post("/v1/webhook_endpoints", json=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request" and error["param"] == param
    ok = sim.client.post(
        "/v1/webhook_endpoints",
        json={
            "url": "https://example.com/h",
            "events": ["image.completed"],
            "description": "Production webhook",
            "metadata": {"team": "a"},
        },
    )
    assert ok.status_code == 201
    assert ok.json()["metadata"] == {"team": "a"}
    assert ok.json()["description"] == "Production webhook"


def test_get_unknown_and_idempotent_delete(sim: Sim) -> None:
    missing = sim.client.get("/v1/webhook_endpoints/we_nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_not_found"
    created = sim.client.post(
        "/v1/webhook_endpoints", json={"url": "https://example.com/h", "events": ["*"]}
    ).json()
    first = sim.client.delete(f"/v1/webhook_endpoints/{created['id']}")
    second = sim.client.delete(f"/v1/webhook_endpoints/{created['id']}")
    assert first.status_code == second.status_code == 200
    assert first.json()["deleted"] is True and second.json()["deleted"] is False
    assert sim.client.get(f"/v1/webhook_endpoints/{created['id']}").status_code == 404


def test_completed_delivery_is_signed_and_enveloped(sim: Sim, receiver: Receiver) -> None:
    endpoint = register(sim, receiver, ["image.completed"])
    job = sim.client.post("/v1/images", json={"prompt": "a lighthouse"}).json()
    wait_for(lambda: receiver.snapshot("/hook"))
    record = receiver.snapshot("/hook")[0]
    assert verify_signature(
        record.headers["aurous-webhook-signature"], record.body, [endpoint["secret"]]
    ) == [endpoint["secret"]]
    assert record.headers["content-type"].startswith("application/json")
    assert re.fullmatch(r"req_[0-9A-Z]{26}", record.headers["aurous-request-id"])
    event = json.loads(record.body)
    assert event["id"].startswith("evt_") and event["object"] == "event"
    assert event["type"] == "image.completed" and event["synthetic"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["created_at"])
    assert event["data"] == sim.client.get(f"/v1/images/{job['id']}").json()
    assert event["data"]["status"] == "succeeded" and event["data"]["output_urls"]
    wait_for(
        lambda: sim.client.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()["last_success_at"]
    )


def test_tampered_body_does_not_verify(sim: Sim, receiver: Receiver) -> None:
    endpoint = register(sim, receiver)
    sim.client.post("/v1/images", json={"prompt": "x"})
    wait_for(lambda: receiver.snapshot("/hook"))
    record = receiver.snapshot("/hook")[0]
    header = record.headers["aurous-webhook-signature"]
    assert verify_signature(header, record.body + b" ", [endpoint["secret"]]) == []
    assert verify_signature(header, record.body, ["whsec_someone_else"]) == []


def _rotate_and_deliver(sim: Sim, receiver: Receiver) -> tuple[str, str, str]:
    endpoint = register(sim, receiver, ["image.completed"])
    rotated = sim.client.post(f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
    assert set(rotated.json()) == ENDPOINT_FIELDS
    assert sim.client.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()["secret"] is None
    sim.client.post("/v1/images", json={"prompt": "after rotation"})
    wait_for(lambda: receiver.snapshot("/hook"))
    record = receiver.snapshot("/hook")[0]
    return record.headers["aurous-webhook-signature"], endpoint["secret"], new_secret


def test_rotation_with_grace_signs_with_both(
    make_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = make_sim(rotation_grace_s=3600)
    header, old, new = _rotate_and_deliver(sim, receiver)
    assert header.count("v1=") == 2
    record = receiver.snapshot("/hook")[0]
    assert set(verify_signature(header, record.body, [old, new])) == {old, new}


def test_rotation_without_grace_signs_with_new_only(
    make_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = make_sim(rotation_grace_s=0)
    header, old, new = _rotate_and_deliver(sim, receiver)
    assert header.count("v1=") == 1
    record = receiver.snapshot("/hook")[0]
    assert verify_signature(header, record.body, [old, new]) == [new]


def test_grace_ends_on_the_simulated_clock(
    make_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = make_sim(rotation_grace_s=3600)
    _, old, new = _rotate_and_deliver(sim, receiver)
    sim.advance(3601)
    sim.client.post("/v1/images", json={"prompt": "later"})
    wait_for(lambda: len(receiver.snapshot("/hook")) >= 2)
    record = receiver.snapshot("/hook")[1]
    header = record.headers["aurous-webhook-signature"]
    assert verify_signature(header, record.body, [old, new]) == [new]


def test_single_signing_keeps_old_secret_during_grace(
    make_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = make_sim(rotation_grace_s=3600, dual_sign=False)
    header, old, new = _rotate_and_deliver(sim, receiver)
    record = receiver.snapshot("/hook")[0]
    assert header.count("v1=") == 1
    assert verify_signature(header, record.body, [old, new]) == [old]


def test_test_fire_is_synthetic_and_signed(sim: Sim, receiver: Receiver) -> None:
    endpoint = register(sim, receiver, ["image.completed", "video.failed"])
    fired = sim.client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/test", json={"event_type": "video.failed"}
    )
    assert fired.status_code == 200
    body = fired.json()
    assert body["object"] == "webhook_test_fire" and body["enqueued"] is True
    assert body["endpoint_id"] == endpoint["id"] and body["event_id"].startswith("evt_")
    wait_for(lambda: receiver.snapshot("/hook"))
    record = receiver.snapshot("/hook")[0]
    event = json.loads(record.body)
    assert event["synthetic"] is True and event["id"] == body["event_id"]
    assert event["type"] == "video.failed"
    assert verify_signature(
        record.headers["aurous-webhook-signature"], record.body, [endpoint["secret"]]
    )
    unsubscribed = sim.client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/test", json={"event_type": "usage.balance_low"}
    )
    assert unsubscribed.status_code == 400
    assert unsubscribed.json()["error"]["param"] == "event_type"


def test_failed_attempts_retry_with_fresh_signatures(
    make_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = make_sim(time_scale=50)
    failures = {"left": 2}

    def flaky(_: object) -> int:
        if failures["left"] > 0:
            failures["left"] -= 1
            return 503
        return 200

    receiver.status_for = flaky
    endpoint = register(sim, receiver, ["image.completed"])
    sim.client.post("/v1/images", json={"prompt": "retry me"})
    wait_for(lambda: len(receiver.snapshot("/hook")) == 3)
    records = receiver.snapshot("/hook")
    assert len({json.loads(r.body)["id"] for r in records}) == 1
    for record in records:
        assert verify_signature(
            record.headers["aurous-webhook-signature"], record.body, [endpoint["secret"]]
        )
    # 5 s then 10 s simulated: the second gap is about twice the first.
    first_gap, second_gap = records[1].at - records[0].at, records[2].at - records[1].at
    assert second_gap > first_gap * 1.3
    state = wait_for(
        lambda: (lambda e: e if e["last_success_at"] else None)(
            sim.client.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()
        )
    )
    assert state["consecutive_failures"] == 0 and state["last_failure_at"] is not None


def test_gives_up_after_eight_attempts(make_sim: Callable[..., Sim], receiver: Receiver) -> None:
    sim = make_sim(time_scale=2000)
    receiver.status_for = lambda _: 500
    endpoint = register(sim, receiver, ["image.completed"])
    sim.client.post("/v1/images", json={"prompt": "never acked"})
    wait_for(lambda: sim.stats()["deliveries"].get("gave_up") == 1, timeout=15)
    assert len(receiver.snapshot("/hook")) == 8
    state = sim.client.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()
    assert state["consecutive_failures"] == 8 and state["is_active"] is True


def test_auto_disable_notifies_other_endpoints(
    make_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = make_sim(time_scale=5000)
    receiver.status_for = lambda r: 500 if r.path == "/broken" else 200
    broken = register(sim, receiver, ["image.completed"], path="/broken")
    healthy = register(sim, receiver, ["webhook.endpoint_disabled"], path="/healthy")
    for _ in range(3):
        sim.client.post("/v1/images", json={"prompt": "fails to deliver"})
    wait_for(lambda: deliveries(receiver, "/healthy"), timeout=20)
    state = sim.client.get(f"/v1/webhook_endpoints/{broken['id']}").json()
    assert state["is_active"] is False and state["consecutive_failures"] >= 20
    notice = deliveries(receiver, "/healthy")[0]
    assert notice["type"] == "webhook.endpoint_disabled"
    assert notice["data"]["id"] == broken["id"]
    assert healthy["id"] != broken["id"]


def test_terminal_events_for_each_outcome(make_sim: Callable[..., Sim], receiver: Receiver) -> None:
    sim = make_sim(failed_rate=1.0, time_scale=200)
    register(sim, receiver)
    failed = sim.client.post("/v1/images", json={"prompt": "will fail"}).json()
    video = sim.client.post("/v1/videos", json={"prompt": "will fail too"}).json()
    sim.faults(failed_rate=0.0)
    cancelled = sim.client.post("/v1/images", json={"prompt": "cancel me"}).json()
    sim.client.post(f"/v1/images/{cancelled['id']}/cancel")
    wait_for(lambda: len(deliveries(receiver)) >= 3, timeout=15)
    by_id = {e["data"]["id"]: e for e in deliveries(receiver)}
    assert by_id[failed["id"]]["type"] == "image.failed"
    assert by_id[failed["id"]]["data"]["error_message"]
    assert by_id[video["id"]]["type"] == "video.failed"
    assert by_id[cancelled["id"]]["type"] == "image.cancelled"
    assert by_id[cancelled["id"]]["data"]["status"] == "cancelled"


def test_per_request_callback_shape_and_signing(sim: Sim, receiver: Receiver) -> None:
    endpoint = register(sim, receiver, ["video.completed"], path="/endpoint")
    job = sim.client.post(
        "/v1/images", json={"prompt": "call me", "webhook_url": receiver.url + "/cb"}
    ).json()
    wait_for(lambda: receiver.snapshot("/cb"))
    record = receiver.snapshot("/cb")[0]
    body = json.loads(record.body)
    assert set(body) == {"event", "data"}
    assert body["event"] == "image.completed" and body["data"]["id"] == job["id"]
    assert verify_signature(
        record.headers["aurous-webhook-signature"], record.body, [endpoint["secret"]]
    )


def test_per_request_callback_tries_three_times(
    make_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = make_sim(time_scale=200)
    receiver.status_for = lambda _: 500
    sim.client.post("/v1/images", json={"prompt": "x", "webhook_url": receiver.url + "/cb"})
    wait_for(lambda: sim.stats()["deliveries"].get("gave_up") == 1)
    records = receiver.snapshot("/cb")
    assert len(records) == 3
    assert "aurous-webhook-signature" not in records[0].headers  # no endpoint, no secret


def test_callback_url_must_be_https_unless_loopback(sim: Sim) -> None:
    response = sim.client.post(
        "/v1/images", json={"prompt": "x", "webhook_url": "http://example.com/cb"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "webhook_url"
    ok = sim.client.post(
        "/v1/images", json={"prompt": "x", "webhook_url": "https://example.com/cb"}
    )
    assert ok.status_code == 201


def test_slow_receiver_counts_as_failure(make_sim: Callable[..., Sim], receiver: Receiver) -> None:
    sim = make_sim(webhook_timeout_s=0.2, time_scale=20)
    receiver.delay_s = 1.0
    endpoint = register(sim, receiver, ["image.completed"])
    sim.client.post("/v1/images", json={"prompt": "x"})

    def failed_once() -> bool:
        state = sim.client.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()
        return state["consecutive_failures"] >= 1 and state["last_failure_at"] is not None

    wait_for(failed_once, timeout=10)
    assert sim.stats()["deliveries"]["failed"] >= 1


def test_shutdown_does_not_wait_for_deliveries(
    make_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = make_sim()
    receiver.delay_s = 8.0
    register(sim, receiver, ["image.completed"])
    sim.client.post("/v1/images", json={"prompt": "x"})
    wait_for(lambda: receiver.snapshot("/hook"))
    started = time.monotonic()
    sim.client.close()
    sim.server.stop()
    assert time.monotonic() - started < 3
