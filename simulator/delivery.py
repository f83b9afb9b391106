"""Webhook delivery: a due-time queue on the simulated clock and the HTTP attempt itself.

Endpoint deliveries retry on an exponential schedule (base, 2x base, 4x base, ...) up to
`endpoint_max_attempts`; per-request callbacks retry at a fixed interval. Every attempt is
signed afresh (new `t`) with the secrets valid at that moment.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from simulator.ids import new_id
from simulator.webhooks import signature_header

if TYPE_CHECKING:
    from simulator.core import Simulator

__all__ = ["Delivery", "DeliveryQueue", "attempt_delivery"]

USER_AGENT = "Aurous-Webhooks/1.0 (simulator)"


@dataclass(slots=True, eq=False)
class Delivery:
    event_id: str | None
    event_type: str
    body: bytes
    url: str
    endpoint_id: str | None  # None for a per-request webhook_url callback
    max_attempts: int
    attempt: int = 0
    bad_signature_first: bool = False
    copy: bool = False  # an injected duplicate

    @property
    def kind(self) -> str:
        return "endpoint" if self.endpoint_id is not None else "callback"


class DeliveryQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Delivery]] = []
        self._counter = itertools.count()
        self.wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, delivery: Delivery, due: float) -> None:
        heapq.heappush(self._heap, (due, next(self._counter), delivery))
        self.wake.set()

    def pop_due(self, now: float) -> list[Delivery]:
        due: list[Delivery] = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None


def _signing_secrets(sim: Simulator, delivery: Delivery) -> list[str]:
    now = sim.clock.now()
    dual = sim.config.dual_sign
    if delivery.endpoint_id is not None:
        endpoint = sim.endpoints.get(delivery.endpoint_id)
        return [] if endpoint is None else endpoint.signing_secrets(now, dual_sign=dual)
    signer = sim.callback_signer()
    if signer is None or not sim.config.sign_callbacks:
        return []
    return signer.signing_secrets(now, dual_sign=dual)


def _headers(sim: Simulator, delivery: Delivery) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Aurous-Request-Id": new_id("req_", sim.clock.now()),
        "User-Agent": USER_AGENT,
    }
    signing = _signing_secrets(sim, delivery)
    if signing and delivery.bad_signature_first and delivery.attempt == 1:
        sim.stats.incr("faults", "bad_signature")
        signing = [secret + "-not-the-real-secret" for secret in signing]
    if signing:
        # Wall clock on purpose: the receiver checks `t` against its own watch.
        timestamp = int(sim.clock.wall())
        headers["Aurous-Webhook-Signature"] = signature_header(timestamp, signing, delivery.body)
    return headers


async def _post(
    client: httpx.AsyncClient, delivery: Delivery, headers: dict[str, str], limit_s: float
) -> bool:
    try:
        response = await client.post(
            delivery.url, content=delivery.body, headers=headers, timeout=limit_s
        )
    except (httpx.HTTPError, OSError):  # timeout, refused, reset: all count as failures
        return False
    except Exception:
        # Whatever broke the exchange, Aurous would count a failed attempt and retry.
        return False
    return 200 <= response.status_code < 300


async def attempt_delivery(sim: Simulator, client: httpx.AsyncClient, delivery: Delivery) -> None:
    """One attempt; on failure, schedule the next one if attempts remain."""
    endpoint = sim.endpoints.get(delivery.endpoint_id) if delivery.endpoint_id else None
    if delivery.endpoint_id is not None and (endpoint is None or not endpoint.is_active):
        sim.stats.incr("deliveries", "skipped_inactive_endpoint")
        return
    delivery.attempt += 1
    sim.stats.incr("deliveries", "attempted")
    sim.stats.incr("deliveries", f"{delivery.kind}_attempted")
    ok = await _post(client, delivery, _headers(sim, delivery), sim.config.webhook_timeout_s)
    sim.stats.incr("deliveries", "succeeded" if ok else "failed")
    sim.record_attempt(delivery, ok)
    if ok or delivery.attempt >= delivery.max_attempts:
        if not ok:
            sim.stats.incr("deliveries", "gave_up")
        return
    sim.deliveries.push(delivery, sim.clock.now() + sim.retry_delay(delivery))
