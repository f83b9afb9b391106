"""Health, readiness and metrics."""

from __future__ import annotations

import msgspec
from litestar import MediaType, Response, get
from prometheus_client import REGISTRY, generate_latest

from receiver.runtime import RuntimeDep
from receiver.web.http import ERROR_RESPONSES, error_response
from storage.migrate import current_revision

__all__ = ["get_health", "get_metrics", "get_readiness"]


class Health(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    status: str
    database: str
    revision: str | None


@get(
    "/healthz",
    responses=ERROR_RESPONSES,
    opt={"public": True},
    operation_id="getHealth",
    summary="The process is up",
)
async def get_health() -> Health:
    return Health("ok")


@get(
    "/readyz",
    responses=ERROR_RESPONSES,
    opt={"public": True},
    operation_id="getReadiness",
    summary="Database reachable and migrated to head",
)
async def get_readiness(runtime: RuntimeDep) -> Response[Readiness] | Response[bytes]:
    try:
        revision = await current_revision(runtime.db)
    except Exception as exc:
        return error_response(503, "database_unreachable", f"database unreachable: {exc}"[:300])
    if revision != runtime.head_revision:
        return error_response(
            503,
            "migrations_pending",
            f"database at {revision}, code expects {runtime.head_revision}",
        )
    return Response(Readiness("ready", "ok", revision))


@get(
    "/metrics",
    responses=ERROR_RESPONSES,
    operation_id="getMetrics",
    summary="Prometheus metrics",
    media_type=MediaType.TEXT,
)
async def get_metrics(runtime: RuntimeDep) -> Response[bytes]:
    await runtime.gauges.refresh()  # database-backed gauges are read at scrape time
    # This app's own metrics, then the process-wide ones (HTTP requests by route, process).
    body = generate_latest(runtime.metrics.registry) + generate_latest(REGISTRY)
    return Response(body, media_type=MediaType.TEXT)
