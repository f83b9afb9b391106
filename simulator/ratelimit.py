"""Per-team token buckets, one per endpoint class (§5), refilled by the simulated clock."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BUCKETS", "Decision", "RateLimiter", "TokenBucket"]

# class -> (burst, sustained refill per minute)
BUCKETS: dict[str, tuple[int, int]] = {
    "images_post": (120, 60),
    "get": (1200, 600),
    "webhook_endpoints_post": (10, 10),
    "estimate_post": (240, 120),
}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    full_in_s: float  # simulated seconds until the bucket is full again
    retry_in_s: float  # simulated seconds until one token is available (0 if allowed)


class TokenBucket:
    def __init__(self, capacity: float, per_second: float, now: float) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.per_second)
        self.updated = max(self.updated, now)

    def take(self, now: float, *, consume: bool = True) -> Decision:
        self._refill(now)
        allowed = self.tokens >= 1.0
        if allowed and consume:
            self.tokens -= 1.0
        retry = 0.0 if allowed else (1.0 - self.tokens) / self.per_second
        return Decision(
            allowed=allowed,
            limit=math.floor(self.capacity),
            remaining=math.floor(self.tokens),
            full_in_s=(self.capacity - self.tokens) / self.per_second,
            retry_in_s=retry,
        )


class RateLimiter:
    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def check(self, team: str, bucket_class: str, now: float, *, enforce: bool = True) -> Decision:
        bucket = self._buckets.get((team, bucket_class))
        if bucket is None:
            burst, per_minute = BUCKETS[bucket_class]
            bucket = TokenBucket(burst * self.multiplier, per_minute * self.multiplier / 60.0, now)
            self._buckets[(team, bucket_class)] = bucket
        decision = bucket.take(now, consume=enforce)
        if not enforce and not decision.allowed:
            return Decision(True, decision.limit, 0, decision.full_in_s, 0.0)
        return decision

    def reset(self, multiplier: float) -> None:
        self.multiplier = multiplier
        self._buckets.clear()
