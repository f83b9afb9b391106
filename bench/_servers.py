"""The servers the benchmarks run, each the same way: uvicorn, one process.

- `bare`: a Litestar endpoint that reads the body and answers 204 (bench/ingest.py's baseline);
- `destination`: the customer's app as bench/relay.py sees it: answers every push at once and
  notes when each `webhook-id` arrived; it also serves small output files for the archiver.
"""

from __future__ import annotations

import sys
import time

import uvicorn
from litestar import Litestar, Request, Response, get, post

from receiver.settings import Settings
from receiver.web.app import create_app

_arrivals: list[tuple[str, float]] = []
_OUTPUT = bytes(range(256)) * 4


@post("/bare", status_code=204)
async def bare(request: Request) -> None:  # type: ignore[type-arg]
    await request.body()


@post("/healthz", status_code=204)
async def bare_health() -> None:
    return None


@post("/hooks", status_code=204)
async def hook(request: Request) -> None:  # type: ignore[type-arg]
    await request.body()
    _arrivals.append((request.headers.get("webhook-id", ""), time.time()))


@get("/arrivals")
async def arrivals() -> list[tuple[str, float]]:
    return _arrivals


@get("/count")
async def count() -> int:
    return len(_arrivals)


@post("/reset", status_code=204)
async def reset() -> None:
    _arrivals.clear()


@get("/o/{name:str}")
async def output(name: str) -> Response[bytes]:
    return Response(_OUTPUT, media_type="image/png")


@get("/healthz")
async def health() -> str:
    return "ok"


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "receiver":
        app = create_app(Settings.from_env())
    elif kind == "destination":
        app = Litestar([hook, arrivals, count, reset, output, health])
    else:
        app = Litestar([bare, bare_health])
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
