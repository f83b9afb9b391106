"""Verify `Aurous-Webhook-Signature` before anything parses the body (stripe-python's shape).

Header: `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`; signed bytes are `t` + "." + the raw body;
HMAC-SHA256 keyed with the whole secret string (`whsec_` included) as UTF-8, lowercase hex.
Unknown schemes (`v0=`, …) are ignored. No web framework is imported here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Keyring",
    "KeyringEntry",
    "Match",
    "RejectReason",
    "SignatureRejected",
    "parse_header",
    "sign",
    "verify",
]

HEADER = "Aurous-Webhook-Signature"


class RejectReason(StrEnum):
    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE = "malformed_signature"
    NO_ACTIVE_SECRET = "no_active_secret"
    NO_MATCHING_SIGNATURE = "no_matching_signature"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    BODY_TOO_LARGE = "body_too_large"

    @property
    def http_status(self) -> int:
        return _STATUS.get(self, 401)


_STATUS = {RejectReason.MALFORMED_SIGNATURE: 400, RejectReason.BODY_TOO_LARGE: 413}


class SignatureRejected(Exception):
    """The one exception for every reason a delivery is not trusted."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class KeyringEntry:
    secret_id: int | None
    secret: bytes
    expires_at: float | None = None  # unix seconds; None = no expiry

    def active_at(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class Keyring:
    entries: tuple[KeyringEntry, ...] = ()

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Keyring:
        return cls(tuple(KeyringEntry(None, s.encode()) for s in secrets))

    def active(self, now: float) -> tuple[KeyringEntry, ...]:
        return tuple(entry for entry in self.entries if entry.active_at(now))


@dataclass(frozen=True, slots=True)
class Match:
    secret_id: int | None
    timestamp: int


@dataclass(frozen=True, slots=True)
class ParsedHeader:
    timestamp: int
    signatures: tuple[bytes, ...]


def parse_header(header: str | None) -> ParsedHeader:
    if header is None or not header.strip():
        raise SignatureRejected(RejectReason.MISSING_SIGNATURE, f"{HEADER} header is missing")
    timestamp: str | None = None
    signatures: list[bytes] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise _malformed(f"element {part.strip()[:32]!r} is not key=value")
        if key == "t":
            if timestamp is not None:
                raise _malformed("more than one t=")
            timestamp = value
        elif key == "v1":
            signatures.append(value.strip().lower().encode("utf-8", "replace"))
    if timestamp is None or not (timestamp.isascii() and timestamp.isdigit()):
        raise _malformed("t= must be unix seconds")
    if len(timestamp) > 12:  # (int() of thousands of digits is slow, then refused)
        raise _malformed("t= is not a plausible unix time")
    if not signatures:
        raise _malformed("no v1= signature")
    return ParsedHeader(int(timestamp), tuple(signatures))


def verify(
    body: bytes, header: str | None, keyring: Keyring, *, now: float, tolerance_s: int
) -> Match:
    """The matching secret and timestamp, or `SignatureRejected` with a typed reason."""
    parsed = parse_header(header)
    candidates = keyring.active(now)
    if not candidates:
        raise SignatureRejected(RejectReason.NO_ACTIVE_SECRET, "no webhook secret is configured")
    signed = str(parsed.timestamp).encode() + b"." + body
    match = _first_match(signed, parsed.signatures, candidates)
    if match is None:
        raise SignatureRejected(
            RejectReason.NO_MATCHING_SIGNATURE, "no signature matches any active secret"
        )
    age = now - parsed.timestamp
    if age > tolerance_s:
        raise SignatureRejected(RejectReason.TIMESTAMP_TOO_OLD, "timestamp outside tolerance")
    if -age > tolerance_s:
        raise SignatureRejected(RejectReason.TIMESTAMP_IN_FUTURE, "timestamp in the future")
    return Match(match.secret_id, parsed.timestamp)


def _first_match(
    signed: bytes, signatures: Sequence[bytes], candidates: Sequence[KeyringEntry]
) -> KeyringEntry | None:
    found: KeyringEntry | None = None
    for entry in candidates:
        expected = hmac.new(entry.secret, signed, hashlib.sha256).hexdigest().encode()
        # Compare against every candidate without an early exit, so timing says nothing.
        for signature in signatures:
            if hmac.compare_digest(expected, signature) and found is None:
                found = entry
    return found


def sign(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """A header value as Aurous would send it: one v1= per secret (tests and tools)."""
    signed = str(timestamp).encode() + b"." + body
    parts = [f"t={timestamp}"]
    parts += ["v1=" + hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join(parts)


def _malformed(detail: str) -> SignatureRejected:
    return SignatureRejected(RejectReason.MALFORMED_SIGNATURE, f"malformed {HEADER}: {detail}")
