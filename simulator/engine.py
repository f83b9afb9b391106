"""The background loop: settle finished jobs, prune, and run due webhook attempts.

It sleeps until the next thing is due on the simulated clock (converted to real seconds), or
until woken by a new delivery, a clock jump or a config change; attempts run as tasks so a slow
receiver never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx

from simulator.core import Simulator
from simulator.delivery import Delivery, attempt_delivery

__all__ = ["run_engine"]

log = logging.getLogger("simulator")
MAX_SLEEP_S = 0.25
MAX_CONCURRENT_ATTEMPTS = 64


class _Engine:
    def __init__(self, sim: Simulator, client: httpx.AsyncClient) -> None:
        self.sim = sim
        self.client = client
        self.tasks: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(MAX_CONCURRENT_ATTEMPTS)

    async def _attempt(self, delivery: Delivery) -> None:
        async with self.slots:
            await attempt_delivery(self.sim, self.client, delivery)

    def _start_due(self) -> None:
        for delivery in self.sim.deliveries.pop_due(self.sim.clock.now()):
            task = asyncio.create_task(self._attempt(delivery))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _sleep_for(self) -> float:
        now = self.sim.clock.now()
        upcoming = [
            t
            for t in (self.sim.deliveries.next_due(), self.sim.jobs.next_finish())
            if t is not None
        ]
        if not upcoming:
            return MAX_SLEEP_S
        return min(MAX_SLEEP_S, self.sim.clock.to_real(min(upcoming) - now))

    async def run(self) -> None:
        wake = self.sim.deliveries.wake
        while True:
            wake.clear()
            try:
                self.sim.tick()
                self._start_due()
            except Exception:  # a bug in one tick must not stop every later delivery
                log.exception("simulator background tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(0.001, self._sleep_for()))

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def run_engine(sim: Simulator) -> AsyncIterator[None]:
    # trust_env=False: deliveries go straight to the receiver, never through a proxy.
    sim.deliveries.wake = asyncio.Event()  # bound to this server's loop, even on a restart
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
        engine = _Engine(sim, client)
        loop_task = asyncio.create_task(engine.run())
        try:
            yield
        finally:
            loop_task.cancel()
            await asyncio.gather(loop_task, return_exceptions=True)
            await engine.stop()
