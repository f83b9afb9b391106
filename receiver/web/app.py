"""`create_app(settings)`: the one place the service is wired together."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from receiver.logs import configure_logging
from receiver.runtime import Runtime, open_runtime
from receiver.settings import Settings
from receiver.startup_checks import warn_about_download_hosts, warn_about_setup
from receiver.web.auth import LoginRequired, require_admin
from receiver.web.http import exception_handlers, request_middleware
from receiver.web.limits import BodyLimits, HttpLimits
from receiver.web.routes import ADMIN_ROUTES, PUBLIC_ROUTES
from receiver.web.routes.pages import DASHBOARD_ROUTES
from receiver.web.templating import LocalRapidoc, template_config

__all__ = ["create_app", "create_app_from_env"]

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def _runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def _to_login(_: Request[Any, Any, Any], exc: LoginRequired) -> Response[Any]:
    return Redirect(exc.location, status_code=303)


def _settle_garbage_collector() -> None:
    """Everything alive once the service is up (modules, the app, caches) lives as long as
    the process: freeze it out of the cyclic collector's reach. Otherwise each full collection
    walks all of it, a pause of tens of milliseconds in the middle of webhook requests (the
    ingest benchmark's p99 went from ~80 ms to ~20 ms)."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.runtime = await open_runtime(settings)
        # Only a replica that archives downloads; a slow resolver must not hold up its start,
        # so the lookups run beside the service.
        host_check = (
            asyncio.create_task(warn_about_download_hosts(settings), name="download-host-check")
            if settings.background
            else None
        )
        app.state.download_host_check = host_check
        try:
            await warn_about_setup(app.state.runtime)
            _settle_garbage_collector()
            yield
        finally:
            if host_check is not None:
                host_check.cancel()
            await app.state.runtime.close()

    static = create_static_files_router(
        path="/static",
        directories=[HERE / "static"],
        opt={"public": True},
        cache_control=None,
    )
    return Litestar(
        route_handlers=[*PUBLIC_ROUTES, *ADMIN_ROUTES, *DASHBOARD_ROUTES, static],
        lifespan=[lifespan],
        guards=[require_admin],
        dependencies={"runtime": Provide(_runtime, sync_to_thread=False)},
        exception_handlers={**exception_handlers, LoginRequired: _to_login},
        middleware=[request_middleware(BodyLimits(HttpLimits.of(settings)))],
        request_max_body_size=settings.max_body_bytes,
        template_config=template_config(HERE / "templates"),
        openapi_config=OpenAPIConfig(
            title="aurous-receiver",
            version="0.1.0",
            path="/schema",
            render_plugins=[LocalRapidoc(js_url="/static/rapidoc-min.js", path="/")],
        ),
        logging_config=None,
        debug=False,
    )


def create_app_from_env() -> Litestar:
    """The app of one `serve --workers` process: its settings from the environment the
    serving command prepared (uvicorn starts each worker from this factory's name)."""
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    return create_app(settings)
