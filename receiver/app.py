"""`create_app(settings)`: the one place the service is wired together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from receiver.auth import require_admin
from receiver.http import exception_handlers, request_id_middleware
from receiver.routes import ADMIN_ROUTES, PUBLIC_ROUTES
from receiver.runtime import Runtime, open_runtime
from receiver.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def create_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.runtime = await open_runtime(settings)
        try:
            yield
        finally:
            await app.state.runtime.close()

    admin = Router(path="/", route_handlers=ADMIN_ROUTES, guards=[require_admin])
    return Litestar(
        route_handlers=[*PUBLIC_ROUTES, admin],
        lifespan=[lifespan],
        dependencies={"runtime": Provide(_runtime, sync_to_thread=False)},
        exception_handlers=exception_handlers,
        middleware=[request_id_middleware],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="aurous-receiver", version="0.1.0"),
        logging_config=None,
        debug=False,
    )
