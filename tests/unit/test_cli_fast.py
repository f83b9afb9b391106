"""The command line starts quickly: importing it, and showing any command's help, loads none of
the service's heavy libraries; and its command list reads as whole sentences."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from receiver.cli import cli
from receiver.cli.spend import GROUPINGS
from receiver.spend.reports import GROUPINGS as REPORT_GROUPINGS

HEAVY = (
    "litestar",
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "httpx",
    "aiohttp",
    "obstore",
    "apscheduler",
    "uvicorn",
)
COMMANDS = {
    "serve",
    "migrate",
    "sync",
    "demo",
    "secrets",
    "endpoint",
    "trigger",
    "jobs",
    "archive",
    "spend",
    "destinations",
    "events",
    "simulate",
}

# Shows the help of every command and subcommand in one fresh interpreter, then names the
# heavy packages that got imported (a name marked missing in sys.modules, None, is not loaded:
# receiver/__init__.py).
_EVERY_HELP = """
import contextlib, io, json, sys
import click
from receiver.cli import cli

def paths(group, prefix):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield [*prefix, name]
        if isinstance(command, click.Group):
            yield from paths(command, [*prefix, name])

shown = []
for path in [[], *paths(cli, [])]:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        cli.main([*path, "--help"], prog_name="aurous-receiver", standalone_mode=False)
    shown.append(" ".join(path) if "Usage:" in out.getvalue() else "NO HELP: " + " ".join(path))
loaded = {name.split(".")[0] for name, module in sys.modules.items() if module is not None}
heavy = sorted(loaded & set(sys.argv[1:]))
print(json.dumps({"shown": shown, "heavy": heavy}))
"""


def _fresh_python(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = (
        "import json, receiver.cli, sys; "
        "print(json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))"
    )
    imported = {name.split(".")[0] for name in json.loads(_fresh_python(code))}
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))


def test_every_commands_help_imports_no_heavy_library() -> None:
    report = json.loads(_fresh_python(_EVERY_HELP, *HEAVY))
    shown = report["shown"]
    assert not [line for line in shown if line.startswith("NO HELP")], shown
    assert {"jobs list", "secrets add", "endpoint register", "spend report", "simulate"} <= set(
        shown
    )
    assert report["heavy"] == []


def _command_lines(help_text: str) -> dict[str, str]:
    """Each listed command with its description, wrapped lines joined."""
    listed: dict[str, str] = {}
    section = help_text.split("Commands:\n", 1)[1]
    name = ""
    for line in section.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and line.strip():
            name, _, text = line.strip().partition(" ")
            listed[name] = text.strip()
        elif line.strip() and name:
            listed[name] += " " + line.strip()
    return listed


@pytest.mark.parametrize("width", [80, 50])
def test_the_command_list_gives_each_command_a_whole_sentence(width: int) -> None:
    result = CliRunner().invoke(cli, ["--help"], terminal_width=width)
    assert result.exit_code == 0, result.output
    listed = _command_lines(result.output)
    assert set(listed) == COMMANDS
    for name, text in listed.items():
        assert text.endswith(".") and not text.endswith("..."), (name, text)
        assert text[0].isupper(), (name, text)


def test_spend_report_offers_every_grouping_the_reports_know() -> None:
    assert GROUPINGS == REPORT_GROUPINGS
