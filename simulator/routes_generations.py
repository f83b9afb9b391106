"""Images and videos: create, estimate, retrieve, list, cancel (§2, §3) and GET /v1/loras."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from simulator.billing import money
from simulator.catalog import LORAS
from simulator.core import Origin, Simulator
from simulator.errors import ApiError, not_found, validation_error
from simulator.faults import inject_get_faults
from simulator.http import base_url, guard, json_response, read_json, request_id, set_header
from simulator.idempotency import IdempotencyStore, fingerprint
from simulator.jobs import Job
from simulator.params import image_cost, parse_image, parse_video, video_cost

__all__ = ["GENERATION_ROUTES"]

AnyRequest = Request[Any, Any, Any]


def _idempotency_key(request: AnyRequest) -> str | None:
    key = request.headers.get("idempotency-key") or request.headers.get("aurous-idempotent-key")
    if key is not None:
        IdempotencyStore.validate_key(key)
    return key


async def _create(request: AnyRequest, kind: str) -> Response[bytes]:
    sim = guard(request, "images_post")
    raw, body = await read_json(request)
    key = _idempotency_key(request)
    route = request.url.path
    if key is not None:
        stored = sim.idempotency.begin(key, route, fingerprint(raw), sim.clock.now())
        if stored is not None:
            sim.stats.incr("requests", "idempotent_replays")
            set_header(request.scope, "Aurous-Idempotent-Replayed", "true")
            return Response(
                content=stored.body, status_code=stored.status, media_type="application/json"
            )
    try:
        response = await _create_fresh(request, sim, kind, body)
    except BaseException:
        if key is not None:
            sim.idempotency.abandon(key)
        raise
    if key is not None:
        sim.idempotency.finish(key, response.status_code or 201, response.content)
    return response


async def _create_fresh(
    request: AnyRequest, sim: Simulator, kind: str, body: Any
) -> Response[bytes]:
    params = parse_image(body) if kind == "image" else parse_video(body)
    if sim.config.create_latency_s > 0:
        # Lets tests observe a request that is still in flight (409 for a concurrent retry).
        await asyncio.sleep(sim.config.create_latency_s)
    version = request.headers.get("aurous-version") or sim.config.api_version
    job = sim.create_job(
        kind, params, Origin(base_url(request), request_id(request.scope), version)
    )
    if sim.config.create_reply_delay_s > 0:
        await asyncio.sleep(sim.config.create_reply_delay_s)
    return json_response(sim.render(job), 201)


@post("/v1/images", status_code=201)
async def create_image(request: AnyRequest) -> Response[bytes]:
    return await _create(request, "image")


@post("/v1/videos", status_code=201)
async def create_video(request: AnyRequest) -> Response[bytes]:
    return await _create(request, "video")


def _estimate_json(amount: float, breakdown: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "estimate",
        "estimated_cost": {"amount": money(amount), "breakdown": breakdown},
        "currency": "credit",
    }


@post("/v1/images/estimate", status_code=200)
async def estimate_image(request: AnyRequest) -> Response[bytes]:
    sim = guard(request, "estimate_post")
    _, body = await read_json(request)
    sim.stats.incr("requests", "estimates")
    return json_response(_estimate_json(*image_cost(parse_image(body))))


@post("/v1/videos/estimate", status_code=200)
async def estimate_video(request: AnyRequest) -> Response[bytes]:
    sim = guard(request, "estimate_post")
    _, body = await read_json(request)
    sim.stats.incr("requests", "estimates")
    return json_response(_estimate_json(*video_cost(parse_video(body, estimate=True))))


def find_job(sim: Simulator, job_id: str) -> Job:
    job = sim.jobs.get(job_id)
    if job is None:
        raise not_found("generation", "id")
    return job


@get("/v1/images/{job_id:str}")
async def retrieve_generation(request: AnyRequest) -> Response[bytes]:
    job_id = request.path_params["job_id"]
    sim = guard(request, "get")
    inject_get_faults(sim, "images_get")
    return json_response(sim.render(find_job(sim, job_id)))


def _limit(request: AnyRequest) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return 20
    try:
        limit = int(raw)
    except ValueError:
        raise validation_error("invalid_format", "limit", "'limit' must be an integer.") from None
    if not 1 <= limit <= 100:
        raise validation_error("value_out_of_range", "limit", "'limit' must be 1 to 100.")
    return limit


def _cursor(request: AnyRequest, sim: Simulator, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and sim.jobs.get(value) is None:
        raise ApiError(404, "resource_not_found", f"No such generation for '{name}'.", param=name)
    return value


@get("/v1/images")
async def list_generations(request: AnyRequest) -> Response[bytes]:
    sim = guard(request, "get")
    inject_get_faults(sim, "images_list")
    limit = _limit(request)
    after = _cursor(request, sim, "starting_after")
    before = _cursor(request, sim, "ending_before")
    if after is not None and before is not None:
        raise validation_error(
            "parameter_invalid_combination",
            "ending_before",
            "Use either 'starting_after' or 'ending_before'.",
        )
    rows, has_more = sim.jobs.page(limit=limit, starting_after=after, ending_before=before)
    cursor_row = rows[0] if before is not None else (rows[-1] if rows else None)
    return json_response(
        {
            "object": "list",
            "data": [sim.render(job) for job in rows],
            "has_more": has_more,
            "next_cursor": cursor_row.id if has_more and cursor_row is not None else None,
        }
    )


@post("/v1/images/{job_id:str}/cancel", status_code=200)
async def cancel_generation(request: AnyRequest) -> Response[bytes]:
    job_id = request.path_params["job_id"]
    sim = guard(request, "images_post")
    job = find_job(sim, job_id)
    sim.cancel(job)
    sim.stats.incr("requests", "cancels")
    return json_response(sim.render(job))


@get("/v1/loras")
async def list_loras(request: AnyRequest) -> Response[bytes]:
    sim = guard(request, "get")
    sim.stats.incr("gets", "loras")
    return json_response(LORAS)


GENERATION_ROUTES = [
    create_image,
    create_video,
    estimate_image,
    estimate_video,
    retrieve_generation,
    list_generations,
    cancel_generation,
    list_loras,
]
