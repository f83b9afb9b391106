"""The simulated clock: wall time that runs `time_scale` times faster and can jump forward.

Everything the API shows (created_at, completed_at, output expiry, retry schedules, rate-limit
refill) follows this clock. Only things a real peer measures with its own watch (signature `t`,
HTTP timeouts, Retry-After) stay in wall time; `to_real` converts a simulated span for them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["SimClock", "iso"]


class SimClock:
    def __init__(self, time_scale: float = 1.0, start: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._scale = time_scale
        self._base_sim = time.time() if start is None else start
        self._base_real = time.monotonic()

    @property
    def scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return self._base_sim + (time.monotonic() - self._base_real) * self._scale

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self._base_sim += seconds
        return self.now()

    def set_scale(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        # Rebase first so the change does not move "now" backwards or forwards.
        self._base_sim = self.now()
        self._base_real = time.monotonic()
        self._scale = time_scale

    def to_real(self, sim_seconds: float) -> float:
        return max(0.0, sim_seconds) / self._scale

    @staticmethod
    def wall() -> float:
        return time.time()


def iso(unix_seconds: float | None) -> str | None:
    if unix_seconds is None:
        return None
    moment = datetime.fromtimestamp(int(unix_seconds), tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
