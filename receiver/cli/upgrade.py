"""`python -m receiver.cli.upgrade`: upgrade the database schema to head, in a process of its
own, for `serve` (`receiver.cli.service`).

Alembic and the migrations it runs take about 9 MiB that Python does not give back once
loaded: upgraded in the serving process, they would stay for its whole life (bench/idle.py).
Here they leave with the process. The serving process passes its database URL and log format
in the environment (RECEIVER_DATABASE_URL, RECEIVER_LOG_FORMAT); log lines go to stderr, as
the server's own; a failure is one line on stdout and exit status 1, which `serve` reports as
its own error.
"""

from __future__ import annotations

import asyncio
import os
import sys

__all__ = ["main"]


def main() -> int:
    from receiver.logs import configure_logging
    from storage.db import Database
    from storage.migrate import upgrade
    from storage.private import PRIVATE_UMASK

    async def go(url: str) -> None:
        db = Database(url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    os.umask(PRIVATE_UMASK)  # as in every command: what it writes is its user's only
    try:
        configure_logging(os.environ.get("RECEIVER_LOG_FORMAT", "text"))
        asyncio.run(go(os.environ["RECEIVER_DATABASE_URL"]))
    except Exception as exc:
        print(" ".join(str(exc).split()) or type(exc).__name__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
