"""The two shapes every record takes, and how the gateway turns them into column values."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "UNSET",
    "Change",
    "Record",
    "Slice",
    "UnsetType",
    "changed_fields",
    "values_of",
]

R = TypeVar("R")


class Record(msgspec.Struct, frozen=True, gc=False):
    """Immutable, and out of the cyclic collector's way (records hold no cycles)."""


class Slice(Record, Generic[R], frozen=True):
    """One page of a listing, and whether rows follow it."""

    items: list[R]
    has_more: bool


class Change(msgspec.Struct, frozen=True, gc=False):
    """A partial row: only the fields that are set (not `UNSET`) are written."""


def values_of(row: Record) -> dict[str, Any]:
    """A `New…` row as the column values to insert."""
    return msgspec.structs.asdict(row)


def changed_fields(change: Change) -> dict[str, Any]:
    """The fields of a `…Update` that are set."""
    return {
        name: value
        for name in change.__struct_fields__
        if (value := getattr(change, name)) is not UNSET
    }
