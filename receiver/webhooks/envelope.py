"""Decode webhook envelopes, both documented shapes: endpoint deliveries
`{"id": "evt_…", "type": …, "data": …}` and per-request callbacks `{"event": …, "data": …}`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

from receiver.generation import (
    MAX_ID_LENGTH,
    GenerationError,
    GenerationResponse,
    decode_generation,
)

__all__ = ["Envelope", "EnvelopeError", "body_key", "decode_envelope"]

GENERATION_EVENT_PREFIXES = ("image.", "video.", "generation.")


class EnvelopeError(ValueError):
    """The body was genuinely signed but cannot be understood; it is quarantined."""


class _Envelope(msgspec.Struct):
    id: str | None = None
    type: str | None = None
    event: str | None = None
    synthetic: bool = False
    data: msgspec.Raw = msgspec.Raw()


_envelope_decoder = msgspec.json.Decoder(_Envelope, strict=False)


@dataclass(frozen=True, slots=True)
class Envelope:
    event_key: str  # the evt_ id, or sha256 of the body for id-less per-request callbacks
    event_type: str
    synthetic: bool
    generation: GenerationResponse | None  # None for events that are not about a job
    data: bytes = b"null"  # the envelope's data as sent (JSON)


def body_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def decode_envelope(body: bytes) -> Envelope:
    try:
        raw = _envelope_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise EnvelopeError(f"not a webhook envelope: {exc}") from None
    event_type = raw.type or raw.event
    if not event_type:
        raise EnvelopeError("envelope names no event type (neither 'type' nor 'event')")
    if not event_type.isprintable():
        raise EnvelopeError("the event type is not printable text")
    generation = None
    if event_type.startswith(GENERATION_EVENT_PREFIXES):
        if bytes(raw.data) in (b"", b"null"):
            raise EnvelopeError(f"{event_type} event without data")
        try:
            generation = decode_generation(bytes(raw.data))
        except GenerationError as exc:
            raise EnvelopeError(str(exc)) from None
    usable = raw.id and len(raw.id) <= MAX_ID_LENGTH and raw.id.isprintable()
    key = raw.id if raw.id and usable else body_key(body)
    return Envelope(key, event_type[:100], raw.synthetic, generation, bytes(raw.data) or b"null")
