"""The Alembic chain builds the whole schema on an empty database and matches the models
(`alembic upgrade head` then `alembic check`), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import _admin
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def alembic(url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", *args],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def check_chain(url: str) -> None:
    alembic(url, "upgrade", "head")
    assert "No new upgrade operations detected" in alembic(url, "check")
    alembic(url, "downgrade", "base")
    alembic(url, "upgrade", "head")


def test_sqlite_from_empty(tmp_path: Path) -> None:
    check_chain(f"sqlite+aiosqlite:///{tmp_path}/empty.db")


@pytest.mark.postgres
def test_postgresql_from_empty(postgres: PostgresServer) -> None:
    name = f"receiver_mig_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(postgres, f'CREATE DATABASE "{name}"'))
    try:
        check_chain(postgres.url_for(name).replace("postgresql://", "postgresql+asyncpg://"))
    finally:
        asyncio.run(_admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
