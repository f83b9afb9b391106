"""What every gateway module shares: the dialect-specific INSERT (for ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

Values = Mapping[str, Any]


def _dialect_insert(dialect: str, table: Any) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return _dialect_insert(conn.dialect.name, table)
