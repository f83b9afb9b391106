"""Aurous's GenerationResponse, decoded with msgspec and tolerant of field types that drift
(numbers as strings, odd dates), and the small facts derived from it (kind, times, credits)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import msgspec

from storage.states import JobKind

__all__ = [
    "JOB_ID_PATTERN",
    "Cost",
    "GenerationError",
    "GenerationResponse",
    "decode_generation",
    "decode_generation_list",
    "generation_kind",
    "kind_of_id",
    "looks_like_job_id",
    "parse_timestamp",
    "to_micros",
]

MAX_ID_LENGTH = 200
JOB_ID_PATTERN = re.compile(r"^(img|vid)_[A-Za-z0-9]{1,190}$")
_KIND_BY_PREFIX = {"img_": JobKind.IMAGE, "vid_": JobKind.VIDEO}


class GenerationError(ValueError):
    """Aurous sent something that is not a GenerationResponse."""


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
        if generation_kind(self) == JobKind.VIDEO and self.output_video_url:
            return [self.output_video_url]
        return [url for url in self.output_urls or [] if url]

    def model(self) -> str | None:
        if self.loras:
            first = self.loras[0]
            return first.id or first.name
        return self.bundle_name or self.inference_type


class _GenerationList(msgspec.Struct):
    data: list[GenerationResponse]
    has_more: bool = False
    next_cursor: str | None = None


_generation_decoder = msgspec.json.Decoder(GenerationResponse, strict=False)
_list_decoder = msgspec.json.Decoder(_GenerationList, strict=False)


def decode_generation(body: bytes) -> GenerationResponse:
    try:
        generation = _generation_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise GenerationError(f"not a GenerationResponse: {exc}") from None
    _check_generation(generation)
    return generation


def decode_generation_list(body: bytes) -> tuple[list[GenerationResponse], bool, str | None]:
    try:
        page = _list_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise GenerationError(f"not a generation list: {exc}") from None
    for generation in page.data:
        _check_generation(generation)
    return page.data, page.has_more, page.next_cursor


def _check_generation(generation: GenerationResponse) -> None:
    if not generation.id or len(generation.id) > MAX_ID_LENGTH or not generation.id.isprintable():
        raise GenerationError("generation id is empty, too long or not printable")
    if not generation.status or len(generation.status) > 64:
        raise GenerationError("generation status is empty or too long")


def looks_like_job_id(value: str) -> bool:
    return value.startswith(tuple(_KIND_BY_PREFIX))


def kind_of_id(job_id: str) -> JobKind:
    return _KIND_BY_PREFIX.get(job_id[:4], JobKind.UNKNOWN)


def generation_kind(generation: GenerationResponse) -> JobKind:
    kind = kind_of_id(generation.id)
    if kind is JobKind.UNKNOWN and generation.media_type in (JobKind.IMAGE, JobKind.VIDEO):
        return JobKind(generation.media_type)
    return kind


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
