"""The webhook keyring and the Aurous endpoint: secrets, endpoint register/rotate."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import click

from receiver.cli.common import (
    print_table,
    run,
    settings_from,
    when,
    with_db,
)
from receiver.runtime import load_secret_box
from receiver.settings import Settings, parse_duration
from receiver.webhooks.keyring import SecretStore
from storage.db import Database
from storage.types import utcnow

__all__ = ["endpoint", "secrets"]


@click.group()
def secrets() -> None:
    """Manage the webhook keyring."""


def _with_secrets(settings: Settings, action: Any) -> Any:
    box = load_secret_box(settings)
    return run(with_db(settings, lambda db: action(SecretStore(db, box))))


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
            when(s.expires_at),
            when(s.last_matched_at),
            str(s.match_count),
            s.label or "",
        )
        for s in rows
    ]
    print_table(table)


@secrets.command("retire")
@click.argument("secret_id", type=int)
@click.pass_context
def secrets_retire(ctx: click.Context, secret_id: int) -> None:
    """Stop trusting secret SECRET_ID now."""
    _with_secrets(settings_from(ctx), lambda store: store.retire(secret_id))
    click.echo(f"retired secret {secret_id}")


@click.group()
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
@click.option("--events", default="*", help="Comma-separated event types; * (all) by default.")
@click.option("--description", default="aurous-receiver", show_default=True)
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

    endpoint_id, secret_id = run(with_db(settings, go))
    click.echo(f"registered {endpoint_id}; its signing secret is in the keyring as #{secret_id}")


@endpoint.command("rotate")
@click.argument("endpoint_id")
@click.option("--grace", default="24h", help="How long the old secret verifies (24h; 0: stop).")
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

    new_id, expiring = run(with_db(settings, go))
    click.echo(
        f"new secret stored as #{new_id}; previous "
        + (
            f"#{', #'.join(map(str, expiring))} expire in {grace}"
            if expiring
            else "secret not found by label: retire it yourself with `secrets retire`"
        )
    )
