"""The hot path's batch inserts on SQLite: each statement compiled once for a set of row keys,
and each row bound as a plain tuple through the columns' own bind processors.

SQLAlchemy prepares every row's parameters in Python, at several times the cost of SQLite's
own work on the row; the intake's batches insert about a dozen rows a delivery
(`storage.db.Connection.insert_rows`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.engine import Dialect

__all__ = ["SqlitePlan", "sqlite_plan"]

_PLANS_KEPT = 64
_ROWS_PER_INSERT = 16


@dataclass(frozen=True)
class SqlitePlan:
    """An INSERT compiled once for rows with given keys: its SQL, and how to make its
    positional parameters from a row (the row's values and any constants the statement
    binds, in order, then the columns' processors where there are any)."""

    sql: str
    constants: dict[str, Any]
    values: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    returns_rows: bool
    many_sql: str | None  # `_ROWS_PER_INSERT` rows at once, where every parameter is a value

    def returning(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Run a RETURNING insert (sqlite3's executemany drops what it returns): rows in groups
        of `_ROWS_PER_INSERT` through one multi-row statement, the rest one at a time."""
        found: list[tuple[Any, ...]] = []
        grouped = len(rows) - len(rows) % _ROWS_PER_INSERT if self.many_sql else 0
        for start in range(0, grouped, _ROWS_PER_INSERT):
            group = rows[start : start + _ROWS_PER_INSERT]
            found += cursor.execute(self.many_sql, [v for row in group for v in row]).fetchall()
        for row in rows[grouped:]:
            found += cursor.execute(self.sql, row).fetchall()
        return found

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...] | list[Any]:
        values = self.values({**row, **self.constants} if self.constants else row)
        if not self.processors:
            return values
        processed = list(values)
        for index, process in self.processors:
            processed[index] = process(processed[index])
        return processed


@functools.lru_cache(maxsize=_PLANS_KEPT)  # the statements themselves are built once
def sqlite_plan(statement: Insert, keys: tuple[str, ...], dialect: Dialect) -> SqlitePlan:
    """`statement`'s plan for rows with `keys`, compiled on first use."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = list(compiled.positiontup or ())
    defaulted = {column.key: column for column in compiled.insert_prefetch}
    constants: dict[str, Any] = {}
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(names):
        bind = compiled.binds[name]
        if (process := bind.type._cached_bind_processor(dialect)) is not None:
            processors.append((index, process))
        if name in defaulted:
            constants[name] = _constant_default(defaulted[name])
        elif name not in keys:  # a value written into the statement
            constants[name] = bind.effective_value
    values = _tuple_getter(names)
    returns_rows = bool(compiled.effective_returning)
    sql = str(compiled)
    many_sql = _many_rows(sql, len(names)) if returns_rows else None
    return SqlitePlan(sql, constants, values, tuple(processors), returns_rows, many_sql)


def _many_rows(sql: str, parameters: int) -> str | None:
    """The INSERT with `_ROWS_PER_INSERT` rows in its VALUES, if its one row holds all of its
    parameters (None otherwise)."""
    one = "VALUES (" + ", ".join(["?"] * parameters) + ")"
    if sql.count(one) != 1 or sql.count("?") != parameters:
        return None
    rows = ", ".join([one[len("VALUES ") :]] * _ROWS_PER_INSERT)
    return sql.replace(one, "VALUES " + rows)


def _constant_default(column: Any) -> Any:
    """The default of a column the rows do not carry; one computed per row is not supported."""
    if not column.default.is_scalar:
        raise TypeError(f"no value for column {column.key!r} and no constant default")
    return column.default.arg


def _tuple_getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        one = operator.itemgetter(names[0])
        return lambda row: (one(row),)
    return operator.itemgetter(*names)
