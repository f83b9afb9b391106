"""What every `aurous-receiver` command shares: one-line errors, the settings, a database
that is known to be migrated, and plain tables."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import click
import msgspec

from receiver.settings import Settings, SettingsError
from storage.db import Database
from storage.migrate import current_revision, head_revision

__all__ = [
    "ReceiverGroup",
    "migrated_db",
    "open_runtime",
    "print_json",
    "print_table",
    "run",
    "settings_from",
    "when",
    "with_db",
]

T = TypeVar("T")


class ReceiverGroup(click.Group):
    """Turns any unexpected exception into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except SettingsError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except Exception as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise click.ClickException(message[:400]) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def settings_from(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


async def migrated_db(settings: Settings) -> Database:
    db = Database(settings.database_url)
    try:
        current = await current_revision(db)
    except BaseException:
        await db.dispose()
        raise
    if current != head_revision():
        await db.dispose()
        raise click.ClickException("the database is not migrated; run `aurous-receiver migrate`")
    return db


async def with_db(settings: Settings, action: Any) -> Any:
    db = await migrated_db(settings)
    try:
        return await action(db)
    finally:
        await db.dispose()


async def open_runtime(settings: Settings) -> Any:
    """The service's runtime without background ticks, for one-off commands."""
    from receiver.runtime import open_runtime as open_service_runtime

    return await open_service_runtime(settings.with_overrides(background=False))


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def print_json(value: object) -> None:
    """What the API would answer, indented (records and views encode as the API's JSON)."""
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
