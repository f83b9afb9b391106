"""Every knob of the simulator in one frozen object; the runtime copy is swapped, never mutated."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RUNTIME_KNOBS", "SimulatorConfig", "apply_overrides"]

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    api_key: str = "sim_key"
    seed: int = 0
    time_scale: float = 1.0
    public_url: str | None = None
    api_version: str = "2026-05-15"

    # Lifecycle (simulated seconds); shares of outcomes are drawn per job from the seed.
    image_duration_min_s: float = 10.0
    image_duration_max_s: float = 30.0
    video_duration_min_s: float = 30.0
    video_duration_max_s: float = 120.0
    queue_delay_max_s: float = 3.0
    failed_rate: float = 0.0
    moderation_rate: float = 0.0
    expired_rate: float = 0.0
    extended_statuses: bool = False

    # Outputs.
    output_size: int = 64 * KIB
    video_size: int = 1 * MIB
    output_ttl_s: float = 86400.0
    prune_margin_s: float = 3600.0
    redirect_outputs: bool = False
    video_output_urls: bool = False

    # Webhooks.
    webhook_url: str | None = None
    webhook_secret: str | None = None
    rotation_grace_s: float = 86400.0
    dual_sign: bool = True
    sign_callbacks: bool = True
    webhook_timeout_s: float = 10.0
    endpoint_retry_base_s: float = 5.0
    endpoint_max_attempts: int = 8
    callback_attempts: int = 3
    callback_interval_s: float = 2.0

    # Billing.
    start_balance: float = 1_000_000.0
    balance_low_threshold: float = 100.0
    ledger_retention_s: float = 0.0  # 0 = keep every ledger row forever

    # Limits and latency.
    rate_limits: bool = True
    rate_limit_multiplier: float = 1.0
    create_latency_s: float = 0.0
    # The job exists at once, but the 201 comes this much later: a client that dies in
    # between has been accepted without knowing it (crash tests for create repair).
    create_reply_delay_s: float = 0.0

    # Faults (rates are probabilities 0..1).
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    bad_signature_rate: float = 0.0
    get_5xx_rate: float = 0.0
    rate_limit_storm: float = 0.0
    truncate_rate: float = 0.0
    slow_download: float = 0.0  # bytes per real second, 0 = unthrottled
    bill_failed_rate: float = 0.0
    skip_release_rate: float = 0.0
    overcharge_rate: float = 0.0

    def __post_init__(self) -> None:
        _check(self)


_RATE_FIELDS = frozenset(
    {
        "failed_rate",
        "moderation_rate",
        "expired_rate",
        "drop_rate",
        "duplicate_rate",
        "reorder_rate",
        "bad_signature_rate",
        "get_5xx_rate",
        "rate_limit_storm",
        "truncate_rate",
        "bill_failed_rate",
        "skip_release_rate",
        "overcharge_rate",
    }
)
_POSITIVE_FIELDS = frozenset(
    {"time_scale", "output_size", "video_size", "endpoint_max_attempts", "callback_attempts"}
)
_FIXED_AT_START = frozenset({"api_key", "seed", "webhook_url", "webhook_secret"})

RUNTIME_KNOBS = frozenset(
    f.name for f in dataclasses.fields(SimulatorConfig) if f.name not in _FIXED_AT_START
)


def _check(config: SimulatorConfig) -> None:
    for name in _RATE_FIELDS:
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    for name in _POSITIVE_FIELDS:
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive")
    if config.failed_rate + config.moderation_rate + config.expired_rate > 1.0:
        raise ValueError("failed_rate + moderation_rate + expired_rate must not exceed 1")
    if config.image_duration_min_s > config.image_duration_max_s:
        raise ValueError("image_duration_min_s must not exceed image_duration_max_s")
    if config.video_duration_min_s > config.video_duration_max_s:
        raise ValueError("video_duration_min_s must not exceed video_duration_max_s")
    for name in (
        "output_ttl_s",
        "rotation_grace_s",
        "slow_download",
        "create_latency_s",
        "create_reply_delay_s",
        "ledger_retention_s",
        "prune_margin_s",
    ):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must not be negative")


def _coerce(name: str, current: Any, value: Any) -> Any:
    """Type-check one override against the field's current value (JSON has no ints vs floats)."""
    if isinstance(current, bool) or name in {"dual_sign", "sign_callbacks"}:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a boolean")
        return value
    if isinstance(current, int) and not isinstance(current, bool):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError(f"{name} must be an integer")
        return int(value)
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number")
        return float(value)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string or null")
    return value


def apply_overrides(config: SimulatorConfig, overrides: Mapping[str, Any]) -> SimulatorConfig:
    """A new config with `overrides` applied; ValueError names the first bad knob."""
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in RUNTIME_KNOBS:
            raise ValueError(f"unknown or start-only knob: {name}")
        changes[name] = _coerce(name, getattr(config, name), value)
    return dataclasses.replace(config, **changes)
