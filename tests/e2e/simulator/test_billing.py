"""Balance and the credit ledger (§8.1, §8.2 contract (a)), holds, charges, releases, 402."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.e2e.simulator.conftest import Receiver, Sim, wait_for

LEDGER_KEYS = {
    "id",
    "object",
    "type",
    "amount",
    "currency",
    "created_at",
    "generation_id",
    "hold_id",
    "description",
}


def test_balance_shape_and_initial_topup(sim: Sim) -> None:
    balance = sim.client.get("/v1/balance").json()
    assert set(balance) == {
        "credits",
        "held_credits",
        "available_credits",
        "currency",
        "billing_mode",
    }
    assert balance["currency"] == "credit"
    assert balance["available_credits"] == balance["credits"] - balance["held_credits"]
    ledger = sim.client.get("/v1/usage/events").json()
    assert ledger["object"] == "list" and len(ledger["data"]) == 1
    row = ledger["data"][0]
    assert set(row) == LEDGER_KEYS and row["type"] == "topup" and row["id"].startswith("uev_")
    assert row["object"] == "usage_event" and row["amount"] == balance["credits"]


def test_hold_then_charge(sim: Sim) -> None:
    start = sim.client.get("/v1/balance").json()
    job = sim.client.post(
        "/v1/images", json={"prompt": "x", "count": 2, "enhance_prompt": True}
    ).json()
    cost = job["cost"]["amount"]
    assert cost == 4
    held = sim.client.get("/v1/balance").json()
    assert held["available_credits"] == start["available_credits"] - cost
    assert held["held_credits"] == cost and held["credits"] == start["credits"]
    sim.wait_terminal(job["id"])
    after = sim.client.get("/v1/balance").json()
    assert after["credits"] == start["credits"] - cost and after["held_credits"] == 0
    rows = sim.client.get("/v1/usage/events").json()["data"]
    charge, hold = rows[0], rows[1]
    assert (charge["type"], hold["type"]) == ("charge", "hold")
    assert charge["generation_id"] == hold["generation_id"] == job["id"]
    assert charge["hold_id"] == hold["hold_id"] and hold["hold_id"].startswith("hold_")
    assert charge["amount"] == hold["amount"] == cost > 0


def test_release_on_failure_and_cancel(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(failed_rate=1.0)
    start = sim.client.get("/v1/balance").json()
    failed = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    cancelled = sim.client.post("/v1/videos", json={"prompt": "v"}).json()
    sim.client.post(f"/v1/images/{cancelled['id']}/cancel")
    sim.wait_terminal(failed["id"])
    assert sim.client.get("/v1/balance").json() == start
    releases = sim.client.get("/v1/usage/events", params={"type": "release"}).json()["data"]
    assert {r["generation_id"] for r in releases} == {failed["id"], cancelled["id"]}
    assert sim.client.get("/v1/usage/events", params={"type": "charge"}).json()["data"] == []


def test_balance_too_low_is_402(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(start_balance=3)
    assert sim.client.post("/v1/images", json={"prompt": "x", "count": 3}).status_code == 201
    refused = sim.client.post("/v1/images", json={"prompt": "x"})
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request", "balance_too_low")
    assert len(sim.client.get("/v1/images").json()["data"]) == 1


def test_ledger_pagination_and_filter(sim: Sim) -> None:
    for _ in range(4):
        sim.client.post("/v1/images", json={"prompt": "x"})
    everything = sim.client.get("/v1/usage/events", params={"limit": 100}).json()["data"]
    assert len(everything) == 5
    assert [r["type"] for r in everything] == ["hold"] * 4 + ["topup"]
    page1 = sim.client.get("/v1/usage/events", params={"limit": 2}).json()
    assert page1["has_more"] is True and page1["next_cursor"] == page1["data"][-1]["id"]
    page2 = sim.client.get(
        "/v1/usage/events", params={"limit": 2, "starting_after": page1["next_cursor"]}
    ).json()
    assert [r["id"] for r in page1["data"] + page2["data"]] == [r["id"] for r in everything[:4]]
    holds = sim.client.get("/v1/usage/events", params={"type": "hold", "limit": 3}).json()
    assert [r["type"] for r in holds["data"]] == ["hold"] * 3 and holds["has_more"] is True
    assert sim.client.get("/v1/usage/events", params={"type": "bogus"}).status_code == 400
    assert sim.client.get("/v1/usage/events", params={"limit": 101}).status_code == 400


def test_balance_low_webhook_is_debounced(make_sim: Callable[..., Sim], receiver: Receiver) -> None:
    sim = make_sim(start_balance=12, balance_low_threshold=10)
    sim.client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url + "/hook", "events": ["usage.balance_low"]},
    )
    for _ in range(3):
        assert sim.client.post("/v1/images", json={"prompt": "x"}).status_code == 201
    wait_for(lambda: receiver.snapshot("/hook"))
    sim.advance(1800)
    sim.client.post("/v1/images", json={"prompt": "x"})
    sim.advance(1801)
    sim.client.post("/v1/images", json={"prompt": "x"})
    wait_for(lambda: len(receiver.snapshot("/hook")) == 2)
    events = [json.loads(r.body) for r in receiver.snapshot("/hook")]
    assert [e["type"] for e in events] == ["usage.balance_low"] * 2
    assert events[0]["data"]["available_credits"] <= 10


def test_orphan_ledger_row_via_control_api(sim: Sim) -> None:
    row = sim.control(
        "POST",
        "ledger",
        {"type": "charge", "amount": 5, "generation_id": "img_01NEVERSEENBYTHECUSTOMER0"},
    )
    newest = sim.client.get("/v1/usage/events").json()["data"][0]
    assert newest == row and newest["generation_id"] == "img_01NEVERSEENBYTHECUSTOMER0"
    assert sim.client.get("/v1/images").json()["data"] == []
    created = sim.control("POST", "jobs", {"kind": "image", "count": 2})
    listed = [g["id"] for g in sim.client.get("/v1/images").json()["data"]]
    assert listed == created["ids"][::-1]
