"""create_simulator_app(config) -> Litestar: every route, the error envelope, the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException

from simulator.config import SimulatorConfig
from simulator.control import CONTROL_ROUTES
from simulator.core import Simulator
from simulator.engine import run_engine
from simulator.errors import ApiError, envelope
from simulator.http import request_id, set_header, stamp_headers
from simulator.routes_billing import BILLING_ROUTES
from simulator.routes_generations import GENERATION_ROUTES
from simulator.routes_outputs import OUTPUT_ROUTES, install_log_filter
from simulator.routes_webhooks import WEBHOOK_ROUTES

__all__ = ["create_simulator_app"]

AnyRequest = Request[Any, Any, Any]
log = logging.getLogger("simulator")


def _error_response(request: AnyRequest, error: ApiError) -> Response[Any]:
    for name, value in error.headers.items():
        set_header(request.scope, name, value)
    return Response(
        content=envelope(error, request_id(request.scope)),
        status_code=error.status,
        media_type="application/json",
    )


def _on_api_error(request: AnyRequest, exc: Exception) -> Response[Any]:
    assert isinstance(exc, ApiError)
    return _error_response(request, exc)


def _on_http_exception(request: AnyRequest, exc: Exception) -> Response[Any]:
    if isinstance(exc, NotFoundException):
        error = ApiError(404, "resource_not_found", "No such route or resource.")
    elif isinstance(exc, MethodNotAllowedException):
        error = ApiError(405, "method_not_allowed", "This method is not allowed on this route.")
    elif isinstance(exc, HTTPException) and exc.status_code < 500:
        error = ApiError(exc.status_code, "invalid_format", str(exc.detail))
    else:
        log.exception("unexpected error in the simulator", exc_info=exc)
        error = ApiError(500, "internal_error", "An internal error occurred.")
    return _error_response(request, error)


def create_simulator_app(config: SimulatorConfig | None = None) -> Litestar:
    """A fresh simulated Aurous (its own state); serve it with uvicorn or a test live server."""
    simulator = Simulator(config or SimulatorConfig())
    install_log_filter()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with run_engine(simulator):
            yield

    app = Litestar(
        route_handlers=[
            *GENERATION_ROUTES,
            *OUTPUT_ROUTES,
            *WEBHOOK_ROUTES,
            *BILLING_ROUTES,
            *CONTROL_ROUTES,
        ],
        exception_handlers={ApiError: _on_api_error, Exception: _on_http_exception},
        before_send=[stamp_headers],
        lifespan=[lifespan],
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    app.state.simulator = simulator
    return app
