"""Idempotency-Key handling (§6): 24 h window, canonical-JSON comparison, in-flight conflicts.

Only 2xx results are remembered; an original that failed is evaluated again on retry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from simulator.errors import ApiError, validation_error

__all__ = ["WINDOW_S", "IdempotencyStore", "Stored", "fingerprint"]

WINDOW_S = 86400.0


def fingerprint(raw: bytes) -> str:
    """Key order and whitespace do not matter for JSON bodies; other bodies compare as bytes."""
    try:
        canonical = json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:
        canonical = b"raw:" + raw
    return hashlib.sha256(canonical).hexdigest()


@dataclass(slots=True)
class Stored:
    route: str
    fingerprint: str
    created_at: float
    running: bool = True
    status: int = 0
    body: bytes = b""


class IdempotencyStore:
    def __init__(self) -> None:
        self._entries: dict[str, Stored] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def validate_key(key: str) -> None:
        if not 1 <= len(key) <= 256:
            raise validation_error(
                "invalid_format", "Idempotency-Key", "Idempotency-Key must be 1 to 256 characters."
            )

    def begin(self, key: str, route: str, body_fingerprint: str, now: float) -> Stored | None:
        """A finished entry to replay, or None after reserving the key for this request."""
        entry = self._entries.get(key)
        if entry is not None and now - entry.created_at >= WINDOW_S:
            entry = None
        if entry is None:
            self._entries[key] = Stored(route, body_fingerprint, now)
            return None
        if entry.route != route or entry.fingerprint != body_fingerprint:
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "This Idempotency-Key was used with a different request body or route.",
            )
        if entry.running:
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed.",
            )
        return entry

    def finish(self, key: str, status: int, body: bytes) -> None:
        entry = self._entries[key]
        entry.running, entry.status, entry.body = False, status, body

    def abandon(self, key: str) -> None:
        self._entries.pop(key, None)

    def purge(self, now: float) -> int:
        stale = [
            k for k, e in self._entries.items() if not e.running and now - e.created_at >= WINDOW_S
        ]
        for key in stale:
            del self._entries[key]
        return len(stale)
