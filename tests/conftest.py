"""Shared fixtures: real databases (a migrated template cloned per test, on SQLite and on
PostgreSQL), settings pointing at a per-test data dir, and an in-process app client."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from receiver.settings import Settings
from receiver.web.app import create_app
from storage.db import Database
from storage.migrate import upgrade
from tests.support.postgres import PostgresServer, find_postgres

TEST_SECRET = "whsec_test_8jKpQ4nXabc1234abcdef567890"
ADMIN_TOKEN = "test-admin-token-0123456789abcdefghij"
MASTER_KEY = "q0tJp3xN1W8j2f7Yb6cVd5eRt4sAz3qQwLkMnBvCx1o="
IN_CI = bool(os.environ.get("CI"))


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server, reason = find_postgres()
    if server is None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {reason}")
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer) -> Iterator[str]:
    name = f"receiver_tmpl_{os.getpid()}"
    asyncio.run(_admin(postgres, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    asyncio.run(_migrate(postgres.url_for(name).replace("postgresql://", "postgresql+asyncpg://")))
    yield name
    asyncio.run(_admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(server: PostgresServer, *statements: str) -> None:
    conn = await asyncpg.connect(server.admin_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test, on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "receiver.db"
        shutil.copy(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"receiver_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    yield server.url_for(name).replace("postgresql://", "postgresql+asyncpg://")
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(postgres: PostgresServer, postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test (replica tests)."""
    name = f"receiver_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres, f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    yield postgres.url_for(name).replace("postgresql://", "postgresql+asyncpg://")
    asyncio.run(_admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "receiver.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def make_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "master_key": MASTER_KEY,
        "bootstrap_secrets": (TEST_SECRET,),
        "background": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", db_url)


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AsyncTestClient[object]]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield test_client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[object]]:
    async with admin_client(settings) as test_client:
        yield test_client


@pytest.fixture
def sqlite_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    """For behaviour that is the same statement on both databases, or only exists on SQLite
    (the database file inside the data dir)."""
    return make_settings(tmp_path / "data", sqlite_url)


@pytest.fixture
async def sqlite_client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[object]]:
    async with admin_client(sqlite_settings) as test_client:
        yield test_client
