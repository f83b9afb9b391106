"""The ticker: APScheduler 3 in the app's lifespan, one per replica. It only decides *when*
background work looks for due items; the database decides who does which item (leases)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

__all__ = ["Ticker"]

log = logging.getLogger(__name__)
# "skipped: maximum number of running instances reached" is the design (one run at a time).
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


class Ticker:
    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)

    def every(self, seconds: float, name: str, work: Callable[[], Awaitable[object]]) -> None:
        async def tick() -> None:
            try:
                await work()
            except Exception:
                log.exception("background work %s failed; it runs again next tick", name)

        self._scheduler.add_job(
            tick,
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
