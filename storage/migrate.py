"""Alembic, driven from code: upgrade to head, and tell whether a database is at head.

Telling needs no Alembic: the head is read from the revision files and the database's revision
from Alembic's own table. A serving process that finds its database at head so never imports
Alembic (about 9 MiB of a receiver's memory).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from storage.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x61757273  # one replica migrates at a time; the others wait, then find head
_REVISION = re.compile(r'^revision(?::[^=]*)? = "([^"]+)"', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision(?::[^=]*)? = (?:"([^"]+)"|None)', re.MULTILINE)


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def head_revision() -> str | None:
    """The one revision no other revision file builds on (the chain is linear)."""
    revisions: set[str] = set()
    built_on: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text()
        if (revision := _REVISION.search(source)) is None:
            continue
        revisions.add(revision.group(1))
        if (down := _DOWN_REVISION.search(source)) and down.group(1):
            built_on.add(down.group(1))
    heads = revisions - built_on
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have more than one head: {sorted(heads)}")
    return heads.pop() if heads else None


async def upgrade(db: Database) -> None:
    async with db.engine.connect() as conn:
        if not db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
        try:
            await conn.run_sync(_upgrade_on)
            await conn.commit()
        finally:
            if not db.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                await conn.commit()


def _upgrade_on(connection: Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def current_revision(db: Database) -> str | None:
    """The schema's revision (None before the first migration); raises if the database cannot
    be reached."""
    async with db.engine.connect() as conn:
        if not await conn.run_sync(_has_version_table):
            return None
        found = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return found.scalar_one_or_none()


def _has_version_table(connection: Connection) -> bool:
    return inspect(connection).has_table("alembic_version")
