"""Jobs: list, detail, event history, tracking a job by id, creating one, refreshing one."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from receiver.errors import ReceiverError
from receiver.generation import JOB_ID_PATTERN
from receiver.jobs import views
from receiver.jobs.views import Job, JobEvent
from receiver.runtime import Runtime, RuntimeDep
from receiver.shapes import Listing, Page
from receiver.web.http import api_get, api_post

__all__ = [
    "create_image_job",
    "create_video_job",
    "get_job",
    "list_job_events",
    "list_jobs",
    "refresh_job",
    "track_job",
]


class TrackRequest(msgspec.Struct):
    id: str


def _not_found(job_id: str) -> ReceiverError:
    return ReceiverError(404, "job_not_found", f"no job {job_id!r} is tracked here", param="id")


async def _job(runtime: Runtime, job_id: str) -> Job:
    job = await views.get_job(runtime.db, job_id)
    if job is None:
        raise _not_found(job_id)
    return job


@api_get("/jobs", "listJobs", "List tracked jobs, newest first")
async def list_jobs(
    runtime: RuntimeDep,
    status: FromQuery[str | None] = None,
    kind: Annotated[str | None, Parameter(pattern="^(image|video|unknown)$")] = None,
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
) -> Page[Job]:
    return await views.list_jobs(runtime.db, status=status, kind=kind, cursor=cursor, limit=limit)


@api_get("/jobs/{job_id:str}", "getJob", "One job with its cost and outputs")
async def get_job(runtime: RuntimeDep, job_id: FromPath[str]) -> Job:
    return await _job(runtime, job_id)


@api_get("/jobs/{job_id:str}/events", "listJobEvents", "A job's event history, oldest first")
async def list_job_events(runtime: RuntimeDep, job_id: FromPath[str]) -> Listing[JobEvent]:
    events = await views.job_events(runtime.db, job_id)
    if events is None:
        raise _not_found(job_id)
    return Listing(events)


@api_post(
    "/jobs/track",
    "trackJob",
    "Start tracking a job by its Aurous id (201 if new, 200 if tracked already)",
)
async def track_job(runtime: RuntimeDep, data: JSONBody[TrackRequest]) -> Response[Job]:
    if not JOB_ID_PATTERN.match(data.id):
        raise ReceiverError(400, "invalid_job_id", "id must look like img_… or vid_…", param="id")
    created = await runtime.tracker.track(data.id)
    return Response(await _job(runtime, data.id), status_code=201 if created else 200)


def _create_route(kind: str) -> HTTPRouteHandler:
    """POST /jobs/{kind}s: create the job at Aurous (the body is Aurous's create body, the
    `Idempotency-Key` header is honoured) and track it."""

    async def create(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Job]:
        created = await runtime.creator.create(
            kind, await request.body(), request.headers.get("idempotency-key")
        )
        headers = {"Idempotency-Key": created.idempotency_key}
        if created.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(await _job(runtime, created.job_id), status_code=201, headers=headers)

    summary = f"Create {'an image' if kind == 'image' else 'a video'} at Aurous and track it"
    return api_post(f"/jobs/{kind}s", f"create{kind.title()}Job", summary, status_code=201)(create)


create_image_job = _create_route("image")
create_video_job = _create_route("video")


@api_post(
    "/jobs/{job_id:str}/refresh", "refreshJob", "Ask Aurous about one job now", status_code=200
)
async def refresh_job(runtime: RuntimeDep, job_id: FromPath[str]) -> Job:
    await _job(runtime, job_id)  # only jobs tracked here
    await runtime.tracker.refresh(job_id)
    return await _job(runtime, job_id)
