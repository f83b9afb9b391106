"""Jobs: list, detail, event history, and tracking a job by id."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from receiver.aurous import AurousError
from receiver.jobs import views as jobs
from receiver.jobs.creation import CreateError
from receiver.jobs.lifecycle import Observation, observe
from receiver.runtime import Runtime, RuntimeDep
from receiver.web.http import ERROR_RESPONSES, ApiError
from storage.types import utcnow

__all__ = [
    "create_image_job",
    "create_video_job",
    "get_job",
    "list_job_events",
    "list_jobs",
    "refresh_job",
    "track_job",
]

JOB_ID = re.compile(r"^(img|vid)_[A-Za-z0-9]{1,190}$")


class TrackRequest(msgspec.Struct):
    id: str


def _not_found(job_id: FromPath[str]) -> ApiError:
    return ApiError(404, "job_not_found", f"no job {job_id!r} is tracked here", param="id")


@get(
    "/jobs",
    responses=ERROR_RESPONSES,
    operation_id="listJobs",
    summary="List tracked jobs, newest first",
)
async def list_jobs(
    runtime: RuntimeDep,
    status: FromQuery[str | None] = None,
    kind: Annotated[str | None, Parameter(pattern="^(image|video|unknown)$")] = None,
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    try:
        return await jobs.list_jobs(
            runtime.db, status=status, kind=kind, cursor=cursor, limit=limit
        )
    except jobs.CursorError as exc:
        raise ApiError(400, "invalid_cursor", str(exc), param="cursor") from None


@get(
    "/jobs/{job_id:str}",
    responses=ERROR_RESPONSES,
    operation_id="getJob",
    summary="One job with its cost and outputs",
)
async def get_job(runtime: RuntimeDep, job_id: FromPath[str]) -> dict[str, Any]:
    job = await jobs.get_job(runtime.db, job_id)
    if job is None:
        raise _not_found(job_id)
    return job


@get(
    "/jobs/{job_id:str}/events",
    responses=ERROR_RESPONSES,
    operation_id="listJobEvents",
    summary="A job's event history",
)
async def list_job_events(runtime: RuntimeDep, job_id: FromPath[str]) -> dict[str, Any]:
    events = await jobs.job_events(runtime.db, job_id)
    if events is None:
        raise _not_found(job_id)
    return {"data": events}


@post(
    "/jobs/track",
    responses=ERROR_RESPONSES,
    operation_id="trackJob",
    summary="Start tracking a job by its Aurous id",
)
async def track_job(runtime: RuntimeDep, data: JSONBody[TrackRequest]) -> Response[dict[str, Any]]:
    if not JOB_ID.match(data.id):
        raise ApiError(400, "invalid_job_id", "id must look like img_… or vid_…", param="id")
    job, created = await jobs.track(runtime.db, data.id)
    return Response(job, status_code=201 if created else 200)


async def _create(request: Request[Any, Any, Any], runtime: Runtime, kind: str) -> Response[Any]:
    try:
        created = await runtime.creator.create(
            kind, await request.body(), request.headers.get("idempotency-key")
        )
    except CreateError as error:
        extra = {"aurous_request_id": error.aurous_request_id} if error.aurous_request_id else {}
        raise ApiError(
            error.status, error.code, error.message, param=error.param, extra=extra
        ) from None
    job = await jobs.get_job(runtime.db, created.job_id)
    headers = {"Idempotency-Key": created.idempotency_key}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(job, status_code=201, headers=headers)


@post(
    "/jobs/images",
    responses=ERROR_RESPONSES,
    operation_id="createImageJob",
    status_code=201,
    summary="Create an image at Aurous (body = the Aurous create body) and track it",
)
async def create_image_job(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    return await _create(request, runtime, "image")


@post(
    "/jobs/videos",
    responses=ERROR_RESPONSES,
    operation_id="createVideoJob",
    status_code=201,
    summary="Create a video at Aurous (body = the Aurous create body) and track it",
)
async def create_video_job(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    return await _create(request, runtime, "video")


@post(
    "/jobs/{job_id:str}/refresh",
    responses=ERROR_RESPONSES,
    operation_id="refreshJob",
    status_code=200,
    summary="Ask Aurous about one job now",
)
async def refresh_job(runtime: RuntimeDep, job_id: FromPath[str]) -> dict[str, Any]:
    if await jobs.get_job(runtime.db, job_id) is None:
        raise _not_found(job_id)
    if runtime.aurous is None:
        raise ApiError(503, "not_configured", "AUROUS_API_KEY is not set")
    try:
        generation = await runtime.aurous.get_generation(job_id)
    except AurousError as error:
        status = error.status if error.status >= 400 else 502
        raise ApiError(
            status, error.code, error.message, extra={"aurous_request_id": error.request_id}
        ) from None
    results = await observe(
        runtime.db,
        [Observation(generation, "poll", utcnow())],
        output_ttl_s=runtime.settings.output_ttl_s,
    )
    runtime.after_commit(results)
    job = await jobs.get_job(runtime.db, job_id)
    assert job is not None
    return job
