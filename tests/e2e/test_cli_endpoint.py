"""`aurous-receiver endpoint register` against the simulated Aurous: registering the same URL
again is refused in one line, before Aurous is asked, unless --force says it is meant."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from receiver.cli import cli
from receiver.settings import Settings
from tests.support.harness import receiver_settings, settings_env, start_simulator

URL = "http://127.0.0.1:9/webhooks/aurous"


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as resources:
        yield resources


def _cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=settings_env(settings))


def test_registering_a_url_twice_needs_force(
    stack: ExitStack, tmp_path: Path, sqlite_url: str
) -> None:
    sim = start_simulator(stack)
    settings = receiver_settings(tmp_path / "data", sqlite_url, sim, bootstrap_secrets=())

    first = _cli(settings, "endpoint", "register", URL)
    again = _cli(settings, "endpoint", "register", URL)
    endpoints_after_refusal = len(sim.truth()["endpoints"])
    forced = _cli(settings, "endpoint", "register", URL, "--force")
    other = _cli(settings, "endpoint", "register", "http://127.0.0.1:9/other")
    keyring = _cli(settings, "secrets", "list")

    assert first.exit_code == 0, first.output
    endpoint_id = first.output.split()[1].rstrip(";")
    assert again.exit_code == 1
    lines = again.output.strip().splitlines()
    assert lines == [
        f"Error: {URL} is already registered as {endpoint_id} (keyring secret #1); "
        "add --force to register it again"
    ]
    assert endpoints_after_refusal == 1
    assert forced.exit_code == 0, forced.output
    assert other.exit_code == 0, other.output
    assert len(sim.truth()["endpoints"]) == 3
    assert keyring.output.count("endpoint we_") == 3
