"""An idle receiver's memory is mostly its imports (bench/idle.py): what serving does not need
is not loaded. Alembic only when the schema must be upgraded, and then in a child process of
`serve`; aiohttp only at the first push; Jinja at the first dashboard page; obstore at the
first read or write of the archive; httpx's command-line client and uvicorn's file-watching
reloader never."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from storage.migrate import alembic_config, head_revision
from tests.conftest import ADMIN_TOKEN, MASTER_KEY, TEST_SECRET

# Loaded by nothing an idle server does (what loads each one instead: the module docstring).
NOT_AT_IDLE = (
    "alembic",
    "mako",
    "aiohttp",
    "jinja2",
    "markupsafe",
    "obstore",
    "rich",
    "pygments",
    "watchfiles",
)

# The app built and started (database open, background ticks run once), then stopped; then
# the top-level packages it loaded.
_STARTED = """
import asyncio, json, sys
from receiver.settings import Settings
from receiver.web.app import create_app

async def main() -> None:
    app = create_app(Settings.from_env())
    async with app.lifespan():
        await asyncio.sleep(1)

asyncio.run(main())
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""

# serve's schema step on the database named in argv, then: at head? alembic loaded here?
_SERVE_MIGRATES = """
import asyncio, json, sys
from pathlib import Path
from receiver.cli.service import _migrate
from receiver.settings import Settings
from storage.migrate import head_revision

revision = asyncio.run(_migrate(Settings(data_dir=Path(sys.argv[1])), in_child=True))
print(json.dumps([revision == head_revision(), "alembic" in sys.modules]))
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _receiver_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without the caller's receiver settings, plus a complete set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECEIVER_", "AUROUS_"))}
    return env | {
        "RECEIVER_DATA_DIR": str(data_dir),
        "RECEIVER_ADMIN_TOKEN": ADMIN_TOKEN,
        "RECEIVER_MASTER_KEY": MASTER_KEY,
        "AUROUS_WEBHOOK_SECRET": TEST_SECRET,
        **extra,
    }


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_the_app_loads_none_of_what_only_some_work_needs() -> None:
    probe = (
        "import json, sys, receiver.web.app, receiver.runtime; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(json.loads(_python(probe)))
    assert loaded.isdisjoint(NOT_AT_IDLE), sorted(loaded & set(NOT_AT_IDLE))


def test_a_started_app_loads_none_of_what_only_some_work_needs(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = _receiver_env(tmp_path, RECEIVER_DATABASE_URL=sqlite_url)
    loaded = set(json.loads(_python(_STARTED, env=env)))
    not_on_sqlite = (*NOT_AT_IDLE, "sqlalchemy.dialects.postgresql")
    assert loaded.isdisjoint(not_on_sqlite), sorted(loaded & set(not_on_sqlite))


def test_serve_upgrades_the_schema_in_a_child_process(tmp_path: Path) -> None:
    at_head, alembic_here = json.loads(_python(_SERVE_MIGRATES, str(tmp_path)))
    assert at_head
    assert not alembic_here


def test_an_upgrade_that_fails_in_serves_child_fails_serve_as_it_fails_migrate(
    tmp_path: Path,
) -> None:
    with sqlite3.connect(tmp_path / "receiver.db") as conn:  # at a revision no file knows
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('gone')")
    env = _receiver_env(tmp_path)
    answers = [
        subprocess.run(
            [sys.executable, "-m", "receiver", *command],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        for command in (["migrate"], ["serve", "--port", "0"])
    ]
    migrate, serve = ((a.returncode, a.stderr.strip().splitlines()[-1]) for a in answers)
    assert migrate == (1, "Error: Can't locate revision identified by 'gone'")
    assert serve == migrate
