"""The `aurous-receiver` command. Errors are one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import click

from receiver import jobs
from receiver.cli_spend import spend
from receiver.keyring import SecretStore
from receiver.logs import configure_logging
from receiver.runtime import load_secret_box
from receiver.settings import Settings, SettingsError, parse_duration
from storage import gateway
from storage.db import Database
from storage.migrate import current_revision, head_revision, upgrade
from storage.types import utcnow

__all__ = ["cli", "main"]

T = TypeVar("T")


class _Group(click.Group):
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
    async with db.read() as conn:
        current = await current_revision(conn)
    if current != head_revision():
        await db.dispose()
        raise click.ClickException("the database is not migrated; run `aurous-receiver migrate`")
    return db


@click.group(cls=_Group)
@click.version_option(package_name="aurous-receiver")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Receive, track, archive and audit Aurous Labs generation jobs."""
    ctx.obj = Settings.from_env()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Upgrade the database schema before serving.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, migrate: bool) -> None:
    """Run the HTTP service."""
    import uvicorn

    from receiver.app import create_app

    settings = settings_from(ctx)
    configure_logging(settings.log_format)
    if migrate:
        run(_migrate(settings))
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Upgrade the database schema to the latest revision."""
    revision = run(_migrate(settings_from(ctx)))
    click.echo(f"database at revision {revision}")


async def _migrate(settings: Settings) -> str | None:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        async with db.read() as conn:
            return await current_revision(conn)
    finally:
        await db.dispose()


@cli.group()
def secrets() -> None:
    """Manage the webhook keyring."""


def _with_secrets(settings: Settings, action: Any) -> Any:
    box = load_secret_box(settings)
    return run(_with_db(settings, lambda db: action(SecretStore(db, box))))


@secrets.command("add")
@click.argument("secret")
@click.option("--expires-in", help="Stop trusting it after this long, e.g. 24h or 7d.")
@click.option("--label", help="A note for operators.")
@click.pass_context
def secrets_add(ctx: click.Context, secret: str, expires_in: str | None, label: str | None) -> None:
    """Trust SECRET for webhook signatures (use - to read it from stdin)."""
    if secret == "-":
        secret = sys.stdin.readline().strip()
    expires_at = utcnow() + timedelta(seconds=parse_duration(expires_in)) if expires_in else None
    secret_id = _with_secrets(
        settings_from(ctx),
        lambda store: store.add(secret, source="cli", label=label, expires_at=expires_at),
    )
    click.echo(f"added secret {secret_id}")


@secrets.command("list")
@click.pass_context
def secrets_list(ctx: click.Context) -> None:
    """Show every secret: preview, state, expiry, last match."""
    rows = _with_secrets(settings_from(ctx), lambda store: store.list())
    now = utcnow()
    table = [("ID", "STATE", "PREVIEW", "SOURCE", "EXPIRES", "LAST MATCHED", "MATCHES", "LABEL")]
    table += [
        (
            str(s.id),
            s.state(now),
            s.preview,
            s.source,
            _when(s.expires_at),
            _when(s.last_matched_at),
            str(s.match_count),
            s.label or "",
        )
        for s in rows
    ]
    _print_table(table)


@secrets.command("retire")
@click.argument("secret_id", type=int)
@click.pass_context
def secrets_retire(ctx: click.Context, secret_id: int) -> None:
    """Stop trusting secret SECRET_ID now."""
    _with_secrets(settings_from(ctx), lambda store: store.retire(secret_id))
    click.echo(f"retired secret {secret_id}")


@cli.group(name="jobs")
def jobs_group() -> None:
    """Inspect and track jobs."""


@jobs_group.command("list")
@click.option("--status")
@click.option("--kind", type=click.Choice(["image", "video", "unknown"]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_context
def jobs_list(
    ctx: click.Context, status: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """List tracked jobs, newest first."""
    page = run(
        _with_db(
            settings_from(ctx),
            lambda db: jobs.list_jobs(db, status=status, kind=kind, cursor=None, limit=limit),
        )
    )
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    table = [("ID", "KIND", "STATUS", "SEEN VIA", "COST", "OUTPUTS", "CREATED")]
    for job in page["data"]:
        states = ",".join(o["state"] for o in job["outputs"]) or "-"
        amount = job["cost"]["amount"]
        table.append(
            (
                job["id"],
                job["kind"],
                job["status"],
                job["first_seen_via"],
                "-" if amount is None else f"{amount:g}",
                states,
                job["created_at"] or "-",
            )
        )
    _print_table(table)


@jobs_group.command("show")
@click.argument("job_id")
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str) -> None:
    """Show one job with its outputs and event history (JSON)."""

    async def fetch(db: Database) -> dict[str, Any] | None:
        job = await jobs.get_job(db, job_id)
        if job is not None:
            job["events"] = await jobs.job_events(db, job_id)
        return job

    job = run(_with_db(settings_from(ctx), fetch))
    if job is None:
        raise click.ClickException(f"no job {job_id!r} is tracked here")
    click.echo(json.dumps(job, indent=2))


@jobs_group.command("track")
@click.argument("job_id")
@click.pass_context
def jobs_track(ctx: click.Context, job_id: str) -> None:
    """Start tracking JOB_ID (img_… or vid_…); polling fills in its state."""
    from receiver.routes.jobs import JOB_ID

    if not JOB_ID.match(job_id):
        raise click.BadParameter("must look like img_… or vid_…", param_hint="JOB_ID")
    job, created = run(_with_db(settings_from(ctx), lambda db: jobs.track(db, job_id)))
    click.echo(f"{'now tracking' if created else 'already tracked'}: {job['id']} ({job['status']})")


async def _with_db(settings: Settings, action: Any) -> Any:
    db = await migrated_db(settings)
    try:
        return await action(db)
    finally:
        await db.dispose()


async def _open(settings: Settings) -> Any:
    from receiver.runtime import open_runtime

    return await open_runtime(settings.with_overrides(background=False))


@cli.command()
@click.pass_context
def sync(ctx: click.Context) -> None:
    """Run one sweep, the due polls, pending create repairs and due archives now."""

    async def go() -> None:
        runtime = await _open(settings_from(ctx))
        try:
            if runtime.reconciler is None:
                raise click.ClickException("AUROUS_API_KEY is not set: nothing to sync with")
            click.echo("sweeping the job list…", err=True)
            sweep = await runtime.reconciler.sweep()
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


@cli.group()
def endpoint() -> None:
    """Register and rotate the Aurous webhook endpoint."""


def _client(settings: Settings) -> Any:
    from receiver.aurous import AurousClient, RateBudget

    if not settings.aurous_api_key:
        raise click.ClickException("AUROUS_API_KEY is not set")
    return AurousClient(
        settings.aurous_base_url,
        settings.aurous_api_key,
        budget=RateBudget(settings.poll_budget_per_min),
        version=settings.aurous_version,
    )


@endpoint.command("register")
@click.argument("url")
@click.option(
    "--events",
    default="*",
    show_default=True,
    help="Comma-separated event types, or * for all that exist today.",
)
@click.option("--description", default="aurous-receiver")
@click.pass_context
def endpoint_register(ctx: click.Context, url: str, events: str, description: str) -> None:
    """Register URL at Aurous and store its signing secret in the keyring."""
    settings = settings_from(ctx)
    event_list = [e.strip() for e in events.split(",") if e.strip()]

    async def go(db: Database) -> tuple[str, int]:
        client = _client(settings)
        try:
            created = await client.create_webhook_endpoint(url, event_list, description)
        finally:
            await client.aclose()
        store = SecretStore(db, load_secret_box(settings))
        secret_id = await store.add(
            created["secret"], source="endpoint", label=f"endpoint {created['id']}"
        )
        return str(created["id"]), secret_id

    endpoint_id, secret_id = run(_with_db(settings, go))
    click.echo(f"registered {endpoint_id}; its signing secret is in the keyring as #{secret_id}")


@endpoint.command("rotate")
@click.argument("endpoint_id")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    help="How long the previous secret keeps verifying (0 = stop at once).",
)
@click.pass_context
def endpoint_rotate(ctx: click.Context, endpoint_id: str, grace: str) -> None:
    """Rotate ENDPOINT_ID's signing secret; the old one expires after --grace."""
    settings = settings_from(ctx)
    grace_s = parse_duration(grace)

    async def go(db: Database) -> tuple[int, list[int]]:
        client = _client(settings)
        try:
            rotated = await client.rotate_webhook_secret(endpoint_id)
        finally:
            await client.aclose()
        store = SecretStore(db, load_secret_box(settings))
        return await store.replace(
            rotated["secret"], label=f"endpoint {endpoint_id}", grace=timedelta(seconds=grace_s)
        )

    new_id, expiring = run(_with_db(settings, go))
    click.echo(
        f"new secret stored as #{new_id}; previous "
        + (
            f"#{', #'.join(map(str, expiring))} expire in {grace}"
            if expiring
            else "secret not found by label: retire it yourself with `secrets retire`"
        )
    )


