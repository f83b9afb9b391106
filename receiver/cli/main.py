"""The `aurous-receiver` command. Errors are one line and a non-zero exit, never a traceback.

Only this module, click and the settings are imported to show `--help`: each command's module
is imported when that command runs or shows its own help (`ReceiverGroup.lazy_commands`).
"""

from __future__ import annotations

import os

import click

from receiver.cli.common import LazyCommand, ReceiverGroup
from receiver.settings import Settings
from storage.private import PRIVATE_UMASK

__all__ = ["COMMANDS", "cli", "main"]

# Each command's line in `aurous-receiver --help`: a whole sentence that fits the list.
COMMANDS = {
    name: LazyCommand(import_path, short_help)
    for name, import_path, short_help in (
        ("serve", "receiver.cli.service:serve", "Run the HTTP service."),
        ("migrate", "receiver.cli.service:migrate", "Create or upgrade the database schema."),
        ("sync", "receiver.cli.service:sync", "Sweep, poll, repair and archive now."),
        ("demo", "receiver.cli.service:demo", "Run the simulator and the receiver together."),
        ("secrets", "receiver.cli.keys:secrets", "Add, list and retire webhook signing secrets."),
        ("endpoint", "receiver.cli.keys:endpoint", "Register or rotate your endpoint at Aurous."),
        ("trigger", "receiver.cli.trigger:trigger", "Send a signed test webhook to a receiver."),
        ("jobs", "receiver.cli.jobs:jobs_group", "List, show and track jobs."),
        ("archive", "receiver.cli.archive:archive", "Verify the archive of outputs."),
        ("spend", "receiver.cli.spend:spend", "Report credit spend and findings; audit now."),
        ("destinations", "receiver.cli.relay:destinations", "Manage where your app gets events."),
        ("events", "receiver.cli.relay:events", "List or replay the events told to your app."),
        ("simulate", "simulator.cli:simulate", "Run a simulated Aurous API with fault injection."),
    )
}


@click.group(cls=ReceiverGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="aurous-receiver")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Receive, track, archive and audit Aurous Labs generation jobs."""
    os.umask(PRIVATE_UMASK)  # what any command writes is its user's only
    ctx.obj = Settings.from_env()


def main() -> None:
    cli(prog_name="aurous-receiver")
