"""Jobs: list, detail, event history, and tracking a job by id."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from receiver import jobs
from receiver.http import ApiError
from receiver.runtime import RuntimeDep

__all__ = ["get_job", "list_job_events", "list_jobs", "track_job"]

JOB_ID = re.compile(r"^(img|vid)_[A-Za-z0-9]{1,190}$")


class TrackRequest(msgspec.Struct):
    id: str


def _not_found(job_id: FromPath[str]) -> ApiError:
    return ApiError(404, "job_not_found", f"no job {job_id!r} is tracked here", param="id")


@get("/jobs", operation_id="listJobs", summary="List tracked jobs, newest first")
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


@get("/jobs/{job_id:str}", operation_id="getJob", summary="One job with its cost and outputs")
async def get_job(runtime: RuntimeDep, job_id: FromPath[str]) -> dict[str, Any]:
    job = await jobs.get_job(runtime.db, job_id)
    if job is None:
        raise _not_found(job_id)
    return job


@get("/jobs/{job_id:str}/events", operation_id="listJobEvents", summary="A job's event history")
async def list_job_events(runtime: RuntimeDep, job_id: FromPath[str]) -> dict[str, Any]:
    events = await jobs.job_events(runtime.db, job_id)
    if events is None:
        raise _not_found(job_id)
    return {"data": events}


@post("/jobs/track", operation_id="trackJob", summary="Start tracking a job by its Aurous id")
async def track_job(runtime: RuntimeDep, data: JSONBody[TrackRequest]) -> Response[dict[str, Any]]:
    if not JOB_ID.match(data.id):
        raise ApiError(400, "invalid_job_id", "id must look like img_… or vid_…", param="id")
    job, created = await jobs.track(runtime.db, data.id)
    return Response(job, status_code=201 if created else 200)
