"""Clear command-line errors: a wrong choice is one line naming the right ones, and a command
that fails leaves no file behind (no empty database, no master key)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from click.testing import CliRunner, Result

from receiver.cli import cli
from receiver.runtime import load_secret_box
from receiver.webhooks.keyring import SecretStore
from storage.crypto import SecretBox
from storage.db import Database
from storage.states import JobKind, JobStatus
from tests.conftest import TEST_SECRET, make_settings

SECRET = "whsec_cli_Q4nXabc1234abcdef567890"
OTHER_SECRET = "whsec_other_Q4nXabc1234abcdef5678"


def _cli(
    data_dir: Path, *args: str, database_url: str | None = None, master_key: str | None = None
) -> Result:
    """The CLI with only these settings: a data dir, its own database and master key files."""
    env = {
        "RECEIVER_DATA_DIR": str(data_dir),
        "RECEIVER_DATABASE_URL": database_url,
        "RECEIVER_MEDIA_URL": None,
        "RECEIVER_MASTER_KEY": master_key,
        "RECEIVER_ADMIN_TOKEN": None,
        "AUROUS_WEBHOOK_SECRET": None,
        "AUROUS_API_KEY": None,
    }
    return CliRunner().invoke(cli, list(args), env=env)


def _one_error_line(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_an_unknown_status_or_kind_is_one_line_naming_the_choices(
    tmp_path: Path, sqlite_url: str
) -> None:
    status = _cli(tmp_path, "jobs", "list", "--status", "bogus", database_url=sqlite_url)
    kind = _cli(tmp_path, "jobs", "list", "--kind", "bogus", database_url=sqlite_url)
    known = _cli(tmp_path, "jobs", "list", "--status", "succeeded", database_url=sqlite_url)

    assert status.exit_code == 2
    line = _one_error_line(status)
    assert "'bogus'" in line and all(f"'{s.value}'" in line for s in JobStatus), line
    assert kind.exit_code == 2
    line = _one_error_line(kind)
    assert all(f"'{k.value}'" in line for k in JobKind), line
    assert known.exit_code == 0, known.output
    assert known.output.startswith("ID ")


def test_a_command_run_before_migrate_creates_no_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for command in (
        ("secrets", "add", SECRET),
        ("secrets", "list"),
        ("jobs", "list"),
        ("destinations", "list"),
        ("archive", "verify"),
        ("sync",),
    ):
        result = _cli(data_dir, *command)
        assert result.exit_code == 1, (command, result.output)
        assert "run `aurous-receiver migrate`" in _one_error_line(result)
        assert _files_under(tmp_path) == [], command

    assert _cli(data_dir, "migrate").exit_code == 0
    added = _cli(data_dir, "secrets", "add", SECRET)
    assert added.exit_code == 0, added.output
    assert added.output.startswith("added secret ")
    assert (data_dir / "master.key").exists()
    listed = _cli(data_dir, "secrets", "list")
    assert listed.exit_code == 0, listed.output
    assert "active" in listed.output and "whsec_cli…7890" in listed.output


def test_a_refused_secret_creates_no_master_key(tmp_path: Path, sqlite_url: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    result = _cli(data_dir, "secrets", "add", "short", database_url=sqlite_url)

    assert result.exit_code == 1
    assert "8 to 512 printable characters" in _one_error_line(result)
    assert not (data_dir / "master.key").exists()


def test_a_secret_added_twice_is_refused_in_one_line(tmp_path: Path, sqlite_url: str) -> None:
    data_dir = tmp_path / "data"
    assert _cli(data_dir, "secrets", "add", TEST_SECRET, database_url=sqlite_url).exit_code == 0

    again = _cli(data_dir, "secrets", "add", TEST_SECRET, database_url=sqlite_url)

    assert again.exit_code == 1
    assert "already in the keyring" in _one_error_line(again)


def test_a_master_key_other_than_the_databases_is_refused_before_anything_is_sealed(
    tmp_path: Path,
) -> None:
    """A shell without the service's RECEIVER_MASTER_KEY would seal a secret no one can open,
    and the service could then verify no webhook at all."""
    data_dir = tmp_path / "data"
    other_key = "A" * 43
    assert _cli(data_dir, "migrate").exit_code == 0
    assert _cli(data_dir, "secrets", "add", SECRET).exit_code == 0

    for command in (
        ("secrets", "add", "whsec_other_Q4nXabc1234abcdef5678"),
        ("destinations", "add", "http://127.0.0.1:9/hook"),
        ("secrets", "list"),
    ):
        refused = _cli(data_dir, *command, master_key=other_key)
        assert refused.exit_code == 1, (command, refused.output)
        assert "is not the one this database's secrets are sealed with" in _one_error_line(refused)

    listed = _cli(data_dir, "secrets", "list")
    assert listed.exit_code == 0, listed.output
    assert len(listed.output.strip().splitlines()) == 2  # the header and the one secret
    destinations = _cli(data_dir, "destinations", "list")
    assert destinations.exit_code == 0 and "127.0.0.1:9" not in destinations.output


def test_a_database_sealed_before_the_key_check_is_checked_against_its_secrets(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    assert _cli(data_dir, "migrate").exit_code == 0
    assert _cli(data_dir, "secrets", "add", SECRET).exit_code == 0
    database = sqlite3.connect(data_dir / "receiver.db")
    with database:
        database.execute("DELETE FROM sync_state WHERE key = 'master_key_check'")
    database.close()

    refused = _cli(data_dir, "secrets", "list", master_key="A" * 43)
    assert refused.exit_code == 1
    assert "master key" in _one_error_line(refused)
    assert _cli(data_dir, "secrets", "list").exit_code == 0


def test_a_sync_without_an_api_key_makes_no_key_or_token_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert _cli(data_dir, "migrate").exit_code == 0
    before = _files_under(data_dir)
    for command in (("sync",), ("spend", "sync")):
        result = _cli(data_dir, *command)
        assert result.exit_code == 1, (command, result.output)
        assert "AUROUS_API_KEY is not set" in _one_error_line(result)
        assert _files_under(data_dir) == before, command


def test_a_number_beyond_any_clock_or_column_is_one_clear_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert _cli(data_dir, "migrate").exit_code == 0
    for command, said in (
        (("secrets", "add", SECRET, "--expires-in", "99999999999d"), "too long a duration"),
        (("events", "list", "--after", "9" * 23), "is not in the range"),
    ):
        result = _cli(data_dir, *command)
        assert result.exit_code != 0, command
        assert said in _one_error_line(result), command


def test_secrets_sealed_under_two_keys_by_an_earlier_release_are_left_out_and_retirable(
    tmp_path: Path,
) -> None:
    """What the release before this check could leave behind: the key that opens some of the
    secrets is kept, the others are left out of the keyring (not a 500 for every webhook)
    and can be retired."""
    data_dir = tmp_path / "data"
    assert _cli(data_dir, "migrate").exit_code == 0
    assert _cli(data_dir, "secrets", "add", SECRET).exit_code == 0
    url = f"sqlite+aiosqlite:///{data_dir / 'receiver.db'}"

    async def seal_under_another_key() -> None:
        db = Database(url)
        try:
            await SecretStore(db, SecretBox(b"\x01" * 32)).add(OTHER_SECRET, source="cli")
        finally:
            await db.dispose()

    asyncio.run(seal_under_another_key())
    database = sqlite3.connect(data_dir / "receiver.db")
    with database:
        database.execute("DELETE FROM sync_state WHERE key = 'master_key_check'")
    database.close()

    listed = _cli(data_dir, "secrets", "list")
    assert listed.exit_code == 0, listed.output
    assert len(listed.output.strip().splitlines()) == 3  # the header and both secrets

    async def active_ids() -> list[int | None]:
        db = Database(url)
        try:
            keyring = await SecretStore(db, await load_secret_box(db, settings)).reload()
        finally:
            await db.dispose()
        return [entry.secret_id for entry in keyring.active(time.time())]

    settings = make_settings(data_dir, url, master_key=None)
    assert asyncio.run(active_ids()) == [1]
    assert _cli(data_dir, "secrets", "retire", "2").exit_code == 0
