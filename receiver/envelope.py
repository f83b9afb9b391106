"""Decode webhook envelopes and GenerationResponse objects (msgspec), tolerant of both
documented envelope shapes and of field types that drift (numbers as strings, odd dates)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import msgspec

__all__ = [
    "Cost",
    "Envelope",
    "EnvelopeError",
    "GenerationResponse",
    "decode_envelope",
    "decode_generation",
    "decode_generation_list",
    "generation_kind",
    "parse_timestamp",
    "to_micros",
]

GENERATION_EVENT_PREFIXES = ("image.", "video.", "generation.")
_MAX_ID_LENGTH = 200


class EnvelopeError(ValueError):
    """The body was genuinely signed but cannot be understood; it is quarantined."""


class Cost(msgspec.Struct):
    amount: float | None = None
    currency: str | None = None


class Lora(msgspec.Struct):
    id: str | None = None
    name: str | None = None


class GenerationResponse(msgspec.Struct):
    id: str
    status: str
    object: str | None = None
    media_type: str | None = None
    created_at: str | float | None = None
    completed_at: str | float | None = None
    output_urls: list[str] | None = None
    output_video_url: str | None = None
    error_message: str | None = None
    cost: Cost | None = None
    loras: list[Lora] | None = None
    bundle_name: str | None = None
    inference_type: str | None = None

    def output_sources(self) -> list[str]:
        """Where the bytes are: the video URL when present, else the output URL list."""
        if generation_kind(self) == "video" and self.output_video_url:
            return [self.output_video_url]
        return [url for url in self.output_urls or [] if url]

    def model(self) -> str | None:
        if self.loras:
            first = self.loras[0]
            return first.id or first.name
        return self.bundle_name or self.inference_type


class _Envelope(msgspec.Struct):
    id: str | None = None
    type: str | None = None
    event: str | None = None
    synthetic: bool = False
    data: msgspec.Raw = msgspec.Raw()


class _GenerationList(msgspec.Struct):
    data: list[GenerationResponse]
    has_more: bool = False
    next_cursor: str | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope, strict=False)
_generation_decoder = msgspec.json.Decoder(GenerationResponse, strict=False)
_list_decoder = msgspec.json.Decoder(_GenerationList, strict=False)


@dataclass(frozen=True, slots=True)
class Envelope:
    event_key: str  # the evt_ id, or sha256 of the body for id-less per-request callbacks
    event_type: str
    synthetic: bool
    generation: GenerationResponse | None  # None for events that are not about a job


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
    generation = None
    if event_type.startswith(GENERATION_EVENT_PREFIXES):
        if bytes(raw.data) in (b"", b"null"):
            raise EnvelopeError(f"{event_type} event without data")
        generation = decode_generation(bytes(raw.data))
    key = raw.id if raw.id and len(raw.id) <= _MAX_ID_LENGTH else body_key(body)
    return Envelope(key, event_type[:100], raw.synthetic, generation)


def decode_generation(body: bytes) -> GenerationResponse:
    try:
        generation = _generation_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise EnvelopeError(f"not a GenerationResponse: {exc}") from None
    _check_generation(generation)
    return generation


def decode_generation_list(body: bytes) -> tuple[list[GenerationResponse], bool, str | None]:
    try:
        page = _list_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise EnvelopeError(f"not a generation list: {exc}") from None
    for generation in page.data:
        _check_generation(generation)
    return page.data, page.has_more, page.next_cursor


def _check_generation(generation: GenerationResponse) -> None:
    if not generation.id or len(generation.id) > _MAX_ID_LENGTH or not generation.id.isprintable():
        raise EnvelopeError("generation id is empty, too long or not printable")
    if not generation.status or len(generation.status) > 64:
        raise EnvelopeError("generation status is empty or too long")


def generation_kind(generation: GenerationResponse) -> str:
    if generation.id.startswith("vid_"):
        return "video"
    if generation.id.startswith("img_"):
        return "image"
    if generation.media_type in ("image", "video"):
        return generation.media_type
    return "unknown"


def parse_timestamp(value: str | float | None) -> datetime | None:
    """ISO-8601 (with `Z`) or unix seconds/milliseconds; anything else is unknown (None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def to_micros(amount: float | None) -> int | None:
    """Credits as integer micro-credits, so sums are exact."""
    if amount is None:
        return None
    try:
        return int((Decimal(str(amount)) * 1_000_000).to_integral_value())
    except (InvalidOperation, ValueError, OverflowError):
        return None
