"""What every gateway module shares: the dialect's INSERT (for ON CONFLICT), and records read
from rows positionally, the columns selected in the order of the record's fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ColumnElement, Select

from storage.db import Connection
from storage.records import Change, Record, changed_fields

__all__ = [
    "columns_of",
    "dialect_insert",
    "insert",
    "page_after",
    "record_select",
    "records",
    "update_rows",
]

R = TypeVar("R", bound=Record)
CHUNK = 2000  # ids per IN (...) list: far below every driver's parameter limit


def dialect_insert(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":  # loaded only where it is used: 2 MiB of an idle receiver
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    return sqlite.insert(table)


def insert(conn: Connection, table: Table) -> Any:
    return dialect_insert(conn.dialect_name, table)


@cache
def columns_of(record_type: type[Record], table: Table) -> tuple[ColumnElement[Any], ...]:
    return tuple(table.c[name] for name in record_type.__struct_fields__)


def record_select(record_type: type[Record], table: Table) -> Select[Any]:
    return select(*columns_of(record_type, table))


def page_after(
    record_type: type[Record], table: Table, key: ColumnElement[Any], after: int, limit: int | None
) -> Select[Any]:
    """Keyset paging: the rows past `after` in the order of `key`, at most `limit` (None: all)."""
    return record_select(record_type, table).where(key > after).order_by(key).limit(limit)


def records(record_type: type[R], rows: Iterable[Sequence[Any]]) -> list[R]:
    return [record_type(*row) for row in rows]


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    return (items[start : start + CHUNK] for start in range(0, len(items), CHUNK))


def update_rows(
    conn: Connection, table: Table, changes: Mapping[Any, Change], **also: object
) -> None:
    """Per-row changes keyed by `id`, one executemany per distinct set of changed columns;
    `also`: constant values set on every changed row."""
    groups: dict[frozenset[str], list[dict[str, object]]] = {}
    for row_id, change in changes.items():
        values = changed_fields(change)
        if not values and not also:
            continue
        row = {f"new_{name}": value for name, value in values.items()}
        groups.setdefault(frozenset(values), []).append({**row, "row_id": row_id})
    for columns, rows in groups.items():
        conn.execute(_update_rows_stmt(table, columns, tuple(sorted(also.items()))), rows)


@cache
def _update_rows_stmt(
    table: Table, columns: frozenset[str], also: tuple[tuple[str, object], ...]
) -> Any:
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({**{name: bindparam(f"new_{name}") for name in sorted(columns)}, **dict(also)})
    )
