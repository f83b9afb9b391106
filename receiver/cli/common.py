"""What every `aurous-receiver` command shares: one-line errors, the settings, a database
that is known to be migrated, and plain tables."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import click

from receiver.settings import Settings, SettingsError

if TYPE_CHECKING:  # the database code is imported by the commands that open one, not by --help
    from storage.db import Database

__all__ = [
    "Columns",
    "LazyCommand",
    "OneLineUsageError",
    "ReceiverGroup",
    "migrated_db",
    "open_runtime",
    "print_json",
    "print_records",
    "print_table",
    "require_sqlite_file",
    "run",
    "settings_from",
    "table_command",
    "when",
    "with_db",
]

T = TypeVar("T")

Columns: TypeAlias = Sequence[tuple[str, Callable[[T], str]]]
"""A table's columns, left to right: each one's header, and how an item shows under it."""


@dataclass(frozen=True)
class LazyCommand:
    """A command the group knows by name and one-sentence help; its module is imported only
    when it runs or shows its own help, so `--help` does not pay for every command's imports."""

    import_path: str  # "package.module:attribute"
    short_help: str


class ReceiverGroup(click.Group):
    """Turns any unexpected exception into one line on stderr and exit status 1, and a usage
    error into one line and exit status 2. Commands given as `lazy_commands` are imported when
    used."""

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, LazyCommand] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is not None and cmd_name not in self.commands:
            self.add_command(_import_command(lazy.import_path), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the names and sentences alone: nothing is imported."""
        shown = [
            name
            for name in self.list_commands(ctx)
            if name in self.lazy_commands or not self.commands[name].hidden
        ]
        if not shown:
            return
        limit = formatter.width - 6 - max(map(len, shown))
        rows = [
            (
                name,
                self.lazy_commands[name].short_help
                if name in self.lazy_commands
                else self.commands[name].get_short_help_str(limit),
            )
            for name in shown
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except SettingsError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except Exception as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise click.ClickException(message[:400]) from None


class OneLineUsageError(click.UsageError):
    """A usage error shown as one line, `Error: … (see '… --help')`, without the usage text."""

    def __init__(self, message: str, command_path: str | None) -> None:
        super().__init__(message)
        self.command_path = command_path

    def format_message(self) -> str:
        hint = f" (see '{self.command_path} --help')" if self.command_path else ""
        return " ".join(self.message.split()) + hint


def _one_line(error: click.UsageError) -> click.UsageError:
    if isinstance(error, click.exceptions.NoArgsIsHelpError | OneLineUsageError):
        return error  # a group run without a command shows its help, as click does
    command_path = error.ctx.command_path if error.ctx is not None else None
    return OneLineUsageError(error.format_message(), command_path)


def _import_command(import_path: str) -> click.Command:
    module_name, _, attribute = import_path.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{import_path} is not a click command")
    return command


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def settings_from(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


async def migrated_db(settings: Settings) -> Database:
    """The database, if it has the schema this code expects; creates nothing if it has not."""
    from storage.db import Database
    from storage.migrate import current_revision, head_revision

    require_sqlite_file(settings)
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


def require_sqlite_file(settings: Settings) -> None:
    """Refuse a SQLite database that is not there yet: opening it would leave an empty
    database file (and its folder) behind a command that then fails."""
    from sqlalchemy.engine import make_url

    from storage.db import normalize_url

    parsed = make_url(normalize_url(settings.database_url))
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if not path.exists():
        raise click.ClickException(
            f"no database at {path.resolve()} yet; run `aurous-receiver migrate`"
        )


async def with_db(settings: Settings, action: Any) -> Any:
    db = await migrated_db(settings)
    try:
        return await action(db)
    finally:
        await db.dispose()


async def open_runtime(settings: Settings, *, needs_aurous: bool = False) -> Any:
    """The service's runtime without background ticks, for one-off commands. A command that
    `needs_aurous` fails without AUROUS_API_KEY before it makes a key or token file."""
    from receiver.runtime import open_runtime as open_service_runtime

    if needs_aurous and not settings.aurous_api_key:
        await (await migrated_db(settings)).dispose()  # an unmigrated database is said first
        raise click.ClickException("AUROUS_API_KEY is not set: nothing to sync with")
    require_sqlite_file(settings)
    return await open_service_runtime(settings.with_overrides(background=False))


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def print_json(value: object) -> None:
    """What the API would answer, indented (records and views encode as the API's JSON)."""
    import msgspec

    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def print_records(items: Iterable[T], columns: Columns[T]) -> None:
    """A table of one row per item."""
    header = tuple(title for title, _ in columns)
    print_table([header, *(tuple(cell(item) for _, cell in columns) for item in items)])


def table_command(
    group: click.Group,
    summary: str,
    columns: Columns[T],
    find: Callable[[Settings], Iterable[T]],
) -> None:
    """Give `group` a `list` command: a table of what `find` finds, one row per item."""

    @group.command("list", help=summary)
    @click.pass_context
    def list_items(ctx: click.Context) -> None:
        print_records(find(settings_from(ctx)), columns)
