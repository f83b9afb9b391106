"""The shapes the API answers with: pages (`data`, `has_more`, `next_cursor`, like Aurous's
own lists) and the cursors they hand out, and views built from storage records."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Generic, TypeVar

import msgspec

from receiver.errors import ReceiverError

__all__ = [
    "CursorError",
    "Listing",
    "Page",
    "decode_key_cursor",
    "decode_number_cursor",
    "encode_key_cursor",
    "view_of",
]

T = TypeVar("T")
V = TypeVar("V", bound=msgspec.Struct)
_INVALID = "cursor is not valid; use next_cursor from the previous page"


class Page(msgspec.Struct, Generic[T], frozen=True):
    """One page of a listing, oldest or newest first as the listing says."""

    data: list[T]
    has_more: bool
    next_cursor: str | None


class Listing(msgspec.Struct, Generic[T], frozen=True):
    """A short list that is never paged (a job's events, the keyring)."""

    data: list[T]


class CursorError(ReceiverError):
    """The pagination cursor is not one this service handed out."""

    def __init__(self) -> None:
        super().__init__(400, "invalid_cursor", _INVALID, param="cursor")


def encode_key_cursor(at: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{key}".encode()).decode().rstrip("=")


def decode_key_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, key = text.split("|", 1)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError() from None
    if moment.tzinfo is None:  # not one this service handed out
        raise CursorError()
    return moment, key


def decode_number_cursor(cursor: str | None) -> int | None:
    """A cursor that is a row position or id, as handed out in `next_cursor`."""
    if cursor is None:
        return None
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 18:
        raise CursorError()
    return int(cursor)


def view_of(view: type[V], record: msgspec.Struct, **computed: object) -> V:
    """The view of a record: the record's fields that the view has, by name, and the ones
    computed by the caller; a view field that is neither keeps its default. Built directly:
    records are typed already, so there is nothing to convert (this runs for every job of
    every page and every event)."""
    values = {
        name: computed[name] if name in computed else getattr(record, name)
        for name in view.__struct_fields__
        if name in computed or hasattr(record, name)
    }
    return view(**values)
