"""The `aurous-receiver` command line, one module per group of commands."""

from receiver.cli.main import cli, main

__all__ = ["cli", "main"]
