"""The Aurous client's error decoding, retry policy and shared budget (httpx MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from receiver.aurous import AurousClient, AurousError, RateBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def envelope(status: int, type_: str, code: str, **headers: str) -> httpx.Response:
    body = {"error": {"type": type_, "code": code, "message": code, "request_id": "req_1"}}
    return httpx.Response(status, json=body, headers=headers)


GEN = {"id": "img_1", "status": "processing", "object": "inference"}


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock
) -> AurousClient:
    transport = httpx.MockTransport(handler)
    return AurousClient(
        "https://api.example.test",
        "al_live_x",
        budget=RateBudget(600, clock=clock, sleep=clock.sleep),
        http=httpx.AsyncClient(transport=transport),
        sleep=clock.sleep,
        version="2026-05-15",
    )


async def test_sends_key_and_version_and_decodes() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=GEN)

    client = client_for(handler, FakeClock())
    generation = await client.get_generation("img_1")
    assert generation.status == "processing"
    assert seen[0].headers["X-Api-Key"] == "al_live_x"
    assert seen[0].headers["Aurous-Version"] == "2026-05-15"


@pytest.mark.parametrize(
    ("status", "type_", "code"),
    [
        (400, "invalid_request", "missing_field"),
        (401, "authentication", "invalid_api_key"),
        (404, "not_found", "resource_not_found"),
    ],
)
async def test_final_errors_are_not_retried(status: int, type_: str, code: str) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return envelope(status, type_, code)

    with pytest.raises(AurousError) as caught:
        await client_for(handler, FakeClock()).get_generation("img_1")
    assert calls == 1
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.request_id == "req_1"


@pytest.mark.parametrize("body", [{"object": "inference"}, {**GEN, "id": ""}])
async def test_an_answer_that_is_no_usable_generation_is_aurous_error(body: object) -> None:
    """So that every caller (a refresh, the archiver after a 410, the audit adopting a job)
    handles it as a failed call, not as a crash."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body, headers={"Aurous-Request-Id": "req_9"})

    with pytest.raises(AurousError) as caught:
        await client_for(handler, FakeClock()).get_generation("img_1")
    assert (caught.value.status, caught.value.code) == (502, "invalid_response")
    assert caught.value.retryable and caught.value.request_id == "req_9"


async def test_server_errors_back_off_then_succeed() -> None:
    answers = [envelope(503, "server_error", "provider_unavailable")] * 2
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json=GEN)

    assert (await client_for(handler, clock).get_generation("img_1")).id == "img_1"
    assert len(clock.slept) == 2
    assert 0.5 <= clock.slept[0] <= 1.0
    assert 1.0 <= clock.slept[1] <= 2.0


async def test_a_429_pauses_every_caller_until_retry_after() -> None:
    clock = FakeClock()
    times: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        times.append(clock.now)
        if len(times) == 1:
            return envelope(429, "rate_limit", "too_many_requests", **{"Retry-After": "12"})
        return httpx.Response(200, json=GEN)

    client = client_for(handler, clock)
    await client.get_generation("img_1")
    assert times[1] - times[0] >= 12
    await client.get_generation("img_1")  # no further pause once it has passed
    assert times[2] == times[1]


async def test_budget_spreads_gets_when_exhausted() -> None:
    clock = FakeClock()
    budget = RateBudget(60, clock=clock, sleep=clock.sleep)
    for _ in range(61):
        await budget.acquire()
    assert clock.now == pytest.approx(1.0, abs=0.01)  # the 61st waited for a refill
    assert budget.used == 61


async def test_low_remaining_header_slows_down() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=GEN, headers={"X-RateLimit-Remaining": "1", "X-RateLimit-Limit": "1200"}
        )

    client = client_for(handler, clock)
    await client.get_generation("img_1")
    await client.get_generation("img_1")
    assert clock.now > 0  # the second GET waited for the bucket


async def test_network_errors_are_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(AurousError) as caught:
        await client_for(handler, FakeClock()).get_generation("img_1")
    assert caught.value.type == "network"


async def test_undecodable_error_bodies_still_raise_cleanly() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    with pytest.raises(AurousError) as caught:
        await client_for(handler, FakeClock()).balance()
    assert caught.value.type == "server_error"
    assert json.dumps(caught.value.message)


@pytest.mark.parametrize(("said", "waited"), [("86400", 300.0), ("1e400", 1.0), ("-5", 1.0)])
async def test_a_retry_after_beyond_reason_pauses_for_a_bounded_time(
    said: str, waited: float
) -> None:
    """Every call to Aurous waits with the one that was told: a day, or infinity, would stop
    polls, creates and downloads for that long."""
    clock = FakeClock()
    answers = [envelope(429, "rate_limit", "too_many_requests", **{"Retry-After": said})]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json=GEN)

    await client_for(handler, clock).get_generation("img_1")
    assert clock.now == pytest.approx(waited, abs=0.01)


async def test_a_body_that_cannot_be_decoded_is_a_network_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"})

    with pytest.raises(AurousError) as caught:
        await client_for(handler, FakeClock()).get_generation("img_1")
    assert caught.value.type == "network" and caught.value.retryable
