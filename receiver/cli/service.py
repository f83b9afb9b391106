"""Running the service: serve, migrate, sync, demo."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click

from receiver.cli.common import (
    open_runtime,
    require_sqlite_file,
    run,
    settings_from,
)
from receiver.hosts import is_loopback_name
from receiver.settings import Settings
from storage.private import keep_private

__all__ = ["demo", "migrate", "serve", "sync"]


def _worker_count(_: click.Context, __: click.Parameter, value: str) -> int:
    if value == "auto":
        return os.cpu_count() or 1
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise click.BadParameter(f"{value!r} is not a whole number of at least 1, nor 'auto'")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default="1",
    show_default=True,
    callback=_worker_count,
    help="Processes sharing the port and the background work; 'auto': one per core.",
)
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Upgrade the database schema before serving.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, migrate: bool) -> None:
    """Run the HTTP service."""
    import uvicorn

    from receiver.logs import configure_logging
    from receiver.runtime import check_startable
    from receiver.web.app import create_app
    from receiver.web.limits import uvicorn_options

    settings = settings_from(ctx)
    if settings.public_url is None:  # download links in events point back here
        settings = settings.with_overrides(public_url=f"http://{host}:{port}")
    if settings.cookie_secure is None:  # reachable beyond this machine: HTTPS is the way in
        settings = settings.with_overrides(cookie_secure=not is_loopback_name(host))
    configure_logging(settings.log_format)
    if migrate:
        run(_migrate(settings, in_child=True))
    else:
        require_sqlite_file(settings)
    run(check_startable(settings))  # one line now, not a traceback from the app's start
    app: Any = "receiver.web.app:create_app_from_env"
    if workers == 1:
        app = create_app(settings)
    else:  # each worker builds its app from the environment: hand it what was decided here
        os.environ["RECEIVER_PUBLIC_URL"] = str(settings.public_url)
        os.environ["RECEIVER_COOKIE_SECURE"] = "true" if settings.cookie_secure else "false"
        # Aurous counts the calls of all of them against one allowance: each gets its share
        share = max(1, settings.poll_budget_per_min // workers)
        os.environ["RECEIVER_POLL_BUDGET_PER_MIN"] = str(share)
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        **uvicorn_options(settings),  # connection limits: receiver/web/limits.py
    )


@click.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Upgrade the database schema to the latest revision."""
    revision = run(_migrate(settings_from(ctx)))
    click.echo(f"database at revision {revision}")


async def _migrate(settings: Settings, *, in_child: bool = False) -> str | None:
    """Upgrade the schema if it is behind: here, or (`in_child`, for a process that lives on
    after) in a child process, so that Alembic is never loaded into this one."""
    from storage.db import Database
    from storage.migrate import current_revision, head_revision, upgrade

    keep_private(Path(settings.data_dir))
    db = Database(settings.database_url)
    try:
        if await current_revision(db) != head_revision():  # Alembic is loaded only to upgrade
            if in_child:
                await _upgrade_in_child(settings)
            else:
                await upgrade(db)
        return await current_revision(db)
    finally:
        await db.dispose()


async def _upgrade_in_child(settings: Settings) -> None:
    """`python -m receiver.cli.upgrade` on this database; its log lines go to stderr as this
    process's own, its one-line error (on stdout) becomes this one's."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "receiver.cli.upgrade",
        stdout=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "RECEIVER_DATABASE_URL": settings.database_url,
            "RECEIVER_LOG_FORMAT": settings.log_format,
        },
    )
    error, _ = await child.communicate()
    if child.returncode != 0:
        message = error.decode(errors="replace").strip()
        raise RuntimeError(message or f"the schema upgrade failed (exit status {child.returncode})")


@click.command()
@click.pass_context
def sync(ctx: click.Context) -> None:
    """Run one sweep, the due polls, pending create repairs and due archives now."""

    async def go() -> None:
        runtime = await open_runtime(settings_from(ctx), needs_aurous=True)
        try:
            click.echo("sweeping the job list…", err=True)
            sweep = await runtime.reconciler.sweep(force=True)
            click.echo(
                f"sweep: {sweep.pages} pages, {sweep.seen} jobs seen, "
                f"{sweep.adopted} adopted, {sweep.changed} changed"
            )
            click.echo("polling overdue jobs…", err=True)
            polls = await runtime.reconciler.poll_due()
            click.echo(
                f"polls: {polls.polled} polled, {polls.changed} changed, {polls.failed} failed"
            )
            repaired = await runtime.creator.repair()
            click.echo(f"creates repaired: {repaired}")
            click.echo("archiving due outputs…", err=True)
            done = await runtime.archiver.run_until_idle(
                progress=lambda o: click.echo(
                    f"  archived {o.archived}, retry {o.retry}, lost {o.lost}", err=True
                )
            )
            click.echo(
                f"archive: {done.archived} archived ({done.bytes} bytes), "
                f"{done.retry} to retry, {done.lost} lost, {done.none} without output"
            )
        finally:
            await runtime.close()

    run(go())


@click.command()
@click.option("--port", default=8000, show_default=True, help="Receiver port (or a free one).")
@click.option("--simulator-port", default=8900, show_default=True)
@click.pass_context
def demo(ctx: click.Context, port: int, simulator_port: int) -> None:
    """Run the simulator and the receiver together on loopback with a mixed workload."""
    import logging

    try:  # Ctrl-C while the demo is still loading is a quiet stop too
        from receiver.demo import run_demo
        from receiver.logs import configure_logging
    except KeyboardInterrupt:
        ctx.exit(0)

    configure_logging(level=logging.WARNING)
    run_demo(settings_from(ctx).data_dir / "demo", port, simulator_port)
