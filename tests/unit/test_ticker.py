"""The ticker stops its background work in order: nothing left running, nothing logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from receiver.scheduler import Ticker


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_stop_cancels_and_awaits_the_runs_under_way_without_logging_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticker = Ticker()
    under_way: list[str] = []
    both_began = asyncio.Event()
    cleaned_up: list[str] = []

    def long_work(name: str) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            under_way.append(name)
            if len(under_way) == 2:
                both_began.set()
            try:
                await asyncio.sleep(3600)
            finally:
                cleaned_up.append(name)

        return work

    for name in ("archive", "sweep"):
        ticker.every(3600, name, long_work(name))
    ticker.start()
    await asyncio.wait_for(both_began.wait(), 10)
    await ticker.stop()
    assert sorted(cleaned_up) == ["archive", "sweep"]  # both awaited before stop() returned
    for _ in range(5):  # the old failure was logged on a later turn of the loop: wait for it
        await asyncio.sleep(0)
    assert errors(caplog) == []


async def test_failed_work_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    ticker = Ticker()
    attempts: list[int] = []
    second = asyncio.Event()

    async def failing_work() -> None:
        attempts.append(len(attempts))
        if len(attempts) >= 2:
            second.set()
        raise RuntimeError("upstream down")

    ticker.every(0.05, "polls", failing_work)
    ticker.start()
    await asyncio.wait_for(second.wait(), 10)
    await ticker.stop()
    assert any("background work polls failed" in message for message in errors(caplog))


async def test_stop_before_start_is_harmless() -> None:
    await Ticker().stop()
