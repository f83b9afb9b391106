"""A PostgreSQL server for the tests: RECEIVER_TEST_DATABASE_URL, else the machine's server on
127.0.0.1:5432, else a private cluster started as a non-root user on loopback and stopped at
the end. Outside CI, with none of these, PostgreSQL tests are skipped and the reason printed."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class PostgresServer:
    admin_url: str  # a database we may connect to in order to create and drop others
    stop_command: list[str] | None = None
    data_dir: Path | None = None

    def url_for(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def stop(self) -> None:
        if self.stop_command:
            subprocess.run(self.stop_command, check=False, capture_output=True, timeout=60)
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


async def _reachable(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _is_reachable(url: str) -> bool:
    return asyncio.run(_reachable(url))


def find_postgres() -> tuple[PostgresServer | None, str]:
    """A server, or None and the reason there is none."""
    explicit = os.environ.get("RECEIVER_TEST_DATABASE_URL")
    if explicit:
        url = explicit.replace("postgresql+asyncpg://", "postgresql://")
        if _is_reachable(url):
            return PostgresServer(url), ""
        return None, f"RECEIVER_TEST_DATABASE_URL={explicit} is not reachable"
    if _is_reachable(DEFAULT_URL):
        return PostgresServer(DEFAULT_URL), ""
    if _start_system_cluster() and _is_reachable(DEFAULT_URL):
        return PostgresServer(DEFAULT_URL), ""
    return _start_private_cluster()


def _start_system_cluster() -> bool:
    versions = glob.glob("/etc/postgresql/*")
    if os.geteuid() != 0 or not versions or not shutil.which("pg_ctlcluster"):
        return False
    version = os.path.basename(sorted(versions)[-1])
    result = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    time.sleep(1)
    return result.returncode == 0


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_private_cluster() -> tuple[PostgresServer | None, str]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        return None, "no PostgreSQL reachable and no initdb/pg_ctl to start one"
    user = pwd.getpwuid(os.getuid()).pw_name if os.geteuid() != 0 else "nobody"
    data_dir = Path(tempfile.mkdtemp(prefix="receiver-pg-"))
    as_user = [] if os.geteuid() != 0 else ["runuser", "-u", user, "--"]
    if os.geteuid() == 0:
        shutil.chown(data_dir, user)
    port = _free_port()
    steps = [
        [*as_user, initdb, "-D", str(data_dir / "db"), "-U", "postgres", "--auth=trust", "-N"],
        [
            *as_user,
            pg_ctl,
            "-D",
            str(data_dir / "db"),
            "-l",
            str(data_dir / "log"),
            "-w",
            "start",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {data_dir} -F",
        ],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, timeout=120, check=False)
        if result.returncode != 0:
            shutil.rmtree(data_dir, ignore_errors=True)
            return None, f"could not start a private PostgreSQL: {result.stderr.decode()[-300:]}"
    stop = [*as_user, pg_ctl, "-D", str(data_dir / "db"), "-m", "immediate", "stop"]
    return PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", stop, data_dir), ""
