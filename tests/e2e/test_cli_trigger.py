"""`aurous-receiver trigger` against a real receiver on loopback: a signed synthetic delivery is
accepted, the same event id again is a duplicate, and every failure is one line."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from click.testing import CliRunner, Result

from receiver.cli import cli
from receiver.settings import Settings
from receiver.web.app import create_app
from receiver.webhooks.synthetic import EVENT_TYPES
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.support.harness import free_port, settings_env
from tests.support.live_server import live_server

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NEWER_SECRET = "whsec_trigger_newer_Q4nXabc1234abcdef"


def _cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=settings_env(settings))


def _one_error_line(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_a_triggered_event_is_accepted_then_a_duplicate(sqlite_settings: Settings) -> None:
    with live_server(create_app(sqlite_settings)) as server:
        trigger = ("trigger", "image.completed", "--url", server.url)
        first = _cli(sqlite_settings, *trigger, "--event-id", "evt_try")
        again = _cli(sqlite_settings, *trigger, "--event-id", "evt_try")
        named = _cli(sqlite_settings, *trigger, "--job-id", "img_try1")
        job = httpx.get(f"{server.url}/jobs/img_try1", headers=AUTH).json()

        assert _cli(sqlite_settings, "secrets", "add", NEWER_SECRET).exit_code == 0
        time.sleep(0.5)  # the receiver rereads its keyring on a miss at most every 0.25 s
        newest = _cli(sqlite_settings, "trigger", "video.failed", "--url", server.url)
        deliveries = httpx.get(f"{server.url}/deliveries", headers=AUTH).json()["data"]
        secrets = httpx.get(f"{server.url}/secrets", headers=AUTH).json()["data"]

    assert first.exit_code == 0, first.output
    assert first.output.startswith("accepted (HTTP 200): image.completed evt_try about img_")
    assert again.exit_code == 0, again.output
    assert again.output == first.output.replace("accepted", "duplicate")  # the same job, too
    assert named.exit_code == 0, named.output
    assert named.output.endswith(" about img_try1\n")
    assert job["status"] == "succeeded" and job["kind"] == "image"
    assert newest.exit_code == 0, newest.output
    assert newest.output.startswith("accepted (HTTP 200): video.failed evt_")
    newer_id = next(s["id"] for s in secrets if s["preview"].startswith("whsec_tri"))
    assert deliveries[0]["secret_id"] == newer_id  # signed with the newest secret
    assert all(d["synthetic"] for d in deliveries)


def test_every_event_type_is_accepted(sqlite_settings: Settings) -> None:
    with live_server(create_app(sqlite_settings)) as server:
        results = {
            event_type: _cli(sqlite_settings, "trigger", event_type, "--url", server.url)
            for event_type in EVENT_TYPES
        }
    for event_type, result in results.items():
        assert result.exit_code == 0, (event_type, result.output)
        assert result.output.startswith(f"accepted (HTTP 200): {event_type} evt_"), result.output


def test_without_a_secret_it_says_how_to_add_one(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path / "data", sqlite_url, bootstrap_secrets=())

    url = f"http://127.0.0.1:{free_port()}"

    result = _cli(settings, "trigger", "image.completed", "--url", url)

    assert result.exit_code == 1
    assert "`aurous-receiver secrets add whsec_…`" in _one_error_line(result)


def test_an_unknown_event_type_is_one_line_naming_the_known_ones(
    sqlite_settings: Settings,
) -> None:
    result = _cli(sqlite_settings, "trigger", "image.done")

    assert result.exit_code == 2
    line = _one_error_line(result)
    assert all(f"'{event_type}'" in line for event_type in EVENT_TYPES), line


def test_a_receiver_that_does_not_answer_is_one_line(sqlite_settings: Settings) -> None:
    assert _cli(sqlite_settings, "secrets", "add", NEWER_SECRET).exit_code == 0
    url = f"http://127.0.0.1:{free_port()}"

    result = _cli(sqlite_settings, "trigger", "image.completed", "--url", url)

    assert result.exit_code == 1
    assert f"no answer from {url}/webhooks/aurous" in _one_error_line(result)


def test_a_receiver_that_does_not_trust_the_secret_is_an_error(
    tmp_path: Path, sqlite_settings: Settings, sqlite_template: Path
) -> None:
    other = tmp_path / "other.db"
    other.write_bytes(sqlite_template.read_bytes())
    elsewhere = make_settings(tmp_path / "other", f"sqlite+aiosqlite:///{other}")
    assert _cli(elsewhere, "secrets", "add", NEWER_SECRET).exit_code == 0
    with live_server(create_app(sqlite_settings)) as server:
        result = _cli(elsewhere, "trigger", "image.completed", "--url", server.url)

    assert result.exit_code == 1
    assert "HTTP 401" in _one_error_line(result)
    assert "no_matching_signature" in result.output
