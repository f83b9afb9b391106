from __future__ import annotations

import pytest

from simulator.ratelimit import BUCKETS, RateLimiter, TokenBucket


def test_documented_buckets() -> None:
    assert BUCKETS["images_post"] == (120, 60)
    assert BUCKETS["get"] == (1200, 600)
    assert BUCKETS["webhook_endpoints_post"] == (10, 10)
    assert BUCKETS["estimate_post"] == (240, 120)


def test_burst_then_empty_then_refill() -> None:
    bucket = TokenBucket(capacity=3, per_second=0.5, now=0.0)
    decisions = [bucket.take(0.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].retry_in_s == pytest.approx(2.0)
    assert decisions[3].full_in_s == pytest.approx(6.0)
    assert not bucket.take(1.9).allowed
    assert bucket.take(2.0).allowed
    assert bucket.take(100.0).remaining == 2  # capped at capacity


def test_limiter_keeps_classes_and_teams_apart() -> None:
    limiter = RateLimiter()
    for _ in range(10):
        assert limiter.check("team_a", "webhook_endpoints_post", 0.0).allowed
    assert not limiter.check("team_a", "webhook_endpoints_post", 0.0).allowed
    assert limiter.check("team_b", "webhook_endpoints_post", 0.0).allowed
    assert limiter.check("team_a", "get", 0.0).allowed
    assert limiter.check("team_a", "webhook_endpoints_post", 6.0).allowed  # 10/min


def test_unenforced_still_reports() -> None:
    limiter = RateLimiter(multiplier=0.1)
    decisions = [limiter.check("t", "webhook_endpoints_post", 0.0, enforce=False) for _ in range(5)]
    assert all(d.allowed for d in decisions) and decisions[0].limit == 1
