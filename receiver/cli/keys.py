"""The webhook keyring and the Aurous endpoint: secrets, endpoint register/rotate."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from receiver.cli.common import Columns, run, settings_from, table_command, when, with_db
from receiver.settings import Settings, parse_duration

if TYPE_CHECKING:  # imported by the commands themselves, so that --help starts quickly
    from receiver.webhooks.keyring import Secret, SecretStore
    from storage.db import Database
    from storage.records import SecretRecord

__all__ = ["endpoint", "secrets"]


@click.group()
def secrets() -> None:
    """Manage the webhook keyring."""


async def _secret_store(db: Database, settings: Settings) -> SecretStore:
    """The keyring of a database known to be migrated. The master key is read (made, the first
    time) only now, so that a command failing before this point leaves no key file behind."""
    from receiver.runtime import load_secret_box
    from receiver.webhooks.keyring import SecretStore

    return SecretStore(db, await load_secret_box(db, settings))


def _with_secrets(settings: Settings, action: Any) -> Any:
    async def go(db: Database) -> Any:
        return await action(await _secret_store(db, settings))

    return run(with_db(settings, go))


@secrets.command("add")
@click.argument("secret")
@click.option("--expires-in", help="Stop trusting it after this long, e.g. 24h or 7d.")
@click.option("--label", help="A note for operators.")
@click.pass_context
def secrets_add(ctx: click.Context, secret: str, expires_in: str | None, label: str | None) -> None:
    """Trust SECRET for webhook signatures (use - to read it from stdin)."""
    from receiver.webhooks.keyring import validate_secret
    from storage.types import utcnow

    if secret == "-":
        secret = sys.stdin.readline().strip()
    secret = validate_secret(secret)  # before anything is written
    expires_at = utcnow() + timedelta(seconds=parse_duration(expires_in)) if expires_in else None
    secret_id = _with_secrets(
        settings_from(ctx),
        lambda store: store.add(secret, source="cli", label=label, expires_at=expires_at),
    )
    click.echo(f"added secret {secret_id}")


_SECRET_COLUMNS: Columns[Secret] = (
    ("ID", lambda s: str(s.id)),
    ("STATE", lambda s: s.state),
    ("PREVIEW", lambda s: s.preview),
    ("SOURCE", lambda s: s.source),
    ("EXPIRES", lambda s: when(s.expires_at)),
    ("LAST MATCHED", lambda s: when(s.last_matched_at)),
    ("MATCHES", lambda s: str(s.match_count)),
    ("LABEL", lambda s: s.label or ""),
)


table_command(
    secrets,
    "Show every secret: preview, state, expiry, last match.",
    _SECRET_COLUMNS,
    lambda settings: _with_secrets(settings, lambda store: store.list()),
)


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


def _endpoint_label(endpoint_id: str, url: str | None) -> str:
    """How the keyring names an endpoint's secret: `endpoint we_… https://…` (the URL is how a
    second registration of it is noticed; labels written before had no URL)."""
    return f"endpoint {endpoint_id} {url}" if url else f"endpoint {endpoint_id}"


def _label_parts(secret: SecretRecord) -> tuple[str, str | None] | None:
    """(endpoint id, URL or None) of an endpoint's secret, None for other secrets."""
    parts = (secret.label or "").split(" ", 2)
    if secret.source != "endpoint" or len(parts) < 2 or parts[0] != "endpoint":
        return None
    return parts[1], parts[2] if len(parts) == 3 else None


async def _stored_secrets(db: Database) -> list[SecretRecord]:
    from storage import gateway

    return await db.read(gateway.list_secrets)


@endpoint.command("register", short_help="Register URL at Aurous; keep its secret in the keyring.")
@click.argument("url")
@click.option("--events", default="*", help="Comma-separated event types; * (all) by default.")
@click.option("--description", default="aurous-receiver", show_default=True)
@click.option(
    "--force",
    is_flag=True,
    help="Register URL although it is registered already (Aurous then sends it every event "
    "once per registration).",
)
@click.pass_context
def endpoint_register(
    ctx: click.Context, url: str, events: str, description: str, force: bool
) -> None:
    """Register URL at Aurous and store its signing secret in the keyring."""
    settings = settings_from(ctx)
    event_list = [e.strip() for e in events.split(",") if e.strip()]

    async def go(db: Database) -> tuple[str, int]:
        store = await _secret_store(db, settings)  # before Aurous makes a secret to keep
        client = _client(settings)
        try:
            if not force:
                for stored in await _stored_secrets(db):
                    known = _label_parts(stored)
                    if known is not None and known[1] == url:
                        raise click.ClickException(
                            f"{url} is already registered as {known[0]} (keyring secret "
                            f"#{stored.id}); add --force to register it again"
                        )
            created = await client.create_webhook_endpoint(url, event_list, description)
        finally:
            await client.aclose()
        secret_id = await store.add(
            created["secret"], source="endpoint", label=_endpoint_label(str(created["id"]), url)
        )
        return str(created["id"]), secret_id

    endpoint_id, secret_id = run(with_db(settings, go))
    click.echo(f"registered {endpoint_id}; its signing secret is in the keyring as #{secret_id}")


@endpoint.command("rotate", short_help="Rotate an endpoint's secret; the old one expires later.")
@click.argument("endpoint_id")
@click.option("--grace", default="24h", help="How long the old secret verifies (24h; 0: stop).")
@click.pass_context
def endpoint_rotate(ctx: click.Context, endpoint_id: str, grace: str) -> None:
    """Rotate ENDPOINT_ID's signing secret; the old one expires after --grace."""
    settings = settings_from(ctx)
    grace_s = parse_duration(grace)

    async def go(db: Database) -> tuple[int, list[int]]:
        store = await _secret_store(db, settings)  # before Aurous makes a secret to keep
        client = _client(settings)
        try:
            # The new secret takes the label of the endpoint's newest one, URL included.
            urls = [
                known[1]
                for known in map(_label_parts, await _stored_secrets(db))
                if known is not None and known[0] == endpoint_id
            ]
            rotated = await client.rotate_webhook_secret(endpoint_id)
        finally:
            await client.aclose()
        label = _endpoint_label(endpoint_id, urls[-1] if urls else None)
        return await store.replace(rotated["secret"], label=label, grace=timedelta(seconds=grace_s))

    new_id, expiring = run(with_db(settings, go))
    click.echo(
        f"new secret stored as #{new_id}; previous "
        + (
            f"#{', #'.join(map(str, expiring))} expire in {grace}"
            if expiring
            else "secret not found by label: retire it yourself with `secrets retire`"
        )
    )
