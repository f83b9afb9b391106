"""Alembic, driven from code: upgrade to head, and tell whether a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from storage.db import Database

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x61757273  # one replica migrates at a time; the others wait, then find head


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


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
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def current_revision(db: Database) -> str | None:
    """The schema's revision; raises if the database cannot be reached."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_revision_on)


def _revision_on(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
