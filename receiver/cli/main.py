"""The `aurous-receiver` command. Errors are one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os

import click

from receiver.cli.archive import archive
from receiver.cli.common import ReceiverGroup
from receiver.cli.jobs import jobs_group
from receiver.cli.keys import endpoint, secrets
from receiver.cli.relay import destinations, events
from receiver.cli.service import demo, migrate, serve, sync
from receiver.cli.spend import spend
from receiver.settings import Settings
from storage.private import PRIVATE_UMASK

__all__ = ["cli", "main"]


@click.group(cls=ReceiverGroup)
@click.version_option(package_name="aurous-receiver")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Receive, track, archive and audit Aurous Labs generation jobs."""
    os.umask(PRIVATE_UMASK)  # what any command writes is its user's only
    ctx.obj = Settings.from_env()


def _attach() -> None:
    from simulator import simulate

    for command in (
        serve,
        migrate,
        sync,
        demo,
        secrets,
        endpoint,
        jobs_group,
        archive,
        spend,
        destinations,
        events,
        simulate,
    ):
        cli.add_command(command)


_attach()


def main() -> None:
    cli(prog_name="aurous-receiver")
