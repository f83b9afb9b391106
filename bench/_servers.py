"""The two servers bench/ingest.py compares, run the same way: uvicorn, one process."""

from __future__ import annotations

import sys

import uvicorn
from litestar import Litestar, Request, post

from receiver.settings import Settings
from receiver.web.app import create_app


@post("/bare", status_code=204)
async def bare(request: Request) -> None:  # type: ignore[type-arg]
    await request.body()


@post("/healthz", status_code=204)
async def bare_health() -> None:
    return None


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    app = create_app(Settings.from_env()) if kind == "receiver" else Litestar([bare, bare_health])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
