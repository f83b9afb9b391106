"""Aurous's GenerationResponse, decoded with msgspec and tolerant of field types that drift
(numbers as strings, odd dates), and the small facts derived from it (kind, times, credits)."""

from __future__ import annotations

import logging
import math
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
MAX_CREDITS = 1e9  # per job: far above any price, and its micro-credits sum safely in int64
MAX_OUTPUTS = 100  # per job: Aurous makes a handful; more is not an output list
_YEARS = range(1970, 3000)  # a date outside is not a date Aurous meant
JOB_ID_PATTERN = re.compile(r"^(img|vid)_[A-Za-z0-9]{1,190}$")
_KIND_BY_PREFIX = {"img_": JobKind.IMAGE, "vid_": JobKind.VIDEO}

log = logging.getLogger(__name__)


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
    data: list[msgspec.Raw]
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
    """The page's generations; one that cannot be stored is left out (and logged), so it
    never costs the others their update."""
    try:
        page = _list_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise GenerationError(f"not a generation list: {exc}") from None
    kept = []
    for raw in page.data:
        try:
            kept.append(decode_generation(bytes(raw)))
        except GenerationError as exc:
            log.warning("a generation in a list page was left out: %s", exc)
    return kept, page.has_more, page.next_cursor


def _check_generation(generation: GenerationResponse) -> None:
    """Refuse what storage cannot hold or what is not plausibly Aurous's; make free text
    storable (PostgreSQL text holds no NUL)."""
    if not generation.id or len(generation.id) > MAX_ID_LENGTH or not generation.id.isprintable():
        raise GenerationError("generation id is empty, too long or not printable")
    status = generation.status
    if not status or len(status) > 64 or not status.isprintable():
        raise GenerationError("generation status is empty, too long or not printable")
    amount = generation.cost.amount if generation.cost else None
    if amount is not None and not (math.isfinite(amount) and abs(amount) <= MAX_CREDITS):
        raise GenerationError(f"cost.amount {amount!r} of {generation.id} is not a price")
    if len(generation.output_urls or ()) > MAX_OUTPUTS:
        raise GenerationError(f"{generation.id} lists more than {MAX_OUTPUTS} outputs")
    _clean_text(generation)


def _clean_text(generation: GenerationResponse) -> None:
    for name in ("object", "media_type", "error_message", "bundle_name", "inference_type"):
        value = getattr(generation, name)
        if isinstance(value, str) and "\x00" in value:
            setattr(generation, name, value.replace("\x00", "\ufffd"))
    if generation.cost and generation.cost.currency and "\x00" in generation.cost.currency:
        generation.cost.currency = generation.cost.currency.replace("\x00", "\ufffd")
    for lora in generation.loras or ():
        lora.id = lora.id.replace("\x00", "\ufffd") if lora.id else lora.id
        lora.name = lora.name.replace("\x00", "\ufffd") if lora.name else lora.name
    if generation.output_urls:
        generation.output_urls = [u.replace("\x00", "") for u in generation.output_urls if u]
    if generation.output_video_url:
        generation.output_video_url = generation.output_video_url.replace("\x00", "")


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
    """ISO-8601 (with `Z`) or unix seconds/milliseconds, between 1970 and 2999; anything else
    is unknown (None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value
            moment = datetime.fromtimestamp(seconds, UTC)
            return moment if moment.year in _YEARS else None
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return moment if moment.year in _YEARS else None


def to_micros(amount: float | None) -> int | None:
    """Credits as integer micro-credits, so sums are exact; None for what is not a price."""
    if amount is None or not math.isfinite(amount) or abs(amount) > MAX_CREDITS:
        return None
    try:
        return int((Decimal(str(amount)) * 1_000_000).to_integral_value())
    except (InvalidOperation, ValueError, OverflowError):
        return None
