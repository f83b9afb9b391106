"""Webhook endpoints (§1.1-1.3), their secrets and rotation, and the signature header (§1.5)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from simulator.clock import iso
from simulator.ids import new_id

__all__ = [
    "EVENT_TYPES",
    "Endpoint",
    "EndpointStore",
    "new_secret",
    "secret_preview",
    "sign",
    "signature_header",
]

EVENT_TYPES = (
    "image.completed",
    "image.failed",
    "image.cancelled",
    "video.completed",
    "video.failed",
    "video.cancelled",
    "usage.balance_low",
    "webhook.endpoint_disabled",
)
DISABLE_AFTER_FAILURES = 20
DISABLE_SILENCE_S = 86400.0


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


def secret_preview(secret: str) -> str:
    body = secret.removeprefix("whsec_")
    return f"whsec_{body[:3]}...{body[-4:]}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of f"{t}." + raw body, keyed by the whole secret
    (the scheme the README's "The webhook endpoint" describes)."""
    payload = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def signature_header(timestamp: int, signing_secrets: list[str], body: bytes) -> str:
    parts = [f"t={timestamp}"] + [f"v1={sign(s, timestamp, body)}" for s in signing_secrets]
    return ",".join(parts)


@dataclass(slots=True)
class _Secret:
    value: str
    expires_at: float | None = None  # None while it is the active secret


@dataclass(slots=True, eq=False)
class Endpoint:
    id: str
    url: str
    events: list[str]
    description: str | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    secrets: list[_Secret] = field(default_factory=list)
    is_active: bool = True
    consecutive_failures: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None

    @property
    def active_secret(self) -> str:
        return self.secrets[0].value

    def to_json(self, *, reveal: bool = False) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "events": list(self.events),
            "secret_preview": secret_preview(self.active_secret),
            "is_active": self.is_active,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": iso(self.last_success_at),
            "last_failure_at": iso(self.last_failure_at),
            "metadata": dict(self.metadata),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "description": self.description,
            "secret": self.active_secret if reveal else None,
        }

    def rotate(self, now: float, grace_s: float) -> str:
        """New active secret; the old one keeps a role until now + grace (0 = dropped now)."""
        old = self.secrets[0]
        old.expires_at = now + grace_s
        self.secrets.insert(0, _Secret(new_secret()))
        self.secrets = [s for s in self.secrets if s.expires_at is None or s.expires_at > now]
        self.updated_at = now
        return self.active_secret

    def signing_secrets(self, now: float, *, dual_sign: bool) -> list[str]:
        """Dual: new + every old secret still in grace. Single: the newest old secret keeps
        signing alone until its grace ends (so grace still means something), then the new one."""
        in_grace = [s.value for s in self.secrets[1:] if s.expires_at and s.expires_at > now]
        if dual_sign:
            return [self.active_secret, *in_grace]
        return in_grace[:1] or [self.active_secret]

    def subscribes(self, event_type: str) -> bool:
        return event_type in self.events

    def record_success(self, now: float) -> None:
        self.consecutive_failures = 0
        self.last_success_at = now

    def record_failure(self, now: float) -> bool:
        """Count a failed attempt; True when this failure auto-disables the endpoint."""
        self.consecutive_failures += 1
        self.last_failure_at = now
        silent = self.last_success_at is None or now - self.last_success_at >= DISABLE_SILENCE_S
        if self.is_active and self.consecutive_failures >= DISABLE_AFTER_FAILURES and silent:
            self.is_active = False
            self.updated_at = now
            return True
        return False


class EndpointStore:
    def __init__(self) -> None:
        self._by_id: dict[str, Endpoint] = {}

    def create(
        self,
        url: str,
        events: list[str],
        now: float,
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        secret: str | None = None,
    ) -> Endpoint:
        expanded = list(EVENT_TYPES) if "*" in events else list(dict.fromkeys(events))
        endpoint = Endpoint(
            id=new_id("we_", now),
            url=url,
            events=expanded,
            description=description,
            metadata=dict(metadata or {}),
            created_at=now,
            updated_at=now,
            secrets=[_Secret(secret or new_secret())],
        )
        self._by_id[endpoint.id] = endpoint
        return endpoint

    def get(self, endpoint_id: str) -> Endpoint | None:
        return self._by_id.get(endpoint_id)

    def delete(self, endpoint_id: str) -> bool:
        return self._by_id.pop(endpoint_id, None) is not None

    def active(self) -> list[Endpoint]:
        return [e for e in self._by_id.values() if e.is_active]

    def all(self) -> list[Endpoint]:
        return list(self._by_id.values())
