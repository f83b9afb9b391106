"""The simulated Aurous team: jobs, credits, endpoints and the rules that tie them together.

Everything here is synchronous and runs on the server's event loop, so no locks are needed;
the async parts (HTTP, delivery attempts, the ticker) live in app.py and engine.py.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

from simulator.billing import Ledger
from simulator.clock import SimClock
from simulator.config import SimulatorConfig, apply_overrides
from simulator.delivery import Delivery, DeliveryQueue
from simulator.errors import ApiError
from simulator.events import EventBus
from simulator.idempotency import IdempotencyStore
from simulator.ids import new_id, new_seeded_id
from simulator.jobs import Job, JobStore, plan_job
from simulator.media import Media, mp4_media, png_media, stream_sha256
from simulator.params import image_cost, video_cost
from simulator.ratelimit import RateLimiter
from simulator.render import generation_json
from simulator.settlement import settle_bill
from simulator.stats import Stats
from simulator.webhooks import Endpoint, EndpointStore

__all__ = ["TEAM", "Origin", "Simulator"]

TEAM = "team_simulated"
BALANCE_LOW_DEBOUNCE_S = 3600.0
PRUNE_EVERY_REAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a create came from: output URLs, creation_request_id and version come from it."""

    base_url: str
    request_id: str
    api_version: str


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.clock = SimClock(config.time_scale)
        self.jobs = JobStore()
        self.ledger = Ledger()
        self.endpoints = EndpointStore()
        self.deliveries = DeliveryQueue()
        self.idempotency = IdempotencyStore()
        self.limiter = RateLimiter(config.rate_limit_multiplier)
        self.stats = Stats()
        self.acknowledged: set[str] = set()
        self.events = EventBus(self)
        self._token_key = secrets.token_bytes(32)
        self._id_rng = random.Random(f"{config.seed}:ids")
        self.fault_rng = random.Random(f"{config.seed}:faults")
        self._balance_low_at: float | None = None
        self._pruned_real_at = time.monotonic()
        now = self.clock.now()
        self.ledger.record("topup", config.start_balance, now, description="Stripe top-up")
        if config.webhook_url:
            self.endpoints.create(
                config.webhook_url,
                ["*"],
                now,
                secret=config.webhook_secret,
                description="pre-registered by the simulator",
            )

    # -- configuration -------------------------------------------------------------------
    def update_config(self, overrides: dict[str, Any]) -> SimulatorConfig:
        new = apply_overrides(self.config, overrides)
        if new.time_scale != self.config.time_scale:
            self.clock.set_scale(new.time_scale)
        if new.rate_limit_multiplier != self.config.rate_limit_multiplier:
            self.limiter.reset(new.rate_limit_multiplier)
        self.config = new
        self.deliveries.wake.set()
        return new

    # -- outputs -------------------------------------------------------------------------
    def output_token(self, job_id: str, index: int) -> str:
        message = f"{job_id}:{index}".encode()
        return hmac.new(self._token_key, message, hashlib.sha256).hexdigest()[:40]

    def token_ok(self, job_id: str, index: int, token: str) -> bool:
        return hmac.compare_digest(self.output_token(job_id, index), token)

    def media_for(self, job: Job, index: int) -> Media:
        if job.kind == "image":
            return png_media(
                self.config.seed, job.sequence, index, job.output_size, job.params.get("prompt")
            )
        return mp4_media(
            self.config.seed, job.sequence, job.output_size, job.params["duration"] * 1000
        )

    def output_sha256(self, job: Job, index: int) -> str:
        if index not in job.sha256:
            job.sha256[index] = stream_sha256(self.media_for(job, index))
        return job.sha256[index]

    def render(self, job: Job) -> dict[str, Any]:
        return generation_json(
            job, self.clock.now(), self.output_token, video_in_list=self.config.video_output_urls
        )

    # -- jobs ----------------------------------------------------------------------------
    def create_job(self, kind: str, params: dict[str, Any], origin: Origin) -> Job:
        self.settle()
        cost, breakdown = image_cost(params) if kind == "image" else video_cost(params)
        now = self.clock.now()
        if self.ledger.available < cost:
            raise ApiError(
                402,
                "balance_too_low",
                f"Team available balance is {self.ledger.available:g} credits, "
                f"generation requires {cost:g}.",
            )
        job = self._new_job(kind, dict(params), now, origin)
        job.cost, job.breakdown = cost, breakdown
        job.hold_id = new_id("hold_", now)
        self.ledger.record(
            "hold",
            cost,
            now,
            generation_id=job.id,
            hold_id=job.hold_id,
            held_delta=cost,
        )
        self.jobs.add(job)
        self.stats.incr("creates", kind)
        self.stats.incr("jobs", "created")
        self._check_balance_low(now)
        return job

    def _new_job(self, kind: str, params: dict[str, Any], now: float, origin: Origin) -> Job:
        sequence = self.jobs.next_sequence
        self.jobs.next_sequence += 1
        plan = plan_job(self.config, kind, sequence)
        if params.get("seed") in (None, -1):
            params["seed"] = random.Random(f"{self.config.seed}:seed:{sequence}").getrandbits(31)
        if plan["outcome"] != "succeeded":
            self.stats.incr("faults", "failed" if plan["outcome"] == "failed" else plan["outcome"])
        queued_at = now + plan["queue_delay"] / 3
        return Job(
            sequence=sequence,
            id=new_seeded_id("img_" if kind == "image" else "vid_", now, self._id_rng),
            kind=kind,
            created_at=now,
            queued_at=queued_at,
            processing_at=now + plan["queue_delay"],
            finish_at=now + plan["duration"],
            outcome=plan["outcome"],
            extended=self.config.extended_statuses,
            cost=0.0,
            breakdown={},
            params=params,
            base_url=origin.base_url,
            request_id=origin.request_id,
            api_version=origin.api_version,
            output_count=params["count"] if kind == "image" else 1,
            output_size=self.config.output_size if kind == "image" else self.config.video_size,
            webhook_url=params.pop("webhook_url", None),
        )

    def cancel(self, job: Job) -> None:
        """§2.6: cancelled is idempotent; other terminal states refuse."""
        self.settle()
        now = self.clock.now()
        status = job.internal_status(now)
        if status == "cancelled":
            return
        if job.is_terminal(now):
            raise ApiError(
                400,
                "generation_not_cancellable",
                f"Generation is already {job.status(now)} and cannot be cancelled.",
            )
        job.cancelled_at = now
        self._finish(job, now)

    def settle(self) -> int:
        """Apply billing and events for every job whose planned finish has passed."""
        due = self.jobs.pop_due(self.clock.now())
        for job in due:
            self._finish(job, job.finish_at)
        return len(due)

    def _finish(self, job: Job, at: float) -> None:
        job.settled = True
        settle_bill(self.ledger, self.config, self.stats, job, at)
        status = job.internal_status(at)
        self.stats.incr("jobs", f"finished_{status}")
        self.events.job_finished(job, status)
        self._check_balance_low(at)

    def _check_balance_low(self, now: float) -> None:
        if self.ledger.available > self.config.balance_low_threshold:
            return
        last = self._balance_low_at
        if last is not None and now - last < BALANCE_LOW_DEBOUNCE_S:
            return
        self._balance_low_at = now
        self.stats.incr("billing", "balance_low_events")
        data = {
            "object": "balance",
            **self.ledger.balance(),
            "balance_low_threshold": self.config.balance_low_threshold,
        }
        self.events.emit("usage.balance_low", data)

    # -- housekeeping ----------------------------------------------------------------------
    def prune(self, *, force: bool = False) -> int:
        if not force and time.monotonic() - self._pruned_real_at < PRUNE_EVERY_REAL_S:
            return 0
        self._pruned_real_at = time.monotonic()
        now = self.clock.now()
        self.idempotency.purge(now)
        removed = self.jobs.prune(now, self.config.output_ttl_s + self.config.prune_margin_s)
        self.stats.incr("jobs", "pruned", removed)
        if self.config.ledger_retention_s > 0:
            dropped = self.ledger.prune(now - self.config.ledger_retention_s)
            self.stats.incr("billing", "ledger_rows_pruned", dropped)
        return removed

    def tick(self) -> None:
        self.settle()
        self.prune()

    # -- webhooks --------------------------------------------------------------------------
    def callback_signer(self) -> Endpoint | None:
        """Per-request callbacks are signed with the team's oldest active endpoint's secret."""
        active = self.endpoints.active()
        return active[0] if active else None

    def retry_delay(self, delivery: Delivery) -> float:
        if delivery.endpoint_id is None:
            return self.config.callback_interval_s
        return self.config.endpoint_retry_base_s * 2.0 ** (delivery.attempt - 1)

    def record_attempt(self, delivery: Delivery, ok: bool) -> None:
        if ok and delivery.event_id is not None:
            # What the receiver acknowledged: it promised to keep every one of these.
            self.acknowledged.add(delivery.event_id)
        endpoint = self.endpoints.get(delivery.endpoint_id) if delivery.endpoint_id else None
        if endpoint is None:
            return
        now = self.clock.now()
        if ok:
            endpoint.record_success(now)
        elif endpoint.record_failure(now):
            self.stats.incr("deliveries", "endpoints_disabled")
            self.events.emit("webhook.endpoint_disabled", endpoint.to_json(), exclude=endpoint.id)
