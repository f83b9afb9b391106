"""Alembic environment: uses a connection handed over by `storage.migrate`, or else the URL
from `-x url=…`, `sqlalchemy.url`, or RECEIVER_DATABASE_URL. (`aurous-receiver migrate` knows
the service's own defaults; storage does not read the service's settings.)"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from storage.db import Database
from storage.models import metadata
from storage.types import UTCDateTime

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    url = url or os.environ.get("RECEIVER_DATABASE_URL", "").strip()
    if not url:
        raise SystemExit(
            "no database: pass -x url=…, set RECEIVER_DATABASE_URL, or run `aurous-receiver migrate`"
        )
    return url


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    if kind == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("import storage.types")
        return "storage.types.UTCDateTime()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    db = Database(_url())
    try:
        async with db.engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await db.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")

_shared = config.attributes.get("connection")
if _shared is not None:
    _run(_shared)
else:
    asyncio.run(_run_async())
