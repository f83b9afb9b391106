"""Request-level faults: GET storms and 5xx answers, and cut-short or throttled downloads."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.core import Simulator
from simulator.errors import ApiError

__all__ = ["DownloadPlan", "inject_get_faults", "plan_download"]

_SERVER_ERRORS = (
    (500, "internal_error", "An internal error occurred."),
    (502, "provider_unavailable", "The upstream provider is unavailable."),
    (503, "provider_unavailable", "The upstream provider is unavailable."),
    (504, "provider_timeout", "The upstream provider timed out."),
)


def inject_get_faults(sim: Simulator, path_class: str) -> None:
    """Count a GET by path class, then maybe answer it with a 429 storm or a 5xx."""
    sim.stats.incr("gets", path_class)
    rng, config = sim.fault_rng, sim.config
    storm, server_error, pick = rng.random(), rng.random(), rng.randrange(len(_SERVER_ERRORS))
    if storm < config.rate_limit_storm:
        sim.stats.incr("faults", "rate_limit_storm")
        raise ApiError(
            429,
            "too_many_requests",
            "Rate limit exceeded for get. Retry after 1s.",
            headers={"Retry-After": "1"},
        )
    if server_error < config.get_5xx_rate:
        sim.stats.incr("faults", "get_5xx")
        status, code, message = _SERVER_ERRORS[pick]
        raise ApiError(status, code, message, error_type="server_error")


@dataclass(frozen=True, slots=True)
class DownloadPlan:
    cut_after: int | None  # bytes to send before the connection drops, None = complete
    bytes_per_second: float  # 0 = unthrottled


def plan_download(sim: Simulator, length: int) -> DownloadPlan:
    rng, config = sim.fault_rng, sim.config
    truncate, fraction = rng.random(), rng.uniform(0.1, 0.9)
    cut_after = None
    if length > 0 and truncate < config.truncate_rate:
        sim.stats.incr("faults", "truncate")
        cut_after = int(length * fraction)
    if config.slow_download > 0:
        sim.stats.incr("faults", "slow_download")
    return DownloadPlan(cut_after, config.slow_download)