@cli.group()
def archive() -> None:
    """Inspect the archive of outputs."""


@archive.command("verify")
@click.pass_context
def archive_verify(ctx: click.Context) -> None:
    """Re-hash every archived blob; exit 1 if any is missing or corrupt."""
    from storage.blobs import BlobStore

    settings = settings_from(ctx)
    blobs = BlobStore.from_url(settings.media_url)

    async def verify(db: Database) -> tuple[int, int, list[str]]:
        async with db.read() as conn:
            rows = await gateway.archived_blobs(conn)
        problems: list[str] = []
        total = 0
        with click.progressbar(rows, label="verifying", file=sys.stderr) as bar:
            for row in bar:
                problem = await _check_blob(blobs, row.sha256, row.size)
                total += row.size or 0
                if problem:
                    problems.append(f"{row.sha256} (e.g. {row.job_id}): {problem}")
        return len(rows), total, problems

    count, total, problems = run(_with_db(settings, verify))
    for problem in problems:
        click.echo(problem)
    click.echo(
        f"checked {count} blobs ({total} bytes) in {blobs.describe()}: "
        f"{len(problems)} missing or corrupt"
    )
    if problems:
        raise SystemExit(1)


async def _check_blob(blobs: Any, sha256: str, size: int | None) -> str | None:
    from storage.blobs import BlobNotFound

    try:
        actual = await blobs.rehash(sha256)
        info = await blobs.head(sha256)
    except BlobNotFound:
        return "missing"
    if actual != sha256:
        return f"corrupt: content hashes to {actual}"
    if info is not None and size is not None and info.size != size:
        return f"size {info.size}, expected {size}"
    return None


@cli.command()
@click.option("--port", default=8000, show_default=True, help="Receiver port (or a free one).")
@click.option("--simulator-port", default=8900, show_default=True)
@click.pass_context
def demo(ctx: click.Context, port: int, simulator_port: int) -> None:
    """Run the simulator and the receiver together on loopback with a mixed workload."""
    from receiver.demo import run_demo

    configure_logging(level=logging.WARNING)
    run_demo(settings_from(ctx).data_dir / "demo", port, simulator_port)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _attach_simulator() -> None:
    from simulator import simulate

    cli.add_command(simulate)


_attach_simulator()
cli.add_command(spend)


def main() -> None:
    cli(prog_name="aurous-receiver")
