"""`aurous-receiver destinations …` and `events …`: where events go, and what was told."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from receiver.cli.common import (
    Columns,
    print_json,
    print_records,
    run,
    settings_from,
    table_command,
    when,
    with_db,
)
from receiver.settings import Settings, parse_duration

if TYPE_CHECKING:  # imported by the commands themselves, so that --help starts quickly
    from receiver.relay.destinations import Destination, DestinationStore
    from storage.db import Database
    from storage.records import EventRecord

__all__ = ["destinations", "events"]


async def _destination_store(db: Database, settings: Settings) -> DestinationStore:
    """The destinations of a database known to be migrated; the master key is read (made, the
    first time) only now, so that a command failing before leaves no key file behind."""
    from receiver.relay.destinations import DestinationStore
    from receiver.runtime import load_secret_box

    return DestinationStore(db, await load_secret_box(db, settings))


def _with_store(settings: Settings, action: Any) -> Any:
    async def go(db: Database) -> Any:
        return await action(await _destination_store(db, settings))

    return run(with_db(settings, go))


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@click.group()
def destinations() -> None:
    """Endpoints of your app that every job change is pushed to (signed, retried, in order)."""


@destinations.command("add", short_help="Push events to URL; shows its secret once.")
@click.argument("url")
@click.option("--events", "patterns", default="*", help="Event patterns, e.g. job.*,output.*")
@click.option("--kind", type=click.Choice(["image", "video"]), help="Only jobs of this kind.")
@click.option("--label", help="A note for operators.")
@click.pass_context
def destinations_add(
    ctx: click.Context, url: str, patterns: str, kind: str | None, label: str | None
) -> None:
    """Push events to URL; prints its id and signing secret (shown this once)."""
    from receiver.relay.destinations import NewDestination

    request = NewDestination(url, _csv(patterns), kind, label)
    created = _with_store(settings_from(ctx), lambda store: store.add(request))
    click.echo(f"destination {created.id}")
    click.echo(f"secret      {created.secret}   (shown once: verify pushes with it)")


_DESTINATION_COLUMNS: Columns[Destination] = (
    ("ID", lambda d: d.id),
    ("STATE", lambda d: d.state),
    ("URL", lambda d: d.url),
    ("EVENTS", lambda d: ",".join(d.events)),
    ("PENDING", lambda d: str(d.pending)),
    ("DELIVERED", lambda d: str(d.delivered)),
    ("FAILED", lambda d: str(d.failed)),
    ("WAITING SINCE", lambda d: when(d.oldest_pending_at)),
)


table_command(
    destinations,
    "Every destination, its state, and how its pushes stand.",
    _DESTINATION_COLUMNS,
    lambda settings: _with_store(settings, lambda store: store.list_all()),
)


@destinations.command("show")
@click.argument("destination_id")
@click.pass_context
def destinations_show(ctx: click.Context, destination_id: str) -> None:
    """One destination (JSON)."""
    print_json(_with_store(settings_from(ctx), lambda store: store.get(destination_id)))


@destinations.command("enable")
@click.argument("destination_id")
@click.pass_context
def destinations_enable(ctx: click.Context, destination_id: str) -> None:
    """Push to DESTINATION_ID again, starting with what it missed."""
    _switch(ctx, destination_id, enabled=True)


@destinations.command("disable", short_help="Stop pushing to DESTINATION_ID for now.")
@click.argument("destination_id")
@click.pass_context
def destinations_disable(ctx: click.Context, destination_id: str) -> None:
    """Stop pushing to DESTINATION_ID; what it misses is kept for when it is enabled."""
    _switch(ctx, destination_id, enabled=False)


def _switch(ctx: click.Context, destination_id: str, *, enabled: bool) -> None:
    from receiver.relay.destinations import DestinationChange

    change = DestinationChange(enabled=enabled)
    _with_store(settings_from(ctx), lambda store: store.change(destination_id, change))
    click.echo(f"{'enabled' if enabled else 'disabled'} {destination_id}")


@destinations.command("remove")
@click.argument("destination_id")
@click.pass_context
def destinations_remove(ctx: click.Context, destination_id: str) -> None:
    """Remove DESTINATION_ID with its pushes and attempts."""
    _with_store(settings_from(ctx), lambda store: store.remove(destination_id))
    click.echo(f"removed {destination_id}")


@destinations.command(
    "rotate-secret", short_help="A new signing secret; the old one signs on for --grace."
)
@click.argument("destination_id")
@click.option("--grace", default="24h", help="How long the old secret signs too (24h; 0: stop).")
@click.pass_context
def destinations_rotate(ctx: click.Context, destination_id: str, grace: str) -> None:
    """A new signing secret for DESTINATION_ID; both sign pushes during --grace."""
    period = timedelta(seconds=parse_duration(grace))
    rotated = _with_store(
        settings_from(ctx), lambda store: store.rotate_secret(destination_id, period)
    )
    click.echo(f"secret {rotated.secret}   (shown once; the previous one signs for {grace} more)")


@click.group()
def events() -> None:
    """The events told to your app: list them, or push them again."""


_EVENT_COLUMNS: Columns[EventRecord] = (
    ("POSITION", lambda e: str(e.position)),
    ("ID", lambda e: e.id),
    ("TYPE", lambda e: e.type),
    ("JOB", lambda e: e.job_id or "-"),
    ("SEQ", lambda e: str(e.sequence or "-")),
    ("CREATED", lambda e: when(e.created_at)),
)


@events.command("list")
@click.option(
    "--after", type=click.IntRange(0, 2**63 - 1), default=0, help="Cursor: after this position."
)
@click.option("--type", "types", help="Comma-separated event types.")
@click.option("--job", "job_id", help="Only this job's events.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.pass_context
def events_list(
    ctx: click.Context, after: int, types: str | None, job_id: str | None, limit: int
) -> None:
    """Events oldest first, from a cursor (the POSITION column)."""
    from storage import gateway

    async def read(db: Database) -> Any:
        return await db.read(
            lambda conn: gateway.list_events(
                conn, after=after, types=_csv(types), job_id=job_id, limit=limit
            )
        )

    found = run(with_db(settings_from(ctx), read))
    print_records(found, _EVENT_COLUMNS)


@events.command("replay", short_help="Push events to a destination again, with their ids.")
@click.argument("event_id", required=False)
@click.option("--destination", "destination_id", required=True, help="Where to push them.")
@click.option("--since", help="With --until: every event of this time range (UTC).")
@click.option("--until")
@click.pass_context
def events_replay(
    ctx: click.Context,
    event_id: str | None,
    destination_id: str,
    since: str | None,
    until: str | None,
) -> None:
    """Push EVENT_ID (or every event from --since to --until) to a destination again, with
    the original ids."""
    from receiver.relay.replay import replay_event, replay_range

    window = _window(since, until)
    if (event_id is None) == (window is None):
        raise click.UsageError("give an EVENT_ID, or --since and --until")

    async def replay(db: Database) -> int:
        if event_id is not None:
            return await replay_event(db, event_id, destination_id)
        assert window is not None
        return await replay_range(db, destination_id, *window)

    count = run(with_db(settings_from(ctx), replay))
    click.echo(f"{count} events will be pushed to {destination_id} again")


def _window(since: str | None, until: str | None) -> tuple[datetime, datetime] | None:
    from receiver.spend.reports import parse_moment

    if since is None and until is None:
        return None
    start, end = parse_moment(since, "since"), parse_moment(until, "until")
    if start is None or end is None:
        raise click.UsageError("--since and --until go together")
    return start, end
