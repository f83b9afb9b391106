"""Typed readers for JSON request fields that raise Aurous validation errors with `param`."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from simulator.errors import ApiError, validation_error

__all__ = [
    "is_loopback_url",
    "read_bool",
    "read_callback_url",
    "read_int",
    "read_number",
    "read_string",
    "require_object",
]

_MISSING = object()


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_format", "Request body must be a JSON object.")
    return body


def read_string(
    body: dict[str, Any], name: str, *, required: bool = False, max_len: int = 4000
) -> str | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise validation_error("missing_field", name, f"'{name}' is required.")
        return None
    if not isinstance(value, str):
        raise validation_error("invalid_format", name, f"'{name}' must be a string.")
    if not 1 <= len(value) <= max_len:
        raise validation_error(
            "value_out_of_range", name, f"'{name}' must be 1 to {max_len} characters."
        )
    if not value.strip():
        raise validation_error("invalid_format", name, f"'{name}' must not be blank.")
    return value


def read_int(
    body: dict[str, Any], name: str, low: int, high: int, default: int | None
) -> int | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation_error("invalid_format", name, f"'{name}' must be an integer.")
    if not low <= value <= high:
        raise validation_error(
            "value_out_of_range", name, f"'{name}' must be between {low} and {high}."
        )
    return value


def read_number(
    body: dict[str, Any], name: str, low: float, high: float, default: float | None
) -> float | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise validation_error("invalid_format", name, f"'{name}' must be a number.")
    if not low <= value <= high:
        raise validation_error(
            "value_out_of_range", name, f"'{name}' must be between {low} and {high}."
        )
    return value


def read_bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if not isinstance(value, bool):
        raise validation_error("invalid_format", name, f"'{name}' must be a boolean.")
    return value


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_callback_url(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    """HTTPS only, as documented; plain http is tolerated for loopback receivers in tests."""
    url = read_string(body, name, required=required, max_len=2048)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_url(url):
        return url
    raise validation_error("invalid_format", name, f"'{name}' must be an https:// URL.")
