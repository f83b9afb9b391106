from __future__ import annotations

import time

import pytest

from simulator.clock import SimClock, iso


def test_scaled_clock_runs_faster() -> None:
    clock = SimClock(time_scale=100, start=1_000_000.0)
    time.sleep(0.05)
    elapsed = clock.now() - 1_000_000.0
    assert 4.5 <= elapsed <= 30


def test_advance_and_rescale_never_go_back() -> None:
    clock = SimClock(time_scale=1, start=0.0)
    before = clock.advance(3600)
    assert before >= 3600
    clock.set_scale(1000)
    assert clock.now() >= before
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="positive"):
        clock.set_scale(0)


def test_to_real_divides_by_scale() -> None:
    assert SimClock(time_scale=100).to_real(5) == pytest.approx(0.05)
    assert SimClock(time_scale=0.5).to_real(1) == pytest.approx(2)
    assert SimClock().to_real(-3) == 0


def test_iso() -> None:
    assert iso(1_777_777_777.9) == "2026-05-03T03:09:37Z"
    assert iso(None) is None
