"""Health, readiness and metrics."""

from __future__ import annotations

import msgspec
from litestar import MediaType, Response
from prometheus_client import REGISTRY, generate_latest

from receiver.errors import ReceiverError
from receiver.runtime import RuntimeDep
from receiver.web.http import api_get
from storage.migrate import current_revision

__all__ = ["get_health", "get_metrics", "get_readiness"]


class Health(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    status: str
    database: str
    revision: str | None


@api_get("/healthz", "getHealth", "The process is up", opt={"public": True})
async def get_health() -> Health:
    return Health("ok")


@api_get("/readyz", "getReadiness", "Database reachable and migrated to head", opt={"public": True})
async def get_readiness(runtime: RuntimeDep) -> Readiness:
    try:
        revision = await current_revision(runtime.db)
    except Exception as exc:
        message = f"database unreachable: {exc}"[:300]
        raise ReceiverError(503, "database_unreachable", message) from None
    if revision != runtime.head_revision:
        message = f"database at {revision}, code expects {runtime.head_revision}"
        raise ReceiverError(503, "migrations_pending", message)
    return Readiness("ready", "ok", revision)


@api_get("/metrics", "getMetrics", "Prometheus metrics", media_type=MediaType.TEXT)
async def get_metrics(runtime: RuntimeDep) -> Response[bytes]:
    await runtime.gauges.refresh()  # database-backed gauges are read at scrape time
    # This app's own metrics, then the process-wide ones (HTTP requests by route, process).
    body = generate_latest(runtime.metrics.registry) + generate_latest(REGISTRY)
    return Response(body, media_type=MediaType.TEXT)
