"""The ticker: APScheduler 3 in the app's lifespan, one per replica. It only decides *when*
background work looks for due items; the database decides who does which item (leases)."""

from __future__ import annotations

import asyncio
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
        self._in_flight: set[asyncio.Task[object]] = set()
        self._stopping = False

    def every(self, seconds: float, name: str, work: Callable[[], Awaitable[object]]) -> None:
        async def tick() -> None:
            if self._stopping:  # submitted just before stop(): nothing to start any more
                return
            task = asyncio.current_task()
            assert task is not None
            self._in_flight.add(task)
            try:
                await work()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                # stop() cancelled this run on purpose. Ending normally keeps APScheduler from
                # logging the cancellation as a failed job; what was cut short is safe to drop
                # (leases expire, every unit of work is idempotent) and runs again on start.
            except Exception:
                log.exception("background work %s failed; it runs again next tick", name)
            finally:
                self._in_flight.discard(task)

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

    async def stop(self) -> None:
        """No new runs, and the runs under way cancelled and awaited, so that no background
        work outlives the clients and the database the runtime closes right after.

        APScheduler's own `shutdown()` cannot do this: on asyncio it only takes effect on the
        next turn of the loop, and then cancels the running jobs without awaiting them and logs
        each cancellation as a failed job, with its traceback."""
        if not self._scheduler.running:
            return
        self._stopping = True
        self._scheduler.pause()
        for task in self._in_flight:
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        await asyncio.sleep(0)  # a run submitted but not yet begun begins, sees _stopping, ends
        self._scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # the shutdown itself is scheduled on the loop: let it happen
