"""Every setting the service reads from its environment, read once into a frozen object.

The object is passed to `create_app` and the CLI commands; nothing reads the environment later.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Settings", "SettingsError", "parse_duration"]

DEFAULT_BASE_URL = "https://api.aurous-labs.com"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


_LONGEST_DURATION_S = 100 * 365 * 86_400


def parse_duration(text: str) -> int:
    """Seconds in '90', '90s', '15m', '24h', '7d' or '2w'."""
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in _DURATION_UNITS else "s"
    number = value[:-1] if value[-1:] in _DURATION_UNITS else value
    if not number.isdigit():
        raise SettingsError(f"not a duration: {text!r} (use e.g. 90s, 15m, 24h, 7d)")
    seconds = int(number) * _DURATION_UNITS[unit]
    if seconds > _LONGEST_DURATION_S:  # no clock or column goes that far
        raise SettingsError(f"too long a duration: {text!r} (at most 100 years)")
    return seconds


MIN_ADMIN_TOKEN = 32


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    media_url: str = ""
    aurous_api_key: str | None = None
    aurous_base_url: str = DEFAULT_BASE_URL
    aurous_version: str | None = None
    bootstrap_secrets: tuple[str, ...] = ()
    admin_token: str | None = None
    master_key: str | None = None
    signature_tolerance_s: int = 300
    max_body_bytes: int = 10 * 1024 * 1024
    output_ttl_s: int = 86400
    poll_budget_per_min: int = 300
    tick_s: float = 5.0
    sweep_interval_s: float = 60.0
    archive_concurrency: int = 4
    max_output_bytes: int = 8 << 30
    lease_s: int = 60
    create_repair_after_s: int = 120
    download_hosts: tuple[str, ...] = ()
    log_format: str = "text"
    public_url: str | None = None  # how the customer's app reaches this service (links)
    link_ttl_s: int = 3600
    destination_disable_after_s: int = 5 * 86400
    event_retention_days: int = 30
    relay_retry_scale: float = 1.0  # shrinks the push retry schedule (tests, demos)
    session_ttl_s: int = 12 * 3600  # a dashboard sign-in lasts this long
    # None: `serve` makes it on unless it listens on loopback; in-process, Secure over HTTPS
    cookie_secure: bool | None = None
    max_connections: int = 2048  # open HTTP connections; more are refused with 503
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0  # to finish sending the request line and headers
    body_timeout_s: float = 30.0  # to finish sending the body, once the headers are in
    keepalive_s: int = 5  # an idle keep-alive connection is closed after this
    body_buffer_bytes: int = 32 * 1024 * 1024  # what bodies may hold together beyond 64 KiB each
    background: bool = field(default=True)

    def __post_init__(self) -> None:
        if not self.database_url:
            db_path = (self.data_dir / "receiver.db").resolve()
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{db_path}")
        if not self.media_url:
            object.__setattr__(self, "media_url", (self.data_dir / "media").resolve().as_uri())
        if self.log_format not in ("text", "json"):
            raise SettingsError("RECEIVER_LOG_FORMAT must be 'text' or 'json'")
        if self.admin_token is not None and len(self.admin_token) < MIN_ADMIN_TOKEN:
            raise SettingsError(
                f"RECEIVER_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN} characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (var, convert) in _ENV_FIELDS.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = convert(raw.strip())
            except (ValueError, SettingsError) as exc:
                raise SettingsError(f"{var}={raw!r}: {exc}") from None
        return cls(**values)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _positive_int(raw: str, most: int = 10**9) -> int:
    value = int(raw)
    if value <= 0:
        raise SettingsError("must be a positive integer")
    if value > most:
        raise SettingsError(f"must be at most {most}")
    return value


def _positive_float(raw: str, most: float = 10.0**9) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise SettingsError("must be a positive number")
    if value > most:
        raise SettingsError(f"must be at most {most:g}")
    return value


def _at_most(most: int) -> Callable[[str], int]:
    return lambda raw: _positive_int(raw, most)


def _float_at_most(most: float) -> Callable[[str], float]:
    return lambda raw: _positive_float(raw, most)


def _version(raw: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise SettingsError("must be a date, as Aurous versions are (e.g. 2026-05-15)")
    return raw


def _bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError("must be true or false")


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _base_url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise SettingsError("must start with http:// or https://")
    try:
        host = urlsplit(raw).hostname
    except ValueError:
        host = None
    if not host:
        raise SettingsError("must name a host")
    return raw.rstrip("/")


_YEAR_S = 365 * 86_400  # every duration fits a clock and a column
_WEEK_S = 7 * 86_400  # S3 signs a link for at most this long

_ENV_FIELDS: dict[str, tuple[str, Any]] = {
    "data_dir": ("RECEIVER_DATA_DIR", Path),
    "database_url": ("RECEIVER_DATABASE_URL", str),
    "media_url": ("RECEIVER_MEDIA_URL", str),
    "aurous_api_key": ("AUROUS_API_KEY", str),
    "aurous_base_url": ("AUROUS_BASE_URL", _base_url),
    "aurous_version": ("AUROUS_VERSION", _version),
    "bootstrap_secrets": ("AUROUS_WEBHOOK_SECRET", _csv),
    "admin_token": ("RECEIVER_ADMIN_TOKEN", str),
    "master_key": ("RECEIVER_MASTER_KEY", str),
    "signature_tolerance_s": ("RECEIVER_SIGNATURE_TOLERANCE_S", _at_most(_YEAR_S)),
    "max_body_bytes": ("RECEIVER_MAX_BODY_BYTES", _at_most(2**31 - 1)),
    "output_ttl_s": ("RECEIVER_OUTPUT_TTL_S", _at_most(_YEAR_S)),
    "poll_budget_per_min": ("RECEIVER_POLL_BUDGET_PER_MIN", _positive_int),
    "tick_s": ("RECEIVER_TICK_S", _float_at_most(_YEAR_S)),
    "sweep_interval_s": ("RECEIVER_SWEEP_INTERVAL_S", _float_at_most(_YEAR_S)),
    "archive_concurrency": ("RECEIVER_ARCHIVE_CONCURRENCY", _positive_int),
    "max_output_bytes": ("RECEIVER_MAX_OUTPUT_BYTES", _at_most(2**50)),
    "lease_s": ("RECEIVER_LEASE_S", _at_most(_YEAR_S)),
    "create_repair_after_s": ("RECEIVER_CREATE_REPAIR_AFTER_S", _at_most(_YEAR_S)),
    "download_hosts": ("RECEIVER_DOWNLOAD_HOSTS", _csv),
    "log_format": ("RECEIVER_LOG_FORMAT", str),
    "public_url": ("RECEIVER_PUBLIC_URL", _base_url),
    "link_ttl_s": ("RECEIVER_LINK_TTL_S", _at_most(_WEEK_S)),
    "destination_disable_after_s": ("RECEIVER_DESTINATION_DISABLE_AFTER_S", _at_most(_YEAR_S)),
    "event_retention_days": ("RECEIVER_EVENT_RETENTION_DAYS", _at_most(36_500)),
    "relay_retry_scale": ("RECEIVER_RELAY_RETRY_SCALE", _float_at_most(100)),
    "session_ttl_s": ("RECEIVER_SESSION_TTL_S", _at_most(_YEAR_S)),
    "cookie_secure": ("RECEIVER_COOKIE_SECURE", _bool),
    "max_connections": ("RECEIVER_MAX_CONNECTIONS", _positive_int),
    "max_header_bytes": ("RECEIVER_MAX_HEADER_BYTES", _positive_int),
    "header_timeout_s": ("RECEIVER_HEADER_TIMEOUT_S", _float_at_most(_YEAR_S)),
    "body_timeout_s": ("RECEIVER_BODY_TIMEOUT_S", _float_at_most(_YEAR_S)),
    "keepalive_s": ("RECEIVER_KEEPALIVE_S", _at_most(_YEAR_S)),
    "body_buffer_bytes": ("RECEIVER_BODY_BUFFER_BYTES", _positive_int),
}
