"""Clear command-line errors: a wrong choice is one line naming the right ones, and a command
that fails leaves no file behind (no empty database, no master key)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from receiver.cli import cli
from storage.states import JobKind, JobStatus
from tests.conftest import TEST_SECRET

SECRET = "whsec_cli_Q4nXabc1234abcdef567890"


def _cli(data_dir: Path, *args: str, database_url: str | None = None) -> Result:
    """The CLI with only these settings: a data dir, its own database and master key files."""
    env = {
        "RECEIVER_DATA_DIR": str(data_dir),
        "RECEIVER_DATABASE_URL": database_url,
        "RECEIVER_MEDIA_URL": None,
        "RECEIVER_MASTER_KEY": None,
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
