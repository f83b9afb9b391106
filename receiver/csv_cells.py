"""CSV that a spreadsheet opens as data: a cell that would start a formula (`=`, `+`, `-`, `@`,
a tab or a carriage return, OWASP's list) gets a leading `'`, unless it is a plain number.
Model names, statuses and ids come from upstream; none of them may become a formula."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["SafeWriter"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


class _Writes(Protocol):
    def write(self, text: str, /) -> Any: ...


class SafeWriter:
    def __init__(self, out: _Writes) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
